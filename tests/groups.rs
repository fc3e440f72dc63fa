//! Conversations for more than two (DESIGN.md, "Conversations"): groups, their membership
//! and subject, and read receipts, over HTTP and Socket.IO, on SQLite and PostgreSQL.

mod common;

use common::{Backend, QUIET, TestServer, User, WAIT, expect_all, names};
use missive_client::Socket;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_every_backend!(
    a_group_reaches_every_member_and_a_single_name_stays_direct,
    membership_changes_are_one_event_each_and_shape_what_each_member_sees,
    only_the_creator_removes_and_the_longest_standing_member_takes_over,
    a_direct_thread_never_changes_and_bad_changes_are_refused,
    read_receipts_reach_the_other_members_unless_turned_off,
    socket_events_change_a_group_as_http_does,
);

/// `path` of `thread` under `/api/v1/threads/`.
fn at(thread: &str, rest: &str) -> String {
    format!("/api/v1/threads/{thread}{rest}")
}

/// The thread as `user` sees it.
async fn thread_of(user: &User, thread: &str) -> Value {
    let (status, body) = user.http.get(&at(thread, "")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["thread"].clone()
}

/// The history of `thread` as `user` sees it: each message's body, or `kind username` for a
/// change (`renamed subject`).
async fn history(user: &User, thread: &str) -> Vec<String> {
    let (status, body) = user.http.get(&at(thread, "/messages")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| match item["kind"].as_str() {
            Some("change") => {
                let c = &item["change"];
                let who = c["username"].as_str().or(c["subject"].as_str());
                format!("{} {}", c["kind"].as_str().unwrap(), who.unwrap_or(""))
            }
            _ => item["body"].as_str().unwrap().to_owned(),
        })
        .collect()
}

async fn add(by: &User, thread: &str, who: &str) -> (StatusCode, Value) {
    by.http
        .post(&at(thread, "/participants"), json!({"username": who}))
        .await
}

async fn remove(by: &User, thread: &str, who: &str) -> (StatusCode, Value) {
    by.http
        .delete(&at(thread, &format!("/participants/{who}")))
        .await
}

/// Sends `body` in `thread` as `user`, expecting `status`.
async fn try_reply(user: &User, thread: &str, body: &str) -> (StatusCode, Value) {
    user.http
        .post(
            "/api/v1/messages",
            json!({"thread_id": thread, "body": body}),
        )
        .await
}

/// The only `thread:updated` `tab` hears (and nothing else but `unread` moves).
async fn one_update(tab: &Socket) -> Value {
    let heard = tab.drain(QUIET).await;
    let updates: Vec<&Value> = heard
        .iter()
        .filter(|(n, _)| n == "thread:updated")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(updates.len(), 1, "one thread:updated: {:?}", names(&heard));
    updates[0].clone()
}

async fn a_group_reaches_every_member_and_a_single_name_stays_direct(backend: Backend) {
    let Some(srv) = TestServer::start_with(backend, |c| c.max_participants = 4).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let carol = srv.user("carol").await;
    let dave = srv.user("dave").await;
    let erin = srv.user("erin").await;
    let tabs = [
        alice.native_tab().await,
        bob.native_tab().await,
        carol.native_tab().await,
    ];
    // A legacy page of a member (the original app's): it hears W_newmsg and <thread_id>.
    let legacy = carol.tab().await;

    let first = alice
        .send_group(
            &["bob", "CAROL", "bob", "alice"],
            "Trip",
            "Who brings the map?",
        )
        .await;
    assert_eq!(
        first["recipient"],
        Value::Null,
        "a group has no single recipient"
    );
    assert_eq!(
        first["read"], true,
        "own messages are read for their sender"
    );
    let thread = first["thread_id"].as_str().unwrap().to_owned();
    for (tab, who) in tabs.iter().zip(["alice", "bob", "carol"]) {
        let got = expect_all(tab, &["message:new"], WAIT).await;
        let new = &got["message:new"];
        assert_eq!(new["message"]["url"], first["url"], "{who}");
        assert_eq!(
            new["message"]["read"],
            who == "alice",
            "{who}: read is the viewer's"
        );
        assert_eq!(new["thread"]["kind"], "group");
        assert_eq!(new["thread"]["created_by"], "alice");
        assert_eq!(
            new["thread"]["participants"],
            json!(["alice", "bob", "carol"])
        );
        assert_eq!(new["thread"]["unread"], i32::from(who != "alice"));
    }
    let heard = legacy.drain(QUIET).await;
    let legacy_names = names(&heard);
    assert!(legacy_names.contains(&format!("{}_newmsg", carol.websocket_id).as_str()));
    assert!(legacy_names.contains(&thread.as_str()), "{legacy_names:?}");

    let reply = carol.reply(&thread, "I do").await;
    assert_eq!(reply["recipient"], Value::Null);
    for tab in &tabs {
        let got = expect_all(tab, &["message:new"], WAIT).await;
        assert_eq!(got["message:new"]["message"]["url"], reply["url"]);
    }
    assert_eq!(alice.unread().await, json!({"messages": 1, "threads": 1}));
    assert_eq!(bob.unread().await, json!({"messages": 2, "threads": 1}));
    assert_eq!(carol.unread().await, json!({"messages": 1, "threads": 1}));
    assert!(dave.unread().await["messages"] == 0 && erin.unread().await["messages"] == 0);
    let (status, _) = dave.http.get(&at(&thread, "")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a stranger cannot tell it exists"
    );

    // One name (in a list or alone) makes a direct thread, as before.
    let direct = alice.send_group(&["dave"], "Hi", "just us").await;
    assert_eq!(direct["recipient"], "dave");
    let direct = thread_of(&alice, direct["thread_id"].as_str().unwrap()).await;
    assert_eq!(
        (direct["kind"].as_str(), direct["created_by"].as_str()),
        (Some("direct"), Some("alice"))
    );

    // Past the limit (4 with the creator), an unknown name, an empty list, both fields.
    for (body, status, code) in [
        (
            json!({"recipients": ["bob", "carol", "dave", "erin"], "subject": "s", "body": "b"}),
            409,
            "group_full",
        ),
        (
            json!({"recipients": ["bob", "nobody"], "subject": "s", "body": "b"}),
            422,
            "unknown_recipient",
        ),
        (
            json!({"recipients": [], "subject": "s", "body": "b"}),
            422,
            "invalid_payload",
        ),
        (
            json!({"recipient": "bob", "recipients": ["carol"], "subject": "s", "body": "b"}),
            422,
            "invalid_payload",
        ),
    ] {
        let (got, res) = alice.http.post("/api/v1/messages", body.clone()).await;
        assert_eq!(
            (got.as_u16(), res["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    srv.stop().await;
}

async fn membership_changes_are_one_event_each_and_shape_what_each_member_sees(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let carol = srv.user("carol").await;
    let dave = srv.user("dave").await;
    let thread = alice.send_group(&["bob", "carol"], "Plans", "m1").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    bob.reply(&thread, "m2").await;
    let tabs = [
        alice.native_tab().await,
        bob.native_tab().await,
        carol.native_tab().await,
        dave.native_tab().await,
    ];

    // Any member adds: every member hears it once, the new one included.
    let (status, body) = add(&bob, &thread, "Dave").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        body["thread"]["participants"],
        json!(["alice", "bob", "carol", "dave"])
    );
    for tab in &tabs {
        let update = one_update(tab).await;
        assert_eq!(
            update["change"],
            json!({"kind": "added", "by": "bob", "username": "dave"})
        );
        assert_eq!(
            update["thread"]["participants"].as_array().unwrap().len(),
            4
        );
    }
    // The new member sees the thread from their joining: the notice, no earlier message.
    assert_eq!(history(&dave, &thread).await, ["added dave"]);
    let dave_view = thread_of(&dave, &thread).await;
    assert_eq!(
        (dave_view["unread"].as_i64(), &dave_view["last_message"]),
        (Some(0), &Value::Null)
    );
    let (_, inbox) = dave.http.get("/api/v1/threads").await;
    assert_eq!(
        inbox["threads"][0]["thread_id"],
        thread.as_str(),
        "in their inbox"
    );
    dave.reply(&thread, "m3").await;
    for tab in &tabs[..3] {
        expect_all(tab, &["message:new"], WAIT).await;
    }
    assert_eq!(
        history(&alice, &thread).await,
        ["m1", "m2", "added dave", "m3"]
    );

    // The creator removes carol: everyone hears it, carol included; she keeps what she had,
    // read-only, and hears nothing new.
    tabs[3].drain(QUIET).await;
    let (status, body) = remove(&alice, &thread, "carol").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for tab in &tabs {
        let update = one_update(tab).await;
        assert_eq!(
            update["change"],
            json!({"kind": "removed", "by": "alice", "username": "carol"})
        );
        assert_eq!(
            update["thread"]["participants"],
            json!(["alice", "bob", "dave"])
        );
    }
    let (status, body) = try_reply(&carol, &thread, "still here?").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    alice.reply(&thread, "m4").await;
    assert!(
        !names(&tabs[2].drain(QUIET).await).contains(&"message:new"),
        "a removed member hears nothing new"
    );
    assert_eq!(
        history(&carol, &thread).await,
        ["m1", "m2", "added dave", "m3", "removed carol"]
    );
    let carol_view = thread_of(&carol, &thread).await;
    assert_eq!(carol_view["last_message"]["body"], "m3");
    let (_, inbox) = carol.http.get("/api/v1/threads").await;
    assert_eq!(
        inbox["threads"][0]["last_message"]["body"], "m3",
        "her inbox stops at m3"
    );

    // Back again, she sees both her periods, never what was sent while she was away.
    let (status, _) = add(&dave, &thread, "carol").await;
    assert_eq!(status, StatusCode::CREATED);
    alice.reply(&thread, "m5").await;
    assert_eq!(
        history(&carol, &thread).await,
        [
            "m1",
            "m2",
            "added dave",
            "m3",
            "removed carol",
            "added carol",
            "m5"
        ]
    );

    // Any member renames.
    let (status, body) = carol
        .http
        .patch(&at(&thread, ""), json!({"subject": "  Holiday plans "}))
        .await;
    assert_eq!(
        (status, body["thread"]["subject"].as_str()),
        (StatusCode::OK, Some("Holiday plans"))
    );
    let m6 = bob.reply(&thread, "m6").await;
    assert_eq!(
        m6["subject"], "Holiday plans",
        "replies take the new subject"
    );
    assert_eq!(history(&bob, &thread).await.last().unwrap(), "m6");
    assert!(
        history(&bob, &thread)
            .await
            .contains(&"renamed Holiday plans".to_owned())
    );
    srv.stop().await;
}

async fn only_the_creator_removes_and_the_longest_standing_member_takes_over(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let carol = srv.user("carol").await;
    let dave = srv.user("dave").await;
    let thread = alice.send_group(&["bob", "carol"], "Club", "hi").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    add(&carol, &thread, "dave").await;

    let (status, body) = remove(&bob, &thread, "carol").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_allowed"))
    );
    let (status, _) = remove(&dave, &thread, "dave").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "anyone leaves");
    assert_eq!(
        thread_of(&alice, &thread).await["participants"],
        json!(["alice", "bob", "carol"])
    );
    let (status, _) = remove(&dave, &thread, "dave").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "one who left is no member");

    // The creator leaves: bob and carol joined with her, bob first (by id); bob takes over.
    let tab = bob.native_tab().await;
    let (status, _) = remove(&alice, &thread, "alice").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let update = one_update(&tab).await;
    assert_eq!(
        update["change"],
        json!({"kind": "left", "by": "alice", "username": "alice"})
    );
    assert_eq!(update["thread"]["created_by"], "bob");
    let (status, body) = remove(&carol, &thread, "bob").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = remove(&bob, &thread, "carol").await;
    assert_eq!(status, StatusCode::NO_CONTENT, "bob now removes");
    assert_eq!(
        thread_of(&bob, &thread).await["participants"],
        json!(["bob"])
    );
    srv.stop().await;
}

async fn a_direct_thread_never_changes_and_bad_changes_are_refused(backend: Backend) {
    let Some(srv) = TestServer::start_with(backend, |c| c.max_participants = 3).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let _carol = srv.user("carol").await;
    let dave = srv.user("dave").await;
    let direct = alice.send_new("bob", "Hi", "hello").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let conflict = |(status, body): (StatusCode, Value)| {
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::CONFLICT, Some("direct_thread")),
            "{body}"
        )
    };
    conflict(add(&alice, &direct, "carol").await);
    conflict(remove(&alice, &direct, "bob").await);
    conflict(
        alice
            .http
            .patch(&at(&direct, ""), json!({"subject": "x"}))
            .await,
    );
    assert_eq!(
        thread_of(&bob, &direct).await["participants"],
        json!(["alice", "bob"])
    );

    let group = alice.send_group(&["bob", "carol"], "G", "hi").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = add(&alice, &group, "dave").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("group_full"))
    );
    let (status, body) = add(&alice, &group, "nobody").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_recipient"))
    );
    let (status, _) = add(&dave, &group, "dave").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a stranger cannot add (nor tell it exists)"
    );
    let (status, body) = alice
        .http
        .patch(&at(&group, ""), json!({"subject": "  "}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("empty_subject"))
    );
    let (status, _) = alice
        .http
        .patch(&at(&group, ""), json!({"subject": "x".repeat(71)}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Adding a member again changes nothing and tells nobody.
    let tab = bob.native_tab().await;
    let (status, body) = add(&alice, &group, "carol").await;
    assert_eq!(
        (
            status,
            body["thread"]["participants"].as_array().map(Vec::len)
        ),
        (StatusCode::CREATED, Some(3))
    );
    assert!(tab.drain(QUIET).await.is_empty());
    srv.stop().await;
}

async fn read_receipts_reach_the_other_members_unless_turned_off(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let carol = srv.user("carol").await;
    let first = alice
        .send_group(&["bob", "carol"], "Seen?", "read me")
        .await;
    let thread = first["thread_id"].as_str().unwrap().to_owned();
    let url = first["url"].as_str().unwrap().to_owned();
    let [a, b, c] = [
        alice.native_tab().await,
        bob.native_tab().await,
        carol.native_tab().await,
    ];

    let (status, _) = bob.http.post(&at(&thread, "/read"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    for tab in [&a, &c] {
        let got = expect_all(tab, &["receipt"], WAIT).await;
        let receipt = &got["receipt"];
        assert_eq!(
            (
                &receipt["thread_id"],
                &receipt["username"],
                &receipt["up_to"]
            ),
            (&json!(thread), &json!("bob"), &json!(url))
        );
        assert!(receipt["at"].as_str().unwrap().ends_with('Z'));
    }
    let own = names(&b.drain(QUIET).await).join(",");
    assert!(
        own.contains("thread:read") && !own.contains("receipt"),
        "{own}"
    );
    assert_eq!(
        thread_of(&alice, &thread).await["read_by"],
        json!([{"username": "bob", "up_to": url}])
    );
    // Reading again moves nothing and sends nothing.
    bob.http.post(&at(&thread, "/read"), json!({})).await;
    assert!(!names(&a.drain(QUIET).await).contains(&"receipt"));

    // carol turns receipts off: her reads send none, and she sees none.
    let (status, body) = carol
        .http
        .patch("/api/v1/me", json!({"read_receipts": false}))
        .await;
    assert_eq!(
        (status, &body["user"]["read_receipts"]),
        (StatusCode::OK, &json!(false))
    );
    let (_, me) = carol.http.get("/api/v1/me").await;
    assert_eq!(me["read_receipts"], false);
    carol.http.post(&at(&thread, "/read"), json!({})).await;
    assert!(!names(&a.drain(QUIET).await).contains(&"receipt"));
    let m2 = alice.reply(&thread, "again").await;
    c.drain(QUIET).await;
    bob.http.post(&at(&thread, "/read"), json!({})).await;
    assert!(
        !names(&c.drain(QUIET).await).contains(&"receipt"),
        "carol sees none"
    );
    assert_eq!(thread_of(&carol, &thread).await["read_by"], json!([]));
    assert_eq!(
        thread_of(&alice, &thread).await["read_by"],
        json!([{"username": "bob", "up_to": m2["url"]}])
    );
    // In a group, `read` is the viewer's own state.
    let (_, page) = carol.http.get(&at(&thread, "/messages")).await;
    assert_eq!(page["messages"][1]["read"], false, "carol has not read m2");

    // A direct thread has receipts too ("seen").
    let direct = alice.send_new("bob", "Hi", "seen?").await;
    a.drain(QUIET).await;
    bob.http
        .post(
            &at(direct["thread_id"].as_str().unwrap(), "/read"),
            json!({}),
        )
        .await;
    let got = expect_all(&a, &["receipt"], WAIT).await;
    assert_eq!(got["receipt"]["up_to"], direct["url"]);
    srv.stop().await;
}

async fn socket_events_change_a_group_as_http_does(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let _bob = srv.user("bob").await;
    let _carol = srv.user("carol").await;
    let dave = srv.user("dave").await;
    let tab = alice.native_tab().await;
    let sent = tab
        .emit_with_ack(
            "message:send",
            &json!({"recipients": ["bob", "carol"], "subject": "Live", "body": "hi"}),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(sent["status"], true, "{sent}");
    let thread = sent["message"]["thread_id"].as_str().unwrap().to_owned();
    let ack = tab
        .emit_with_ack(
            "thread:add",
            &json!({"thread_id": thread, "username": "dave"}),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            ack["status"].as_bool(),
            ack["thread"]["participants"].as_array().map(Vec::len)
        ),
        (Some(true), Some(4))
    );
    let ack = tab
        .emit_with_ack(
            "thread:rename",
            &json!({"thread_id": thread, "subject": "Renamed"}),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(ack["thread"]["subject"], "Renamed");
    // dave joins the thread's room, then is removed: he leaves the room (no more typing).
    let dave_tab = dave.native_tab().await;
    let joined = dave_tab
        .emit_with_ack("thread:join", &json!({"thread_id": thread}), WAIT)
        .await
        .unwrap();
    assert_eq!(joined["status"], true);
    let ack = tab
        .emit_with_ack(
            "thread:remove",
            &json!({"thread_id": thread, "username": "dave"}),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(
        ack["thread"]["participants"],
        json!(["alice", "bob", "carol"]),
        "{ack}"
    );
    tab.emit_with_ack("thread:join", &json!({"thread_id": thread}), WAIT)
        .await
        .unwrap();
    dave_tab.drain(QUIET).await;
    tab.emit_with_ack(
        "typing",
        &json!({"thread_id": thread, "typing": true}),
        WAIT,
    )
    .await
    .unwrap();
    assert!(
        dave_tab.drain(QUIET).await.is_empty(),
        "a removed member hears no typing"
    );
    let typed = dave_tab
        .emit_with_ack(
            "typing",
            &json!({"thread_id": thread, "typing": true}),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(typed["code"], "not_found");
    let rejoin = dave_tab
        .emit_with_ack("thread:join", &json!({"thread_id": thread}), WAIT)
        .await
        .unwrap();
    assert_eq!(
        rejoin["code"], "not_found",
        "one who left cannot join the room"
    );
    let refused = tab
        .emit_with_ack(
            "thread:remove",
            &json!({"thread_id": thread, "username": "nobody"}),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(refused["code"], "unknown_recipient");
    srv.stop().await;
}

/// Nobody is spammed into groups: a user is added to at most `MISSIVE_GROUP_ADDS` groups a
/// minute by others, whether by a new group or an add; the rest are refused `rate_limited`
/// and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_is_added_to_a_bounded_number_of_groups_per_minute() {
    let Some(srv) = TestServer::start_with(Backend::Sqlite, |c| c.group_adds = 2).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let _bob = srv.user("bob").await;
    let carol = srv.user("carol").await;
    let _dave = srv.user("dave").await;
    alice.send_group(&["bob", "dave"], "one", "hi").await;
    let second = alice.send_group(&["bob", "carol"], "two", "hi").await;
    let thread = second["thread_id"].as_str().unwrap();
    let (status, _) = add(&alice, thread, "dave").await;
    assert_eq!(status, StatusCode::CREATED, "dave's second add");
    let (status, body) = add(&carol, thread, "DAVE").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    let (status, body) = alice
        .http
        .post(
            "/api/v1/messages",
            json!({"recipients": ["carol", "dave"], "subject": "three", "body": "hi"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    let (_, inbox) = carol.http.get("/api/v1/threads").await;
    assert_eq!(
        inbox["threads"].as_array().unwrap().len(),
        1,
        "nothing was made"
    );
    srv.stop().await;
}
