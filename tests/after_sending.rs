//! What people do with messages after sending them (DESIGN.md, "After sending"): editing,
//! over HTTP and Socket.IO, on SQLite and PostgreSQL.

mod common;

use std::time::Duration;

use common::{Backend, QUIET, TestServer, User, WAIT, expect_all, names};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_every_backend!(
    a_sender_edits_and_every_member_hears_it,
    an_edit_is_refused_to_others_outside_the_window_and_for_bad_bodies,
);

async fn edit(user: &User, url: &str, body: &str) -> (StatusCode, Value) {
    user.http
        .patch(&format!("/api/v1/messages/{url}"), json!({"body": body}))
        .await
}

async fn a_sender_edits_and_every_member_hears_it(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let carol = srv.user("carol").await;
    let first = alice
        .send_group(&["bob", "carol"], "Typos", "teh plan")
        .await;
    assert_eq!(first["edited_at"], Value::Null);
    let (url, thread) = (
        first["url"].as_str().unwrap(),
        first["thread_id"].as_str().unwrap(),
    );
    bob.reply(thread, "what plan?").await;
    let tabs = [
        alice.native_tab().await,
        alice.native_tab().await,
        bob.native_tab().await,
        carol.native_tab().await,
    ];
    // carol deleted it for herself: she hears nothing of its edits.
    let (status, _) = carol.http.delete(&format!("/api/v1/messages/{url}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    tabs[3].drain(QUIET).await;

    let (status, body) = edit(&alice, url, "  the plan  ").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let edited = &body["message"];
    assert_eq!(
        (edited["body"].as_str(), edited["url"].as_str()),
        (Some("the plan"), Some(url))
    );
    let at = edited["edited_at"].as_str().expect("edited_at is set");
    assert!(at.ends_with('Z') && at >= first["timestamp"].as_str().unwrap());
    for tab in &tabs[..3] {
        let got = expect_all(tab, &["message:edited"], WAIT).await;
        assert_eq!(got["message:edited"]["message"]["body"], "the plan");
        assert_eq!(got["message:edited"]["message"]["edited_at"], at);
    }
    assert!(!names(&tabs[3].drain(QUIET).await).contains(&"message:edited"));
    // Listings show the new body; the old one is gone; nothing became unread.
    let (_, page) = bob
        .http
        .get(&format!("/api/v1/threads/{thread}/messages"))
        .await;
    assert_eq!(page["messages"][0]["body"], "the plan");
    assert_eq!(bob.unread().await, json!({"messages": 1, "threads": 1}));

    // The thread's last message, edited over a socket.
    let last = bob.reply(thread, "sorry, typo").await;
    let ack = tabs[2]
        .emit_with_ack(
            "message:edit",
            &json!({"url": last["url"], "body": "sorry, a typo"}),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(
        (ack["status"].as_bool(), ack["message"]["body"].as_str()),
        (Some(true), Some("sorry, a typo")),
        "{ack}"
    );
    let (_, inbox) = alice.http.get("/api/v1/threads").await;
    assert_eq!(inbox["threads"][0]["last_message"]["body"], "sorry, a typo");
    assert!(inbox["threads"][0]["last_message"]["edited_at"].is_string());
    srv.stop().await;
}

async fn an_edit_is_refused_to_others_outside_the_window_and_for_bad_bodies(backend: Backend) {
    let Some(srv) = TestServer::start_with(backend, |c| {
        c.edit_window = Duration::from_millis(1500);
        c.max_body = 20;
    })
    .await
    else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let sent = alice.send_new("bob", "Hi", "hello").await;
    let url = sent["url"].as_str().unwrap();
    let code = |(status, body): (StatusCode, Value)| {
        (
            status.as_u16(),
            body["error"]["code"].as_str().map(str::to_owned),
        )
    };
    assert_eq!(
        code(edit(&bob, url, "mine now").await),
        (404, Some("not_found".into())),
        "someone else's"
    );
    assert_eq!(
        code(edit(&alice, "no-such-message-url", "x").await),
        (404, Some("not_found".into()))
    );
    assert_eq!(
        code(edit(&alice, url, "   ").await),
        (422, Some("empty_body".into()))
    );
    assert_eq!(
        code(edit(&alice, url, &"x".repeat(21)).await),
        (422, Some("message_too_long".into()))
    );
    let (status, _) = edit(&alice, url, "hello!").await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        code(edit(&alice, url, "too late").await),
        (409, Some("edit_window_closed".into()))
    );
    let (_, page) = bob
        .http
        .get(&format!(
            "/api/v1/threads/{}/messages",
            sent["thread_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        page["messages"][0]["body"], "hello!",
        "a refused edit changes nothing"
    );
    srv.stop().await;

    // A window of 0 turns editing off.
    let Some(srv) = TestServer::start_with(backend, |c| c.edit_window = Duration::ZERO).await
    else {
        return;
    };
    let alice = srv.user("alice").await;
    let _bob = srv.user("bob").await;
    let sent = alice.send_new("bob", "Hi", "hello").await;
    assert_eq!(
        code(edit(&alice, sent["url"].as_str().unwrap(), "x").await),
        (409, Some("edit_window_closed".into()))
    );
    srv.stop().await;
}
