//! `GET /ws`: Piratchat's lobby, a plain WebSocket. Credentials are checked before the
//! upgrade; the frames are read and written here, and joining, speaking and leaving are the
//! service's.

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
use super::extract::ClientAddr;
use crate::service::auth::{self, Credential, PIRATCHAT_COOKIE, Presented};
use crate::service::lobby::LobbyFrame;
use crate::service::{App, Identity, ServiceError};

pub fn router() -> Router<App> {
    Router::new().route("/ws", get(lobby))
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
async fn lobby(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let credential = match auth::credential_from_headers(&headers) {
        Some(credential @ (Credential::Token(_) | Credential::Basic { .. })) => credential,
        _ => auth::cookie_value(&headers, PIRATCHAT_COOKIE)
            .or_else(|| auth::cookie_value(&headers, auth::SESSION_COOKIE))
            .map(Credential::Cookie)
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
    app.admit_connection(&who)?;
    // A lobby message is at most 300 characters: 16 KiB holds any legal frame, escapes and all,
    // and a larger one is refused before it is read whole.
    Ok(ws
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| run_lobby(app, who, socket)))
}

async fn run_lobby(app: App, who: Identity, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<LobbyFrame>(256);
    let id = app.lobby_join(&who, tx.clone());
    let budget = app.limits.budget();
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
        if writer.is_finished() {
            break;
        }
    }
    writer.abort();
    app.lobby_leave(id);
}
