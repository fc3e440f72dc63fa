//! Connection state recovery: a socket that reconnects with its `pid` and the offset of the last
//! event it heard is sent every event it missed, once, in order, before any new one; `sync`
//! answers the same to clients that ask for it; a pid of someone else, a bad offset, a gap
//! older than the window or longer than the bound does not recover.

mod common;

use std::time::Duration;

use common::{Backend, QUIET, TestServer, User, WAIT};
use missive_client::{ConnectOptions, Incoming, Socket};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

on_every_backend!(
    missed_events_are_replayed_once_in_order_then_live_ones_follow,
    a_page_deep_in_the_log_is_read_from_near_its_position,
    a_groups_changes_and_receipts_are_replayed_in_order,
    an_edit_is_replayed_as_the_message_is_then,
    reactions_and_a_removal_are_replayed_in_order,
    a_mute_is_replayed_and_a_blocked_senders_message_never_is,
    account_changes_are_replayed_to_the_session_that_stays,
);

/// One event as a socket heard it.
#[derive(Debug, Clone, PartialEq)]
struct Heard {
    name: String,
    data: Value,
    offset: Option<String>,
}

impl Heard {
    /// What identifies the event whatever the state it was rendered in: a replayed
    /// `message:new` carries its thread as it is at replay time, an `unread` the totals then.
    fn key(&self) -> (String, String, Option<String>) {
        let d = &self.data;
        let what = match self.name.as_str() {
            "message:new" | "message:edited" => d["message"]["url"].to_string(),
            "message:deleted" | "message:removed" => d["url"].to_string(),
            "message:reactions" => d["reactions"].to_string(),
            "thread:read" | "thread:deleted" => d["thread_id"].to_string(),
            "presence" => format!("{} {}", d["username"], d["online"]),
            "thread:updated" => d["change"].to_string(),
            "receipt" => format!("{} {}", d["username"], d["up_to"]),
            _ => String::new(),
        };
        (self.name.clone(), what, self.offset.clone())
    }
}

/// Everything `s` hears until it has been quiet for [`QUIET`].
async fn heard(s: &Socket) -> Vec<Heard> {
    let mut out = Vec::new();
    while let Some(incoming) = s.next(QUIET).await {
        match incoming {
            Incoming::Event { name, data, offset } => out.push(Heard { name, data, offset }),
            Incoming::Disconnected => break,
            Incoming::Raw { .. } => {}
        }
    }
    out
}

/// A native tab of `user` that presents `pid` and `offset` (as given) when it connects.
async fn reconnect(base: &str, user: &User, pid: Option<&str>, offset: Value) -> Socket {
    let mut auth = json!({"token": user.token, "legacy": false});
    if let Some(pid) = pid {
        auth["pid"] = json!(pid);
        auth["offset"] = offset;
    }
    Socket::connect(base, ConnectOptions::namespace("/messages").auth(auth))
        .await
        .expect("socket connects")
}

fn last_offset(events: &[Heard]) -> String {
    events
        .iter()
        .rev()
        .find_map(|h| h.offset.clone())
        .expect("an event with an offset")
}

/// alice and bob, and the thread bob started with her.
async fn conversation(server: &TestServer) -> (User, User, String) {
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let thread = bob.send_new("alice", "s", "hello").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (alice, bob, thread)
}

/// Sends `n` replies from `from` in `thread`; returns their urls.
async fn replies(from: &User, thread: &str, n: usize, label: &str) -> Vec<String> {
    let mut urls = Vec::with_capacity(n);
    for i in 0..n {
        let m = from.reply(thread, &format!("{label} {i}")).await;
        urls.push(m["url"].as_str().unwrap().to_owned());
    }
    urls
}

