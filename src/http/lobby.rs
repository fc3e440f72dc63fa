//! `GET /ws`: Piratchat's lobby, a plain WebSocket. Credentials are checked before the
//! upgrade; the frames are read and written here, and joining, speaking and leaving are the
//! service's.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::access_log::Trail;
use super::error::{ApiError, ApiResult};
use super::extract::ClientAddr;
use crate::service::auth::{self, Credential, Presented};
use crate::service::limits::ConnectionSlot;
use crate::service::{App, Identity, ServiceError};

pub fn router() -> utoipa_axum::router::OpenApiRouter<App> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(lobby))
}

/// Largest lobby frame read, in bytes.
const MAX_FRAME: usize = 16 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LobbyMessage {
    message: String,
}

/// A bearer token or Basic in the Authorization header, else a session cookie (422 without
/// one, as Piratchat answers); a cookie must come from an allowed Origin.
#[utoipa::path(get, path = "/ws", tag = "piratchat",
    description = "Piratchat's lobby, a plain WebSocket: send `{\"message\": \"...\"}`, \
        everyone else receives `{message, author}`; acks `{status: true}` or \
        `{status: false, code}`; `{event: join|leave, username}` as people come and go.",
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 101, description = "Switching to the WebSocket protocol")))]
async fn lobby(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    trail: Trail,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let credential = match auth::credential_from_headers(&headers) {
        Some(credential @ (Credential::Token(_) | Credential::Basic { .. })) => credential,
        _ => auth::piratchat_session(&headers)
            .ok_or_else(|| ApiError::InvalidPayload("session cookie required".into()))?,
    };
    let presented = Presented {
        credential,
        headers: &headers,
        client: ip,
        guarded: true,
    };
    let who = app.authenticate(presented).await.map_err(|e| match e {
        ServiceError::Unauthorized => ApiError::Unauthorized { challenge: false },
        other => other.into(),
    })?;
    trail.authenticated(who.id());
    // Counted now, before the upgrade is awaited (the cap held only after it did not hold).
    let slot = app.admit_connection(&who)?;
    // A lobby message is at most 300 characters: 16 KiB holds any legal frame, escapes and all,
    // and a larger one is refused before it is read whole.
    Ok(ws
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| run_lobby(app, who, slot, socket)))
}

async fn run_lobby(app: App, who: Identity, _slot: ConnectionSlot, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(256);
    let closed = CancellationToken::new();
    let id = app.lobby_join(&who, tx.clone(), closed.clone());
    let budget = app.limits.budget();
    let (interval, timeout) = (app.config.ping_interval, app.config.ping_timeout);
    let writer = tokio::spawn({
        let closed = closed.clone();
        async move {
            let mut ping =
                tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            loop {
                let frame = tokio::select! {
                    biased;
                    () = closed.cancelled() => break,
                    text = rx.recv() => match text {
                        Some(text) => Message::text(text),
                        None => break,
                    },
                    _ = ping.tick() => Message::Ping(Default::default()),
                };
                // A peer that stopped reading cannot hold this task: the close ends the send.
                tokio::select! {
                    sent = sink.send(frame) => if sent.is_err() { break },
                    () = closed.cancelled() => break,
                }
            }
            let _ =
                tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(None))).await;
        }
    });
    let ack = |v: Value| {
        let _ = tx.try_send(v.to_string());
    };
    // Any frame from the client (a pong included) proves it is there; a half-open connection
    // is closed once a ping has gone unanswered for `timeout`.
    let mut deadline = tokio::time::Instant::now() + interval + timeout;
    loop {
        let frame = tokio::select! {
            f = stream.next() => f,
            () = closed.cancelled() => None,
            () = tokio::time::sleep_until(deadline) => None,
        };
        let Some(Ok(frame)) = frame else { break };
        deadline = tokio::time::Instant::now() + interval + timeout;
        // Every frame spends the connection's budget; past it, nothing is read into the lobby.
        let _permit = match app.limits.admit_event(who.id(), &budget) {
            Ok(permit) => permit,
            Err(e) => {
                ack(json!({ "status": false, "code": e.code(), "message": e.to_string() }));
                continue;
            }
        };
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
            Ok(m) => match app.lobby_say(&who, id, &m.message) {
                Ok(()) => ack(json!({ "status": true })),
                Err(e) => {
                    ack(json!({ "status": false, "code": e.code(), "message": e.to_string() }))
                }
            },
        }
    }
    closed.cancel();
    let _ = writer.await;
    app.lobby_leave(id);
}
