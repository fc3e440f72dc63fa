//! Accounts people can trust (DESIGN.md, "Account security"), on SQLite and PostgreSQL: their
//! sessions and devices, a new password, an e-mail address and password resets through a
//! local SMTP server (`common::smtp`, which checks what it receives as a mail server does),
//! two-factor, their own security log, export and deletion, and operators disabling accounts.
//! Each names the OWASP ASVS 5.0 requirement it holds.

mod common;

use std::time::Duration;

use base64::Engine;
use common::smtp::SmtpSink;
use common::{Backend, Http, TestServer, User, WAIT};
use missive::Config;
use missive_client::{ConnectOptions, Socket};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_every_backend!(
    users_see_their_sessions_and_end_one_or_all_others,
    a_new_password_ends_the_other_sessions_and_basic_sockets,
    an_address_is_verified_by_its_link_and_a_reset_link_mailed_to_it,
    reset_links_expire_and_work_once,
    password_resets_do_not_tell_who_exists,
    two_factor_needs_a_code_that_works_once,
    two_factor_codes_are_limited_like_passwords,
    the_security_log_records_every_attempt,
    an_export_holds_the_users_threads,
    a_deleted_account_leaves_its_messages_from_a_deleted_user,
    operators_disable_enable_and_log_out_accounts,
    a_busy_mail_server_is_tried_again,
);

const PASSWORD: &str = "correct horse";
const CHROME: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/126.0.0.0 Safari/537.36";
const FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// A server that mails through a local SMTP sink, and the sink.
async fn start(
    backend: Backend,
    tweak: impl FnOnce(&mut Config),
) -> Option<(TestServer, SmtpSink)> {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let srv = TestServer::start_with(backend, |c| {
        c.smtp_url = Some(url);
        c.mail_from = "Missive <missive@example.test>".into();
        c.public_url = Some("https://chat.example.test".into());
        tweak(c);
    })
    .await?;
    Some((srv, sink))
}

/// Logs `name` in again from a new browser with the user agent `agent`.
async fn login_from(srv: &TestServer, name: &str, password: &str, agent: &str) -> User {
    let http = Http::new(&srv.url);
    let req = http
        .client
        .post(format!("{}/api/v1/auth/login", srv.url))
        .header("user-agent", agent)
        .json(&json!({"username": name, "password": password}));
    let (status, body) = http.send(req).await;
    assert_eq!(status, StatusCode::OK, "login {name}: {body}");
    User {
        name: name.to_owned(),
        http,
        token: body["token"].as_str().unwrap().to_owned(),
        websocket_id: body["user"]["websocket_id"].as_str().unwrap().to_owned(),
    }
}

async fn login_status(
    srv: &TestServer,
    name: &str,
    password: &str,
    code: Option<&str>,
) -> (StatusCode, Value) {
    let mut body = json!({"username": name, "password": password});
    if let Some(code) = code {
        body["code"] = json!(code);
    }
    srv.http().post("/api/v1/auth/login", body).await
}

async fn call(
    user: &User,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let req = user
        .http
        .client
        .request(method, format!("{}/api/v1{path}", user.http.base))
        .json(&body);
    user.http.send(req).await
}

fn basic(name: &str, password: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    format!("Basic {b}")
}

async fn basic_socket(srv: &TestServer, name: &str, password: &str) -> Socket {
    Socket::connect(
        &srv.url,
        ConnectOptions::namespace("/messages").header("authorization", &basic(name, password)),
    )
    .await
    .expect("a Basic socket connects")
}

/// The socket hears `session:ended {reason}`, then is disconnected.
async fn ended(tab: &Socket, reason: &str) {
    let heard = tab
        .expect("session:ended", WAIT)
        .await
        .expect("session:ended");
    assert_eq!(heard["reason"], reason);
    tab.expect_disconnect(WAIT).await.expect("disconnected");
}

/// The socket hears `account:changed {what}` (after any others).
async fn changed(tab: &Socket, what: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let heard = tab
            .expect("account:changed", left)
            .await
            .expect("account:changed");
        if heard["what"] == what {
            return;
        }
    }
}

