//! Fuzzing the inputs a client controls: random and mutated payloads for every Socket.IO
//! event, every JSON body and the `/ws` lobby's frames, against a real server. Whatever comes
//! in, nothing panics, nothing answers 500 or `internal`, every refusal carries a clear code,
//! and the connection stays usable.
//!
//! The test suite runs a short round; `scripts/fuzz` runs 100,000 cases or more
//! (`MISSIVE_FUZZ_CASES`).

mod common;

use std::time::Duration;

use common::{Backend, TestServer, User, WAIT};
use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, TestRng, TestRunner};
use serde_json::{Map, Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Cases in all, split between the three kinds of input.
fn cases() -> usize {
    std::env::var("MISSIVE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

/// Field names the handlers know, so that mutations reach their validation.
const FIELDS: [&str; 10] = [
    "thread_id",
    "body",
    "recipient",
    "subject",
    "client_id",
    "up_to",
    "url",
    "typing",
    "username",
    "password",
];

/// Any JSON value, a few levels deep, with the strings clients get wrong: empty, long,
/// non-ASCII, control characters.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        "[a-zA-Z0-9_-]{0,24}".prop_map(Value::String),
        (0usize..12_000).prop_map(|n| Value::String("é".repeat(n))),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS.to_vec()), inner), 0..5).prop_map(
                |fields| {
                    Value::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }
            ),
        ]
    })
}

/// `valid` with some of its fields removed, replaced by random values, or joined by others.
fn mutated(valid: Value) -> impl Strategy<Value = Value> {
    let fields: Vec<String> = valid
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    (
        prop::collection::vec((0u8..4, json_value()), fields.len()),
        prop::collection::vec((prop::sample::select(FIELDS.to_vec()), json_value()), 0..3),
    )
        .prop_map(move |(changes, extra)| {
            let mut object = valid.as_object().cloned().unwrap_or_else(Map::new);
            for (name, (what, value)) in fields.iter().zip(changes) {
                match what {
                    0 => {
                        object.remove(name);
                    }
                    1 => {
                        object.insert(name.clone(), value);
                    }
                    _ => {}
                }
            }
            for (name, value) in extra {
                object.insert(name.to_owned(), value);
            }
            Value::Object(object)
        })
}

/// A payload for an event or a body: random, or a mutation of a valid one.
fn payload(valid: Value) -> impl Strategy<Value = Value> {
    prop_oneof![1 => json_value(), 3 => mutated(valid)]
}

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        RunnerConfig::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    )
}

fn sample<S: Strategy>(runner: &mut TestRunner, strategy: &S) -> S::Value {
    strategy
        .new_tree(runner)
        .expect("a value is generated")
        .current()
}

/// A refusal's code: present, snake_case, never `internal`.
fn assert_clear_code(code: &Value, context: &dyn std::fmt::Display) {
    let code = code
        .as_str()
        .unwrap_or_else(|| panic!("no code: {context}"));
    assert!(
        !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "unclear code {code:?}: {context}"
    );
    assert_ne!(code, "internal", "{context}");
}

struct World {
    srv: TestServer,
    ann: User,
    thread_id: String,
    url: String,
}