/// The acceptance scenario: a tab drops, 50 messages arrive and some are read and deleted
/// elsewhere, the tab comes back with its pid and last offset and hears exactly what a tab
/// that stayed heard, in the same order with the same offsets, then live events again.
async fn missed_events_are_replayed_once_in_order_then_live_ones_follow(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, |c| c.send_rate = 0).await else {
        return;
    };
    let (alice, bob, thread) = conversation(&server).await;

    let tab = alice.native_tab().await;
    let pid = tab.pid.clone().expect("the CONNECT answer carries a pid");
    let witness = alice.native_tab().await;
    bob.reply(&thread, "while connected").await;
    let before = heard(&tab).await;
    assert_eq!(
        before.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        ["message:new", "unread"]
    );
    let offset = last_offset(&before);
    heard(&witness).await;
    tab.close();

    let urls = replies(&bob, &thread, 50, "missed").await;
    let (status, _) = alice
        .http
        .post(
            &format!("/api/v1/threads/{thread}/read"),
            json!({"up_to": urls[24]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for url in [&urls[3], &urls[40]] {
        let (status, body) = alice.http.delete(&format!("/api/v1/messages/{url}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let expected = heard(&witness).await;
    // 50 x (message:new, unread), a read (thread:read, unread), a read message deleted
    // (message:deleted) and an unread one (message:deleted, unread).
    assert_eq!(expected.len(), 50 * 2 + 2 + 1 + 2, "{expected:?}");

    let back = reconnect(&server.url, &alice, Some(&pid), json!(offset)).await;
    assert_eq!(
        back.pid.as_deref(),
        Some(pid.as_str()),
        "recovered: same pid"
    );
    let mut replayed = heard(&back).await;
    // After the missed events, the current presence of alice's correspondents (not logged).
    assert_eq!(
        replayed.pop().map(|h| (h.name, h.data, h.offset)),
        Some((
            "presence".into(),
            json!({"username": "bob", "online": false}),
            None
        ))
    );
    let keys = |events: &[Heard]| events.iter().map(Heard::key).collect::<Vec<_>>();
    assert_eq!(keys(&replayed), keys(&expected));
    // Positions follow on from the last one heard, without a gap or a repeat.
    let first_missed: i64 = offset.parse::<i64>().unwrap() + 1;
    for (i, h) in replayed.iter().enumerate() {
        assert_eq!(
            h.offset,
            Some((first_missed + i as i64).to_string()),
            "{h:?}"
        );
    }
    // What does not depend on when it is rendered is identical.
    for (r, e) in replayed.iter().zip(&expected) {
        match r.name.as_str() {
            "message:new" => assert_eq!(r.data["message"]["body"], e.data["message"]["body"]),
            "unread" => {}
            _ => assert_eq!(r.data, e.data),
        }
    }

    // Live events follow, once each.
    let after = bob.reply(&thread, "after").await;
    let live = heard(&back).await;
    assert_eq!(
        live.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
        ["message:new", "unread"]
    );
    assert_eq!(live[0].data["message"]["url"], after["url"]);
    assert_eq!(
        live[0].offset,
        Some((first_missed + replayed.len() as i64).to_string())
    );
    server.stop().await;
}

/// A group's changes and its members' receipts are logged like messages: a tab that was away
/// hears them again in the order they happened, among the messages, as a tab that stayed did.
async fn a_groups_changes_and_receipts_are_replayed_in_order(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let dave = server.user("dave").await;
    let thread = alice.send_group(&["bob", "carol"], "g", "hello").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tab = alice.native_tab().await;
    let pid = tab.pid.clone().unwrap();
    let witness = alice.native_tab().await;
    bob.reply(&thread, "while connected").await;
    let offset = last_offset(&heard(&tab).await);
    heard(&witness).await;
    tab.close();

    bob.reply(&thread, "missed").await;
    let path = |rest: &str| format!("/api/v1/threads/{thread}{rest}");
    let ok = |(status, body): (StatusCode, Value)| assert!(status.is_success(), "{body}");
    ok(bob.http.post(&path("/read"), json!({})).await);
    ok(carol
        .http
        .post(&path("/participants"), json!({"username": "dave"}))
        .await);
    ok(dave
        .http
        .patch(&path(""), json!({"subject": "renamed"}))
        .await);
    ok(alice.http.delete(&path("/participants/carol")).await);
    dave.reply(&thread, "after").await;
    ok(dave.http.post(&path("/read"), json!({})).await);
    let expected = heard(&witness).await;
    let kinds: Vec<&str> = expected.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "message:new",
            "unread",
            "receipt",
            "thread:updated",
            "thread:updated",
            "thread:updated",
            "message:new",
            "unread",
            "receipt"
        ]
    );

    let back = reconnect(&server.url, &alice, Some(&pid), json!(offset)).await;
    assert_eq!(back.pid.as_deref(), Some(pid.as_str()), "recovered");
    let replayed: Vec<Heard> = heard(&back)
        .await
        .into_iter()
        .filter(|h| h.name != "presence")
        .collect();
    let keys = |events: &[Heard]| events.iter().map(Heard::key).collect::<Vec<_>>();
    assert_eq!(keys(&replayed), keys(&expected));
    for (r, e) in replayed.iter().zip(&expected) {
        if matches!(r.name.as_str(), "thread:updated" | "receipt") {
            assert_eq!(r.data, e.data, "replayed as sent");
        }
    }
    server.stop().await;
}

/// An edit is logged as a reference to its message: a tab that was away hears it again in
/// its place, showing the message as it is at the replay (edited twice: the second body).
async fn an_edit_is_replayed_as_the_message_is_then(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob, thread) = conversation(&server).await;
    let tab = alice.native_tab().await;
    let pid = tab.pid.clone().unwrap();
    let sent = bob.reply(&thread, "frist").await;
    let offset = last_offset(&heard(&tab).await);
    tab.close();
    let url = sent["url"].as_str().unwrap();
    for body in ["first", "first!"] {
        let (status, res) = bob
            .http
            .patch(&format!("/api/v1/messages/{url}"), json!({"body": body}))
            .await;
        assert_eq!(status, StatusCode::OK, "{res}");
    }
    let back = reconnect(&server.url, &alice, Some(&pid), json!(offset)).await;
    assert_eq!(back.pid.as_deref(), Some(pid.as_str()), "recovered");
    let replayed: Vec<Heard> = heard(&back)
        .await
        .into_iter()
        .filter(|h| h.name != "presence")
        .collect();
    let names: Vec<&str> = replayed.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["message:edited", "message:edited"]);
    for h in &replayed {
        assert_eq!(h.data["message"]["url"], url);
        assert_eq!(
            h.data["message"]["body"], "first!",
            "as it is at the replay"
        );
    }
    server.stop().await;
}

/// A tab away while its user mutes and unmutes a thread hears both when it comes back; the
/// messages of someone they block meanwhile are not in their log to be replayed.
async fn a_mute_is_replayed_and_a_blocked_senders_message_never_is(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob, thread) = conversation(&server).await;
    let tab = alice.native_tab().await;
    let pid = tab.pid.clone().unwrap();
    bob.reply(&thread, "before").await;
    let offset = last_offset(&heard(&tab).await);
    tab.close();
    assert_eq!(
        alice.http.put("/api/v1/blocks/bob").await.0,
        StatusCode::NO_CONTENT
    );
    bob.reply(&thread, "while blocked").await;
    let mute = alice
        .http
        .client
        .put(format!("{}/api/v1/threads/{thread}/mute", server.url))
        .json(&json!({}));
    assert_eq!(alice.http.send(mute).await.0, StatusCode::OK);
    let (status, _) = alice
        .http
        .delete(&format!("/api/v1/threads/{thread}/mute"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let back = reconnect(&server.url, &alice, Some(&pid), json!(offset)).await;
    assert_eq!(back.pid.as_deref(), Some(pid.as_str()), "recovered");
    let replayed: Vec<Heard> = heard(&back)
        .await
        .into_iter()
        .filter(|h| h.name != "presence")
        .collect();
    let got: Vec<(&str, &Value)> = replayed
        .iter()
        .map(|h| (h.name.as_str(), &h.data["muted"]))
        .collect();
    assert_eq!(
        got,
        [
            ("thread:muted", &json!(true)),
            ("thread:muted", &json!(false))
        ]
    );
    let offsets: Vec<i64> = replayed
        .iter()
        .map(|h| h.offset.as_deref().unwrap().parse().unwrap())
        .collect();
    let first: i64 = offset.parse().unwrap();
    assert_eq!(
        offsets,
        [first + 1, first + 2],
        "consecutive after the last heard"
    );
    server.stop().await;
}

/// Reactions and a removal for everyone missed while offline come back in the order they
/// happened, each as it was then (the reactions after each change).
async fn reactions_and_a_removal_are_replayed_in_order(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, bob, thread) = conversation(&server).await;
    let tab = alice.native_tab().await;
    let pid = tab.pid.clone().unwrap();
    let sent = bob.reply(&thread, "react to me").await;
    let offset = last_offset(&heard(&tab).await);
    tab.close();
    let url = sent["url"].as_str().unwrap();
    let react = async |who: &User, emoji: &str| {
        let (status, res) = who
            .http
            .put(&format!("/api/v1/messages/{url}/reactions/{emoji}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{res}");
    };
    react(&bob, "\u{1f44d}").await;
    react(&alice, "\u{1f44d}").await;
    react(&bob, "\u{1f389}").await;
    let (status, _) = bob
        .http
        .delete(&format!("/api/v1/messages/{url}?for=everyone"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let back = reconnect(&server.url, &alice, Some(&pid), json!(offset)).await;
    assert_eq!(back.pid.as_deref(), Some(pid.as_str()), "recovered");
    let replayed: Vec<Heard> = heard(&back)
        .await
        .into_iter()
        .filter(|h| h.name != "presence")
        .collect();
    let got: Vec<(&str, Value)> = replayed
        .iter()
        .map(|h| {
            let what = match h.name.as_str() {
                "message:reactions" => h.data["reactions"].clone(),
                _ => h.data["url"].clone(),
            };
            (h.name.as_str(), what)
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "message:reactions",
                json!([{"emoji": "\u{1f44d}", "users": ["bob"]}])
            ),
            (
                "message:reactions",
                json!([{"emoji": "\u{1f44d}", "users": ["bob", "alice"]}])
            ),
            (
                "message:reactions",
                json!([
                    {"emoji": "\u{1f44d}", "users": ["bob", "alice"]},
                    {"emoji": "\u{1f389}", "users": ["bob"]}
                ])
            ),
            ("message:removed", json!(url)),
        ]
    );
    assert!(
        replayed
            .iter()
            .all(|h| h.data["thread_id"] == thread.as_str())
    );
    server.stop().await;
}

/// Another user's pid, a pid of another login, a forged or altered pid, an offset that is
/// garbage or from the future: none of them recovers (a new pid) and nothing is replayed; the
/// socket still works. The right pid and offset then do recover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pid_of_someone_else_or_a_bad_offset_does_not_recover() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let (alice, bob, thread) = conversation(&server).await;
    let tab = alice.native_tab().await;
    let pid = tab.pid.clone().unwrap();
    let bobs_pid = bob.native_tab().await.pid.clone().unwrap();
    bob.reply(&thread, "one").await;
    let offset = last_offset(&heard(&tab).await);
    tab.close();
    bob.reply(&thread, "missed").await;

    let again = alice.http.login("alice", "correct horse").await;
    let (head, rest) = pid.split_once('.').unwrap();
    let altered = format!("{}.{rest}", head.parse::<i64>().unwrap() + 1);
    let cases: [(&User, &str, Value); 6] = [
        (&alice, &bobs_pid, json!(offset)),
        (&again, &pid, json!(offset)),
        (&alice, "forged.pid.value", json!(offset)),
        (&alice, &altered, Value::Null),
        (&alice, &pid, json!("abc")),
        (&alice, &pid, json!("999999")),
    ];
    for (who, presented, offset) in cases {
        let s = reconnect(&server.url, who, Some(presented), offset.clone()).await;
        let got = s.pid.clone().unwrap();
        assert!(
            got != presented && got != bobs_pid,
            "{presented} with {offset} must not recover"
        );
        assert_eq!(
            heard(&s).await,
            [],
            "nothing replayed for {presented} {offset}"
        );
        // The socket works as a fresh one.
        let ack = s
            .emit_with_ack("sync", &json!({}), WAIT)
            .await
            .expect("sync answers");
        assert_eq!(ack["status"], true, "{ack}");
        s.close();
    }

    let s = reconnect(&server.url, &alice, Some(&pid), json!(offset)).await;
    assert_eq!(s.pid.as_deref(), Some(pid.as_str()));
    let replayed = heard(&s).await;
    assert!(
        replayed
            .iter()
            .any(|h| h.name == "message:new" && h.data["message"]["body"] == "missed"),
        "{replayed:?}"
    );
    server.stop().await;
}

/// A tab that heard nothing since it connected presents its pid without an offset: the pid
/// says where it stood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_that_heard_nothing_recovers_from_its_pid() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let (alice, bob, thread) = conversation(&server).await;
    let tab = alice.native_tab().await;
    let pid = tab.pid.clone().unwrap();
    tab.close();
    let url = bob.reply(&thread, "missed").await["url"].clone();
    let back = reconnect(&server.url, &alice, Some(&pid), Value::Null).await;
    assert_eq!(back.pid.as_deref(), Some(pid.as_str()));
    let replayed = heard(&back).await;
    assert_eq!(replayed.len(), 3, "{replayed:?}");
    assert_eq!(replayed[0].data["message"]["url"], url);
    assert_eq!(replayed[2].name, "presence");
    server.stop().await;
}

/// Waits (10 s at most) until the event log of the SQLite database at `url` is empty.
async fn pruned_to_nothing(url: &str) {
    let conn = sea_orm::Database::connect(url).await.unwrap();
    let count = async || {
        conn.query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT COUNT(*) FROM event_log",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count().await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "entries pruned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `sync` from `offset` answers that the gap cannot be sent (the client reloads).
async fn sync_is_incomplete(tab: &Socket, offset: &str) {
    let page = tab
        .emit_with_ack("sync", &json!({"since": offset}), WAIT)
        .await
        .unwrap();
    assert_eq!(
        (&page["complete"], &page["events"]),
        (&json!(false), &json!([]))
    );
}

/// A gap longer than `MISSIVE_RECOVERY_MAX` events, or older than `MISSIVE_RECOVERY_WINDOW`,
/// does not recover (nor does `sync` page a gap past the bound); entries past the window are
/// pruned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bound_and_the_window_end_recovery_and_old_entries_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/log.db?mode=rwc", dir.path().display());
    let db_url = url.clone();
    let server = TestServer::start_with(Backend::Sqlite, move |c| {
        c.database_url = db_url;
        c.recovery_window = Duration::from_secs(3);
        c.recovery_max = 5;
        c.send_rate = 0;
    })
    .await
    .unwrap();
    let (alice, bob, thread) = conversation(&server).await;

    // Within the bound (4 events): recovered.
    let tab = alice.native_tab().await;
    let pid = tab.pid.clone().unwrap();
    tab.close();
    replies(&bob, &thread, 2, "two").await;
    let tab = reconnect(&server.url, &alice, Some(&pid), Value::Null).await;
    assert_eq!(tab.pid.as_deref(), Some(pid.as_str()));
    let offset = last_offset(&heard(&tab).await);
    tab.close();

    // Past it (6 events): not recovered, nothing replayed.
    replies(&bob, &thread, 3, "three").await;
    let tab = reconnect(&server.url, &alice, Some(&pid), json!(offset)).await;
    assert_ne!(tab.pid.as_deref(), Some(pid.as_str()));
    assert_eq!(heard(&tab).await, []);
    // `sync` keeps the same bound: a longer gap is a reload, not a walk through the whole log.
    sync_is_incomplete(&tab, &offset).await;
    let pid = tab.pid.clone().unwrap();
    tab.close();

    // Older than the window: not recovered, and `sync` says the gap is incomplete.
    replies(&bob, &thread, 1, "old").await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let tab = reconnect(&server.url, &alice, Some(&pid), Value::Null).await;
    assert_ne!(tab.pid.as_deref(), Some(pid.as_str()));
    assert_eq!(heard(&tab).await, []);
    sync_is_incomplete(&tab, &offset).await;

    // Pruned within a quarter of the window.
    pruned_to_nothing(&url).await;
    server.stop().await;
}

/// A log pruned to nothing goes on: new entries take keys never used before, while each
/// user's newest entry still names a pruned one; a gap into the pruned part is reported
/// incomplete at once (a walk back that met a key handed out again would go round forever),
/// and the new entries are sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_pruned_to_nothing_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/log.db?mode=rwc", dir.path().display());
    let db_url = url.clone();
    let server = TestServer::start_with(Backend::Sqlite, move |c| {
        c.database_url = db_url;
        c.recovery_window = Duration::from_secs(2);
        c.send_rate = 0;
    })
    .await
    .unwrap();
    let (alice, bob, thread) = conversation(&server).await;
    let tab = alice.native_tab().await;
    let before = tab.emit_with_ack("sync", &json!({}), WAIT).await.unwrap()["head"]
        .as_str()
        .unwrap()
        .to_owned();
    replies(&bob, &thread, 10, "before the prune").await;
    pruned_to_nothing(&url).await;
    let after_prune = tab.emit_with_ack("sync", &json!({}), WAIT).await.unwrap()["head"]
        .as_str()
        .unwrap()
        .to_owned();
    // Enough entries that keys handed out again would come round to the pruned ones.
    replies(&bob, &thread, 30, "after the prune").await;
    sync_is_incomplete(&tab, &before).await;
    let page = tab
        .emit_with_ack("sync", &json!({"since": after_prune}), WAIT)
        .await
        .unwrap();
    assert_eq!(page["complete"], true, "{page}");
    let names: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["message:new", "unread"].repeat(30), "{page}");
    server.stop().await;
}

