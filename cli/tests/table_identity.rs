//! `cells-learn learn --routes-version N [--routes-digest D]` answers as a cell's learn
//! endpoint does during a deploy (issue 16 §4): the answer carries `"routes_version"` and
//! `"routes_digest"`, the digest read from the artifact `rake cells:compile` writes when that is
//! the table, so the CLI's answer for a request is the cell's, byte for byte.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cells_learn::LearnResponse;

fn corpus_routes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/gitlabish-routes.json")
}

/// A directory of this test's own under the target directory (no fixed /tmp names).
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("table_identity-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cells_learn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cells-learn")).args(args).output().unwrap()
}

/// `learn`'s `"response"`, as text and parsed.
fn learn(routes: &Path, extra: &[&str], method: &str, path: &str) -> (String, LearnResponse) {
    let mut args = vec!["learn", "--routes", routes.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[method, path]);
    let out = cells_learn(&args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = serde_json::to_string(&v["response"]).unwrap();
    (text.clone(), serde_json::from_str(&text).unwrap())
}

/// The corpus table compiled (`cells-learn compile`): it loads in milliseconds where the JSON
/// table is compiled on each run.
fn compiled(dir: &Path) -> PathBuf {
    let plain = dir.join("table.cells-learn");
    let out = cells_learn(&["compile", "--routes", corpus_routes().to_str().unwrap(), "-o", plain.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    plain
}

/// What `rake cells:compile` writes: the `RailsClassifier::MAGIC` line with the digest, then
/// the `Classifier#dump` bytes (what `cells-learn compile` writes).
fn rails_artifact(dir: &Path, digest: &str) -> PathBuf {
    let mut bytes = format!("gitlab-cells-learn-rails-artifact/1 {digest}\n").into_bytes();
    bytes.extend(std::fs::read(compiled(dir)).unwrap());
    let rails = dir.join("classifier.cells-learn");
    std::fs::write(&rails, bytes).unwrap();
    rails
}

const REQUESTS: [(&str, &str); 4] = [("GET", "/gitlab-org/gitlab-test/-/issues"), ("GET", "/-/profile"), ("POST", "/api/v4/projects/42/issues"), ("GET", "/")];

/// Without the flags the answer carries no table (as a cell configured without a version);
/// with them, the same answer plus exactly the two fields, which the router reads back.
#[test]
fn the_version_and_digest_given_tag_the_same_answer() {
    let dir = scratch("flags");
    let table = compiled(&dir);
    for (method, path) in REQUESTS {
        let (plain_text, plain) = learn(&table, &[], method, path);
        assert!(!plain_text.contains("routes_"), "{plain_text}");
        assert_eq!((plain.routes_version, plain.routes_digest.as_deref()), (None, None));
        let (text, tagged) = learn(&table, &["--routes-version", "1764000000", "--routes-digest", "ab12"], method, path);
        assert_eq!((tagged.routes_version, tagged.routes_digest.as_deref()), (Some(1_764_000_000), Some("ab12")), "{text}");
        let stripped = LearnResponse { routes_version: None, routes_digest: None, ..tagged.clone() };
        assert_eq!(stripped, plain, "{method} {path}: only the table was added");
        assert_eq!(tagged, plain.clone().with_table(Some("ab12".into()), Some(1_764_000_000)));
        // A version alone (a classifier without a digest, as a plain `Classifier` in the gem).
        let (_, version_only) = learn(&table, &["--routes-version", "0"], method, path);
        assert_eq!((version_only.routes_version, version_only.routes_digest), (Some(0), None));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// The artifact `rake cells:compile` writes names its routes' digest: learning with it gives
/// the digest a cell booted from it reports, and the same answers as the table it was compiled from.
#[test]
fn a_rails_artifact_answers_with_its_own_digest() {
    let dir = scratch("artifact");
    let digest = "0123456789abcdef".repeat(4);
    let artifact = rails_artifact(&dir, &digest);
    for (method, path) in REQUESTS {
        let (_, from_json) = learn(&corpus_routes(), &[], method, path);
        let (text, from_artifact) = learn(&artifact, &["--routes-version", "7"], method, path);
        assert_eq!((from_artifact.routes_digest.as_deref(), from_artifact.routes_version), (Some(digest.as_str()), Some(7)), "{text}");
        assert_eq!(LearnResponse { routes_digest: None, routes_version: None, ..from_artifact }, from_json, "{method} {path}");
        // Naming the artifact's own digest is allowed; it changes nothing.
        let (same, _) = learn(&artifact, &["--routes-version", "7", "--routes-digest", &digest], method, path);
        assert_eq!(same, text);
    }
    // Other commands read it as a table too.
    let out = cells_learn(&["report", "--routes", artifact.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Bad input: exit status 2 and one line saying what is wrong, never an answer.
#[test]
fn bad_versions_digests_and_artifacts_are_refused_with_a_reason() {
    let routes = corpus_routes();
    let routes = routes.to_str().unwrap();
    let refused = |args: &[&str], reason: &str| {
        let out = cells_learn(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} answered: {}", String::from_utf8_lossy(&out.stdout));
        assert!(stderr.lines().next().unwrap_or("").contains(reason), "{args:?}: {stderr}");
    };
    for bad in [
        "--routes-version=-1",
        "--routes-version=9223372036854775808",
        "--routes-version=12x",
        "--routes-version=",
        "--routes-version=+3",
        "--routes-version=1e3",
    ] {
        refused(&["learn", "--routes", routes, bad, "GET", "/x"], "the routes version must be an integer from 0 to 9223372036854775807");
    }
    for bad in ["--routes-digest=", "--routes-digest=ab cd", "--routes-digest=caf\u{e9}"] {
        refused(&["learn", "--routes", routes, bad, "GET", "/x"], "the routes digest must be");
    }
    let dir = scratch("bad");
    let artifact = rails_artifact(&dir, &"ab".repeat(32));
    let max = cells_learn(&["learn", "--routes", artifact.to_str().unwrap(), "--routes-version", "9223372036854775807", "GET", "/x"]);
    assert!(max.status.success(), "the gem's MAX_VERSION is accepted: {}", String::from_utf8_lossy(&max.stderr));
    refused(
        &["learn", "--routes", artifact.to_str().unwrap(), "--routes-digest", "ffff", "GET", "/x"],
        &format!("--routes-digest ffff is not the digest of {}", artifact.display()),
    );
    let headless = dir.join("headless.cells-learn");
    std::fs::write(&headless, b"gitlab-cells-learn-rails-artifact/1 not-a-digest\nGLCLEARN").unwrap();
    refused(&["learn", "--routes", headless.to_str().unwrap(), "GET", "/x"], "does not end in a 64-hex-digit digest");
    let truncated = dir.join("truncated.cells-learn");
    std::fs::write(&truncated, format!("gitlab-cells-learn-rails-artifact/1 {}\nGLCLEARN", "ab".repeat(32))).unwrap();
    refused(&["learn", "--routes", truncated.to_str().unwrap(), "GET", "/x"], truncated.to_str().unwrap());
    std::fs::remove_dir_all(dir).unwrap();
}
