//! The Socket.IO handshake: credentials are checked before the namespace accepts the socket.

use std::sync::Arc;

use entity::user;
use serde::Deserialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};

use super::events;
use super::notify::{legacy_room, session_room, user_room};
use crate::app::App;
use crate::auth::{self, Credential};
use crate::domain::messaging;
use crate::http::extract::ClientAddr;
use crate::metrics::Metrics;

/// The authenticated user of a socket, stored in its extensions by the handshake (in an
/// [`Arc`], since every event takes a copy of it).
#[derive(Debug, Clone)]
pub struct SocketUser {
    pub user: user::Model,
    pub session_id: Option<String>,
    /// Whether the socket hears the legacy Flask-Messaging events too (the default).
    pub legacy: bool,
}

/// Why a handshake was refused; the client sees CONNECT_ERROR `{"message": "unauthorized"}`.
#[derive(Debug)]
pub struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unauthorized")
    }
}

impl std::error::Error for Unauthorized {}

#[derive(Deserialize)]
/// The Socket.IO CONNECT payload: `{"token": "...", "legacy": false}`, both optional.
pub struct AuthPayload {
    pub token: Option<String>,
    /// `false`: a native client, which wants no legacy events (`W_newmsg`, `<thread_id>`, ...).
    pub legacy: Option<bool>,
}

/// Connect middleware: token in the CONNECT payload, else Authorization header or cookie.
///
/// socketioxide sends CONNECT as soon as the middleware returns and only then spawns the connect
/// handler, so a client may emit before that handler has run. Everything an event needs (its
/// handlers, the rooms that logout and notifications use) is therefore set up here.
pub async fn authenticate<A: Adapter>(
    s: SocketRef<A>,
    TryData(payload): TryData<AuthPayload>,
    State(app): State<App>,
) -> Result<(), Unauthorized> {
    let me = check(&s, payload.ok(), &app).await?;
    s.join(user_room(me.user.id));
    if let Some(sid) = &me.session_id {
        s.join(session_room(sid));
    }
    if me.legacy {
        s.join(legacy_room(me.user.id));
    }
    events::register(&s);
    s.on_disconnect(on_disconnect::<A>);
    app.metrics
        .sockets_connected
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    app.notifier.socket_opened(s.ns(), me.legacy);
    tracing::debug!(username = %me.user.username, ns = s.ns(), "socket connected");
    if app
        .presence
        .connected(me.user.id, me.session_id.as_deref())
        .await
    {
        // The user came online: their correspondents hear it without holding up the handshake.
        let (app, user) = (app.clone(), me.user.clone());
        tokio::spawn(async move { announce(&app, &user, true).await });
    }
    s.extensions.insert(Arc::new(me));
    Ok(())
}

/// Connect middleware of `/admin`: the same credentials, and the account must be an admin.
/// Like [`authenticate`], it joins the socket's rooms before CONNECT is sent.
pub async fn authenticate_admin<A: Adapter>(
    s: SocketRef<A>,
    TryData(payload): TryData<AuthPayload>,
    State(app): State<App>,
) -> Result<(), Unauthorized> {
    let me = check(&s, payload.ok(), &app).await?;
    if !me.user.is_admin {
        Metrics::inc(&app.metrics.sockets_refused);
        return Err(Unauthorized);
    }
    super::admin::admit(&s, &app, me.session_id.as_deref());
    s.extensions.insert(Arc::new(me));
    Ok(())
}

async fn check<A: Adapter>(
    s: &SocketRef<A>,
    payload: Option<AuthPayload>,
    app: &App,
) -> Result<SocketUser, Unauthorized> {
    let refuse = || {
        Metrics::inc(&app.metrics.sockets_refused);
        Unauthorized
    };
    let headers = &s.req_parts().headers;
    let legacy = payload.as_ref().and_then(|p| p.legacy).unwrap_or(true);
    let credential = match payload.and_then(|p| p.token) {
        Some(token) => Credential::Token(token),
        None => auth::credential_from_headers(headers).ok_or_else(refuse)?,
    };
    if let Credential::Basic { username, .. } = &credential {
        let ip = ClientAddr::of(s.req_parts(), app.config.trust_proxy);
        app.check_login_limits(ip, username).map_err(|_| refuse())?;
    }
    let principal = match app.authenticate(&credential).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            if let Credential::Basic { username, .. } = &credential {
                app.record_login_failure(username);
            }
            return Err(refuse());
        }
        Err(e) => {
            tracing::error!(error = %e, "handshake authentication failed");
            return Err(refuse());
        }
    };
    // Cross-site WebSocket hijacking: a cookie sent by a page of a foreign origin.
    if principal.via_cookie && !app.origins.allows(headers) {
        return Err(refuse());
    }
    Ok(SocketUser {
        user: principal.user,
        session_id: principal.session_id,
        legacy,
    })
}

/// The connect handler of every namespace: its middleware already set the socket up.
pub async fn on_connect() {}

async fn on_disconnect<A: Adapter>(s: SocketRef<A>, State(app): State<App>) {
    let Some(me) = s.extensions.get::<Arc<SocketUser>>() else {
        return;
    };
    app.metrics
        .sockets_connected
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    app.notifier.socket_closed(s.ns(), me.legacy);
    if app
        .presence
        .disconnected(me.user.id, me.session_id.as_deref())
        .await
    {
        announce(&app, &me.user, false).await;
    }
}

/// Tells the users who share a thread with `user` that they came or went.
pub async fn announce(app: &App, user: &user::Model, online: bool) {
    match messaging::correspondents(&app.db.conn, user.id).await {
        Ok(watchers) => {
            app.notifier
                .presence(&user.username, online, &watchers)
                .await
        }
        Err(e) => tracing::warn!(error = %e, "presence lookup failed"),
    }
}
