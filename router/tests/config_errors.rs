//! The binary refuses bad configuration at start: exit status 2, one line `cells-router: <reason>`.

use std::process::Command;

const GOOD: &str = r#"
name = "router_us"
listen = "127.0.0.1:0"
default_cell = "cell_us0"
[cache]
ttl = "60s"
capacity = 100
stale_grace = "300s"
[[cells]]
name = "cell_us0"
url = "http://127.0.0.1:9001"
[[cells]]
name = "cell_us1"
url = "http://127.0.0.1:9002"
"#;

fn run(toml: &str, extra: &[&str]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("cells-router-cfg-{}-{}", std::process::id(), rand_suffix(toml, extra)));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("router.toml");
    std::fs::write(&file, toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cells-router")).arg("--config").arg(&file).args(extra).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).to_string())
}

fn rand_suffix(toml: &str, extra: &[&str]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (toml, extra).hash(&mut h);
    h.finish()
}

fn refused(toml: &str, extra: &[&str], needle: &str) {
    let (code, err) = run(toml, extra);
    assert_eq!(code, 2, "exit code for {needle}: {err}");
    assert!(err.starts_with("cells-router: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
}

#[test]
fn bad_configurations_exit_2_with_one_line() {
    refused(&GOOD.replace("default_cell = \"cell_us0\"", "default_cell = \"cell_eu9\""), &[], "default_cell \"cell_eu9\" is not a configured cell");
    refused(&GOOD.replace("cell_us1", "cell_us0"), &[], "duplicate cell name \"cell_us0\"");
    refused(&GOOD.replace("http://127.0.0.1:9002", "127.0.0.1:9002"), &[], "cell cell_us1: invalid url");
    refused(&GOOD.replace("http://127.0.0.1:9002", "https://127.0.0.1:9002"), &[], "only http://");
    refused(&GOOD.replace("capacity = 100", "capacity = 0"), &[], "cache.capacity must be greater than zero");
    refused(&GOOD.replace("ttl = \"60s\"", "ttl = \"sixty\""), &[], "invalid config file");
    refused(&GOOD.replace("ttl = \"60s\"", "ttl = \"0s\""), &[], "cache.ttl must be greater than zero");
    refused(&format!("{GOOD}\n[timeouts]\nlearn = \"2 fortnights\"\n"), &[], "invalid config file");
    refused(&GOOD.replace("name = \"router_us\"", "name = \"router_us\"\nlisten_on = \"x\""), &[], "listen_on");
    refused(&GOOD.replace("stale_grace", "stale_grase"), &[], "stale_grase");
    refused(&GOOD.replace("listen = \"127.0.0.1:0\"", "listen = \"localhost\""), &[], "invalid listen address");
    refused(&format!("{GOOD}\n[session_cookie]\npattern = \"^cell-([a-z]+)\"\n"), &[], "(?<cell>");
    refused(&GOOD.replace("name = \"cell_us1\"", "name = \"cell us1\""), &[], "invalid cell name");
    refused("", &[], "no cells configured");
    refused(GOOD, &["--default-cell", "nope"], "default_cell \"nope\"");
    refused(GOOD, &["--cell", "cell_x"], "expected NAME=URL");
    refused(GOOD, &["--cell", "a=http://127.0.0.1:1", "--cell", "a=http://127.0.0.1:2", "--default-cell", "a"], "duplicate cell name \"a\"");
}

#[test]
fn missing_config_file_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_cells-router")).args(["--config", "/nonexistent/router.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("cells-router: cannot read config file /nonexistent/router.toml"), "{err}");
}

#[test]
fn help_documents_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_cells-router")).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--listen",
        "--name",
        "--default-cell",
        "--cell",
        "--learn-path",
        "--trace-header",
        "--log-format",
        "--log-level",
        "--internal-listen",
        "--probe-interval",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}
