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
    // Issue 17's per-request quantiles of the route decision, in order.
    let quantiles = ["ns_per_classify_median", "ns_per_classify_p90", "ns_per_classify_p99", "ns_per_classify_max"]
        .map(|q| v[q].as_f64().unwrap_or_else(|| panic!("no {q} in {v}")));
    assert!(quantiles.windows(2).all(|w| w[0] <= w[1]), "{quantiles:?}");
}

/// Issue 17: the classifier's heap after cycling through GitLab CE's requests (its retained heap
/// and its lazy DFAs' caches) at most this many times what it retained once built.
const MAX_MEMORY_AFTER_CYCLING_RATIO: f64 = 1.5;

/// Issue 17's memory item in one run: what the classifier retains once built, its lazy DFAs'
/// caches once every request went through and again after all the cycling (steady: a cache
/// never passes its capacity), the ratio of both over the retained heap, and the process's
/// resident set. GitLab CE's web routes are lazy; the corpus table is dense (no caches).
#[test]
fn bench_prints_memory_before_and_after_cycling() {
    let run = |routes: &str, requests: &str| -> serde_json::Value {
        let (routes, requests) = (corpus(routes), corpus(requests));
        let out = Command::new(env!("CARGO_BIN_EXE_cells-learn"))
            .args(["bench", "--routes", routes.to_str().unwrap(), "--requests", requests.to_str().unwrap(), "--rounds", "1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let figure = |v: &serde_json::Value, name: &str| v[name].as_u64().unwrap_or_else(|| panic!("no {name} in {v}"));
    let ce = run("gitlab-ce.routes.json", "gitlab-ce.recorded.jsonl");
    let retained = figure(&ce, "memory_bytes");
    let (one_pass, after) = (figure(&ce, "lazy_cache_bytes_after_one_pass"), figure(&ce, "lazy_cache_bytes_after_cycling"));
    assert!(retained > 1 << 20, "{ce}");
    assert!(one_pass > 0 && after >= one_pass && after <= figure(&ce, "lazy_cache_capacity_bytes"), "{ce}");
    let listed: u64 = ce["lazy_caches"].as_array().unwrap().iter().map(|k| k["bytes"].as_u64().unwrap()).sum();
    assert!(listed > 0 && listed <= after, "{ce}");
    let ratio = ce["memory_after_cycling_ratio"].as_f64().unwrap();
    let expected = (figure(&ce, "memory_bytes_after_cycling") + after) as f64 / retained as f64;
    assert!((ratio - expected).abs() < 1e-9 && ratio > 1.0, "{ce}");
    // Issue 17's target. The caches hold every state the requests visit (none is cleared), so
    // the figure is the same for any number of rounds: 1.59 before literal prefix tails were
    // compared rather than walked, 1.49 since.
    assert!(ratio <= MAX_MEMORY_AFTER_CYCLING_RATIO, "memory after cycling {ratio:.3}x retained, above {MAX_MEMORY_AFTER_CYCLING_RATIO}x: {ce}");
    if cfg!(target_os = "linux") {
        assert!(figure(&ce, "rss_bytes_after_cycling") > retained, "{ce}");
        assert!(figure(&ce, "rss_bytes_after_build") > retained, "{ce}");
    }
    let dense = run("gitlabish-routes.json", "gitlabish-requests.jsonl");
    assert_eq!(dense["engine"], "dense");
    assert_eq!(figure(&dense, "lazy_cache_bytes_after_cycling"), 0);
    // No caches: the ratio is the classifier's own growth (the literal paths' kept candidates,
    // src/classifier/static_paths.rs), compared within a float's rounding (serde_json parses
    // floats to within one unit in the last place).
    let dense_ratio = dense["memory_after_cycling_ratio"].as_f64().unwrap();
    let dense_expected = figure(&dense, "memory_bytes_after_cycling") as f64 / figure(&dense, "memory_bytes") as f64;
    assert!((dense_ratio - dense_expected).abs() < 1e-9 && (1.0..1.01).contains(&dense_ratio), "{dense}");
}
