//! Piratchat's API, at its original paths: key accounts, cookie sessions and the `/ws` lobby.

use axum::Json;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::auth::{clear_cookie, session_cookie, with_cookie};
use super::error::{ApiError, ApiResult};
use super::extract::ClientAddr;
use crate::app::App;
use crate::auth::{self, Credential, PIRATCHAT_COOKIE, Principal};
use crate::domain::{DomainError, accounts, piratchat, sessions};
use crate::lobby::LobbyFrame;
use crate::metrics::Metrics;

/// Longest lobby message, in characters.
const MAX_LOBBY_MESSAGE: usize = 300;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    username: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LobbyMessage {
    message: String,
}

/// Piratchat answers 422 to any body that is not exactly the expected object.
fn exact_body<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    super::extract::parse_json(body).map_err(|e| match e {
        ApiError::MalformedJson(m) => ApiError::InvalidPayload(m),
        other => other,
    })
}

pub async fn register(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    body: Bytes,
) -> ApiResult<Response> {
    let req: Register = exact_body(&body)?;
    app.check_registration_limit(ip)?;
    let (user, key) = match piratchat::register(&app.db.conn, &req.username).await {
        Err(DomainError::Invalid(p)) => {
            let message = p.first().map(|p| p.message.clone()).unwrap_or_default();
            return Err(ApiError::Status(
                StatusCode::BAD_REQUEST,
                "invalid_username",
                message,
            ));
        }
        other => other?,
    };
    tracing::info!(username = %user.username, "registered a key account");
    Ok((StatusCode::CREATED, Json(json!({ "key": key }))).into_response())
}

pub async fn login(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let req: Login = exact_body(&body)?;
    app.check_address_limit(&ip.to_string())?;
    let Some(user) = piratchat::find_by_key(&app.db.conn, &req.key).await? else {
        Metrics::inc(&app.metrics.login_failures);
        return Err(ApiError::Status(
            StatusCode::UNAUTHORIZED,
            "invalid_key",
            "unknown key".into(),
        ));
    };
    let session = sessions::create(&app.db.conn, user.id, app.config.session_idle).await?;
    let token = app.tokens.issue(&user.username, &session.id);
    Metrics::inc(&app.metrics.logins);
    let cookie = session_cookie(&app, &headers, PIRATCHAT_COOKIE, &token);
    Ok(with_cookie(
        Json(json!({ "username": user.username })).into_response(),
        &cookie,
    ))
}

pub async fn logout(State(app): State<App>, headers: HeaderMap) -> ApiResult<Response> {
    if let Ok(who) = session_user(&app, &headers).await
        && let Some(sid) = &who.session_id
    {
        sessions::revoke(&app.db.conn, sid).await?;
        app.disconnect_sessions(std::slice::from_ref(sid)).await;
    }
    let cookie = clear_cookie(&app, &headers, PIRATCHAT_COOKIE);
    Ok(with_cookie(
        Json(json!({ "status": true })).into_response(),
        &cookie,
    ))
}

pub async fn online(State(app): State<App>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    session_user(&app, &headers).await?;
    Ok(Json(json!({ "online_clients": app.lobby.online() })))
}

pub async fn user(
    State(app): State<App>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let who = session_user(&app, &headers).await?;
    if name == "@me" {
        return Ok(Json(json!({ "username": who.user.username })));
    }
    let user = accounts::find_by_username(&app.db.conn, &name)
        .await?
        .ok_or(DomainError::NotFound)?;
    Ok(Json(json!({ "username": user.username })))
}

/// The caller by session cookie (Piratchat's or the native one): 422 without one, 401 if dead.
async fn session_user(app: &App, headers: &HeaderMap) -> ApiResult<Principal> {
    let token = auth::cookie_value(headers, PIRATCHAT_COOKIE)
        .or_else(|| auth::cookie_value(headers, auth::SESSION_COOKIE))
        .ok_or_else(|| ApiError::InvalidPayload("session cookie required".into()))?;
    app.authenticate(&Credential::Cookie(token))
        .await?
        .ok_or(ApiError::Unauthorized { challenge: false })
}

/// `GET /ws`: the lobby. Credentials are checked before the upgrade.
pub async fn lobby(
    State(app): State<App>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let who = match auth::credential_from_headers(&headers) {
        Some(credential @ (Credential::Token(_) | Credential::Basic { .. })) => app
            .authenticate(&credential)
            .await?
            .ok_or(ApiError::Unauthorized { challenge: false })?,
        _ => session_user(&app, &headers).await?,
    };
    if who.via_cookie && !app.origins.allows(&headers) {
        return Err(ApiError::forbidden_origin());
    }
    Ok(ws
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| run_lobby(app, who, socket)))
}

async fn run_lobby(app: App, who: Principal, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<LobbyFrame>(256);
    let username = who.user.username.clone();
    let (id, first) = app
        .lobby
        .join(who.user.id, &username, who.session_id.clone(), tx.clone());
    app.metrics
        .lobby_connected
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if first {
        app.lobby.broadcast(
            Some(id),
            &json!({ "event": "join", "username": username }).to_string(),
        );
    }
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            match frame {
                LobbyFrame::Text(text) => {
                    if sink.send(Message::text(text)).await.is_err() {
                        break;
                    }
                }
                LobbyFrame::Close => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            }
        }
    });
    let ack = |v: Value| {
        let _ = tx.try_send(LobbyFrame::Text(v.to_string()));
    };
    loop {
        let frame = tokio::select! {
            f = stream.next() => f,
            // The writer ends on Close (logout, expiry, slow consumer): stop reading too.
            _ = tx.closed() => None,
        };
        let Some(Ok(frame)) = frame else { break };
        let text = match frame {
            Message::Text(t) => t,
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Binary(_) => {
                ack(
                    json!({ "status": false, "code": "invalid_payload", "message": "send JSON text frames" }),
                );
                continue;
            }
        };
        match serde_json::from_str::<LobbyMessage>(text.as_str()) {
            Err(e) => {
                ack(json!({ "status": false, "code": "invalid_payload", "message": e.to_string() }))
            }
            Ok(m) if m.message.chars().count() > MAX_LOBBY_MESSAGE => ack(json!({
                "status": false,
                "code": "message_too_long",
                "message": format!("messages are at most {MAX_LOBBY_MESSAGE} characters"),
            })),
            Ok(m) if m.message.trim().is_empty() => {
                ack(json!({ "status": false, "code": "empty_body", "message": "message is empty" }))
            }
            Ok(m) => {
                app.lobby.broadcast(
                    Some(id),
                    &json!({ "message": m.message, "author": username }).to_string(),
                );
                ack(json!({ "status": true }));
            }
        }
        if writer.is_finished() {
            break;
        }
    }
    writer.abort();
    app.metrics
        .lobby_connected
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    if let Some(name) = app.lobby.leave(id) {
        app.lobby.broadcast(
            None,
            &json!({ "event": "leave", "username": name }).to_string(),
        );
    }
}