/// `sync` pages the missed events in order and says where the log stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_pages_the_missed_events() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.send_rate = 0)
        .await
        .unwrap();
    let (alice, bob, thread) = conversation(&server).await;
    let tab = alice.native_tab().await;
    let start = tab.emit_with_ack("sync", &json!({}), WAIT).await.unwrap();
    assert_eq!(start["complete"], true, "{start}");
    let since = start["head"].as_str().unwrap().to_owned();
    // 260 replies: 520 events, more than a page.
    let urls = replies(&bob, &thread, 260, "r").await;
    let mut since = since;
    let mut events = Vec::new();
    loop {
        let page = tab
            .emit_with_ack("sync", &json!({"since": since}), WAIT)
            .await
            .unwrap();
        assert_eq!(page["complete"], true, "{page}");
        let got = page["events"].as_array().unwrap().clone();
        since = got
            .last()
            .map_or(since, |e| e[2].as_str().unwrap().to_owned());
        events.extend(got);
        if page["more"] == false {
            assert_eq!(page["head"], json!(since));
            break;
        }
    }
    assert_eq!(events.len(), 520);
    let new: Vec<&str> = events
        .iter()
        .filter(|e| e[0] == "message:new")
        .filter_map(|e| e[1]["message"]["url"].as_str())
        .collect();
    assert_eq!(new, urls);
    for bad in [json!({"since": "x"}), json!({"since": "99999999"})] {
        let page = tab.emit_with_ack("sync", &bad, WAIT).await.unwrap();
        assert_eq!(
            (&page["status"], &page["complete"]),
            (&json!(true), &json!(false))
        );
    }
    let refused = tab
        .emit_with_ack("sync", &json!({"since": "1", "extra": 1}), WAIT)
        .await
        .unwrap();
    assert_eq!(refused["code"], "invalid_payload");
    server.stop().await;
}

