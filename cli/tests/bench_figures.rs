//! `cells-learn bench` prints the figures the Ruby bench (`benches/classify_ips.rb`) divides its
//! own by, on the same table in the same run: the learn answer and the route with its parameters,
//! each per request (median) and cycling through all requests (mean).

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus").join(file)
}

#[test]
fn bench_prints_learn_and_recognize_figures_per_request_and_cycling() {
    let routes = corpus("gitlabish-routes.json");
    let requests = corpus("gitlabish-requests.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_cells-learn"))
        .args(["bench", "--routes", routes.to_str().unwrap(), "--requests", requests.to_str().unwrap(), "--rounds", "20"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let vectors = std::fs::read_to_string(&requests).unwrap().lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(v["requests"], vectors);
    assert_eq!(v["rounds"], 20);
    assert_eq!(v["cycles"], 2);
    for figure in [
        "ns_per_classify_median",
        "ns_per_classify_cycling_mean",
        "ns_per_learn_median",
        "ns_per_learn_p90",
        "ns_per_learn_cycling_mean",
        "ns_per_recognize_params_median",
        "ns_per_recognize_params_cycling_mean",
    ] {
        let ns = v[figure].as_f64().unwrap_or_else(|| panic!("no {figure} in {v}"));
        assert!(ns > 0.0 && ns < 1e7, "{figure}: {ns}");
    }
    assert!(v["ns_per_learn_p90"].as_f64() >= v["ns_per_learn_median"].as_f64());
}
