//! Infrastructure failing under Missive: a lost disconnect, PostgreSQL cutting connections,
//! the process killed with SIGKILL. Nothing acknowledged is lost, and service heals by itself.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Backend, Http, TestServer, WAIT};
use missive_client::{ConnectOptions, Socket};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// A socket whose session row disappears without a disconnect reaching its node (a lost
/// publish, a row deleted by hand) is closed by the node's own revalidation.
#[tokio::test]
async fn a_lost_disconnect_still_closes_the_socket_within_10_seconds() {
    let srv = TestServer::start(Backend::Sqlite).await.unwrap();
    let ann = srv.user("ann").await;
    let tab = ann.tab().await;
    srv.server
        .app
        .db
        .conn
        .execute_unprepared("DELETE FROM sessions")
        .await
        .unwrap();
    tab.expect_disconnect(Duration::from_secs(10))
        .await
        .unwrap();
    srv.stop().await;
}

/// `/healthz` names what it checked.
#[tokio::test]
async fn health_names_the_database() {
    let srv = TestServer::start(Backend::Sqlite).await.unwrap();
    let (status, body) = srv.http().get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok", "database": "ok"}));
    srv.stop().await;
}

/// Sends `n` replies with client_ids through `tab`, retrying a send answered `unavailable`
/// with the same client_id; returns the client_ids acknowledged.
async fn send_acknowledged(tab: &Socket, thread_id: &str, prefix: &str, n: usize) -> Vec<String> {
    let mut acked = Vec::new();
    for i in 0..n {
        let client_id = format!("{prefix}-{i}");
        for attempt in 0.. {
            let ack = tab
                .emit_with_ack(
                    "message:send",
                    &json!({"thread_id": thread_id, "body": format!("m {i}"), "client_id": client_id}),
                    Duration::from_secs(20),
                )
                .await
                .expect("every send is answered");
            if ack["status"] == true {
                acked.push(client_id.clone());
                break;
            }
            assert_eq!(ack["code"], "unavailable", "{ack}");
            assert!(attempt < 50, "still unavailable after 50 tries");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    acked
}

/// PostgreSQL terminates every connection of the server three times while messages are sent:
/// each send is answered (stored, or `unavailable` and retried), and afterwards every
/// acknowledged message is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_cut_under_load_lose_nothing() {
    let name = format!("missive_faults_{}", missive::ids::random_hex::<4>());
    let Some(srv) = TestServer::start_with(Backend::Postgres, |c| {
        c.send_rate = 0;
        c.event_rate = 0;
        c.user_event_rate = 0;
        c.database_url = format!("{}?application_name={name}", c.database_url);
    })
    .await
    else {
        return;
    };
    let ann = srv.user("ann").await;
    srv.user("bob").await;
    let thread = ann.send_new("bob", "cut", "first").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tab = ann.native_tab().await;
    let killer = async {
        let admin = sea_orm::Database::connect("postgres://postgres@127.0.0.1:5432/test")
            .await
            .unwrap();
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            admin
                .execute_unprepared(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE application_name = '{name}'"
                ))
                .await
                .unwrap();
        }
    };
    let (acked, ()) = tokio::join!(send_acknowledged(&tab, &thread, "cut", 300), killer);
    let stored = stored_client_ids(&ann.http, &thread).await;
    for id in &acked {
        assert_eq!(
            stored.iter().filter(|s| *s == id).count(),
            1,
            "{id} stored once"
        );
    }
    assert_eq!(acked.len(), 300);
    srv.stop().await;
}

/// The client_ids of a thread's messages, read back page by page.
async fn stored_client_ids(http: &Http, thread: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let path = match &before {
            Some(url) => format!("/api/v1/threads/{thread}/messages?limit=100&before={url}"),
            None => format!("/api/v1/threads/{thread}/messages?limit=100"),
        };
        let (status, page) = http.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let messages = page["messages"].as_array().unwrap().clone();
        before = messages
            .first()
            .map(|m| m["url"].as_str().unwrap().to_owned());
        bodies.extend(
            messages
                .iter()
                .map(|m| m["body"].as_str().unwrap().to_owned()),
        );
        if page["has_more"] != true {
            break;
        }
    }
    // Bodies are "m <i>", one per client_id "<prefix>-<i>" of the thread's single sender.
    bodies
        .into_iter()
        .filter_map(|b| b.strip_prefix("m ").map(|i| format!("cut-{i}")))
        .collect()
}

/// A Missive process on a SQLite file.
struct Process {
    child: Child,
    url: String,
}

impl Process {
    async fn start(db: &std::path::Path) -> Process {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_missive"));
        cmd.env(
            "MISSIVE_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", db.display()),
        )
        .env("MISSIVE_LOGIN_RATE", "1000")
        .env("MISSIVE_SEND_RATE", "0");
        let (child, url) = common::spawn_missive(cmd).await;
        Process { child, url }
    }

    async fn kill_9(mut self) {
        self.child.start_kill().expect("SIGKILL");
        let _ = self.child.wait().await;
    }
}

