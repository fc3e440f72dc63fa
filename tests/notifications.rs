//! Reaching people with no tab open (DESIGN.md, "Notifications"): Web Push to a local push
//! service that checks every push as a real one does (`common::push_service`), mutes and
//! blocks, on SQLite and PostgreSQL. Two nodes pushing once is in `cluster.rs`.

mod common;

use std::time::Duration;

use common::push_service::{Browser, PushService};
use common::{Backend, QUIET, TestServer, User, WAIT, names};
use missive::Config;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_every_backend!(
    a_user_with_no_tab_open_is_pushed_and_one_with_a_tab_is_not,
    pushes_of_one_thread_are_coalesced,
    a_muted_thread_is_not_pushed_and_only_the_muter_hears_of_it,
    a_blocked_user_is_never_heard_and_never_told,
    a_gone_subscription_is_deleted_and_a_busy_service_retried,
);

/// A server that lets pushes go to the local push service (on loopback), and the service.
async fn start(
    backend: Backend,
    tweak: impl FnOnce(&mut Config),
) -> Option<(TestServer, PushService)> {
    let srv = TestServer::start_with(backend, |c| {
        c.push_allow_private = true;
        tweak(c);
    })
    .await?;
    let push = PushService::start().await;
    push.trust(&srv.url).await;
    Some((srv, push))
}

async fn subscribe(user: &User, browser: &Browser) -> (StatusCode, Value) {
    user.http
        .post("/api/v1/push/subscriptions", browser.json())
        .await
}

async fn put_json(user: &User, path: &str, body: Value) -> (StatusCode, Value) {
    let req = user
        .http
        .client
        .put(format!("{}{path}", user.http.base))
        .json(&body);
    user.http.send(req).await
}

fn code((status, body): (StatusCode, Value)) -> (u16, Option<String>) {
    (
        status.as_u16(),
        body["error"]["code"].as_str().map(str::to_owned),
    )
}

/// Long enough for a push that is not coming to have come.
const NONE_COMING: Duration = Duration::from_millis(1500);
/// The contract's promise: a push within 2 s.
const PUSHED_WITHIN: Duration = Duration::from_secs(2);

