//! Piratchat's key accounts, cookie sessions and `/ws` lobby; the `/admin` namespace.

mod common;

use std::time::Duration;

use common::{Backend, Http, TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use missive_client::{ConnectError, ConnectOptions, Socket};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

on_every_backend!(key_accounts_register_log_in_and_use_the_native_api);

/// Registers a key user and logs in; returns their browser and key.
async fn key_user(srv: &TestServer, name: &str) -> (Http, String) {
    let http = srv.http();
    let (status, body) = http.post("/api/register", json!({"username": name})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["key"].as_str().unwrap().to_owned();
    let (status, body) = http.post("/api/login", json!({"key": key})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (http, key)
}

/// Logs in with `key` afresh and returns the `session=...` cookie of that new session.
async fn key_session_cookie(srv: &TestServer, key: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{}/api/login", srv.url))
        .json(&json!({"key": key}))
        .send()
        .await
        .unwrap();
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn lobby(srv: &TestServer, key: &str) -> Ws {
    // A fresh login gives this connection its own session cookie.
    let cookie = key_session_cookie(srv, key).await;
    let mut req = format!("{}/ws", srv.url.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .expect("lobby connects")
        .0
}

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

async fn key_accounts_register_log_in_and_use_the_native_api(backend: Backend) {
    let Some(srv) = TestServer::start(backend).await else {
        return;
    };
    let (http, key) = key_user(&srv, "Pirate1").await;
    assert_eq!(key.len(), 64, "256-bit keys");
    let (status, me) = http.get("/api/user/@me").await;
    assert_eq!(
        (status, me),
        (StatusCode::OK, json!({"username": "pirate1"}))
    );
    // The same account works on the native API through the `session` cookie.
    let (status, me) = http.get("/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "pirate1");
    srv.user("native").await;
    let (status, _) = http
        .post(
            "/api/v1/messages",
            json!({"recipient": "native", "subject": "ahoy", "body": "arr"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // ...and on Socket.IO, with the same cookie.
    let cookie = key_session_cookie(&srv, &key).await;
    assert!(cookie.starts_with("session="), "{cookie}");
    let tab = Socket::connect(
        &srv.url,
        ConnectOptions::namespace("/messages").header("cookie", &cookie),
    )
    .await
    .expect("a key user's socket connects");
    let ack = tab
        .emit_with_ack(
            "message:send",
            &json!({"recipient": "native", "subject": "by socket", "body": "yo ho"}),
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(ack["status"], true, "{ack}");

    // Bad input.
    let anon = srv.http();
    for (body, want) in [
        (json!({"username": "bad name"}), StatusCode::BAD_REQUEST),
        (json!({"username": "x".repeat(33)}), StatusCode::BAD_REQUEST),
        (json!({"username": "under_score"}), StatusCode::BAD_REQUEST),
        (json!({"username": "PIRATE1"}), StatusCode::CONFLICT),
        (json!({"username": "native"}), StatusCode::CONFLICT),
        (
            json!({"username": "ok", "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!(["ok"]), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (status, res) = anon.post("/api/register", body.clone()).await;
        assert_eq!(status, want, "{body} -> {res}");
    }
    let res = anon
        .client
        .post(format!("{}/api/register", srv.url))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        anon.post("/api/login", json!({"key": "0".repeat(64)}))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        anon.post("/api/login", json!({"key": key, "x": 1})).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        anon.get("/api/online").await.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no cookie"
    );
    let forged = anon
        .send(
            anon.client
                .get(format!("{}/api/online", srv.url))
                .header("cookie", "session=forged"),
        )
        .await;
    assert_eq!(forged.0, StatusCode::UNAUTHORIZED);

    // Logout ends the session.
    let (status, _) = http.get("/api/logout").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        http.get("/api/user/@me").await.0,
        StatusCode::UNPROCESSABLE_ENTITY,
        "cookie cleared"
    );
    srv.stop().await;
}

#[tokio::test]
async fn the_lobby_relays_messages_acks_and_comings_and_goings() {
    let srv = TestServer::start(Backend::Sqlite).await.unwrap();
    let (_, anne_key) = key_user(&srv, "anne").await;
    let (bob_http, bob_key) = key_user(&srv, "bob").await;
    let mut anne = lobby(&srv, &anne_key).await;
    let mut bob = lobby(&srv, &bob_key).await;
    assert_eq!(
        next_json(&mut anne).await,
        json!({"event": "join", "username": "bob"})
    );
    let (_, online) = bob_http.get("/api/online").await;
    assert_eq!(online, json!({"online_clients": ["anne", "bob"]}));

    // A second tab of bob's: no second join, and it hears messages too.
    let mut bob2 = lobby(&srv, &bob_key).await;
    anne.send(Message::text(r#"{"message": "hello all"}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut anne).await, json!({"status": true}));
    assert_eq!(
        next_json(&mut bob).await,
        json!({"message": "hello all", "author": "anne"})
    );
    assert_eq!(
        next_json(&mut bob2).await,
        json!({"message": "hello all", "author": "anne"})
    );

    let long = json!({"message": "x".repeat(301)}).to_string();
    bob.send(Message::text(long)).await.unwrap();
    let ack = next_json(&mut bob).await;
    assert_eq!(
        (ack["status"].clone(), ack["code"].clone()),
        (json!(false), json!("message_too_long"))
    );
    for bad in ["not json", r#"{"msg": "hi"}"#, r#"{"message": 5}"#, "[]"] {
        bob.send(Message::text(bad)).await.unwrap();
        let ack = next_json(&mut bob).await;
        assert_eq!(ack["code"], "invalid_payload", "{bad} -> {ack}");
    }
    bob.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(next_json(&mut bob).await["code"], "invalid_payload");
    // Still open after all that.
    bob.send(Message::text(r#"{"message": "still here"}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut bob).await, json!({"status": true}));
    assert_eq!(
        next_json(&mut anne).await,
        json!({"message": "still here", "author": "bob"})
    );

    // Leaving is per user: only when bob's last tab closes.
    bob.close(None).await.unwrap();
    bob2.send(Message::text(r#"{"message": "tab two"}"#))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut anne).await,
        json!({"message": "tab two", "author": "bob"})
    );
    bob2.close(None).await.unwrap();
    assert_eq!(
        next_json(&mut anne).await,
        json!({"event": "leave", "username": "bob"})
    );

    // Without a session there is no lobby.
    let refused =
        tokio_tungstenite::connect_async(format!("{}/ws", srv.url.replace("http", "ws"))).await;
    assert!(refused.is_err());
    srv.stop().await;
}

#[tokio::test]
async fn idle_key_sessions_expire_and_leave_the_lobby() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| c.session_idle = Duration::from_secs(1))
        .await
        .unwrap();
    let (http, key) = key_user(&srv, "sleepy").await;
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(http.get("/api/user/@me").await.0, StatusCode::UNAUTHORIZED);
    // A connected lobby keeps its session alive.
    let (_, watcher_key) = key_user(&srv, "watcher").await;
    let mut watcher = lobby(&srv, &watcher_key).await;
    let mut awake = lobby(&srv, &key).await;
    assert_eq!(
        next_json(&mut watcher).await,
        json!({"event": "join", "username": "sleepy"})
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    awake
        .send(Message::text(r#"{"message": "still awake"}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut awake).await, json!({"status": true}));
    srv.stop().await;
}

#[tokio::test]
async fn the_admin_namespace_streams_to_admins_only() {
    let srv = TestServer::start(Backend::Sqlite).await.unwrap();
    let admin = srv.user("root").await;
    let plain = srv.user("plain").await;
    missive::domain::accounts::set_admin(&srv.server.app.db.conn, "root", true)
        .await
        .unwrap();

    for opts in [
        ConnectOptions::namespace("/admin"),
        ConnectOptions::namespace("/admin").auth(json!({"token": plain.token})),
        ConnectOptions::namespace("/admin")
            .header("authorization", "Basic cGxhaW46Y29ycmVjdCBob3JzZQ=="),
    ] {
        match Socket::connect(&srv.url, opts).await {
            Err(ConnectError::Refused(v)) => assert_eq!(v, json!({"message": "unauthorized"})),
            Err(e) => panic!("{e}"),
            Ok(s) => panic!("non-admin connected to /admin: {}", s.sid),
        }
    }
    let watch = Socket::connect(
        &srv.url,
        ConnectOptions::namespace("/admin").auth(json!({"token": admin.token})),
    )
    .await
    .expect("admin connects");
    plain.send_new("root", "load", "one").await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(watch.expect("stats", Duration::from_secs(3)).await.unwrap());
    }
    for s in &seen {
        assert!(s["connections"].as_i64().unwrap() >= 1, "{s}");
        assert!(s["sessions"].as_u64().unwrap() >= 2, "{s}");
        assert!(s["db_latency_ms"].as_f64().unwrap() >= 0.0, "{s}");
        assert!(s["messages_per_second"].is_number() && s["timestamp"].is_string());
    }
    // Basic works for admins too (dashboards).
    let basic = ConnectOptions::namespace("/admin")
        .header("authorization", "Basic cm9vdDpjb3JyZWN0IGhvcnNl");
    Socket::connect(&srv.url, basic)
        .await
        .expect("admin by Basic");
    srv.stop().await;
}

/// The lobby's status answer to a handshake with Basic credentials (101 once upgraded).
async fn lobby_with_basic(srv: &TestServer, username: &str, password: &str) -> u16 {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut req = format!("{}/ws", srv.url.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Basic {basic}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((mut ws, response)) => {
            let _ = ws.close(None).await;
            response.status().as_u16()
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("the lobby handshake failed: {e}"),
    }
}

/// Guessing a password through the `/ws` lobby spends the same per-username budget as the
/// HTTP login: once it is used up, by either path, both answer 429, even to the right password.
#[tokio::test]
async fn password_guesses_on_the_lobby_share_the_login_limits() {
    let srv = TestServer::start_with(Backend::Sqlite, |c| c.login_failures = 3)
        .await
        .unwrap();
    srv.user("lee").await;
    assert_eq!(lobby_with_basic(&srv, "lee", "correct horse").await, 101);
    for _ in 0..2 {
        assert_eq!(lobby_with_basic(&srv, "lee", "wrong password").await, 401);
    }
    let (status, _) = srv
        .http()
        .post(
            "/api/v1/auth/login",
            json!({"username": "lee", "password": "wrong password"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(lobby_with_basic(&srv, "lee", "correct horse").await, 429);
    let (status, body) = srv
        .http()
        .post(
            "/api/v1/auth/login",
            json!({"username": "lee", "password": "correct horse"}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    srv.stop().await;
}
