//! The Socket.IO handshake: credentials are checked before the namespace accepts the socket.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use serde::Deserialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};
use socketioxide::handler::SharedHandlers;
use socketioxide::socket::DisconnectReason;

use super::notify::SocketIoNotifier;
use super::recovery::{self, ReplayFrom};
use super::rooms::{legacy_room, plain_room, session_room, user_room};
use super::socket_user::SocketUser;
use crate::metrics::Metrics;
use crate::service::auth::{self, Credential, Presented};
use crate::service::limits::ConnectionSlot;
use crate::service::recovery::Resume;
use crate::service::{App, ServiceError};

/// Why a handshake was refused, as the client's CONNECT_ERROR says it: `{"message": code}`,
/// `unauthorized` (no valid credential, or a cookie or Basic from a foreign Origin),
/// `rate_limited` (password guesses, or too many sockets of one user) or `unavailable` (the
/// database did not answer: try again).
#[derive(Debug)]
pub struct ConnectError(&'static str);

const UNAUTHORIZED: ConnectError = ConnectError("unauthorized");

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ConnectError {}

#[derive(Deserialize)]
/// The Socket.IO CONNECT payload: `{"token": "...", "legacy": false, "offsets": false}`, all
/// optional, and `pid` and `offset` from a socket.io client that reconnects (connection state
/// recovery).
pub struct AuthPayload {
    pub token: Option<String>,
    /// `false`: a native client, which wants no legacy events (`W_newmsg`, `<thread_id>`, ...).
    pub legacy: Option<bool>,
    /// `false`: logged events without their offset argument (a client that never recovers).
    pub offsets: Option<bool>,
    /// Read leniently: a bad one means only that the socket does not recover.
    pub pid: Option<serde_json::Value>,
    pub offset: Option<serde_json::Value>,
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
    State(notifier): State<Arc<SocketIoNotifier>>,
    handlers: Arc<SharedHandlers<A>>,
) -> Result<(), ConnectError> {
    let payload = payload.ok();
    let (pid, offset) = payload
        .as_ref()
        .map_or((None, None), |p| (p.pid.clone(), p.offset.clone()));
    let (me, slot) = check(&s, payload, &app).await?;
    // Decided before the socket joins its rooms: a recovering socket holds back what is
    // broadcast to them until the replay (on_connect) has been sent. A socket without
    // offsets does not recover (it could not say where it stood).
    if me.offsets {
        let resume = app.resume(&me.who, pid.as_ref(), offset.as_ref()).await;
        let refused = |_| {
            Metrics::inc(&app.metrics.sockets_refused);
            ConnectError("unavailable")
        };
        match resume.map_err(refused)? {
            Resume::Recovered { pid, after } => {
                s.set_recovery_pid(pid);
                s.hold_broadcasts();
                s.extensions.insert(Arc::new(ReplayFrom(after)));
            }
            Resume::Fresh { pid } => s.set_recovery_pid(pid),
            Resume::Off => {}
        }
    }
    // Counted before it joins a room: an emit skips the namespaces without sockets.
    notifier.local.opened(s.ns(), me.legacy, !me.offsets);
    // The user's logged events reach the socket through their delivery line, in the order of
    // their positions, from the one after `log_seq`; it joins their room under the line's lock,
    // so that no event is delivered between the two.
    let room = match me.offsets {
        true => user_room(me.who.id()),
        false => plain_room(me.who.id()),
    };
    notifier
        .delivery
        .opened(me.who.id(), me.who.log_seq, || s.join(room))
        .await;
    // Closed with its session, or for Basic once the account's credentials end.
    s.join(session_room(&me.who.grant()));
    if me.legacy {
        s.join(legacy_room(me.who.id()));
    }
    s.use_handlers(handlers);
    log_lifetime(&s, me.who.id());
    app.socket_opened(&me.who).await;
    let me = Arc::new(me);
    s.extensions.insert(me.clone());
    // Last, with nothing left to await: socketioxide runs this middleware to its end and the
    // socket lives at least that long, so whatever was counted above is always undone.
    s.extensions.insert(Counted::new(
        &app,
        slot,
        Some(MessagingSocket {
            notifier,
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
    /// The socket's place under the user's socket cap, taken when the handshake admitted it.
    _slot: ConnectionSlot,
    messaging: Option<MessagingSocket>,
}

/// A socket of a messaging namespace, as the notifier and presence counted it.
struct MessagingSocket {
    notifier: Arc<SocketIoNotifier>,
    ns: String,
    me: Arc<SocketUser>,
}

impl Counted {
    /// Counts the socket; the extensions hold the returned `Arc` (they hand out clones), and
    /// the count is undone when the socket drops the last of them.
    fn new(app: &App, slot: ConnectionSlot, messaging: Option<MessagingSocket>) -> Arc<Counted> {
        app.metrics
            .sockets_connected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Arc::new(Counted {
            app: app.clone(),
            _slot: slot,
            messaging,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let app = &self.app;
        app.metrics
            .sockets_connected
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        let Some(MessagingSocket { notifier, ns, me }) = self.messaging.take() else {
            return;
        };
        notifier.local.closed(&ns, me.legacy, !me.offsets);
        let user_id = me.who.id();
        // Presence may ask Redis: that part runs as a task (sockets are dropped on the
        // runtime's threads; at shutdown there may be none left to run it).
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let app = app.clone();
        runtime.spawn(async move {
            notifier.delivery.closed(user_id).await;
            app.socket_closed(&me.who).await
        });
    }
}

/// One `info` line when the socket connects, and one with the reason when it disconnects.
fn log_lifetime<A: Adapter>(s: &SocketRef<A>, user: i64) {
    tracing::info!(
        target: "missive::socket",
        sid = %s.id,
        user,
        ns = s.ns(),
        transport = <&str>::from(s.transport_type()),
        "socket connected"
    );
    s.on_disconnect(
        move |s: SocketRef<A>, reason: DisconnectReason| async move {
            tracing::info!(
                target: "missive::socket",
                sid = %s.id,
                user,
                ns = s.ns(),
                reason = disconnect_reason(reason),
                "socket disconnected"
            );
        },
    );
}

/// A disconnect's reason in a word or two.
fn disconnect_reason(reason: DisconnectReason) -> &'static str {
    use DisconnectReason::*;
    match reason {
        TransportClose => "transport_close",
        MultipleHttpPollingError => "overlapping_polls",
        PacketParsingError => "bad_packet",
        TransportError => "transport_error",
        HeartbeatTimeout => "ping_timeout",
        ClientNSDisconnect => "client_disconnect",
        ServerNSDisconnect => "server_disconnect",
        ClosingServer => "server_closing",
    }
}

/// Connect middleware of `/admin`: the same credentials, and the account must be an admin.
/// Like [`authenticate`], it joins the socket's rooms before CONNECT is sent.
pub async fn authenticate_admin<A: Adapter>(
    s: SocketRef<A>,
    TryData(payload): TryData<AuthPayload>,
    State(app): State<App>,
) -> Result<(), ConnectError> {
    let (me, slot) = check(&s, payload.ok(), &app).await?;
    if !me.who.is_admin {
        Metrics::inc(&app.metrics.sockets_refused);
        return Err(UNAUTHORIZED);
    }
    super::admin::admit(&s, me.who.id(), &me.who.grant());
    log_lifetime(&s, me.who.id());
    s.extensions.insert(Arc::new(me));
    s.extensions.insert(Counted::new(&app, slot, None));
    Ok(())
}

/// Who is asking: the token of the CONNECT payload, else the handshake's Authorization
/// header or cookie, checked by the service like any other credential; and the socket's
/// place under its user's socket cap, taken at once.
async fn check<A: Adapter>(
    s: &SocketRef<A>,
    payload: Option<AuthPayload>,
    app: &App,
) -> Result<(SocketUser, ConnectionSlot), ConnectError> {
    let refuse = || {
        Metrics::inc(&app.metrics.sockets_refused);
        UNAUTHORIZED
    };
    let parts = s.req_parts();
    let legacy = payload.as_ref().and_then(|p| p.legacy).unwrap_or(true);
    let offsets = payload.as_ref().and_then(|p| p.offsets).unwrap_or(true);
    let credential = match payload.and_then(|p| p.token) {
        Some(token) => Credential::Token(token),
        None => auth::credential_from_headers(&parts.headers).ok_or_else(refuse)?,
    };
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let presented = Presented {
        credential,
        headers: &parts.headers,
        client: crate::config::client_addr(&app.config.trusted_proxies, &parts.headers, peer),
        // Cross-site WebSocket hijacking: a cookie sent by a page of a foreign origin.
        guarded: true,
    };
    let admitted = match app.authenticate(presented).await {
        Ok(who) => app.admit_connection(&who).map(|slot| (who, slot)),
        Err(e) => Err(e),
    };
    match admitted {
        Ok((who, slot)) => Ok((
            SocketUser {
                who,
                legacy,
                offsets,
                budget: app.limits.budget(),
            },
            slot,
        )),
        Err(e) => {
            refuse();
            match e {
                ServiceError::RateLimited(_) => Err(ConnectError("rate_limited")),
                // Not the client's fault: a valid token was refused `unauthorized` while the
                // database was down, and its page logged itself out.
                ServiceError::Domain(crate::service::DomainError::Unavailable) => {
                    Err(ConnectError("unavailable"))
                }
                ServiceError::Domain(_) => {
                    tracing::error!(error = %e, "handshake authentication failed");
                    Err(UNAUTHORIZED)
                }
                _ => Err(UNAUTHORIZED),
            }
        }
    }
}

/// The connect handler of the messaging namespaces, run once the CONNECT answer is sent: its
/// middleware already set the socket up; a recovering socket is sent what it missed.
pub async fn on_connect<A: Adapter>(s: SocketRef<A>, State(app): State<App>) {
    let (Some(from), Some(me)) = (
        s.extensions.get::<Arc<ReplayFrom>>(),
        s.extensions.get::<Arc<SocketUser>>(),
    ) else {
        return;
    };
    recovery::replay(&s, &app, &me.who, from.0).await;
}

/// The connect handler of `/admin`: its middleware did everything.
pub async fn on_admin_connect() {}