/// A page is read from near the position asked for, not by a walk from the user's newest entry
/// (a 10,000-event gap walked it all for each page): with the chain cut a few entries before
/// the newest, a page from far back is still read whole, and the same at any depth.
async fn a_page_deep_in_the_log_is_read_from_near_its_position(backend: Backend) {
    let Some(server) = TestServer::start_with(backend, |c| c.send_rate = 0).await else {
        return;
    };
    let (alice, bob, thread) = conversation(&server).await;
    let tab = alice.native_tab().await;
    let start = tab.emit_with_ack("sync", &json!({}), WAIT).await.unwrap();
    let since: i64 = start["head"].as_str().unwrap().parse().unwrap();
    // 700 events (a message and the unread totals each), past a page and its last mark.
    replies(&bob, &thread, 350, "r").await;
    let db = sea_orm::Database::connect(&server.database_url)
        .await
        .unwrap();
    db.execute_unprepared(
        "UPDATE event_log SET prev = NULL \
         WHERE user_id = (SELECT id FROM users WHERE username = 'alice') \
         AND seq = (SELECT log_seq FROM users WHERE username = 'alice') - 5",
    )
    .await
    .unwrap();
    for after in [since, since + 100, since + 137] {
        let page = tab
            .emit_with_ack("sync", &json!({"since": after.to_string()}), WAIT)
            .await
            .unwrap();
        assert_eq!(
            (&page["complete"], &page["more"]),
            (&json!(true), &json!(true)),
            "{page}"
        );
        let offsets: Vec<i64> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[2].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(
            offsets.len() >= 100,
            "{} events after {after}",
            offsets.len()
        );
        let expected: Vec<i64> = (after + 1..).take(offsets.len()).collect();
        assert_eq!(offsets, expected);
    }
    server.stop().await;
}

