//! A hostile client: every way of guessing a password is limited, a browser's stored
//! credentials cannot be used from a foreign page, every event has a budget, and nothing a
//! client sends or fails to read grows the server without bound.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::{Backend, TestServer, WAIT};
use missive_client::{ConnectError, ConnectOptions, Socket};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn basic(username: &str, password: &str) -> String {
    let pair = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Password guesses through the Socket.IO handshake's Basic header spend the same budget as
/// the HTTP login, and past it the handshake is refused with `rate_limited`.
#[tokio::test]
async fn handshake_password_guesses_are_limited_and_say_so() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| c.login_failures = 3)
        .await
        .unwrap();
    srv.user("lee").await;
    let attempt = |password: &'static str| {
        let url = srv.url.clone();
        async move {
            let opts = ConnectOptions::namespace("/messages")
                .header("authorization", &basic("lee", password));
            Socket::connect(&url, opts).await
        }
    };
    for _ in 0..3 {
        match attempt("wrong password").await {
            Err(ConnectError::Refused(v)) => assert_eq!(v["message"], "unauthorized"),
            other => panic!(
                "a wrong password connected: {:?}",
                other.map(|s| s.sid.clone())
            ),
        }
    }
    match attempt("correct horse").await {
        Err(ConnectError::Refused(v)) => assert_eq!(v["message"], "rate_limited"),
        other => panic!(
            "the fourth guess was not limited: {:?}",
            other.map(|s| s.sid.clone())
        ),
    }
    srv.stop().await;
}

