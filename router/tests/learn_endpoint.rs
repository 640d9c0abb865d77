//! The learn endpoint is private (issue 14, item 4): clients asking the router for it get 404
//! and the cells never see the request; the router's own learn requests carry the learn token,
//! which clients cannot send and the router never shows.

mod common;

use bytes::Bytes;
use common::*;

fn learned_cells() -> impl Fn(&str, &str) -> LearnReply + Send + Sync + 'static {
    table(&[("/org/proj", "cell_b", "routable", false, true)], "cell_a")
}

#[tokio::test]
async fn clients_cannot_reach_the_learn_endpoint_in_any_spelling() {
    let (a, b) = (FakeCell::start("cell_a", learned_cells()).await, FakeCell::start("cell_b", learned_cells()).await);
    let r = router("", "cell_a", &[&a, &b]).await;
    let c = client();
    let q = "?method=GET&path_info=/secret-group/project";
    for path in [
        "/api/v4/cells/learn",
        "/api/v4/cells/learn/",
        "/api/v4/cells/learn.json",
        "/api/v4/cells/learn/anything",
        "/api/v4/cells/%6Cearn",
        "/api/v4/cells/%6cearn.json",
        "/%61pi/v4/cells/learn",
        "/API/v4/cells/Learn",
    ] {
        for method in ["GET", "HEAD", "POST"] {
            let g = send(&c, r.addr, method, &format!("{path}{q}"), &[], Bytes::new()).await;
            assert_eq!(g.status, 404, "{method} {path}");
            if method != "HEAD" {
                assert_eq!(g.json()["error"], "not_found", "{path}");
            }
            assert_eq!(g.headers["content-type"], "application/json");
        }
    }
    // Raw targets a client library would normalise: `//` and dot segments are refused as before.
    for target in ["//api/v4/cells/learn", "/api/v4/./cells/learn", "/api/v4/cells%2Flearn"] {
        let (status, _) = raw(r.addr, &format!("GET {target}{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).await;
        assert!(status == 400 || status == 404, "{target}: {status}");
    }
    assert_eq!(a.learn_count() + b.learn_count(), 0, "a client's learn request reached a cell");
    assert_eq!(a.request_count() + b.request_count(), 0);
    // Neighbours of the learn path are routed as usual.
    for path in ["/api/v4/cells/learner", "/api/v4/cells", "/org/proj/api/v4/cells/learn"] {
        assert_eq!(get(&c, r.addr, path).await.status, 200, "{path}");
    }
    r.shutdown().await;
}

#[tokio::test]
async fn a_configured_learn_path_is_private_too() {
    let a = FakeCell::start("cell_a", learned_cells()).await;
    let r = router("learn_path = \"/internal/cells-learn\"", "cell_a", &[&a]).await;
    let c = client();
    assert_eq!(get(&c, r.addr, "/internal/cells-learn?method=GET&path_info=/").await.status, 404);
    assert_eq!(get(&c, r.addr, "/internal/cells-learn/").await.status, 404);
    assert_eq!(a.request_count() + a.learn_count(), 0);
    // The default path is an ordinary path now (this fake cell cannot answer the configured
    // learn path, so the router has nowhere to send it: 503, not the router's 404).
    assert_ne!(get(&c, r.addr, "/api/v4/cells/learn").await.status, 404, "only the configured learn path is private");
    r.shutdown().await;
}

#[tokio::test]
async fn learn_requests_carry_the_token_and_clients_cannot_send_it() {
    let dir = std::env::temp_dir().join(format!("cells-router-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("learn_token");
    std::fs::write(&file, "s3cret-Token_value\n").unwrap();
    let (a, b) = (FakeCell::start("cell_a", learned_cells()).await, FakeCell::start("cell_b", learned_cells()).await);
    let extra = format!("learn_token_file = {:?}", file.display().to_string());
    let r = router(&extra, "cell_a", &[&a, &b]).await;
    let c = client();
    let g =
        send(&c, r.addr, "GET", "/org/proj/-/issues", &[("x-gitlab-cell-learn-token", "forged"), ("X_Gitlab_Cell_Learn_Token", "forged")], Bytes::new()).await;
    assert_eq!(g.served_by(), "cell_b");
    // The token reached the learn endpoint, never the application; the client's copy nowhere.
    let learn_headers: Vec<_> = [&a, &b].iter().flat_map(|cell| cell.state.learn_headers.lock().unwrap().clone()).collect();
    assert!(!learn_headers.is_empty());
    for h in &learn_headers {
        assert_eq!(h.get_all("x-gitlab-cell-learn-token").iter().collect::<Vec<_>>(), vec!["s3cret-Token_value"]);
    }
    for rec in b.requests() {
        assert!(!rec.headers.contains_key("x-gitlab-cell-learn-token") && !rec.headers.contains_key("x_gitlab_cell_learn_token"), "{:?}", rec.headers);
    }
    // Never shown: not in the configuration's Debug form.
    let shown = format!("{:?}", r.state.cfg);
    assert!(shown.contains("LearnToken(<redacted>)") && !shown.contains("s3cret"), "{shown}");
    r.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_tokens_are_refused_without_showing_them() {
    let dir = std::env::temp_dir().join(format!("cells-router-badtoken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = "default_cell = \"c\"\n[[cells]]\nname = \"c\"\nurl = \"http://127.0.0.1:1\"\n";
    let load = |content: Option<&str>| {
        let file = dir.join("t");
        let _ = std::fs::remove_file(&file);
        if let Some(c) = content {
            std::fs::write(&file, c).unwrap();
        }
        let text = format!("learn_token_file = {:?}\n{base}", file.display().to_string());
        cells_router::Config::from_toml(&text, &cells_router::Args::default()).map(|_| ()).unwrap_err().to_string()
    };
    assert!(load(None).starts_with("cannot read learn_token_file "), "{}", load(None));
    assert!(load(Some("")).contains("is empty"));
    assert!(load(Some("\n")).contains("is empty"));
    let e = load(Some("two words-secret"));
    assert!(e.contains("visible ASCII") && !e.contains("secret"), "{e}");
    let e = load(Some("tab\tsecret"));
    assert!(e.contains("visible ASCII") && !e.contains("secret"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
    let ok = cells_router::config::LearnToken::parse("abc\r\n", "test").unwrap();
    assert_eq!(ok.header_value(), "abc");
    assert!(ok.header_value().is_sensitive());
    assert_eq!(format!("{ok:?}"), "LearnToken(<redacted>)");
}