/// The log on SQLite survives a restart (SIGKILL): a tab that reconnects to the new process
/// with its pid recovers what was sent meanwhile, and the signing secret (the pids' key) is
/// the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_works_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/restart.db?mode=rwc", dir.path().display());
    let start = || {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_missive"));
        cmd.env("MISSIVE_DATABASE_URL", &db)
            .env("MISSIVE_LOGIN_RATE", "1000")
            .env("MISSIVE_SEND_RATE", "0");
        common::spawn_missive(cmd)
    };
    let (mut first, url) = start().await;
    let http = common::Http::new(&url);
    for name in ["alice", "bob"] {
        let (status, _) = http
            .post(
                "/api/v1/auth/register",
                json!({"username": name, "password": "correct horse"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let alice = common::Http::new(&url)
        .login("alice", "correct horse")
        .await;
    let bob = common::Http::new(&url).login("bob", "correct horse").await;
    let thread = bob.send_new("alice", "s", "hello").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tab = reconnect(&url, &alice, None, Value::Null).await;
    let pid = tab.pid.clone().unwrap();
    bob.reply(&thread, "before").await;
    let offset = last_offset(&heard(&tab).await);
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    tab.expect_disconnect(WAIT).await.unwrap();

    let (_second, url) = start().await;
    let bob = common::Http::new(&url).login("bob", "correct horse").await;
    let urls = replies(&bob, &thread, 10, "after restart").await;
    let back = reconnect(&url, &alice, Some(&pid), json!(offset)).await;
    assert_eq!(
        back.pid.as_deref(),
        Some(pid.as_str()),
        "recovered across the restart"
    );
    let replayed = heard(&back).await;
    let new: Vec<&Value> = replayed
        .iter()
        .filter(|h| h.name == "message:new")
        .map(|h| &h.data["message"]["url"])
        .collect();
    assert_eq!(new.len(), 10, "{replayed:?}");
    for (got, want) in new.iter().zip(&urls) {
        assert_eq!(got.as_str(), Some(want.as_str()));
    }
}

/// A client that never recovers says `{offsets: false}`: it hears every event of its user,
/// payload alone (a python-socketio handler `def on_new(data)` took the offset as a second
/// argument and raised TypeError), and is given no pid; a tab that did not say so still
/// hears the offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_asks_for_no_offsets_hears_payloads_alone() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let (alice, bob, thread) = conversation(&server).await;
    let plain = Socket::connect(
        &server.url,
        ConnectOptions::namespace("/messages")
            .auth(json!({"token": alice.token, "legacy": false, "offsets": false})),
    )
    .await
    .expect("socket connects");
    assert_eq!(plain.pid, None, "a socket without offsets cannot recover");
    let tab = alice.native_tab().await;
    bob.reply(&thread, "one more").await;
    alice
        .http
        .post(&format!("/api/v1/threads/{thread}/read"), json!({}))
        .await;
    for (socket, with_offsets) in [(&plain, false), (&tab, true)] {
        let events = heard(socket).await;
        let names: Vec<&str> = events.iter().map(|h| h.name.as_str()).collect();
        assert!(names.contains(&"message:new"), "{names:?}");
        assert!(names.contains(&"thread:read"), "{names:?}");
        for h in &events {
            assert_eq!(h.offset.is_some(), with_offsets, "{h:?}");
        }
        let new = events.iter().find(|h| h.name == "message:new").unwrap();
        assert_eq!(new.data["message"]["body"], "one more");
    }
    server.stop().await;
}

/// The head of `tab`'s user's log (`sync {}`).
async fn head(tab: &Socket) -> i64 {
    let answer = tab.emit_with_ack("sync", &json!({}), WAIT).await.unwrap();
    answer["head"].as_str().unwrap().parse().unwrap()
}

/// Presence is state, not history: a user who opens and closes sockets a thousand times is
/// shown online once and offline once, after the grace period, and none of it reaches the
/// log of the user who watches (each flip was an entry there, pushing them toward the
/// recovery bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_sockets_move_nobodys_log_and_are_told_once() {
    let grace = Duration::from_secs(2);
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.presence_grace = grace;
        c.event_rate = 0;
        c.user_event_rate = 0;
    })
    .await
    .unwrap();
    let (alice, bob, _thread) = conversation(&server).await;
    let watching = alice.native_tab().await;
    let before = head(&watching).await;
    let cycles = futures_util::future::join_all((0..10).map(|_| async {
        for _ in 0..100 {
            bob.native_tab().await.close();
        }
    }));
    cycles.await;
    let last_closed = std::time::Instant::now();
    let mut presence = Vec::new();
    while let Some(incoming) = watching.next(grace + Duration::from_secs(2)).await {
        if let Incoming::Event { name, data, offset } = incoming
            && name == "presence"
        {
            assert_eq!(offset, None, "presence is not logged");
            if data["online"] == false {
                assert!(
                    last_closed.elapsed() >= grace - Duration::from_millis(100),
                    "shown offline {:?} after the last socket closed",
                    last_closed.elapsed()
                );
            }
            presence.push(data["online"].as_bool().unwrap());
        }
    }
    assert_eq!(presence, [true, false], "1,000 flips told as {presence:?}");
    let moved = head(&watching).await - before;
    assert!(moved < 10, "alice's log moved by {moved} entries");
    server.stop().await;
}