/// Three rounds of SIGKILL while several tabs send: after each restart on the same SQLite
/// file, every message acknowledged before the kill is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("missive.db");
    let mut acked: HashSet<String> = HashSet::new();
    let mut thread: Option<String> = None;
    for round in 0..3 {
        let node = Process::start(&db).await;
        let http = Http::new(&node.url);
        if round == 0 {
            for name in ["ann", "bob"] {
                http.post(
                    "/api/v1/auth/register",
                    json!({"username": name, "password": "correct horse"}),
                )
                .await;
            }
        }
        let ann = http.login("ann", "correct horse").await;
        // Everything acknowledged in earlier rounds survived the kill.
        if let Some(thread) = &thread {
            let (status, page) = ann
                .http
                .get(&format!("/api/v1/threads/{thread}/messages?limit=100"))
                .await;
            assert_eq!(status, StatusCode::OK);
            let stored = all_bodies(&ann.http, thread, &page).await;
            let missing: Vec<&String> = acked.iter().filter(|b| !stored.contains(*b)).collect();
            assert!(missing.is_empty(), "round {round}: lost {missing:?}");
        } else {
            thread = Some(
                ann.send_new("bob", "kill", "first").await["thread_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let thread_id = thread.clone().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut senders = Vec::new();
        for lane in 0..4 {
            let tab = Socket::connect(
                &node.url,
                ConnectOptions::namespace("/messages").auth(json!({"token": ann.token})),
            )
            .await
            .expect("a tab connects");
            let (tx, thread_id) = (tx.clone(), thread_id.clone());
            senders.push(tokio::spawn(async move {
                for i in 0.. {
                    let body = format!("r{round} l{lane} m{i}");
                    let ack = tab
                        .emit_with_ack(
                            "message:send",
                            &json!({"thread_id": thread_id, "body": body, "client_id": body}),
                            WAIT,
                        )
                        .await;
                    match ack {
                        Ok(ack) if ack["status"] == true => {
                            let _ = tx.send(body);
                        }
                        _ => return,
                    }
                }
            }));
        }
        drop(tx);
        tokio::time::sleep(Duration::from_millis(700 + 300 * round)).await;
        node.kill_9().await;
        for s in senders {
            let _ = s.await;
        }
        while let Ok(body) = rx.try_recv() {
            acked.insert(body);
        }
        assert!(!acked.is_empty());
    }
    let node = Process::start(&db).await;
    let ann = Http::new(&node.url).login("ann", "correct horse").await;
    let thread = thread.unwrap();
    let (_, page) = ann
        .http
        .get(&format!("/api/v1/threads/{thread}/messages?limit=100"))
        .await;
    let stored = all_bodies(&ann.http, &thread, &page).await;
    let missing: Vec<&String> = acked.iter().filter(|b| !stored.contains(*b)).collect();
    assert!(missing.is_empty(), "lost {missing:?}");
    eprintln!("{} acknowledged messages, all stored", acked.len());
    node.kill_9().await;
}

/// Every body of a thread, from its newest page `first` back.
async fn all_bodies(http: &Http, thread: &str, first: &Value) -> HashSet<String> {
    let mut bodies = HashSet::new();
    let mut page = first.clone();
    loop {
        let messages = page["messages"].as_array().unwrap().clone();
        bodies.extend(
            messages
                .iter()
                .map(|m| m["body"].as_str().unwrap().to_owned()),
        );
        let Some(oldest) = messages.first() else {
            break;
        };
        if page["has_more"] != true {
            break;
        }
        let url = oldest["url"].as_str().unwrap();
        let (status, next) = http
            .get(&format!(
                "/api/v1/threads/{thread}/messages?limit=100&before={url}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        page = next;
    }
    bodies
}

/// A lobby connection whose client vanished without closing (a half-open connection) is
/// closed once a ping goes unanswered: it no longer keeps its user in the lobby.
#[tokio::test]
async fn a_silent_lobby_connection_is_closed_after_an_unanswered_ping() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.ping_interval = Duration::from_millis(300);
        c.ping_timeout = Duration::from_millis(300);
    })
    .await
    .unwrap();
    let connect = |token: String| {
        let mut req = format!("{}/ws", srv.url.replace("http", "ws"))
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    let (ann, bob) = (srv.user("ann").await, srv.user("bob").await);
    // Ann's client never reads again, so it never answers a ping.
    let (_silent, _) = connect(ann.token.clone()).await.unwrap();
    let (mut listener, _) = connect(bob.token.clone()).await.unwrap();
    let left = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match listener.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if v == json!({"event": "leave", "username": "ann"}) {
                        return;
                    }
                }
                Some(Ok(_)) => continue,
                other => panic!("the listener's connection ended: {other:?}"),
            }
        }
    })
    .await;
    assert!(left.is_ok(), "ann's silent connection stayed in the lobby");
    srv.stop().await;
}

/// A graceful shutdown answers the sends in flight, closes every socket (its client
/// reconnects elsewhere) and stops accepting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_answers_sends_in_flight_then_closes_sockets() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.send_rate = 0;
        c.event_rate = 0;
        c.user_event_rate = 0;
        c.events_in_flight = 1000;
    })
    .await
    .unwrap();
    let ann = srv.user("ann").await;
    srv.user("bob").await;
    let thread = ann.send_new("bob", "bye", "first").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tab = ann.native_tab().await;
    let addr = srv.server.addr;
    let frames: Vec<String> = (0..200)
        .map(|i| {
            json!(["message:send", {"thread_id": thread, "body": format!("m {i}")}]).to_string()
        })
        .collect();
    let sends = futures_util::future::join_all(frames.iter().map(|f| tab.call(f, WAIT)));
    let stop = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        srv.stop().await;
    };
    let (acks, ()) = tokio::join!(sends, stop);
    // Each send was answered as stored, or not at all (the socket closed before it was read):
    // never refused half-way.
    for ack in acks.into_iter().flatten() {
        assert_eq!(ack["status"], true, "{ack}");
    }
    tab.expect_disconnect(WAIT).await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
