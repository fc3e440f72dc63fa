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
    let me = Arc::new(me);
    s.extensions.insert(me.clone());
    // Last, with nothing left to await: socketioxide runs this middleware to its end and the
    // socket lives at least that long, so whatever was counted above is always undone.
    s.extensions.insert(Counted::new(
        &app,
        Some(Listener {
            ns: s.ns().to_owned(),
            me,
        }),
    ));
    Ok(())
}

/// What the handshake counted for one socket (the socket gauge and, on the messaging
/// namespaces, the notifier's listeners and the user's presence), undone when socketioxide
/// drops the socket, however it goes. Its disconnect handler would not do: socketioxide runs
/// it only for sockets that joined their namespace, which they do after the handshake; a
/// client that left while its credentials were being checked was dropped without it, and
/// its user stayed online for good.
pub struct Counted {
    app: App,
    listener: Option<Listener>,
}

/// A socket of a messaging namespace, as the notifier and presence counted it.
struct Listener {
    ns: String,
    me: Arc<SocketUser>,
}

impl Counted {
    /// Counts the socket; the extensions hold the returned `Arc` (they hand out clones), and
    /// the count is undone when the socket drops the last of them.
    fn new(app: &App, listener: Option<Listener>) -> Arc<Counted> {
        app.metrics
            .sockets_connected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Arc::new(Counted {
            app: app.clone(),
            listener,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let app = &self.app;
        app.metrics
            .sockets_connected
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let Some(Listener { ns, me }) = self.listener.take() else {
            return;
        };
        app.notifier.socket_closed(&ns, me.legacy);
        // Presence may ask Redis: that part runs as a task (sockets are dropped on the
        // runtime's threads; at shutdown there may be none left to run it).
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let app = app.clone();
        runtime.spawn(async move {
            if app
                .presence
                .disconnected(me.user.id, me.session_id.as_deref())
                .await
            {
                announce(&app, &me.user, false).await;
            }
        });
    }
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
    super::admin::admit(&s, me.session_id.as_deref());
    s.extensions.insert(Arc::new(me));
    s.extensions.insert(Counted::new(&app, None));
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