/// A recovering socket is not replayed the presence flips it missed: it is sent its
/// correspondents' current presence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_socket_is_told_the_current_presence() {
    let server = TestServer::start(Backend::Sqlite).await.unwrap();
    let (alice, bob, thread) = conversation(&server).await;
    let first = alice.native_tab().await;
    let pid = first.pid.clone().unwrap();
    bob.reply(&thread, "before").await;
    let offset = last_offset(&heard(&first).await);
    first.close();
    // While alice is away bob comes and goes, then comes back and stays.
    bob.native_tab().await.close();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let _stays = bob.native_tab().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let back = reconnect(&server.url, &alice, Some(&pid), json!(offset)).await;
    let events = heard(&back).await;
    let presence: Vec<&Heard> = events.iter().filter(|h| h.name == "presence").collect();
    assert_eq!(presence.len(), 1, "{events:?}");
    assert_eq!(presence[0].data, json!({"username": "bob", "online": true}));
    assert_eq!(presence[0].offset, None);
    server.stop().await;
}

/// Replay is paid for, per user (`MISSIVE_REPLAY_RATE`): past the budget, `sync` answers
/// `rate_limited` until it is paid back, and a recovering connect's replay slows down instead
/// of failing (a recovering CONNECT passed no limiter, and four sockets asking `sync {since:
/// 0}` took 0.8 s each of the server's time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_spend_a_budget_per_user() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.send_rate = 0;
        c.replay_rate = 200;
    })
    .await
    .unwrap();
    let (alice, bob, thread) = conversation(&server).await;
    let first = alice.native_tab().await;
    let pid = first.pid.clone().unwrap();
    first.close();
    // 300 replies: 600 events in alice's log; the budget holds 400 and refills 200 a second.
    replies(&bob, &thread, 300, "r").await;
    let tab = alice.native_tab().await;
    let page = tab
        .emit_with_ack("sync", &json!({"since": "0"}), WAIT)
        .await
        .unwrap();
    assert_eq!(page["status"], true, "{page}");
    let again = tab
        .emit_with_ack("sync", &json!({"since": "0"}), WAIT)
        .await
        .unwrap();
    assert_eq!(
        (&again["status"], &again["code"]),
        (&json!(false), &json!("rate_limited")),
        "{again}"
    );
    // A recovering connect is not refused: its replay waits for the budget, then comes whole.
    let started = std::time::Instant::now();
    let back = reconnect(&server.url, &alice, Some(&pid), json!("0")).await;
    let mut logged = 0;
    while let Some(incoming) = back.next(Duration::from_secs(10)).await {
        if let Incoming::Event {
            offset: Some(_), ..
        } = incoming
        {
            logged += 1;
            if logged == 600 {
                break;
            }
        }
    }
    assert!(logged >= 600, "only {logged} events replayed");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "600 events past a spent budget of 200/s replayed in {:?}",
        started.elapsed()
    );
    server.stop().await;
}