async fn world() -> World {
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.send_rate = 0;
        c.event_rate = 0;
        c.user_event_rate = 0;
        c.login_rate = 1_000_000;
        c.login_failures = 1_000_000;
    })
    .await
    .unwrap();
    let ann = srv.user("ann").await;
    srv.user("bob").await;
    let message = ann.send_new("bob", "fuzz", "first").await;
    World {
        thread_id: message["thread_id"].as_str().unwrap().to_owned(),
        url: message["url"].as_str().unwrap().to_owned(),
        ann,
        srv,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_event_payloads_get_clear_answers() {
    let w = world().await;
    let tab = w.ann.native_tab().await;
    let events = [
        (
            "message:send",
            json!({"thread_id": w.thread_id, "body": "hi", "client_id": "c1"}),
        ),
        (
            "message:send",
            json!({"recipient": "bob", "subject": "s", "body": "hi"}),
        ),
        ("thread:join", json!({"thread_id": w.thread_id})),
        ("thread:leave", json!({"thread_id": w.thread_id})),
        (
            "thread:read",
            json!({"thread_id": w.thread_id, "up_to": w.url}),
        ),
        ("message:delete", json!({"url": w.url})),
        ("thread:delete", json!({"thread_id": w.thread_id})),
        ("typing", json!({"thread_id": w.thread_id, "typing": true})),
    ];
    let mut runner = runner();
    let n = cases() / 2;
    for i in 0..n {
        let (event, valid) = &events[i % events.len()];
        let data = sample(&mut runner, &payload(valid.clone()));
        // Now and then the wrong number of arguments, or none.
        let frame = match i % 17 {
            0 => json!([event]),
            1 => json!([event, data, data]),
            _ => json!([event, data]),
        }
        .to_string();
        // A frame larger than any legal event closes the connection by design (tests/abuse.rs).
        if frame.len() > 60_000 {
            continue;
        }
        let ack = tab
            .call(&frame, WAIT)
            .await
            .unwrap_or_else(|e| panic!("no answer to {frame:.200}: {e}"));
        match ack["status"].as_bool() {
            Some(true) => {}
            Some(false) => assert_clear_code(&ack["code"], &format_args!("{frame:.200} -> {ack}")),
            None => panic!("an ack without a status: {frame:.200} -> {ack}"),
        }
    }
    // Still usable.
    let ack = tab
        .emit_with_ack("thread:leave", &json!({"thread_id": w.thread_id}), WAIT)
        .await
        .unwrap();
    assert_eq!(ack["status"], true, "{ack}");
    eprintln!("{n} event payloads");
    w.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_json_bodies_get_clear_errors() {
    let w = world().await;
    let bodies = [
        (
            "/api/v1/messages",
            json!({"thread_id": w.thread_id, "body": "hi"}),
        ),
        (
            "/api/v1/messages",
            json!({"recipient": "bob", "subject": "s", "body": "hi", "client_id": "x"}),
        ),
        (
            &*format!("/api/v1/threads/{}/read", w.thread_id),
            json!({"up_to": w.url}),
        ),
        (
            "/api/v1/auth/login",
            json!({"username": "nobody", "password": "pw"}),
        ),
        ("/api/register", json!({"username": "kim"})),
        ("/api/login", json!({"key": "k"})),
    ];
    let mut runner = runner();
    let n = cases() * 2 / 5;
    for i in 0..n {
        // Logins verify a password hash on purpose slowly: one case in twenty.
        let k = if i % 20 == 0 { 3 + i / 20 % 3 } else { i % 3 };
        let (path, valid) = &bodies[k];
        let body = sample(&mut runner, &payload(valid.clone()));
        let res = w
            .ann
            .http
            .client
            .post(format!("{}{path}", w.srv.url))
            .json(&body)
            .send()
            .await
            .expect("an answer");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let context = format_args!("{path} {body:.200} -> {status} {text:.200}");
        assert!(status.as_u16() < 500, "{context}");
        if status.is_client_error() {
            let error: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            assert_clear_code(&error["error"]["code"], &context);
        }
    }
    let (status, _) = w.ann.http.get("/api/v1/threads").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    eprintln!("{n} bodies");
    w.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_lobby_frames_get_clear_answers_and_keep_the_connection() {
    let w = world().await;
    let mut req = format!("{}/ws", w.srv.url.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", w.ann.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let frames = prop_oneof![
        1 => ".{0,300}",
        2 => payload(json!({"message": "hello"})).prop_map(|v| v.to_string()),
    ];
    let mut runner = runner();
    let n = cases() / 10;
    for _ in 0..n {
        let frame = sample(&mut runner, &frames);
        // Larger frames close the connection by design (MAX_FRAME in http/lobby.rs).
        if frame.len() > 15_000 {
            continue;
        }
        ws.send(Message::text(frame.clone())).await.unwrap();
        let answer = loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {frame:.200}"))
                .expect("the connection stays open")
                .expect("a frame");
            if let Message::Text(t) = msg {
                break serde_json::from_str::<Value>(t.as_str()).unwrap();
            }
        };
        match answer["status"].as_bool() {
            Some(true) => {}
            Some(false) => {
                assert_clear_code(&answer["code"], &format_args!("{frame:.200} -> {answer}"))
            }
            None => panic!("not an ack: {frame:.200} -> {answer}"),
        }
    }
    eprintln!("{n} lobby frames");
    w.srv.stop().await;
}