/// A page of another site cannot use the Basic credentials a browser cached, nor post a
/// JSON-looking body as a form: `<form enctype="text/plain">` with `Origin: evil`.
#[tokio::test]
async fn a_foreign_form_cannot_send_with_cached_basic_credentials() {
    let srv = TestServer::start(Backend::Sqlite).await.unwrap();
    let ann = srv.user("ann").await;
    srv.user("bob").await;
    let client = reqwest::Client::new();
    let form = r#"{"recipient": "bob", "subject": "hi", "body": "from evil", "x": "="}"#;
    let res = client
        .post(format!("{}/api/v1/messages", srv.url))
        .header("authorization", basic("ann", "correct horse"))
        .header("origin", "http://evil.example")
        .header("content-type", "text/plain")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden_origin");

    // Without an Origin (a script), a body that is not declared JSON is refused too.
    let res = client
        .post(format!("{}/api/v1/messages", srv.url))
        .header("authorization", format!("Bearer {}", ann.token))
        .header("content-type", "text/plain")
        .body(r#"{"recipient": "bob", "subject": "hi", "body": "plain"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");

    // A bearer token is never attached by a browser: it is accepted from any Origin.
    let res = client
        .post(format!("{}/api/v1/messages", srv.url))
        .header("authorization", format!("Bearer {}", ann.token))
        .header("origin", "http://elsewhere.example")
        .json(&json!({"recipient": "bob", "subject": "hi", "body": "token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    // Nothing was sent but that one.
    let bob = srv.http().login("bob", "correct horse").await;
    assert_eq!(bob.unread().await["messages"], 1);

    // The handshake refuses cached Basic from a foreign page as well.
    let opts = ConnectOptions::namespace("/messages")
        .header("authorization", &basic("ann", "correct horse"))
        .header("origin", "http://evil.example");
    assert!(matches!(
        Socket::connect(&srv.url, opts).await,
        Err(ConnectError::Refused(_))
    ));
    srv.stop().await;
}

/// One socket flooding the server with 20,000 `thread:read` events does not hold up another
/// user's sends: past its budget each event is refused at once and nothing of it is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_events_does_not_slow_another_users_sends() {
    // The other user sends faster than the message limit allows: it is not what is measured.
    let srv = TestServer::start_with(Backend::Sqlite, |c| c.send_rate = 0)
        .await
        .unwrap();
    let ann = srv.user("ann").await;
    let bob = srv.user("bob").await;
    let eve = srv.user("eve").await;
    let thread = ann.send_new("eve", "flood", "hello").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ann_thread = ann.send_new("bob", "calm", "hello").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let carl = srv.user("carl").await;
    let calm_thread = carl.send_new("ann", "calm too", "hello").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let flooder = eve.native_tab().await;
    let sender_tab = bob.native_tab().await;
    let calm_tab = carl.native_tab().await;

    let flood = {
        let frame = json!(["thread:read", {"thread_id": thread}]).to_string();
        async move {
            // Refused by the budget, or never answered: a flooder that does not read its acks
            // as fast as it emits is disconnected once its queue is full.
            let mut refused = 0;
            let started = Instant::now();
            let mut pending = Vec::with_capacity(20_000);
            for _ in 0..20_000 {
                pending.push(flooder.call(&frame, Duration::from_secs(10)));
            }
            for ack in futures_util::future::join_all(pending).await {
                match ack {
                    Ok(ack) if ack["status"] == true => {}
                    Ok(ack) => {
                        assert_eq!(ack["code"], "rate_limited", "{ack}");
                        refused += 1;
                    }
                    Err(_) => refused += 1,
                }
            }
            (refused, started.elapsed())
        }
    };
    // 100 sends, densely enough that most overlap the flood (it lasts under a second); their p90.
    let sends = |label: &'static str, sender: &'static str| {
        let (tab, thread) = match sender {
            "bob" => (&sender_tab, &ann_thread),
            _ => (&calm_tab, &calm_thread),
        };
        async move {
            let mut latencies = Vec::new();
            tokio::time::sleep(Duration::from_millis(20)).await;
            for i in 0..100 {
                let started = Instant::now();
                let ack = tab
                    .emit_with_ack(
                        "message:send",
                        &json!({"thread_id": thread, "body": format!("{label} {i}")}),
                        Duration::from_secs(10),
                    )
                    .await
                    .expect("the send is answered");
                assert_eq!(ack["status"], true, "{ack}");
                latencies.push(started.elapsed());
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            latencies.sort();
            latencies[latencies.len() * 9 / 10]
        }
    };
    // The same sends without the flood first: the machine's own pace, which other processes on
    // it stretch as much as they stretch the sends during the flood. By another user, on
    // another socket: 200 sends in a row would take more than bob's event budget holds.
    let calm_p90 = sends("calm", "carl").await;
    let ((refused, flood_took), p90) = tokio::join!(flood, sends("during", "bob"));
    eprintln!(
        "flood: {refused} of 20000 refused in {flood_took:?}; the other user's send p90 {p90:?} \
         ({calm_p90:?} without the flood)"
    );
    assert!(
        refused > 15_000,
        "only {refused} flooded events were refused"
    );
    // 50 ms is the target (README, Security). The bound is against the same sends without the
    // flood: this machine's other load stretched the p99 of 100 sends to 163 ms on a fresh
    // clone's run where the flood had no part in it.
    let bound = Duration::from_millis(150).max(calm_p90 * 3);
    assert!(
        p90 < bound,
        "send p90 {p90:?} during the flood, {calm_p90:?} without it"
    );
    srv.stop().await;
}

/// Every kind of event spends the budget, and events in flight are capped per socket.
#[tokio::test]
async fn every_event_has_a_budget() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.event_rate = 5;
        c.user_event_rate = 1000;
    })
    .await
    .unwrap();
    let ann = srv.user("ann").await;
    let tab = ann.native_tab().await;
    let mut codes = Vec::new();
    for _ in 0..12 {
        let ack = tab
            .emit_with_ack("thread:leave", &json!({"thread_id": "x"}), WAIT)
            .await
            .unwrap();
        codes.push(if ack["status"] == true {
            "ok".to_owned()
        } else {
            ack["code"].as_str().unwrap_or_default().to_owned()
        });
    }
    // A burst of twice the rate, then refusals.
    assert_eq!(codes.iter().filter(|c| *c == "ok").count(), 10, "{codes:?}");
    assert_eq!(codes[10..], ["rate_limited", "rate_limited"]);
    // The socket stays usable once the bucket refills.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let ack = tab
        .emit_with_ack("thread:leave", &json!({"thread_id": "x"}), WAIT)
        .await
        .unwrap();
    assert_eq!(ack["status"], true, "{ack}");
    srv.stop().await;
}

/// One account cannot hold more than `--sockets-per-user` sockets on a node.
#[tokio::test]
async fn sockets_per_user_are_capped() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| c.sockets_per_user = 2)
        .await
        .unwrap();
    let ann = srv.user("ann").await;
    let _one = ann.tab().await;
    let _two = ann.tab().await;
    let opts = ConnectOptions::namespace("/messages").auth(json!({"token": ann.token}));
    match Socket::connect(&srv.url, opts).await {
        Err(ConnectError::Refused(v)) => assert_eq!(v["message"], "rate_limited"),
        other => panic!(
            "a third socket connected: {:?}",
            other.map(|s| s.sid.clone())
        ),
    }
    srv.stop().await;
}

