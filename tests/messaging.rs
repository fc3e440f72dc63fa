//! Private threads over HTTP, on SQLite and PostgreSQL.

mod common;

use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::json;

on_every_backend!(
    a_new_thread_and_replies_reach_both_inboxes,
    reading_moves_the_watermark_and_unread_counts,
    deleting_hides_for_the_deleter_only,
    a_later_message_revives_a_deleted_thread_with_only_new_messages,
    repeated_client_ids_return_the_first_message,
    strangers_get_not_found,
    bad_messages_are_refused_with_clear_codes,
    inbox_and_history_page_without_gaps,
    fifty_concurrent_senders_lose_nothing,
);

async fn a_new_thread_and_replies_reach_both_inboxes(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let first = alice
        .send_new("BOB", "Lunch?", "  Are you free at noon?  ")
        .await;
    assert_eq!(first["sender"], "alice");
    assert_eq!(first["recipient"], "bob");
    assert_eq!(first["subject"], "Lunch?");
    assert_eq!(first["body"], "Are you free at noon?", "bodies are trimmed");
    assert_eq!(first["read"], false);
    let url = first["url"].as_str().unwrap();
    let thread_id = first["thread_id"].as_str().unwrap();
    assert!(url.len() >= 16 && thread_id.len() >= 16);
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));

    let reply = bob.reply(thread_id, "Yes!").await;
    assert_eq!(
        (reply["sender"].as_str(), reply["recipient"].as_str()),
        (Some("bob"), Some("alice"))
    );
    assert_eq!(reply["subject"], "Lunch?", "replies inherit the subject");

    for user in [&alice, &bob] {
        let (status, inbox) = user.http.get("/api/v1/threads").await;
        assert_eq!(status, StatusCode::OK);
        let threads = inbox["threads"].as_array().unwrap();
        assert_eq!(threads.len(), 1);
        assert_eq!(threads[0]["thread_id"], thread_id);
        assert_eq!(threads[0]["last_message"]["url"], reply["url"]);
        assert_eq!(threads[0]["participants"], json!(["alice", "bob"]));
        let (_, history) = user
            .http
            .get(&format!("/api/v1/threads/{thread_id}/messages"))
            .await;
        let bodies: Vec<_> = history["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].clone())
            .collect();
        assert_eq!(bodies, vec![json!("Are you free at noon?"), json!("Yes!")]);
        assert_eq!(history["has_more"], false);
    }
    assert_eq!(alice.unread().await, json!({"messages": 1, "threads": 1}));
    assert_eq!(bob.unread().await, json!({"messages": 1, "threads": 1}));

    // Sending to oneself works and is never unread.
    let note = alice.send_new("alice", "Notes", "remember milk").await;
    assert_eq!(note["recipient"], "alice");
    assert_eq!(note["read"], true);
    assert_eq!(alice.unread().await, json!({"messages": 1, "threads": 1}));
    let (_, inbox) = alice.http.get("/api/v1/threads").await;
    assert_eq!(
        inbox["threads"][0]["subject"], "Notes",
        "newest activity first"
    );
    srv.stop().await;
}

