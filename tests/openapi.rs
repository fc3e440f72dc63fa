//! The OpenAPI document: generated from the handlers, complete, and served. (Every response of
//! the other suites is checked against it by `common::Http::send`.)

mod common;

use common::openapi::DOCUMENT;
use common::{Backend, TestServer};
use reqwest::StatusCode;

/// Every handler routed in `src/http` (`routes!(...)`), and the methods of each.
fn routed_handlers() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut handlers = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        assert!(
            !source.contains(".route(") || path.ends_with("mod.rs"),
            "{} routes with `.route(`: routes are registered with `routes!` so that the \
             OpenAPI document has them",
            path.display()
        );
        for call in source.split("routes!(").skip(1) {
            let inside = call.split(')').next().unwrap();
            handlers.extend(
                inside
                    .split(',')
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty()),
            );
        }
    }
    handlers
}

fn operations() -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in DOCUMENT["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete", "patch"] {
            if !item[method].is_null() {
                ops.push((method.to_owned(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn the_document_is_openapi_3_1_with_every_routed_handler() {
    assert!(
        DOCUMENT["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        DOCUMENT["openapi"]
    );
    let handlers = routed_handlers();
    let ops = operations();
    assert_eq!(
        handlers.len(),
        ops.len(),
        "each routed handler is one documented operation: {handlers:?} vs {ops:?}"
    );
    for (method, path) in &ops {
        let op = &DOCUMENT["paths"][path][method];
        for status in ["200", "201", "204", "101"] {
            if let Some(r) = op["responses"].get(status) {
                assert!(r["description"].is_string(), "{method} {path} {status}");
            }
        }
        assert!(
            op["responses"]["429"].is_object(),
            "{method} {path} lists the shared errors"
        );
    }
    for path in [
        "/api/v1/auth/login",
        "/api/v1/threads/{thread_id}/messages",
        "/api/v1/messages",
        "/api/register",
        "/ws",
        "/healthz",
    ] {
        assert!(DOCUMENT["paths"][path].is_object(), "{path} is documented");
    }
}

/// Each documented operation is served: asked without credentials or body, it answers
/// something else than "no such route" (404 from the router, 405).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served_and_the_document_is_too() {
    let srv = TestServer::start(Backend::Sqlite).await.unwrap();
    let client = reqwest::Client::new();
    for (method, path) in operations() {
        let url = format!("{}{}", srv.url, path.replace('{', "x").replace('}', ""));
        let res = client
            .request(method.to_uppercase().parse().unwrap(), &url)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let html = res
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
        let body = res.text().await.unwrap_or_default();
        // Unrouted, a GET gets the web client's page, an API path "no such API endpoint", any
        // other method an empty 404.
        let unrouted = html
            || status == StatusCode::METHOD_NOT_ALLOWED
            || (status == StatusCode::NOT_FOUND
                && (body.contains("no such API endpoint") || !body.contains("not_found")));
        assert!(!unrouted, "{method} {path}: {status} {body}");
    }

    let (status, served) = srv.http().get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        served, *DOCUMENT,
        "the served document is the generated one"
    );
    let page = reqwest::get(format!("{}/api/v1/docs", srv.url))
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("Missive HTTP API"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );
    srv.stop().await;
}

/// A response that does not fit its schema is caught (the check every suite relies on).
#[test]
fn the_response_check_catches_a_body_that_does_not_fit() {
    let fits = serde_json::json!({"messages": 1, "threads": 0});
    common::openapi::check(
        &reqwest::Method::GET,
        "/api/v1/unread",
        StatusCode::OK,
        Some(&fits),
    );
    let wrong = serde_json::json!({"messages": "one"});
    let caught = std::panic::catch_unwind(|| {
        common::openapi::check(
            &reqwest::Method::GET,
            "/api/v1/unread",
            StatusCode::OK,
            Some(&wrong),
        )
    });
    assert!(caught.is_err());
    let undocumented = std::panic::catch_unwind(|| {
        common::openapi::check(
            &reqwest::Method::GET,
            "/api/v1/unread",
            StatusCode::IM_A_TEAPOT,
            None,
        )
    });
    assert!(undocumented.is_err());
}

/// The committed `docs/openapi.json` is the generated document (`MISSIVE_WRITE_TYPES=1`
/// rewrites it), so the repository carries its own HTTP reference.
#[test]
fn the_committed_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let current = serde_json::to_string_pretty(&*DOCUMENT).unwrap() + "\n";
    if std::env::var("MISSIVE_WRITE_TYPES").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &current).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "docs/openapi.json is stale: run MISSIVE_WRITE_TYPES=1 cargo nextest run -E 'test(the_committed_document_is_current)'"
    );
}