/// The TOTP code of `secret`, `steps` steps of 30 s from now.
fn totp(secret: &str, steps: i64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).unwrap();
    let totp = totp_rs::Builder::new()
        .with_secret(secret)
        .build_noncompliant();
    let at = chrono::Utc::now().timestamp() + steps * 30;
    totp.generate(at as u64).to_string()
}

/// Kinds in `user`'s security log, newest first.
async fn log_kinds(user: &User) -> Vec<String> {
    let (status, body) = user.http.get("/api/v1/me/security-events").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// ASVS 7.5.2: users see their sessions (device, coarse address) and end any of them.
async fn users_see_their_sessions_and_end_one_or_all_others(backend: Backend) {
    let Some((srv, _sink)) = start(backend, |_| {}).await else {
        return;
    };
    srv.user("ann").await;
    let laptop = login_from(&srv, "ann", PASSWORD, CHROME).await;
    let phone = login_from(&srv, "ann", PASSWORD, FIREFOX).await;
    let phone_tab = phone.tab().await;
    let (status, body) = laptop.http.get("/api/v1/sessions").await;
    assert_eq!(status, StatusCode::OK);
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 3, "{body}");
    let mine: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["device"], "Chrome on Linux");
    assert_eq!(mine[0]["address"], "127.0.0.0/24");
    let firefox = sessions
        .iter()
        .find(|s| s["device"] == "Firefox on Windows 10")
        .expect("the phone's session");
    // Nobody else's session can be ended, nor told to exist.
    let eve = srv.user("eve").await;
    let path = format!("/sessions/{}", firefox["id"].as_str().unwrap());
    let (status, _) = call(&eve, reqwest::Method::DELETE, &path, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = laptop.http.delete(&format!("/api/v1{path}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    ended(&phone_tab, "ended_elsewhere").await;
    assert_eq!(
        phone.http.get("/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    // "Log out everywhere else" keeps this one.
    let other = login_from(&srv, "ann", PASSWORD, FIREFOX).await;
    let other_tab = other.tab().await;
    let (status, _) = laptop
        .http
        .post("/api/v1/auth/logout-others", json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    ended(&other_tab, "ended_elsewhere").await;
    let (_, body) = laptop.http.get("/api/v1/sessions").await;
    assert_eq!(body["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(laptop.http.get("/api/v1/me").await.0, StatusCode::OK);
    srv.stop().await;
}

/// ASVS 7.4.3 and 6.3.6: a new password ends every other session and every Basic socket, this
/// session stays, the user's tabs hear why, and the verified address is told.
async fn a_new_password_ends_the_other_sessions_and_basic_sockets(backend: Backend) {
    let Some((srv, sink)) = start(backend, |_| {}).await else {
        return;
    };
    let ann = srv.user("ann").await;
    let here = ann.tab().await;
    let elsewhere = login_from(&srv, "ann", PASSWORD, FIREFOX).await;
    let there = elsewhere.tab().await;
    let by_basic = basic_socket(&srv, "ann", PASSWORD).await;
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let (status, body) = ann
        .http
        .post("/api/v1/me/password", change("wrong one", "another pass 1"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_credentials"))
    );
    let (status, body) = ann
        .http
        .post("/api/v1/me/password", change(PASSWORD, "short"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["fields"]["new_password"].is_array(), "{body}");
    // An address to be told at.
    verify_address(&ann, &sink, "ann@example.org").await;
    let (status, _) = ann
        .http
        .post("/api/v1/me/password", change(PASSWORD, "another pass 1"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    ended(&there, "password_changed").await;
    by_basic
        .expect_disconnect(Duration::from_secs(8))
        .await
        .expect("the Basic socket closed");
    changed(&here, "password").await;
    assert_eq!(
        ann.http.get("/api/v1/me").await.0,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        elsewhere.http.get("/api/v1/me").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_status(&srv, "ann", PASSWORD, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_status(&srv, "ann", "another pass 1", None).await.0,
        StatusCode::OK
    );
    let notice = sink.wait_for("ann@example.org", 2).await;
    assert_eq!(notice.subject, "Your Missive password was changed");
    assert!(
        log_kinds(&ann)
            .await
            .contains(&"password_changed".to_owned())
    );
    // A Piratchat key account has no password to change.
    let http = srv.http();
    let (status, body) = http
        .post("/api/register", json!({"username": "keyed"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["key"].as_str().unwrap();
    let (status, _) = http.post("/api/login", json!({"key": key})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = http
        .post("/api/v1/me/password", change("", "another pass 1"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("no_password"))
    );
    let (_, me) = http.get("/api/v1/me").await;
    assert_eq!(me["has_password"], false);
    srv.stop().await;
}

/// Sets `address` for `user` and uses the link mailed to it.
async fn verify_address(user: &User, sink: &SmtpSink, address: &str) {
    let before = sink.mails_to(address).len();
    let (status, body) = call(
        user,
        reqwest::Method::PUT,
        "/me/email",
        json!({"email": address, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mail = sink.wait_for(address, before + 1).await;
    let (_, token) = mail
        .link("#/verify-email?token=")
        .expect("a verification link");
    let (status, body) = Http::new(&user.http.base)
        .post("/api/v1/auth/verify-email", json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

/// An address is the account's once its link is used; a reset link goes to it, built from
/// MISSIVE_PUBLIC_URL whatever Host the request named, and ends every session when used.
async fn an_address_is_verified_by_its_link_and_a_reset_link_mailed_to_it(backend: Backend) {
    let Some((srv, sink)) = start(backend, |_| {}).await else {
        return;
    };
    let ann = srv.user("ann").await;
    let tab = ann.tab().await;
    let (status, body) = call(
        &ann,
        reqwest::Method::PUT,
        "/me/email",
        json!({"email": "not an address", "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("invalid_email"))
    );
    let (status, _) = call(
        &ann,
        reqwest::Method::PUT,
        "/me/email",
        json!({"email": "Ann@Example.org", "password": "wrong"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A forged Host changes nothing in the link.
    let req = ann
        .http
        .client
        .put(format!("{}/api/v1/me/email", srv.url))
        .header("host", "evil.example")
        .json(&json!({"email": "Ann@Example.org", "password": PASSWORD}));
    assert_eq!(ann.http.send(req).await.0, StatusCode::ACCEPTED);
    assert_eq!(
        tab.expect("account:changed", WAIT).await.unwrap()["what"],
        "email"
    );
    let mail = sink.wait_for("ann@example.org", 1).await;
    assert_eq!(mail.subject, "Confirm your e-mail address for Missive");
    assert_eq!(mail.from, "missive@example.test");
    let (link, token) = mail.link("#/verify-email?token=").expect("a link");
    assert!(
        link.starts_with("https://chat.example.test/#/verify-email?token="),
        "{link}"
    );
    let (_, me) = ann.http.get("/api/v1/me").await;
    assert_eq!(
        (me["email"].clone(), me["email_verified"].clone()),
        (json!("ann@example.org"), json!(false))
    );
    let anyone = srv.http();
    assert_eq!(
        anyone
            .post("/api/v1/auth/verify-email", json!({"token": token}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = anyone
        .post("/api/v1/auth/verify-email", json!({"token": token}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_token"))
    );
    let (_, me) = ann.http.get("/api/v1/me").await;
    assert_eq!(me["email_verified"], true);

    // A reset by address, then by name: each mails a link; the newer one replaces the older.
    let mut mails = Vec::new();
    for (login, n) in [("ANN@example.org", 2), ("Ann", 3)] {
        assert_eq!(
            anyone
                .post("/api/v1/auth/password-reset", json!({"login": login}))
                .await
                .0,
            StatusCode::ACCEPTED
        );
        mails.push(sink.wait_for("ann@example.org", n).await);
    }
    let (first, second) = (&mails[0], &mails[1]);
    assert_eq!(second.subject, "Reset your Missive password");
    let (link, token) = second
        .link("#/reset-password?token=")
        .expect("a reset link");
    assert!(
        link.starts_with("https://chat.example.test/#/reset-password?token="),
        "{link}"
    );
    let (_, old_token) = first.link("#/reset-password?token=").unwrap();
    let confirm = |token: &str, password: &str| json!({"token": token, "new_password": password});
    let (status, _) = anyone
        .post(
            "/api/v1/auth/password-reset/confirm",
            confirm(&old_token, "a reset pass 1"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a newer link replaced it");
    let (status, _) = anyone
        .post(
            "/api/v1/auth/password-reset/confirm",
            confirm(&token, "short"),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a bad password spends no link"
    );
    let (status, _) = anyone
        .post(
            "/api/v1/auth/password-reset/confirm",
            confirm(&token, "a reset pass 1"),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    ended(&tab, "password_changed").await;
    assert_eq!(ann.http.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login_status(&srv, "ann", PASSWORD, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let again = srv.http().login("ann", "a reset pass 1").await;
    assert!(
        log_kinds(&again)
            .await
            .contains(&"password_reset".to_owned())
    );
    srv.stop().await;
}

/// A reset link dies after 30 minutes and after its first use; without mail configured,
/// resets answer 503 `mail_unavailable`.
async fn reset_links_expire_and_work_once(backend: Backend) {
    let Some((srv, sink)) = start(backend, |_| {}).await else {
        return;
    };
    let ann = srv.user("ann").await;
    verify_address(&ann, &sink, "ann@example.org").await;
    let anyone = srv.http();
    anyone
        .post("/api/v1/auth/password-reset", json!({"login": "ann"}))
        .await;
    let (_, token) = sink
        .wait_for("ann@example.org", 2)
        .await
        .link("reset-password")
        .unwrap();
    // Thirty minutes pass.
    let db = sea_orm::Database::connect(&srv.database_url).await.unwrap();
    use sea_orm::ConnectionTrait;
    db.execute_unprepared("UPDATE account_tokens SET expires_at = expires_at - 1800000001")
        .await
        .unwrap();
    let confirm = |token: &str| json!({"token": token, "new_password": "a reset pass 1"});
    let (status, body) = anyone
        .post("/api/v1/auth/password-reset/confirm", confirm(&token))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_token"))
    );
    anyone
        .post("/api/v1/auth/password-reset", json!({"login": "ann"}))
        .await;
    let (_, token) = sink
        .wait_for("ann@example.org", 3)
        .await
        .link("reset-password")
        .unwrap();
    assert_eq!(
        anyone
            .post("/api/v1/auth/password-reset/confirm", confirm(&token))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        anyone
            .post("/api/v1/auth/password-reset/confirm", confirm(&token))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (status, _) = anyone
        .post("/api/v1/auth/password-reset/confirm", confirm("made-up"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    srv.stop().await;

    let Some(plain) = TestServer::start(backend).await else {
        return;
    };
    let (status, body) = plain
        .http()
        .post("/api/v1/auth/password-reset", json!({"login": "ann"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("mail_unavailable"))
    );
    plain.stop().await;
}

/// The same answer, in alike time, whether a reset names an account with a verified address,
/// one without, an unknown name or an unknown address: only the mailbox learns. A mailbox is
/// mailed at most 5 times an hour, whoever asks.
async fn password_resets_do_not_tell_who_exists(backend: Backend) {
    let Some((srv, sink)) = start(backend, |_| {}).await else {
        return;
    };
    let ann = srv.user("ann").await;
    srv.user("bob").await;
    verify_address(&ann, &sink, "ann@example.org").await;
    let anyone = srv.http();
    let logins = [
        "ann",
        "bob",
        "nobody",
        "ann@example.org",
        "nobody@example.org",
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); logins.len()];
    for _ in 0..5 {
        for (i, login) in logins.iter().enumerate() {
            let t = std::time::Instant::now();
            let (status, body) = anyone
                .post("/api/v1/auth/password-reset", json!({"login": login}))
                .await;
            times[i].push(t.elapsed());
            assert_eq!(
                (status, body.clone()),
                (StatusCode::ACCEPTED, json!("")),
                "{login}"
            );
        }
    }
    // Ten reset mails were asked for ann: the verification and four more got through.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        sink.mails_to("ann@example.org").len(),
        5,
        "{:?}",
        sink.mails()
    );
    assert_eq!(sink.mails().len(), 5, "nobody else was mailed");
    let medians: Vec<Duration> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            t[2]
        })
        .collect();
    let (fastest, slowest) = (medians.iter().min().unwrap(), medians.iter().max().unwrap());
    assert!(
        *slowest < *fastest * 4 + Duration::from_millis(50),
        "answers took {medians:?}"
    );
    srv.stop().await;
}

/// ASVS 6.3.2: two-factor is set up with a secret and a first code, then every login needs a
/// code; a code works once, a recovery code too; Basic is refused; turning it off needs the
/// password and a code.
async fn two_factor_needs_a_code_that_works_once(backend: Backend) {
    let Some((srv, _sink)) = start(backend, |_| {}).await else {
        return;
    };
    let ann = srv.user("ann").await;
    let tab = ann.tab().await;
    let (status, _) = ann
        .http
        .post("/api/v1/me/two-factor", json!({"password": "wrong"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, setup) = ann
        .http
        .post("/api/v1/me/two-factor", json!({"password": PASSWORD}))
        .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Missive:ann?secret="),
        "{uri}"
    );
    assert!(uri.contains(&secret));
    let wrong = if totp(&secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, _) = ann
        .http
        .post("/api/v1/me/two-factor/confirm", json!({"code": wrong}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, me) = ann.http.get("/api/v1/me").await;
    assert_eq!(me["two_factor"], false, "not on before a right code");
    let (status, body) = ann
        .http
        .post(
            "/api/v1/me/two-factor/confirm",
            json!({"code": totp(&secret, 0)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let codes: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    assert_eq!(
        tab.expect("account:changed", WAIT).await.unwrap()["what"],
        "two_factor"
    );
    let (_, me) = ann.http.get("/api/v1/me").await;
    assert_eq!(me["two_factor"], true);

    let (status, body) = login_status(&srv, "ann", PASSWORD, None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("code_required"))
    );
    let (status, body) = login_status(&srv, "ann", "wrong password", None).await;
    assert_eq!(
        body["error"]["code"], "invalid_credentials",
        "the code is asked only after the password: {status}"
    );
    // The next step's code (clocks drift one step either way) logs in once.
    let next = totp(&secret, 1);
    assert_eq!(
        login_status(&srv, "ann", PASSWORD, Some(&next)).await.0,
        StatusCode::OK
    );
    let (status, body) = login_status(&srv, "ann", PASSWORD, Some(&next)).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_credentials")),
        "a code works once"
    );
    let (status, _) = login_status(&srv, "ann", PASSWORD, Some(&totp(&secret, 0))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "nor an older one");
    assert_eq!(
        login_status(&srv, "ann", PASSWORD, Some(&codes[0])).await.0,
        StatusCode::OK
    );
    assert_eq!(
        login_status(&srv, "ann", PASSWORD, Some(&codes[0])).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Scripts use tokens: Basic is refused for this account.
    let req = srv
        .http()
        .client
        .get(format!("{}/api/v1/me", srv.url))
        .header("authorization", basic("ann", PASSWORD));
    let (status, body) = srv.http().send(req).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("code_required"))
    );

    // New recovery codes need the password and a code; the old ones die.
    let (status, body) = call(
        &ann,
        reqwest::Method::POST,
        "/me/two-factor/recovery-codes",
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("code_required"))
    );
    let (status, body) = call(
        &ann,
        reqwest::Method::POST,
        "/me/two-factor/recovery-codes",
        json!({"password": PASSWORD, "code": codes[1]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let fresh: Vec<String> = body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        login_status(&srv, "ann", PASSWORD, Some(&codes[2])).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Off: the password and a code.
    let (status, _) = call(
        &ann,
        reqwest::Method::DELETE,
        "/me/two-factor",
        json!({"password": PASSWORD, "code": "aaaaa-aaaaa"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &ann,
        reqwest::Method::DELETE,
        "/me/two-factor",
        json!({"password": PASSWORD, "code": fresh[0]}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        tab.expect("account:changed", WAIT).await.unwrap()["what"],
        "two_factor"
    );
    assert_eq!(
        login_status(&srv, "ann", PASSWORD, None).await.0,
        StatusCode::OK
    );
    let kinds = log_kinds(&ann).await;
    for kind in ["two_factor_on", "two_factor_off", "login_failed"] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} in {kinds:?}");
    }
    srv.stop().await;
}

/// Wrong codes spend the name's login budget, as wrong passwords do.
async fn two_factor_codes_are_limited_like_passwords(backend: Backend) {
    let Some((srv, _sink)) = start(backend, |c| c.login_failures = 4).await else {
        return;
    };
    let ann = srv.user("ann").await;
    let (_, setup) = ann
        .http
        .post("/api/v1/me/two-factor", json!({"password": PASSWORD}))
        .await;
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let (status, _) = ann
        .http
        .post(
            "/api/v1/me/two-factor/confirm",
            json!({"code": totp(&secret, 0)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut statuses = Vec::new();
    for i in 0..6 {
        let guess = format!("{:06}", 123_450 + i);
        statuses.push(login_status(&srv, "ann", PASSWORD, Some(&guess)).await.0);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    srv.stop().await;
}

/// ASVS 16.3.1: each account's log records logins, failed ones, and each change, with a
/// coarse address and the device; its owner and admins read it, nobody else.
async fn the_security_log_records_every_attempt(backend: Backend) {
    let Some((srv, _sink)) = start(backend, |_| {}).await else {
        return;
    };
    let ann = srv.user("ann").await;
    assert_eq!(
        login_status(&srv, "ann", "a wrong guess", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let laptop = login_from(&srv, "ann", PASSWORD, CHROME).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let events = loop {
        let (_, body) = laptop.http.get("/api/v1/me/security-events").await;
        let events = body["events"].as_array().unwrap().clone();
        if events.iter().any(|e| e["kind"] == "login_failed")
            || tokio::time::Instant::now() > deadline
        {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "login", "{kinds:?}");
    assert_eq!(events[0]["device"], "Chrome on Linux");
    assert_eq!(events[0]["address"], "127.0.0.0/24");
    assert!(kinds.contains(&"login_failed"), "{kinds:?}");
    assert!(events[0]["at"].as_str().unwrap().ends_with('Z'));
    // Nobody else reads it but admins.
    let eve = srv.user("eve").await;
    assert_eq!(
        eve.http
            .get("/api/v1/admin/users/ann/security-events")
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    make_admin(&srv, "eve").await;
    let eve = srv.http().login("eve", PASSWORD).await;
    let (status, body) = eve
        .http
        .get("/api/v1/admin/users/ann/security-events")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["events"].as_array().unwrap().len(), events.len());
    let _ = ann;
    srv.stop().await;
}

async fn make_admin(srv: &TestServer, name: &str) {
    let db = sea_orm::Database::connect(&srv.database_url).await.unwrap();
    missive::domain::accounts::set_admin(&db, name, true)
        .await
        .unwrap();
}

/// Leaving with one's data: the password, then one JSON document of the account, its threads
/// and their messages, as a download.
async fn an_export_holds_the_users_threads(backend: Backend) {
    let Some((srv, _sink)) = start(backend, |c| c.send_rate = 0).await else {
        return;
    };
    let ann = srv.user("ann").await;
    srv.user("bob").await;
    let sent = ann.send_new("bob", "Plans", "first").await;
    let thread = sent["thread_id"].as_str().unwrap().to_owned();
    for i in 0..120 {
        ann.reply(&thread, &format!("reply {i}")).await;
    }
    ann.send_new("ann", "Notes to self", "remember").await;
    let (status, _) = ann
        .http
        .post("/api/v1/me/export", json!({"password": "wrong"}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let res = ann
        .http
        .client
        .post(format!("{}/api/v1/me/export", srv.url))
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"missive-ann.json\""
    );
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["user"]["username"], "ann");
    let threads = doc["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 2);
    let plans = threads
        .iter()
        .find(|t| t["thread"]["subject"] == "Plans")
        .unwrap();
    let bodies: Vec<&str> = plans["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(bodies.len(), 121);
    assert_eq!(bodies[0], "first");
    assert_eq!(bodies[120], "reply 119");
    srv.stop().await;
}

/// Deleting an account (with the password, and a code when two-factor is on) ends its
/// sessions; its messages stay in the others' threads from "deleted user"; its name stays
/// reserved and finds no one.
async fn a_deleted_account_leaves_its_messages_from_a_deleted_user(backend: Backend) {
    let Some((srv, _sink)) = start(backend, |_| {}).await else {
        return;
    };
    let ann = srv.user("ann").await;
    let bob = srv.user("bob").await;
    let sent = bob.send_new("ann", "Hello", "hi ann").await;
    let thread = sent["thread_id"].as_str().unwrap().to_owned();
    ann.reply(&thread, "hi bob").await;
    let bob_tab = bob.tab().await;
    let (status, _) = call(
        &bob,
        reqwest::Method::DELETE,
        "/me",
        json!({"password": "wrong"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &bob,
        reqwest::Method::DELETE,
        "/me",
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    ended(&bob_tab, "deleted").await;
    assert_eq!(bob.http.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login_status(&srv, "bob", PASSWORD, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (_, page) = ann
        .http
        .get(&format!("/api/v1/threads/{thread}/messages"))
        .await;
    let senders: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["sender"].as_str())
        .collect();
    assert_eq!(senders, ["deleted user", "ann"]);
    // Replying still works, and shows them the same way.
    let reply = ann.reply(&thread, "are you there?").await;
    assert_eq!(reply["recipient"], "deleted user");
    let (status, _) = srv
        .http()
        .post(
            "/api/v1/auth/register",
            json!({"username": "bob", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the name stays reserved");
    assert_eq!(
        ann.http.get("/api/v1/users/bob").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, body) = ann
        .http
        .post(
            "/api/v1/messages",
            json!({"recipient": "bob", "subject": "s", "body": "b"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("unknown_recipient"))
    );

    // With two-factor on, a code too.
    let (_, setup) = ann
        .http
        .post("/api/v1/me/two-factor", json!({"password": PASSWORD}))
        .await;
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let (_, codes) = ann
        .http
        .post(
            "/api/v1/me/two-factor/confirm",
            json!({"code": totp(&secret, 0)}),
        )
        .await;
    let (status, body) = call(
        &ann,
        reqwest::Method::DELETE,
        "/me",
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("code_required"))
    );
    let code = codes["recovery_codes"][0].as_str().unwrap();
    let (status, _) = call(
        &ann,
        reqwest::Method::DELETE,
        "/me",
        json!({"password": PASSWORD, "code": code}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    srv.stop().await;
}

/// ASVS 7.4.2: disabling an account ends its sessions and sockets, Basic ones included, and
/// refuses its logins (`account_disabled` only after a right password); enabling lets it back.
/// Over HTTP for admins, and with `missive user` for operators.
async fn operators_disable_enable_and_log_out_accounts(backend: Backend) {
    let Some((srv, _sink)) = start(backend, |_| {}).await else {
        return;
    };
    let root = srv.user("root").await;
    let carol = srv.user("carol").await;
    assert_eq!(
        root.http
            .post("/api/v1/admin/users/carol/disable", json!({}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    make_admin(&srv, "root").await;
    let root = srv.http().login("root", PASSWORD).await;
    let (status, body) = root.http.get("/api/v1/admin/users?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["users"][0]["username"], "carol");
    assert_eq!(body["next"], "carol");
    let (_, body) = root.http.get("/api/v1/admin/users?after=carol").await;
    assert_eq!(body["users"][0]["username"], "root");
    assert_eq!(body["users"][0]["is_admin"], true);

    let tab = carol.tab().await;
    let by_basic = basic_socket(&srv, "carol", PASSWORD).await;
    assert_eq!(
        root.http
            .post("/api/v1/admin/users/carol/disable", json!({}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    ended(&tab, "disabled").await;
    by_basic
        .expect_disconnect(Duration::from_secs(8))
        .await
        .expect("the Basic socket closed");
    let (status, body) = login_status(&srv, "carol", PASSWORD, None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("account_disabled"))
    );
    let (_, body) = login_status(&srv, "carol", "wrong guess", None).await;
    assert_eq!(
        body["error"]["code"], "invalid_credentials",
        "nothing told without the password"
    );
    let req = srv
        .http()
        .client
        .get(format!("{}/api/v1/me", srv.url))
        .header("authorization", basic("carol", PASSWORD));
    assert_eq!(
        srv.http().send(req).await.1["error"]["code"],
        "account_disabled"
    );
    let (_, body) = root.http.get("/api/v1/admin/users").await;
    assert_eq!(body["users"][0]["disabled"], true);
    assert_eq!(
        root.http
            .post("/api/v1/admin/users/carol/enable", json!({}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let carol = srv.http().login("carol", PASSWORD).await;
    let tab = carol.tab().await;
    assert_eq!(
        root.http
            .post("/api/v1/admin/users/carol/logout", json!({}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    ended(&tab, "ended_elsewhere").await;
    assert_eq!(
        root.http
            .post("/api/v1/admin/users/nobody/disable", json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // The same from the command line, in another process: each node closes what it ended.
    let carol = srv.http().login("carol", PASSWORD).await;
    let tab = carol.tab().await;
    let missive = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_missive"));
        cmd.arg("user")
            .args(args)
            .env("MISSIVE_DATABASE_URL", &srv.database_url);
        cmd.output()
    };
    let out = missive(&["disable", "carol"]).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tab.expect_disconnect(Duration::from_secs(8))
        .await
        .expect("closed by the node");
    assert_eq!(
        login_status(&srv, "carol", PASSWORD, None).await.1["error"]["code"],
        "account_disabled"
    );
    let out = missive(&["list"]).await.unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("carol") && l.contains("yes")),
        "{listing}"
    );
    assert!(
        missive(&["enable", "carol"])
            .await
            .unwrap()
            .status
            .success()
    );
    let carol = srv.http().login("carol", PASSWORD).await;
    let tab = carol.tab().await;
    assert!(
        missive(&["logout", "carol"])
            .await
            .unwrap()
            .status
            .success()
    );
    tab.expect_disconnect(Duration::from_secs(8))
        .await
        .expect("closed by the node");
    srv.stop().await;
}

/// A mail server that answers 451 (busy) gets the mail again a moment later; `/metrics` counts
/// the retry and the send.
async fn a_busy_mail_server_is_tried_again(backend: Backend) {
    let Some((srv, sink)) = start(backend, |_| {}).await else {
        return;
    };
    let ann = srv.user("ann").await;
    sink.refuse_next(1);
    let (status, _) = call(
        &ann,
        reqwest::Method::PUT,
        "/me/email",
        json!({"email": "ann@example.org", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mail = sink.wait_for("ann@example.org", 1).await;
    assert!(mail.link("#/verify-email?token=").is_some());
    assert_eq!(sink.refused(), 1);
    let metrics = reqwest::get(format!("{}/metrics", srv.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "missive_mails_total{outcome=\"retried\"} 1",
        "missive_mails_total{outcome=\"sent\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    srv.stop().await;
}
