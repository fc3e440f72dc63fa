//! The socket.io JavaScript clients the original app's pages load (2.x, 3.0.4, 4.x) connect to
//! `/messages` with the session cookie and receive the legacy events.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{Backend, TestServer};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat")
}

/// Whether node and the npm packages are there (installed by the README's test command).
fn node_ready() -> bool {
    let installed = compat_dir()
        .join("node_modules/socket.io-client-4")
        .exists();
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if installed && node {
        return true;
    }
    common::service_missing(
        "node with tests/compat/node_modules (npm ci)",
        "not installed",
    );
    false
}

/// Starts the JS client; returns it once it reported its connection (or the refusal line).
async fn listen(
    version: u8,
    base: &str,
    cookie: &str,
    transport: &str,
    events: &[&str],
) -> (
    tokio::process::Child,
    Value,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let mut child = Command::new("node")
        .arg(compat_dir().join("listen.mjs"))
        .args([&version.to_string(), base, "/messages", cookie, transport])
        .args(events)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("client reports within 20 s")
        .unwrap()
        .unwrap_or_default();
    (
        child,
        serde_json::from_str(&first).unwrap_or(Value::String(first)),
        lines,
    )
}

/// Waits for the JS client to exit (it does once it heard every awaited event, or after 15 s)
/// and returns whether it succeeded, with every fact it reported.
async fn heard(
    mut child: tokio::process::Child,
    mut lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> (bool, Vec<Value>) {
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    let mut facts = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        facts.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    (status.success(), facts)
}

/// The payload of the first `name` event among `facts`.
fn data(facts: &[Value], name: &str) -> Option<Value> {
    facts
        .iter()
        .find(|f| f["event"] == name)
        .map(|f| f["data"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_socket_io_client_generation_receives_the_legacy_events() {
    if !node_ready() {
        return;
    }
    let srv = TestServer::start(Backend::Sqlite).await.unwrap();
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let thread_id = alice.send_new("bob", "compat", "first").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cookie = format!("missive_session={}", bob.token);
    let newmsg = format!("{}_newmsg", bob.websocket_id);

    for version in [2u8, 3, 4] {
        for transport in ["websocket", "polling"] {
            let (child, first, lines) = listen(
                version,
                &srv.url,
                &cookie,
                transport,
                &[&newmsg, &thread_id, "message:new"],
            )
            .await;
            assert_eq!(
                first["connected"], true,
                "socket.io-client {version} over {transport}: {first}"
            );
            let sent = alice
                .reply(&thread_id, &format!("to v{version} {transport}"))
                .await;
            let (ok, heard) = heard(child, lines).await;
            assert!(
                ok,
                "socket.io-client {version} over {transport} heard {heard:?}"
            );
            // The original payload, with the thread a page can refresh without asking.
            let url = json!({"message_url": sent["url"], "thread_id": thread_id});
            assert_eq!(data(&heard, &newmsg), Some(url.clone()));
            assert_eq!(data(&heard, &thread_id), Some(url));
            assert_eq!(
                data(&heard, "message:new").unwrap()["message"]["body"],
                sent["body"]
            );
        }
    }

    // Without a cookie every generation is refused.
    for version in [2u8, 3, 4] {
        let (_child, first, _) = listen(version, &srv.url, "", "websocket", &["message:new"]).await;
        assert_eq!(
            first["connect_error"], "unauthorized",
            "socket.io-client {version}: {first}"
        );
    }
    srv.stop().await;
}

/// After the import, an original page (socket.io-client 3.0.4, `io.connect('/messages')` with
/// the cookie of its login) hears `<websocket_id>_newmsg` under the websocket_id the user had
/// in the original database, for a reply in an imported thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_original_page_of_an_imported_user_hears_its_events() {
    if !node_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/missive.db?mode=rwc", dir.path().display());
    let sample = common::flask_sample();
    let output = common::run_import(&url, None, sample.to_str().unwrap()).await;
    assert!(output.status.success(), "{output:?}");
    let srv = TestServer::start_with(Backend::Sqlite, |c| c.database_url = url.clone())
        .await
        .unwrap();
    // user7_8 and jane.doe7@example.com share thread vfdssugl in the sample.
    let original = sea_orm::Database::connect(format!("sqlite://{}?mode=ro", sample.display()))
        .await
        .unwrap();
    use sea_orm::ConnectionTrait;
    let row = original
        .query_one_raw(sea_orm::Statement::from_string(
            original.get_database_backend(),
            "SELECT websocket_id FROM users WHERE username = 'user7_8'",
        ))
        .await
        .unwrap()
        .unwrap();
    let websocket_id: String = row.try_get("", "websocket_id").unwrap();

    let bob = srv.http().login("user7_8", "password-user7_8").await;
    assert_eq!(bob.websocket_id, websocket_id);
    let jane = srv
        .http()
        .login("Jane.Doe7@example.com", "password-jane.doe7@example.com")
        .await;
    let newmsg = format!("{websocket_id}_newmsg");
    let cookie = format!("missive_session={}", bob.token);
    let (child, first, lines) =
        listen(3, &srv.url, &cookie, "websocket", &[&newmsg, "vfdssugl"]).await;
    assert_eq!(first["connected"], true, "{first}");
    let sent = jane.reply("vfdssugl", "hello after the move").await;
    let (ok, heard) = heard(child, lines).await;
    assert!(ok, "heard {heard:?}");
    // The original payload, with the thread a page can refresh without asking.
    let url = json!({"message_url": sent["url"], "thread_id": "vfdssugl"});
    assert_eq!(data(&heard, &newmsg), Some(url.clone()));
    assert_eq!(data(&heard, "vfdssugl"), Some(url));
    srv.stop().await;
}

/// A stock socket.io-client 4.x page, with no recovery code of its own, recovers after its
/// transport drops: `socket.recovered` is true and it hears every event of the gap once, in
/// order (its offsets consecutive), then live events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_io_4_page_recovers_what_it_missed() {
    use tokio::io::AsyncWriteExt;
    if !node_ready() {
        return;
    }
    let srv = TestServer::start_with(Backend::Sqlite, |c| c.send_rate = 0)
        .await
        .unwrap();
    let alice = srv.user("alice").await;
    let bob = srv.user("bob").await;
    let thread = bob.send_new("alice", "s", "hello").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut child = Command::new("node")
        .arg(compat_dir().join("recover.mjs"))
        .args([&srv.url, &format!("missive_session={}", alice.token)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Presence is state, sent after a replay without an offset: not what this test follows.
    let mut next = async || -> Value {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
                .await
                .expect("the page reports within 20 s")
                .unwrap()
                .expect("the page is running");
            let fact: Value = serde_json::from_str(&line).unwrap();
            if fact["event"] != "presence" {
                return fact;
            }
        }
    };
    let connected = next().await;
    assert_eq!(connected, json!({"connected": true, "recovered": false}));
    bob.reply(&thread, "live").await;
    for name in ["message:new", "unread"] {
        assert_eq!(next().await["event"], name);
    }

    stdin.write_all(b"drop\n").await.unwrap();
    assert!(next().await["disconnected"].is_string());
    let mut urls = Vec::new();
    for i in 0..50 {
        urls.push(bob.reply(&thread, &format!("missed {i}")).await["url"].clone());
    }
    let (status, _) = alice
        .http
        .post(
            &format!("/api/v1/threads/{thread}/read"),
            json!({"up_to": urls[9]}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let (status, _) = alice
        .http
        .delete(&format!("/api/v1/messages/{}", urls[20].as_str().unwrap()))
        .await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);

    stdin.write_all(b"reconnect\n").await.unwrap();
    assert_eq!(
        next().await,
        json!({"connected": true, "recovered": true}),
        "socket.recovered"
    );
    let mut replayed = Vec::new();
    while replayed.len() < 50 * 2 + 2 * 2 {
        replayed.push(next().await);
    }
    let offsets: Vec<i64> = replayed
        .iter()
        .map(|f| {
            let args = f["args"].as_array().unwrap();
            args.last().unwrap().as_str().unwrap().parse().unwrap()
        })
        .collect();
    assert!(
        offsets.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive: {offsets:?}"
    );
    let new: Vec<&Value> = replayed
        .iter()
        .filter(|f| f["event"] == "message:new")
        .map(|f| &f["args"][0]["message"]["url"])
        .collect();
    assert_eq!(new, urls.iter().collect::<Vec<_>>());
    let tail: Vec<&Value> = replayed[100..].iter().map(|f| &f["event"]).collect();
    assert_eq!(tail, ["thread:read", "unread", "message:deleted", "unread"]);

    let after = bob.reply(&thread, "after").await;
    let live = next().await;
    assert_eq!(live["event"], "message:new");
    assert_eq!(live["args"][0]["message"]["url"], after["url"]);
    assert_eq!(
        live["args"][1],
        json!((offsets.last().unwrap() + 1).to_string())
    );
    assert_eq!(next().await["event"], "unread");
    stdin.write_all(b"quit\n").await.unwrap();
    let _ = child.wait().await;
}