/// A recovery storm by one user does not hold up another user's sends: 16 sockets of eve
/// reconnect again and again asking for her whole log (2,000 events) and `sync` it from the
/// start, while bob sends. Replays are paced by eve's budget and walk from near where they
/// start; bob's sends go on at their usual latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_storm_does_not_slow_another_users_sends() {
    use std::time::Instant;
    let server = TestServer::start_with(Backend::Sqlite, |c| c.send_rate = 0)
        .await
        .unwrap();
    let (eve, mallory, thread) = {
        let eve = server.user("eve").await;
        let mallory = server.user("mallory").await;
        let thread = mallory.send_new("eve", "storm", "hello").await["thread_id"]
            .as_str()
            .unwrap()
            .to_owned();
        (eve, mallory, thread)
    };
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let calm = bob.send_new("ann", "calm", "hello").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = eve.native_tab().await;
    let pid = first.pid.clone().unwrap();
    first.close();
    replies(&mallory, &thread, 1_000, &"x".repeat(200)).await;
    let sender = bob.native_tab().await;
    let _reader = ann.native_tab().await;
    // The same sends first without the storm: the machine's own pace, which other processes
    // on it stretch as much as they stretch the sends during the storm.
    let mut calm_latencies = Vec::new();
    let calm_ends = Instant::now() + Duration::from_secs(2);
    while Instant::now() < calm_ends {
        let started = Instant::now();
        let ack = sender
            .emit_with_ack(
                "message:send",
                &json!({"thread_id": calm, "body": "calm"}),
                Duration::from_secs(10),
            )
            .await
            .expect("the send is answered");
        assert_eq!(ack["status"], true, "{ack}");
        calm_latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    calm_latencies.sort();

    let storm_ends = Instant::now() + Duration::from_secs(3);
    let replayed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let storm: Vec<_> = (0..16)
        .map(|i| {
            let (url, eve, pid, replayed) = (
                server.url.clone(),
                eve.clone(),
                pid.clone(),
                replayed.clone(),
            );
            tokio::spawn(async move {
                while Instant::now() < storm_ends {
                    let socket = reconnect(&url, &eve, Some(&pid), json!("1")).await;
                    if i % 2 == 0 {
                        // Half of them also page through the log with `sync`.
                        let _ = socket
                            .emit_with_ack("sync", &json!({"since": "0"}), WAIT)
                            .await;
                    }
                    let deadline = Instant::now() + Duration::from_millis(300);
                    while let Some(incoming) = socket
                        .next(deadline.saturating_duration_since(Instant::now()))
                        .await
                    {
                        if let Incoming::Event {
                            offset: Some(_), ..
                        } = incoming
                        {
                            replayed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        if Instant::now() >= deadline {
                            break;
                        }
                    }
                    socket.close();
                }
            })
        })
        .collect();
    let mut latencies = Vec::new();
    tokio::time::sleep(Duration::from_millis(100)).await;
    while Instant::now() < storm_ends {
        let started = Instant::now();
        let ack = sender
            .emit_with_ack(
                "message:send",
                &json!({"thread_id": calm, "body": "still here"}),
                Duration::from_secs(10),
            )
            .await
            .expect("the send is answered");
        assert_eq!(ack["status"], true, "{ack}");
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for task in storm {
        task.await.unwrap();
    }
    latencies.sort();
    let p90 = |l: &[Duration]| l[l.len() * 9 / 10];
    let (calm_p90, storm_p90) = (p90(&calm_latencies), p90(&latencies));
    let replayed = replayed.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "storm: {replayed} events replayed; {} sends of the other user, p90 {storm_p90:?} \
         (without the storm: {} sends, p90 {calm_p90:?})",
        latencies.len(),
        calm_latencies.len()
    );
    assert!(
        replayed >= 2_000,
        "the storm replayed only {replayed} events"
    );
    // 50 ms is the target (README, Security). The bound is against the same sends without the
    // storm: this machine's other load (measured: 170-450 ms p99 with the storm, old and new
    // code alike, while nothing else ran here but the host's neighbours) stretches both.
    let bound = Duration::from_millis(150).max(calm_p90 * 3);
    assert!(
        storm_p90 < bound,
        "send p90 {storm_p90:?} during the storm, {calm_p90:?} without it"
    );
    server.stop().await;
}

/// A recovering CONNECT that cannot read the log (the database went away under it) is refused
/// `unavailable`, and the client's next try recovers: it is not made a fresh session, which
/// would have its client drop what it missed. The log's read is held on a lock, and its
/// backend terminated as PostgreSQL's shutdown does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_the_database_cannot_check_is_refused_unavailable_then_recovers() {
    use sea_orm::TransactionTrait;
    let Some(server) = TestServer::start_with(Backend::Postgres, |c| c.send_rate = 0).await else {
        return;
    };
    let (alice, bob, thread) = conversation(&server).await;
    let tab = alice.native_tab().await;
    let pid = tab.pid.clone().unwrap();
    bob.reply(&thread, "heard").await;
    let offset = last_offset(&heard(&tab).await);
    tab.close();
    bob.reply(&thread, "missed").await;

    let db = sea_orm::Database::connect(&server.database_url)
        .await
        .unwrap();
    let lock = db.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE event_log IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let connecting = {
        let (url, alice, pid, offset) = (
            server.url.clone(),
            alice.clone(),
            pid.clone(),
            offset.clone(),
        );
        tokio::spawn(async move {
            let auth = json!({"token": alice.token, "legacy": false, "pid": pid, "offset": offset});
            Socket::connect(&url, ConnectOptions::namespace("/messages").auth(auth)).await
        })
    };
    let waiting = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
        WHERE wait_event_type = 'Lock' AND query LIKE '%RECURSIVE chain%' AND pid <> pg_backend_pid()";
    let terminated = tokio::time::timeout(WAIT, async {
        loop {
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    waiting,
                ))
                .await
                .unwrap();
            if !rows.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        terminated.is_ok(),
        "the recovery's read never waited on the lock"
    );
    match connecting.await.unwrap() {
        Err(missive_client::ConnectError::Refused(v)) => {
            assert_eq!(v, json!({"message": "unavailable"}))
        }
        Err(e) => panic!("expected CONNECT_ERROR unavailable, got {e}"),
        Ok(_) => panic!("expected CONNECT_ERROR unavailable, got a connection"),
    }
    lock.rollback().await.unwrap();

    let back = reconnect(&server.url, &alice, Some(&pid), json!(offset)).await;
    assert_eq!(back.pid.as_deref(), Some(pid.as_str()), "recovered");
    let replayed = heard(&back).await;
    assert_eq!(replayed[0].name, "message:new");
    assert_eq!(replayed[0].data["message"]["body"], "missed");
    server.stop().await;
}