async fn a_user_with_no_tab_open_is_pushed_and_one_with_a_tab_is_not(backend: Backend) {
    let Some((srv, push)) = start(backend, |_| {}).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let carol = srv.user("carol").await;
    let phone = push.browser("bob-phone");
    let laptop = push.browser("bob-laptop");
    assert_eq!(subscribe(&bob, &phone).await.0, StatusCode::CREATED);
    assert_eq!(subscribe(&bob, &laptop).await.0, StatusCode::CREATED);
    // The same browser again changes nothing.
    assert_eq!(subscribe(&bob, &laptop).await.0, StatusCode::CREATED);
    let alice_browser = push.browser("alice");
    assert_eq!(
        subscribe(&alice, &alice_browser).await.0,
        StatusCode::CREATED
    );

    // Bob has no tab open: one push per subscription; the sender is never pushed her own.
    let first = alice
        .send_new("bob", "Tea", "Tea at five? The kettle is on.")
        .await;
    let thread_id = first["thread_id"].as_str().unwrap();
    let got = push.wait_for(2, PUSHED_WITHIN).await;
    let mut to: Vec<&str> = got.iter().map(|r| r.to.as_str()).collect();
    to.sort();
    assert_eq!(to, ["bob-laptop", "bob-phone"]);
    for r in &got {
        assert_eq!(
            r.payload,
            json!({"thread_id": thread_id, "subject": "Tea", "sender": "alice",
                   "preview": "Tea at five? The kettle is on."})
        );
        assert_eq!(r.urgency, "normal");
        assert!(r.ttl > 0);
    }
    assert_eq!(got[0].topic, got[1].topic, "one topic per thread");

    // With a tab open, nothing is pushed (and the window's end pushes nothing either).
    let tab = bob.native_tab().await;
    alice.reply(thread_id, "still there?").await;
    tab.expect("message:new", WAIT).await.unwrap();
    tokio::time::sleep(NONE_COMING).await;
    assert_eq!(push.received().len(), 2);
    tab.close();

    // Added to a group while away: pushed, with who added them and no preview.
    srv.user("dave").await;
    let group = bob.send_group(&["alice", "dave"], "Plans", "picnic?").await;
    let group_id = group["thread_id"].as_str().unwrap();
    let (status, _) = bob
        .http
        .post(
            &format!("/api/v1/threads/{group_id}/participants"),
            json!({"username": "carol"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let carol_browser = push.browser("carol");
    // Carol subscribes after being added: only what comes next reaches her.
    assert_eq!(
        subscribe(&carol, &carol_browser).await.0,
        StatusCode::CREATED
    );
    let (status, _) = bob
        .http
        .delete(&format!("/api/v1/threads/{group_id}/participants/carol"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = alice
        .http
        .post(
            &format!("/api/v1/threads/{group_id}/participants"),
            json!({"username": "carol"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Alice (away) was pushed Bob's new group, Carol her addition.
    let got = push.wait_for(4, PUSHED_WITHIN).await;
    let added: Vec<_> = got.iter().filter(|r| r.to == "carol").collect();
    assert_eq!(added.len(), 1, "{got:?}");
    assert_eq!(
        added[0].payload,
        json!({"thread_id": group_id, "subject": "Plans", "sender": "alice"})
    );

    // Logging out ends the session's subscriptions.
    let (status, _) = bob.http.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let before = push.requests();
    alice.reply(thread_id, "bye then").await;
    tokio::time::sleep(NONE_COMING).await;
    assert_eq!(
        push.requests(),
        before,
        "nothing goes to a logged-out session's browser"
    );

    // Basic has no session to bind a subscription to.
    let req = srv
        .http()
        .client
        .post(format!("{}/api/v1/push/subscriptions", srv.url))
        .basic_auth("alice", Some("correct horse"))
        .json(&push.browser("basic").json());
    assert_eq!(
        code(srv.http().send(req).await),
        (403, Some("not_allowed".into()))
    );
    // Unsubscribing what the caller does not hold changes nothing.
    let req = alice
        .http
        .client
        .delete(format!("{}/api/v1/push/subscriptions", srv.url))
        .json(&json!({"endpoint": phone.endpoint}));
    assert_eq!(alice.http.send(req).await.0, StatusCode::NO_CONTENT);
    let req = alice
        .http
        .client
        .delete(format!("{}/api/v1/push/subscriptions", srv.url))
        .json(&json!({"endpoint": alice_browser.endpoint}));
    assert_eq!(alice.http.send(req).await.0, StatusCode::NO_CONTENT);
    srv.stop().await;
}

async fn pushes_of_one_thread_are_coalesced(backend: Backend) {
    let window = Duration::from_secs(1);
    let Some((srv, push)) = start(backend, |c| c.push_coalesce = window).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let phone = push.browser("phone");
    assert_eq!(subscribe(&bob, &phone).await.0, StatusCode::CREATED);
    let first = alice.send_new("bob", "Tea", "one").await;
    let thread_id = first["thread_id"].as_str().unwrap();
    push.wait_for(1, PUSHED_WITHIN).await;
    // Two more within the window: one push at its end, with the latest.
    alice.reply(thread_id, "two").await;
    alice.reply(thread_id, "three").await;
    let got = push.wait_for(2, window + PUSHED_WITHIN).await;
    tokio::time::sleep(window / 2).await;
    let got_later = push.received();
    assert_eq!(got_later.len(), 2, "{got_later:?}");
    assert_eq!(got[1].payload["preview"], "three");
    assert_eq!(got[0].topic, got[1].topic, "the latest replaces the first");
    // Another thread has its own window.
    let other = alice.send_new("bob", "Other", "elsewhere").await;
    let got = push.wait_for(3, PUSHED_WITHIN).await;
    assert_eq!(got[2].payload["thread_id"], other["thread_id"]);
    assert_ne!(got[2].topic, got[0].topic);
    // After the window, the next message pushes at once again.
    tokio::time::sleep(window).await;
    alice.reply(thread_id, "four").await;
    let got = push.wait_for(4, PUSHED_WITHIN).await;
    assert_eq!(got[3].payload["preview"], "four");
    srv.stop().await;
}

async fn a_muted_thread_is_not_pushed_and_only_the_muter_hears_of_it(backend: Backend) {
    let Some((srv, push)) = start(backend, |c| c.push_coalesce = Duration::ZERO).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let phone = push.browser("phone");
    assert_eq!(subscribe(&bob, &phone).await.0, StatusCode::CREATED);
    let first = alice.send_new("bob", "Tea", "one").await;
    let thread_id = first["thread_id"].as_str().unwrap().to_owned();
    push.wait_for(1, PUSHED_WITHIN).await;

    let bob_tab = bob.native_tab().await;
    let alice_tab = alice.native_tab().await;
    let (status, body) = put_json(
        &bob,
        &format!("/api/v1/threads/{thread_id}/mute"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["thread"]["muted"], true);
    assert_eq!(body["thread"]["muted_until"], Value::Null);
    let heard = bob_tab.expect("thread:muted", WAIT).await.unwrap();
    assert_eq!(
        heard,
        json!({"thread_id": thread_id, "muted": true, "muted_until": null})
    );
    bob_tab.close();
    alice.reply(&thread_id, "muted?").await;
    tokio::time::sleep(NONE_COMING).await;
    assert_eq!(push.received().len(), 1, "a muted thread is not pushed");
    // The thread lists as muted for Bob, not for Alice; Alice heard nothing of it.
    let (_, inbox) = bob.http.get("/api/v1/threads").await;
    assert_eq!(inbox["threads"][0]["muted"], true);
    let (_, inbox) = alice.http.get("/api/v1/threads").await;
    assert_eq!(inbox["threads"][0]["muted"], false);
    let events = alice_tab.drain(QUIET).await;
    assert!(!names(&events).contains(&"thread:muted"), "{events:?}");

    // A mute with an end: shown, and over once it has passed.
    let until = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let (status, body) = put_json(
        &bob,
        &format!("/api/v1/threads/{thread_id}/mute"),
        json!({"until": until.to_rfc3339()}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["thread"]["muted"], true);
    assert!(body["thread"]["muted_until"].is_string());
    alice.reply(&thread_id, "still muted").await;
    tokio::time::sleep(NONE_COMING).await;
    assert_eq!(push.received().len(), 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, thread) = bob.http.get(&format!("/api/v1/threads/{thread_id}")).await;
    assert_eq!(thread["thread"]["muted"], false, "{thread}");
    alice.reply(&thread_id, "unmuted by time").await;
    push.wait_for(2, PUSHED_WITHIN).await;

    // Over a socket, and unmuting.
    let tab = bob.native_tab().await;
    let ack = tab
        .emit_with_ack("thread:mute", &json!({"thread_id": thread_id}), WAIT)
        .await
        .unwrap();
    assert_eq!(ack["status"], true, "{ack}");
    assert_eq!(ack["thread"]["muted"], true);
    let ack = tab
        .emit_with_ack("thread:unmute", &json!({"thread_id": thread_id}), WAIT)
        .await
        .unwrap();
    assert_eq!(ack["thread"]["muted"], false);
    let ack = tab
        .emit_with_ack(
            "thread:mute",
            &json!({"thread_id": thread_id, "until": "2001-01-01T00:00:00Z"}),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(ack["code"], "invalid_until", "{ack}");
    tab.close();
    let (status, body) = bob
        .http
        .delete(&format!("/api/v1/threads/{thread_id}/mute"))
        .await;
    assert_eq!(
        (status, &body["thread"]["muted"]),
        (StatusCode::OK, &json!(false))
    );
    // Nobody else's thread.
    let carol = srv.user("carol").await;
    let (status, _) = put_json(
        &carol,
        &format!("/api/v1/threads/{thread_id}/mute"),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    srv.stop().await;
}

async fn a_blocked_user_is_never_heard_and_never_told(backend: Backend) {
    let Some((srv, push)) = start(backend, |c| c.push_coalesce = Duration::ZERO).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let carol = srv.user("carol").await;
    let phone = push.browser("phone");
    assert_eq!(subscribe(&bob, &phone).await.0, StatusCode::CREATED);
    let direct = alice.send_new("bob", "Tea", "hello").await;
    let direct_id = direct["thread_id"].as_str().unwrap().to_owned();
    let group = carol
        .send_group(&["alice", "bob"], "Plans", "picnic?")
        .await;
    let group_id = group["thread_id"].as_str().unwrap().to_owned();
    push.wait_for(2, PUSHED_WITHIN).await;
    for thread in [&direct_id, &group_id] {
        let (status, _) = bob
            .http
            .post(&format!("/api/v1/threads/{thread}/read"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    assert_eq!(
        bob.http.put("/api/v1/blocks/Alice").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        bob.http.put("/api/v1/blocks/alice").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(code(bob.http.put("/api/v1/blocks/nobody").await).0, 404);
    assert_eq!(
        code(bob.http.put("/api/v1/blocks/bob").await),
        (422, Some("cannot_block_self".into()))
    );
    let (_, list) = bob.http.get("/api/v1/blocks").await;
    assert_eq!(list, json!({"blocks": ["alice"]}));

    // Alice cannot reach Bob anew, and is told what she would be told of no one.
    let nobody = alice
        .http
        .post(
            "/api/v1/messages",
            json!({"recipient": "nobody", "subject": "x", "body": "x"}),
        )
        .await;
    let blocked = alice
        .http
        .post(
            "/api/v1/messages",
            json!({"recipient": "bob", "subject": "x", "body": "x"}),
        )
        .await;
    assert_eq!(code(blocked.clone()).0, 422);
    assert_eq!(blocked.1["error"]["code"], nobody.1["error"]["code"]);
    srv.user("dave").await;
    let own = alice.send_group(&["carol", "dave"], "Alice's", "hi").await;
    let own_id = own["thread_id"].as_str().unwrap();
    let add = alice
        .http
        .post(
            &format!("/api/v1/threads/{own_id}/participants"),
            json!({"username": "bob"}),
        )
        .await;
    assert_eq!(code(add), (422, Some("unknown_recipient".into())));

    // In shared threads her messages are stored, and Bob hears nothing of them: no push while
    // he is away, no event while he is here.
    let pushes = push.received().len();
    alice.reply(&direct_id, "nor this").await;
    tokio::time::sleep(NONE_COMING).await;
    assert_eq!(
        push.received().len(),
        pushes,
        "a blocked sender is not pushed"
    );
    let carol_tab = carol.native_tab().await;
    let bob_tab = bob.native_tab().await;
    let hidden = alice.reply(&group_id, "bob won't see this").await;
    let heard = carol_tab.expect("message:new", WAIT).await.unwrap();
    assert_eq!(heard["message"]["body"], "bob won't see this");
    let of_alice = |events: &[(String, Value)]| -> Vec<String> {
        events
            .iter()
            .filter(|(name, data)| {
                matches!(name.as_str(), "message:new" | "unread")
                    || data.to_string().contains("alice")
            })
            .map(|(name, data)| format!("{name} {data}"))
            .collect()
    };
    let events = bob_tab.drain(QUIET).await;
    assert!(of_alice(&events).is_empty(), "the blocker heard {events:?}");
    let (_, unread) = bob.http.get("/api/v1/unread").await;
    assert_eq!(unread, json!({"messages": 0, "threads": 0}));
    let (_, history) = bob
        .http
        .get(&format!("/api/v1/threads/{group_id}/messages"))
        .await;
    let bodies: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(bodies, ["picnic?"]);
    let (_, found) = bob.http.get("/api/v1/search?q=see").await;
    assert_eq!(found["results"], json!([]));
    let (_, inbox) = bob.http.get("/api/v1/threads").await;
    for t in inbox["threads"].as_array().unwrap() {
        let last = t["last_message"]["body"].as_str().unwrap();
        assert!(["hello", "picnic?"].contains(&last), "{t}");
        assert_eq!(t["unread"], 0);
    }
    // Carol's messages still reach him.
    carol.reply(&group_id, "carol here").await;
    let heard = bob_tab.expect("message:new", WAIT).await.unwrap();
    assert_eq!(heard["message"]["body"], "carol here");
    let totals = bob_tab.expect("unread", WAIT).await.unwrap();
    assert_eq!(
        totals,
        json!({"messages": 1, "threads": 1}),
        "Carol's alone"
    );

    // Her typing and presence are hidden from him.
    let alice_tab = alice.native_tab().await;
    for tab in [&alice_tab, &bob_tab, &carol_tab] {
        let ack = tab
            .emit_with_ack("thread:join", &json!({"thread_id": group_id}), WAIT)
            .await
            .unwrap();
        assert_eq!(ack["status"], true);
    }
    alice_tab
        .emit_with_ack(
            "typing",
            &json!({"thread_id": group_id, "typing": true}),
            WAIT,
        )
        .await
        .unwrap();
    let heard = carol_tab.drain(QUIET).await;
    assert!(names(&heard).contains(&"typing"), "{heard:?}");
    let events = bob_tab.drain(QUIET).await;
    assert!(of_alice(&events).is_empty(), "the blocker saw {events:?}");

    // Unblocked: what she sent meanwhile stays hidden, what comes next is heard.
    assert_eq!(
        bob.http.delete("/api/v1/blocks/alice").await.0,
        StatusCode::NO_CONTENT
    );
    let (_, list) = bob.http.get("/api/v1/blocks").await;
    assert_eq!(list, json!({"blocks": []}));
    alice.reply(&group_id, "hello again").await;
    let heard = bob_tab.expect("message:new", WAIT).await.unwrap();
    assert_eq!(heard["message"]["body"], "hello again");
    let (_, history) = bob
        .http
        .get(&format!("/api/v1/threads/{group_id}/messages"))
        .await;
    let urls: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["url"].as_str())
        .collect();
    assert!(
        !urls.contains(&hidden["url"].as_str().unwrap()),
        "{history}"
    );
    assert_eq!(urls.len(), 3, "{history}");
    srv.stop().await;
}

async fn a_gone_subscription_is_deleted_and_a_busy_service_retried(backend: Backend) {
    let Some((srv, push)) = start(backend, |c| c.push_coalesce = Duration::ZERO).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let old = push.browser("old");
    let busy = push.browser("busy");
    assert_eq!(subscribe(&bob, &old).await.0, StatusCode::CREATED);
    assert_eq!(subscribe(&bob, &busy).await.0, StatusCode::CREATED);
    push.answer("old", &[410]);
    push.answer("busy", &[503]);
    let first = alice.send_new("bob", "Tea", "one").await;
    let thread_id = first["thread_id"].as_str().unwrap();
    // The busy service is asked again (after a second) and takes it.
    let got = push.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].to, "busy");
    assert_eq!(push.requests(), 3);
    // The gone subscription was deleted: the next message goes to the other only.
    alice.reply(thread_id, "two").await;
    let got = push.wait_for(2, PUSHED_WITHIN).await;
    assert_eq!(got[1].to, "busy");
    tokio::time::sleep(QUIET).await;
    assert_eq!(push.requests(), 4);
    srv.stop().await;
}

/// Endpoints on private addresses, or not over https, are refused at subscription; a user holds
/// at most ten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_must_be_public_https_and_a_user_holds_ten() {
    let Some(srv) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let bob = srv.user("bob").await;
    let (status, key) = srv.http().get("/api/v1/push/key").await;
    assert_eq!(status, StatusCode::OK);
    let key = key["public_key"].as_str().unwrap();
    assert_eq!(key.len(), 87, "a base64url uncompressed P-256 point: {key}");
    let push = PushService::start().await;
    let browser = push.browser("b");
    let good = browser.json();
    for endpoint in [
        "http://push.example.org/x",
        "https://127.0.0.1/x",
        "https://[::1]/x",
        "https://10.0.0.1/x",
        "https://192.168.1.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:127.0.0.1]/x",
        "https://localhost/x",
        "https://user:pw@push.example.org/x",
        "ftp://push.example.org/x",
        push.browser("local").endpoint.as_str(),
    ] {
        let mut body = good.clone();
        body["endpoint"] = json!(endpoint);
        let refused = bob.http.post("/api/v1/push/subscriptions", body).await;
        assert_eq!(
            code(refused),
            (422, Some("invalid_endpoint".into())),
            "{endpoint}"
        );
    }
    let mut bad_keys = good.clone();
    bad_keys["keys"]["p256dh"] = json!("AAAA");
    let refused = bob.http.post("/api/v1/push/subscriptions", bad_keys).await;
    assert_eq!(code(refused).0, 422);
    srv.stop().await;

    // With loopback allowed (tests only), ten subscriptions and no more.
    let Some((srv, push)) = start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let bob = srv.user("bob").await;
    for i in 0..10 {
        let b = push.browser(&format!("b{i}"));
        assert_eq!(subscribe(&bob, &b).await.0, StatusCode::CREATED);
    }
    let refused = subscribe(&bob, &push.browser("b10")).await;
    assert_eq!(code(refused), (409, Some("too_many_subscriptions".into())));
    // Private addresses other than loopback are still refused.
    let mut body = push.browser("x").json();
    body["endpoint"] = json!("http://10.0.0.1/push/x");
    assert_eq!(
        code(bob.http.post("/api/v1/push/subscriptions", body).await).0,
        422
    );
    srv.stop().await;
}

/// Without previews, a push says who and where, not what.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_without_previews_leave_the_text_out() {
    let Some((srv, push)) = start(Backend::Sqlite, |c| c.push_preview = false).await else {
        return;
    };
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    assert_eq!(
        subscribe(&bob, &push.browser("p")).await.0,
        StatusCode::CREATED
    );
    let first = alice.send_new("bob", "Tea", "secret words").await;
    let got = push.wait_for(1, PUSHED_WITHIN).await;
    assert_eq!(
        got[0].payload,
        json!({"thread_id": first["thread_id"], "subject": "Tea", "sender": "alice"})
    );
    srv.stop().await;
}

/// A user blocks at most 1000 others; blocking one already blocked still answers alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_blocks_at_most_a_thousand_others() {
    use sea_orm::ConnectionTrait;
    let Some(srv) = TestServer::start(Backend::Sqlite).await else {
        return;
    };
    let bob = srv.user("bob").await;
    srv.user("alice").await;
    let db = sea_orm::Database::connect(&srv.database_url).await.unwrap();
    db.execute_unprepared(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
         INSERT INTO users (username, websocket_id, is_admin, created_at, log_seq, log_gid, \
             credential_epoch, read_receipts) \
         SELECT 'filler' || i, 'wsfiller' || i, 0, 0, 0, 0, 0, 1 FROM n; \
         INSERT INTO blocks (blocker_id, blocked_id, created_at) \
         SELECT (SELECT id FROM users WHERE username = 'bob'), id, 0 FROM users \
         WHERE username LIKE 'filler%';",
    )
    .await
    .unwrap();
    assert_eq!(
        code(bob.http.put("/api/v1/blocks/alice").await),
        (409, Some("too_many_blocks".into()))
    );
    assert_eq!(
        bob.http.put("/api/v1/blocks/filler7").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        bob.http.delete("/api/v1/blocks/filler7").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        bob.http.put("/api/v1/blocks/alice").await.0,
        StatusCode::NO_CONTENT
    );
    let (_, list) = bob.http.get("/api/v1/blocks").await;
    assert_eq!(list["blocks"].as_array().unwrap().len(), 1000);
    srv.stop().await;
}