async fn reading_moves_the_watermark_and_unread_counts(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let m1 = alice.send_new("bob", "Hi", "one").await;
    let thread_id = m1["thread_id"].as_str().unwrap().to_owned();
    let m2 = alice.reply(&thread_id, "two").await;
    alice.reply(&thread_id, "three").await;
    alice.send_new("bob", "Other", "elsewhere").await;
    assert_eq!(bob.unread().await, json!({"messages": 4, "threads": 2}));
    let (_, t) = bob.http.get(&format!("/api/v1/threads/{thread_id}")).await;
    assert_eq!(t["thread"]["unread"], 3);

    let (status, res) = bob
        .http
        .post(
            &format!("/api/v1/threads/{thread_id}/read"),
            json!({"up_to": m2["url"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(res["unread"], json!({"messages": 2, "threads": 2}));
    let (_, history) = alice
        .http
        .get(&format!("/api/v1/threads/{thread_id}/messages"))
        .await;
    let read: Vec<_> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["read"].clone())
        .collect();
    assert_eq!(
        read,
        vec![json!(true), json!(true), json!(false)],
        "the sender sees what was read"
    );

    let (_, res) = bob
        .http
        .post(&format!("/api/v1/threads/{thread_id}/read"), json!({}))
        .await;
    assert_eq!(res["unread"], json!({"messages": 1, "threads": 1}));
    // An empty body reads to the end too, and reading twice changes nothing.
    let res = bob
        .http
        .client
        .post(format!("{}/api/v1/threads/{thread_id}/read", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(bob.unread().await, json!({"messages": 1, "threads": 1}));
    let (status, res) = bob
        .http
        .post(
            &format!("/api/v1/threads/{thread_id}/read"),
            json!({"up_to": "nope"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{res}");
    srv.stop().await;
}

async fn deleting_hides_for_the_deleter_only(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let m1 = alice.send_new("bob", "Hi", "one").await;
    let thread_id = m1["thread_id"].as_str().unwrap().to_owned();
    let m2 = alice.reply(&thread_id, "two").await;
    assert_eq!(bob.unread().await["messages"], 2);

    // One message by its url, as its thread lists it, for those who can see it.
    let m2_path = format!("/api/v1/messages/{}", m2["url"].as_str().unwrap());
    let (status, one) = bob.http.get(&m2_path).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["message"], m2);
    assert_eq!(one["message"]["thread_id"], thread_id.as_str());
    let carol = srv.user("carol").await;
    let (status, body) = carol.http.get(&m2_path).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("not_found")),
        "not a member"
    );
    let (status, _) = bob.http.get("/api/v1/messages/nosuchurl").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = bob
        .http
        .delete(&format!("/api/v1/messages/{}", m2["url"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        bob.http.get(&m2_path).await.0,
        StatusCode::NOT_FOUND,
        "hidden by bob"
    );
    assert_eq!(alice.http.get(&m2_path).await.0, StatusCode::OK);
    assert_eq!(
        bob.unread().await["messages"],
        1,
        "a deleted unread message no longer counts"
    );
    let (_, history) = bob
        .http
        .get(&format!("/api/v1/threads/{thread_id}/messages"))
        .await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    let (_, inbox) = bob.http.get("/api/v1/threads").await;
    assert_eq!(
        inbox["threads"][0]["last_message"]["body"], "one",
        "last_message skips deleted ones"
    );
    let (_, history) = alice
        .http
        .get(&format!("/api/v1/threads/{thread_id}/messages"))
        .await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        2,
        "alice still sees both"
    );
    let (status, _) = bob
        .http
        .delete(&format!("/api/v1/messages/{}", m2["url"].as_str().unwrap()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already deleted");

    let (status, _) = alice
        .http
        .delete(&format!("/api/v1/threads/{thread_id}"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, inbox) = alice.http.get("/api/v1/threads").await;
    assert_eq!(inbox["threads"], json!([]));
    assert_eq!(
        alice
            .http
            .get(&format!("/api/v1/threads/{thread_id}"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, inbox) = bob.http.get("/api/v1/threads").await;
    assert_eq!(
        inbox["threads"].as_array().unwrap().len(),
        1,
        "bob keeps the thread"
    );
    srv.stop().await;
}

async fn a_later_message_revives_a_deleted_thread_with_only_new_messages(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let m1 = alice.send_new("bob", "Hi", "old news").await;
    let thread_id = m1["thread_id"].as_str().unwrap().to_owned();
    bob.http
        .delete(&format!("/api/v1/threads/{thread_id}"))
        .await;
    assert_eq!(bob.unread().await, json!({"messages": 0, "threads": 0}));
    alice.reply(&thread_id, "fresh").await;
    let (_, inbox) = bob.http.get("/api/v1/threads").await;
    assert_eq!(inbox["threads"].as_array().unwrap().len(), 1);
    assert_eq!(inbox["threads"][0]["unread"], 1);
    let (_, history) = bob
        .http
        .get(&format!("/api/v1/threads/{thread_id}/messages"))
        .await;
    let bodies: Vec<_> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(bodies, vec![json!("fresh")]);
    srv.stop().await;
}

async fn repeated_client_ids_return_the_first_message(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    srv.user("bob").await;
    let body =
        json!({"recipient": "bob", "subject": "Once", "body": "only once", "client_id": "c-1"});
    let (s1, first) = alice.http.post("/api/v1/messages", body.clone()).await;
    let (s2, again) = alice.http.post("/api/v1/messages", body).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(first["message"]["url"], again["message"]["url"]);
    let (_, inbox) = alice.http.get("/api/v1/threads").await;
    assert_eq!(inbox["threads"].as_array().unwrap().len(), 1);
    // Concurrent retries of one client_id store one message.
    let thread_id = first["message"]["thread_id"].as_str().unwrap().to_owned();
    let tries = (0..8).map(|_| {
        let http = alice.http.clone();
        let thread_id = thread_id.clone();
        async move {
            http.post(
                "/api/v1/messages",
                json!({"thread_id": thread_id, "body": "retry", "client_id": "c-2"}),
            )
            .await
        }
    });
    let results = futures_util::future::join_all(tries).await;
    let urls: std::collections::HashSet<_> = results
        .iter()
        .map(|(_, b)| b["message"]["url"].to_string())
        .collect();
    assert_eq!(urls.len(), 1, "{results:?}");
    assert_eq!(
        results
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        1
    );
    let (_, history) = alice
        .http
        .get(&format!("/api/v1/threads/{thread_id}/messages"))
        .await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);
    srv.stop().await;
}

async fn strangers_get_not_found(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    srv.user("bob").await;
    let carol = srv.user("carol").await;
    let m = alice.send_new("bob", "Private", "between us").await;
    let thread_id = m["thread_id"].as_str().unwrap();
    let url = m["url"].as_str().unwrap();
    for (status, body) in [
        carol
            .http
            .get(&format!("/api/v1/threads/{thread_id}"))
            .await,
        carol
            .http
            .get(&format!("/api/v1/threads/{thread_id}/messages"))
            .await,
        carol
            .http
            .post(&format!("/api/v1/threads/{thread_id}/read"), json!({}))
            .await,
        carol
            .http
            .delete(&format!("/api/v1/threads/{thread_id}"))
            .await,
        carol.http.delete(&format!("/api/v1/messages/{url}")).await,
        carol
            .http
            .post(
                "/api/v1/messages",
                json!({"thread_id": thread_id, "body": "let me in"}),
            )
            .await,
        carol
            .http
            .get("/api/v1/threads/doesnotexist0000000000")
            .await,
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (_, history) = alice
        .http
        .get(&format!("/api/v1/threads/{thread_id}/messages"))
        .await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        1,
        "carol wrote nothing"
    );
    let (status, body) = carol.http.get("/api/v1/users/ALICE").await;
    assert_eq!(
        (status, &body["username"]),
        (StatusCode::OK, &json!("alice"))
    );
    assert_eq!(
        carol.http.get("/api/v1/users/nobody").await.0,
        StatusCode::NOT_FOUND
    );
    srv.stop().await;
}

async fn bad_messages_are_refused_with_clear_codes(backend: Backend) {
    let Some(srv) = TestServer::start_with(backend, |c| c.max_body = 50).await else {
        return;
    };
    let alice = srv.user("alice").await;
    srv.user("bob").await;
    let ok = alice.send_new("bob", "Fine", "fine").await;
    let thread_id = ok["thread_id"].as_str().unwrap();
    let cases = [
        (
            json!({"recipient": "bob", "subject": "s", "body": "   "}),
            "empty_body",
        ),
        (
            json!({"recipient": "bob", "subject": "s", "body": "x".repeat(51)}),
            "message_too_long",
        ),
        (
            json!({"recipient": "bob", "subject": "s".repeat(71), "body": "b"}),
            "subject_too_long",
        ),
        (
            json!({"recipient": "bob", "subject": " ", "body": "b"}),
            "empty_subject",
        ),
        (
            json!({"recipient": "nobody", "subject": "s", "body": "b"}),
            "unknown_recipient",
        ),
        (
            json!({"recipient": "Not Valid!", "subject": "s", "body": "b"}),
            "unknown_recipient",
        ),
        (json!({"recipient": "bob", "body": "b"}), "invalid_payload"),
        (
            json!({"thread_id": thread_id, "subject": "new subject", "body": "b"}),
            "invalid_payload",
        ),
        (json!({"body": "b"}), "invalid_payload"),
        (
            json!({"recipient": "bob", "subject": "s", "body": "b", "extra": 1}),
            "invalid_payload",
        ),
        (
            json!({"recipient": "bob", "subject": "s", "body": 7}),
            "invalid_payload",
        ),
    ];
    for (body, code) in cases {
        let (status, res) = alice.http.post("/api/v1/messages", body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {res}");
        assert_eq!(res["error"]["code"], code, "{body} -> {res}");
    }
    // Exactly at the limit is fine (counted in characters, not bytes).
    alice.reply(thread_id, &"é".repeat(50)).await;
    let (_, history) = alice
        .http
        .get(&format!("/api/v1/threads/{thread_id}/messages"))
        .await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        2,
        "no refused message was stored"
    );
    let (status, res) = alice.http.get("/api/v1/threads?limit=abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(res["error"]["code"], "invalid_query");
    let (status, res) = alice.http.get("/api/v1/threads?before=unknown").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{res}");
    srv.stop().await;
}

async fn inbox_and_history_page_without_gaps(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    srv.user("bob").await;
    for i in 0..7 {
        alice.send_new("bob", &format!("t{i}"), "hello").await;
    }
    let mut subjects = Vec::new();
    let mut path = "/api/v1/threads?limit=3".to_owned();
    loop {
        let (status, page) = alice.http.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        subjects.extend(
            page["threads"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["subject"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/threads?limit=3&before={next}"),
            None => break,
        }
    }
    assert_eq!(subjects, ["t6", "t5", "t4", "t3", "t2", "t1", "t0"]);

    let thread_id = alice.send_new("bob", "long", "m0").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 1..10 {
        alice.reply(&thread_id, &format!("m{i}")).await;
    }
    let mut bodies = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let path = match &before {
            Some(b) => format!("/api/v1/threads/{thread_id}/messages?limit=4&before={b}"),
            None => format!("/api/v1/threads/{thread_id}/messages?limit=4"),
        };
        let (_, page) = alice.http.get(&path).await;
        let msgs = page["messages"].as_array().unwrap();
        let mut chunk: Vec<String> = msgs
            .iter()
            .map(|m| m["body"].as_str().unwrap().to_owned())
            .collect();
        chunk.extend(bodies);
        bodies = chunk;
        if page["has_more"] == false {
            break;
        }
        before = Some(msgs[0]["url"].as_str().unwrap().to_owned());
    }
    assert_eq!(bodies, (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>());
    srv.stop().await;
}

async fn fifty_concurrent_senders_lose_nothing(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let thread_id = alice.send_new("bob", "busy", "start").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sends = (0..50).map(|i| {
        let who = if i % 2 == 0 {
            alice.clone()
        } else {
            bob.clone()
        };
        let thread_id = thread_id.clone();
        async move { who.reply(&thread_id, &format!("n{i}")).await }
    });
    let acked = futures_util::future::join_all(sends).await;
    assert_eq!(acked.len(), 50);
    let (_, page) = alice
        .http
        .get(&format!("/api/v1/threads/{thread_id}/messages?limit=100"))
        .await;
    let msgs = page["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 51, "every acknowledged message is stored");
    let stamps: Vec<&str> = msgs
        .iter()
        .map(|m| m["timestamp"].as_str().unwrap())
        .collect();
    let mut sorted = stamps.clone();
    sorted.sort();
    assert_eq!(stamps, sorted, "history order and timestamp order agree");
    for a in &acked {
        assert!(
            msgs.iter().any(|m| m["url"] == a["url"]),
            "acked {a} missing"
        );
    }
    assert_eq!(bob.unread().await["messages"].as_i64().unwrap(), 1 + 25);
    srv.stop().await;
}