/// A tab of the session that changed the password (it stays) and turned two-factor on, offline
/// meanwhile, hears both `account:changed` when it recovers, in order.
async fn account_changes_are_replayed_to_the_session_that_stays(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let (alice, _bob, thread) = conversation(&server).await;
    let tab = alice.native_tab().await;
    let pid = tab.pid.clone().unwrap();
    alice.reply(&thread, "before").await;
    let offset = last_offset(&heard(&tab).await);
    tab.close();
    let (status, _) = alice
        .http
        .post(
            "/api/v1/me/password",
            json!({"current_password": "correct horse", "new_password": "a new password 1"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, setup) = alice
        .http
        .post(
            "/api/v1/me/two-factor",
            json!({"password": "a new password 1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let secret = totp_rs::Secret::try_from_base32(setup["secret"].as_str().unwrap()).unwrap();
    let code = totp_rs::Builder::new()
        .with_secret(secret)
        .build_noncompliant()
        .generate_current()
        .to_string();
    let (status, _) = alice
        .http
        .post("/api/v1/me/two-factor/confirm", json!({"code": code}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let back = reconnect(&server.url, &alice, Some(&pid), json!(offset)).await;
    assert_eq!(back.pid.as_deref(), Some(pid.as_str()), "recovered");
    let replayed: Vec<Heard> = heard(&back)
        .await
        .into_iter()
        .filter(|h| h.name != "presence")
        .collect();
    let got: Vec<(&str, &Value)> = replayed
        .iter()
        .map(|h| (h.name.as_str(), &h.data["what"]))
        .collect();
    assert_eq!(
        got,
        [
            ("account:changed", &json!("password")),
            ("account:changed", &json!("two_factor"))
        ]
    );
    let first: i64 = offset.parse().unwrap();
    let offsets: Vec<i64> = replayed
        .iter()
        .map(|h| h.offset.as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(offsets, [first + 1, first + 2]);
    server.stop().await;
}
