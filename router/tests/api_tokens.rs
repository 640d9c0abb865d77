//! API tokens that name their cell (`[api_token] pattern`) route the requests the learn answer
//! leaves open, like the session cookie; a path key always wins; token values appear nowhere.

mod common;

use bytes::Bytes;
use common::*;

const PATTERN: &str = "[api_token]\npattern = \"^glpat-cell-(?<cell>[a-z0-9_]+)-\"\n";

async fn two_cells() -> (FakeCell, FakeCell) {
    let t = || {
        table(
            &[
                ("/org", "cell_b", "routable", false, true),
                ("/api/graphql", "cell_a", "fixed", true, false),
                ("/api/v4/projects/1", "cell_a", "routable", false, true),
            ],
            "cell_a",
        )
    };
    (FakeCell::start("cell_a", t()).await, FakeCell::start("cell_b", t()).await)
}

#[tokio::test]
async fn each_token_header_routes_an_open_request_to_its_cell() {
    let (a, b) = two_cells().await;
    let r = router(PATTERN, "cell_a", &[&a, &b]).await;
    let c = client();
    let token = "glpat-cell-cell_b-s3cr3tT0k3nValue";
    let bearer = format!("Bearer {token}");
    for headers in [vec![("private-token", token)], vec![("job-token", token)], vec![("authorization", bearer.as_str())]] {
        let g = send(&c, r.addr, "POST", "/api/graphql", &headers, Bytes::from_static(b"{}")).await;
        assert_eq!(g.served_by(), "cell_b", "{headers:?}");
        // The token reaches the cell untouched (it authenticates there).
        assert_eq!(b.requests().last().unwrap().headers.get(headers[0].0).unwrap(), headers[0].1);
    }
    // Uncacheable default answers too (no path key).
    assert_eq!(send(&c, r.addr, "GET", "/dashboard", &[("private-token", token)], Bytes::new()).await.served_by(), "cell_b");
    // A path key always wins.
    assert_eq!(send(&c, r.addr, "GET", "/api/v4/projects/1/issues", &[("private-token", token)], Bytes::new()).await.served_by(), "cell_a");
    assert_eq!(send(&c, r.addr, "GET", "/org/p", &[("private-token", "glpat-cell-cell_a-x")], Bytes::new()).await.served_by(), "cell_b");
    // Tokens that name no configured cell, or do not match, leave the default.
    for t in ["glpat-cell-cell_zz-x", "glpat-0123456789", ""] {
        assert_eq!(send(&c, r.addr, "POST", "/api/graphql", &[("private-token", t)], Bytes::new()).await.served_by(), "cell_a", "{t:?}");
    }
    // The token is preferred to the session cookie (it names the API caller).
    let both = [("private-token", token), ("cookie", "_gitlab_session=cell-cell_a-1")];
    assert_eq!(send(&c, r.addr, "POST", "/api/graphql", &both, Bytes::new()).await.served_by(), "cell_b");
    // Not in the metrics, not in the trace header.
    let metrics = r.state.metrics.encode(0);
    assert!(!metrics.contains("s3cr3t"));
    let g = send(&c, r.addr, "POST", "/api/graphql", &[("private-token", token)], Bytes::new()).await;
    assert!(!g.trace().contains("s3cr3t"));
    r.shutdown().await;
}

#[tokio::test]
async fn without_a_pattern_tokens_route_nothing() {
    let (a, b) = two_cells().await;
    let r = router("", "cell_a", &[&a, &b]).await;
    let g = send(&client(), r.addr, "POST", "/api/graphql", &[("private-token", "glpat-cell-cell_b-x")], Bytes::new()).await;
    assert_eq!(g.served_by(), "cell_a");
    r.shutdown().await;
}