/// The cap holds against connects that race each other: 200 recovering handshakes at once
/// (each reads the database before it is accepted) leave at most the cap connected. The
/// socket used to be counted after that read, and 74 of 200 got in with a cap of 64.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_connects_do_not_pass_the_socket_cap() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.sockets_per_user = 64;
        c.event_rate = 0;
        c.user_event_rate = 0;
    })
    .await
    .unwrap();
    let ann = srv.user("ann").await;
    let bob = srv.user("bob").await;
    let first = ann.native_tab().await;
    let pid = first.pid.clone().expect("a pid");
    bob.send_new("ann", "s", "hello").await;
    first.expect("message:new", WAIT).await.unwrap();
    first.close();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let attempts = (0..200).map(|_| {
        let auth = json!({"token": ann.token, "legacy": false, "pid": pid, "offset": "0"});
        Socket::connect(&srv.url, ConnectOptions::namespace("/messages").auth(auth))
    });
    let results = futures_util::future::join_all(attempts).await;
    let connected: Vec<Socket> = results.into_iter().filter_map(Result::ok).collect();
    assert!(
        connected.len() <= 64,
        "{} sockets connected with a cap of 64",
        connected.len()
    );
    assert!(connected.len() >= 60, "only {} connected", connected.len());
    srv.stop().await;
}

/// Behind a trusted proxy the client address is the right-most `X-Forwarded-For` entry: a
/// client that writes addresses of its own to the left still spends its own budget.
#[tokio::test]
async fn forged_forwarded_addresses_do_not_escape_the_address_limit() {
    let statuses = logins_through("127.0.0.1", |i| format!("10.9.{i}.1, 203.0.113.7")).await;
    assert_eq!(statuses, [401, 401, 401, 429]);
}

/// A peer that is not a listed proxy is its own address whatever `X-Forwarded-For` says:
/// writing a new address per request does not buy a new login budget (it did while every
/// peer was trusted).
#[tokio::test]
async fn forwarded_addresses_from_an_untrusted_peer_are_ignored() {
    let statuses = logins_through("10.0.0.0/8", |i| format!("203.0.113.{i}")).await;
    assert_eq!(statuses, [401, 401, 401, 429]);
}

/// The statuses of four wrong logins whose `X-Forwarded-For` is `forwarded(i)`, to a server
/// that trusts the proxies `trusted` and allows three attempts per address.
async fn logins_through(trusted: &str, forwarded: impl Fn(usize) -> String) -> Vec<u16> {
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.trusted_proxies = vec![missive::config::parse_net(trusted).unwrap()];
        c.login_rate = 3;
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..4 {
        let res = client
            .post(format!("{}/api/v1/auth/login", srv.url))
            .header("x-forwarded-for", forwarded(i))
            .json(&json!({"username": "nobody", "password": "whatever1"}))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    srv.stop().await;
    statuses
}

/// A request body that trickles in is cut off at `MISSIVE_BODY_TIMEOUT`: 408, and the
/// connection closed (it held the connection for as long as the client liked).
#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.body_timeout = Duration::from_millis(700);
    })
    .await
    .unwrap();
    let mut slow = tokio::net::TcpStream::connect(srv.server.addr)
        .await
        .unwrap();
    slow.write_all(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n{\"username\":",
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        // A byte now and then, as slowloris does: never idle long enough for a per-read
        // timeout.
        let _ = slow.write_all(b" ").await;
        match tokio::time::timeout(Duration::from_millis(200), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the body was still being read after 5 s"
        );
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    srv.stop().await;
}

/// A client that sends its headers slowly, or keeps a connection idle, is cut off.
#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.header_timeout = Duration::from_millis(500);
    })
    .await
    .unwrap();
    let mut slow = tokio::net::TcpStream::connect(srv.server.addr)
        .await
        .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
        .await
        .expect("the server closes a slow request within its header timeout");
    assert!(matches!(read, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).contains("408"));

    let mut idle = tokio::net::TcpStream::connect(srv.server.addr)
        .await
        .unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match idle.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(rest.is_ok(), "an idle keep-alive connection stayed open");
    srv.stop().await;
}

/// One address cannot hold more than `--connections-per-address` connections open.
#[tokio::test]
async fn connections_per_address_are_capped() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| c.connections_per_address = 3)
        .await
        .unwrap();
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            tokio::net::TcpStream::connect(srv.server.addr)
                .await
                .unwrap(),
        );
    }
    let mut fourth = tokio::net::TcpStream::connect(srv.server.addr)
        .await
        .unwrap();
    let _ = fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), fourth.read(&mut buf))
        .await
        .expect("the fourth connection is closed, not kept waiting");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the fourth connection was served"
    );
    // Once one closes, the address may connect again.
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _) = srv.http().get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    srv.stop().await;
}

/// Websocket frames larger than any legal event are refused before they are read whole.
#[tokio::test]
async fn oversized_frames_close_the_connection() {
    let srv = TestServer::start(Backend::Sqlite).await.unwrap();
    let ann = srv.user("ann").await;
    let tab = ann.native_tab().await;
    let huge = "x".repeat(2 * 1024 * 1024);
    let _ = tab.emit("message:send", &json!({"thread_id": "t", "body": huge}));
    tab.expect_disconnect(WAIT).await.unwrap();
    srv.stop().await;
}

/// A socket that stops reading is closed once its queue holds `--socket-buffer-bytes`: it
/// cannot grow the server's memory (it reconnects and catches up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_stops_reading_is_closed() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.socket_buffer_bytes = 64 * 1024;
        c.send_rate = 0;
    })
    .await
    .unwrap();
    let ann = srv.user("ann").await;
    let bob = srv.user("bob").await;
    let thread = ann.send_new("bob", "big", "hello").await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A websocket whose client never reads: its kernel buffer is small and stays full.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(srv.server.addr).await.unwrap();
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        srv.url.replace("http", "ws")
    );
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    use futures_util::{SinkExt, StreamExt};
    let _open = ws.next().await;
    ws.send(tokio_tungstenite::tungstenite::Message::text(format!(
        "40/messages,{}",
        json!({"token": bob.token})
    )))
    .await
    .unwrap();
    let _connected = ws.next().await;
    // Stop reading; send bob large messages until the server gives up on that socket.
    let body = "y".repeat(4000);
    let mut closed = false;
    for i in 0..3000 {
        ann.reply(&thread, &body).await;
        if i % 50 == 49 {
            let (_, who) = ann.http.get("/api/v1/users/bob").await;
            if who["online"] == false {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "the stalled socket was never closed");
    drop(ws);
    srv.stop().await;
}

/// This process's resident memory, in bytes.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A `sync` page stops at 256 KiB as well as at 500 events, and a queue's byte bound holds
/// for the packet that crosses it: 500 messages of 5,000 characters that JSON escapes six
/// times over, asked for by 32 sockets of their recipient that then stop reading, grow the
/// server by less than 64 MiB (a page was the 500 events whatever their size, and one packet
/// of any size got into a queue: 1.17 GiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_sockets_asking_for_fat_sync_pages_stay_bounded() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.send_rate = 0;
        c.event_rate = 0;
        c.user_event_rate = 0;
    })
    .await
    .unwrap();
    let ann = srv.user("ann").await;
    let bob = srv.user("bob").await;
    let body = "\u{1}".repeat(5000);
    let thread = bob.send_new("ann", "fat", &body).await["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..50 {
        futures_util::future::join_all((0..10).map(|_| bob.reply(&thread, &body))).await;
    }
    let before = resident_bytes();
    let mut paused = Vec::new();
    for _ in 0..32 {
        let url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            srv.url.replace("http", "ws")
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let _open = ws.next().await;
        let auth = json!({"token": ann.token, "legacy": false, "offsets": false});
        ws.send(Message::text(format!("40/messages,{auth}")))
            .await
            .unwrap();
        let _connected = ws.next().await;
        ws.send(Message::text(r#"42/messages,1["sync",{"since":"0"}]"#))
            .await
            .unwrap();
        // ...and never read again.
        paused.push(ws);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let grown = resident_bytes().saturating_sub(before);
    assert!(grown < 64 << 20, "the server grew by {} MiB", grown >> 20);
    // One page, read by a client that does: at most 256 KiB (and more follow).
    let tab = ann.native_tab().await;
    let page = tab
        .emit_with_ack("sync", &json!({"since": "0"}), WAIT)
        .await
        .unwrap();
    let events = page["events"].as_array().unwrap();
    assert!(!events.is_empty() && events.len() < 500, "{}", events.len());
    assert!(page.to_string().len() <= 300 * 1024);
    assert_eq!(page["more"], true);
    drop(paused);
    srv.stop().await;
}

/// `missive user demote` takes effect on the live admin dashboard of that user.
#[tokio::test]
async fn a_demoted_admin_loses_the_dashboard_at_once() {
    let srv = TestServer::start(Backend::Sqlite).await.unwrap();
    let root = srv.user("root").await;
    missive::domain::accounts::set_admin(&srv.server.app.db.conn, "root", true)
        .await
        .unwrap();
    let dashboard = Socket::connect(
        &srv.url,
        ConnectOptions::namespace("/admin").auth(json!({"token": root.token})),
    )
    .await
    .expect("an admin connects");
    dashboard.expect("stats", WAIT).await.unwrap();
    missive::domain::accounts::set_admin(&srv.server.app.db.conn, "root", false)
        .await
        .unwrap();
    dashboard
        .expect_disconnect(Duration::from_secs(3))
        .await
        .unwrap();
    srv.stop().await;
}

/// `/metrics` answers only its token when one is set.
#[tokio::test]
async fn metrics_can_be_restricted_to_a_token() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| {
        c.metrics_token = Some("scrape-me".into());
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/metrics", srv.url);
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let wrong = client.get(&url).bearer_auth("guess").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = client
        .get(&url)
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert!(right.text().await.unwrap().contains("missive_sockets"));
    srv.stop().await;
}

/// The web client is served with a Content-Security-Policy and friends.
#[tokio::test]
async fn the_web_client_is_served_with_protective_headers() {
    let srv = TestServer::start(Backend::Sqlite).await.unwrap();
    let res = reqwest::get(format!("{}/", srv.url)).await.unwrap();
    let h = res.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    srv.stop().await;
}

/// Piratchat's `GET /api/logout` cannot be triggered by another site (a link or an image).
#[tokio::test]
async fn piratchat_logout_is_refused_cross_site() {
    let srv = TestServer::start(Backend::Sqlite).await.unwrap();
    let http = srv.http();
    let (_, body) = http.post("/api/register", json!({"username": "kim"})).await;
    let key = body["key"].as_str().unwrap().to_owned();
    let (status, _) = http.post("/api/login", json!({"key": key})).await;
    assert_eq!(status, StatusCode::OK);
    let cross = http
        .client
        .get(format!("{}/api/logout", srv.url))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let (status, me) = http.get("/api/user/@me").await;
    assert_eq!(
        (status, me["username"].as_str()),
        (StatusCode::OK, Some("kim"))
    );
    let own = http
        .client
        .get(format!("{}/api/logout", srv.url))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let (status, _) = http.get("/api/user/@me").await;
    assert_ne!(status, StatusCode::OK);
    srv.stop().await;
}

/// The `/ws` lobby: a frame larger than any legal message closes the connection before it is
/// read whole, and a flood of messages is answered `rate_limited` past the budget.
#[tokio::test]
async fn the_lobby_bounds_frames_and_budgets_messages() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let srv = TestServer::start_with(Backend::Sqlite, |c| c.event_rate = 5)
        .await
        .unwrap();
    let ann = srv.user("ann").await;
    let connect = || {
        let mut req = format!("{}/ws", srv.url.replace("http", "ws"))
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", ann.token).parse().unwrap(),
        );
        tokio_tungstenite::connect_async(req)
    };
    let (mut ws, _) = connect().await.unwrap();
    let mut codes = Vec::new();
    for i in 0..12 {
        ws.send(Message::text(
            json!({"message": format!("hi {i}")}).to_string(),
        ))
        .await
        .unwrap();
        let ack: Value = loop {
            match tokio::time::timeout(WAIT, ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
            {
                Message::Text(t) => break serde_json::from_str(t.as_str()).unwrap(),
                _ => continue,
            }
        };
        codes.push(ack["code"].as_str().unwrap_or("ok").to_owned());
    }
    assert_eq!(codes.iter().filter(|c| *c == "ok").count(), 10, "{codes:?}");
    assert_eq!(codes[10..], ["rate_limited", "rate_limited"]);

    let (mut ws, _) = connect().await.unwrap();
    let big = json!({"message": "x".repeat(1024 * 1024)}).to_string();
    let _ = ws.send(Message::text(big)).await;
    let end = tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "a 1 MiB lobby frame was read");
    srv.stop().await;
}

/// Rate-limit tables stay at their capacity whatever a client makes up: 100,000 distinct
/// usernames, each tried once (the name's budget is charged before the password is checked).
#[test]
fn the_limiter_table_stays_at_its_cap_after_100000_usernames() {
    let config = missive::Config {
        limiter_capacity: 10_000,
        // One address that may try them all: every name reaches its own budget.
        login_rate: 1_000_000,
        ..missive::Config::default()
    };
    let limits = missive::service::limits::Limits::new(&config, Default::default());
    for i in 0..100_000 {
        let name = format!("guess-{i}-{}", "z".repeat(i % 200));
        let _ = limits.check_login("192.0.2.1".parse().unwrap(), &name);
    }
    // One address bucket, and the usernames' table at its cap.
    assert_eq!(limits.keys(), 1 + 10_000);
}
