//! Client -> server events. Each answers its ack with `{status: true, ...}` or
//! `{status: false, code, message}`; a malformed payload gets `invalid_payload`.

use std::sync::Arc;

use serde::Serialize;
use socketioxide::ParserError;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State, TryData};
use socketioxide::handler::SharedHandlers;

use super::protocol::*;
use super::rooms::{thread_room, user_room};
use super::socket_user::SocketUser;
use crate::metrics::Metrics;
use crate::service::events::{ServerEvent, Typing};
use crate::service::{self, App, DomainError, React, SendMessage, SendOutcome, ServiceError};

/// The handlers of every client event, made once per server and shared by all its messaging
/// sockets (`Socket::use_handlers`, vendor/socketioxide/PATCHED.md).
pub fn handlers<A: Adapter>() -> SharedHandlers<A> {
    SharedHandlers::new()
        .on(MESSAGE_SEND, on_send::<A>)
        .on(THREAD_JOIN, on_join::<A>)
        .on(THREAD_LEAVE, on_leave::<A>)
        .on(THREAD_READ, on_read::<A>)
        .on(MESSAGE_DELETE, on_delete_message::<A>)
        .on(THREAD_DELETE, on_delete_thread::<A>)
        .on(MESSAGE_EDIT, on_edit::<A>)
        .on(REACTION_ADD, on_react::<A, true>)
        .on(REACTION_REMOVE, on_react::<A, false>)
        .on(THREAD_ADD, on_add::<A>)
        .on(THREAD_REMOVE, on_remove::<A>)
        .on(THREAD_RENAME, on_rename::<A>)
        .on(THREAD_MUTE, on_mute::<A>)
        .on(THREAD_UNMUTE, on_unmute::<A>)
        .on(TYPING, on_typing::<A>)
        .on(SYNC, on_sync::<A>)
}

/// An event's failure, as its ack carries it.
fn refused(code: &'static str, message: impl Into<String>) -> Refused {
    Refused {
        status: false,
        code,
        message: message.into(),
    }
}

impl From<DomainError> for Refused {
    fn from(e: DomainError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<ServiceError> for Refused {
    fn from(e: ServiceError) -> Self {
        if let ServiceError::Domain(DomainError::Db(_) | DomainError::Internal(_)) = e {
            tracing::error!(error = %e, "event failed");
            return refused("internal", "internal server error");
        }
        refused(e.code(), e.to_string())
    }
}

fn payload<T>(data: Result<T, ParserError>) -> Result<T, Refused> {
    data.map_err(|e| refused("invalid_payload", format!("invalid payload: {e}")))
}

/// Sends the ack: `{status: true}` with the fields of the result, or the refusal.
fn answer<A: Adapter>(ack: AckSender<A>, result: Result<impl Serialize, Refused>) {
    let _ = match result {
        Ok(fields) => ack.send(&Done {
            status: true,
            fields,
        }),
        Err(refused) => ack.send(&refused),
    };
}

fn me<A: Adapter>(s: &SocketRef<A>, app: &App) -> Result<Arc<SocketUser>, Refused> {
    Metrics::inc(&app.metrics.socket_events);
    s.extensions
        .get::<Arc<SocketUser>>()
        .ok_or_else(|| refused("unauthorized", "socket is not authenticated"))
}

/// Runs one event: who is asking, within the socket's and the user's budget, the parsed
/// payload, then `work`; the ack is answered either way. An event past the budget is answered
/// `rate_limited` at once and nothing of it is queued.
async fn respond<A: Adapter, T, R: Serialize>(
    s: &SocketRef<A>,
    app: &App,
    ack: AckSender<A>,
    data: Result<T, ParserError>,
    work: impl AsyncFnOnce(Arc<SocketUser>, T) -> Result<R, Refused>,
) {
    let admitted = me(s, app).and_then(|me| {
        let permit = app.limits.admit_event(me.who.id(), &me.budget)?;
        Ok((me, permit))
    });
    let result = match admitted.and_then(|(me, permit)| Ok((me, permit, payload(data)?))) {
        Ok((me, _permit, req)) => work(me, req).await,
        Err(refusal) => Err(refusal),
    };
    answer(ack, result);
}

async fn on_send<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<SendMessage>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        let message = match app.send_message(&me.who, req).await? {
            SendOutcome::Created { rendered, .. } => Sent::Created(rendered),
            SendOutcome::Repeated { message } => Sent::View(Box::new(message)),
        };
        Ok(MessageAck { message })
    })
    .await;
}

async fn on_join<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<ThreadRef>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        let thread_id = app.join_thread(&me.who, &req.thread_id).await?;
        s.join(thread_room(&thread_id));
        Ok(ThreadAck { thread_id })
    })
    .await;
}

async fn on_leave<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<ThreadRef>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |_, req| {
        s.leave(thread_room(&req.thread_id));
        Ok(ThreadAck {
            thread_id: req.thread_id,
        })
    })
    .await;
}

async fn on_read<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<ReadRequest>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        Ok(app
            .read_thread(&me.who, &req.thread_id, req.up_to.as_deref())
            .await?)
    })
    .await;
}

async fn on_delete_message<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<MessageRef>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        Ok(app.delete_message(&me.who, &req.url).await?)
    })
    .await;
}

async fn on_delete_thread<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<ThreadRef>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        Ok(app.delete_thread(&me.who, &req.thread_id).await?)
    })
    .await;
}

async fn on_edit<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<EditRequest>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        let message = app.edit_message(&me.who, &req.url, &req.body).await?;
        Ok(MessageAck {
            message: Sent::View(Box::new(message)),
        })
    })
    .await;
}

async fn on_react<A: Adapter, const ADD: bool>(
    s: SocketRef<A>,
    TryData(req): TryData<ReactionRequest>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        let how = if ADD { React::Add } else { React::Remove };
        let message = app.react(&me.who, &req.url, &req.emoji, how).await?;
        Ok(MessageAck {
            message: Sent::View(Box::new(message)),
        })
    })
    .await;
}

async fn on_add<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<MemberRequest>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        let thread = app
            .add_member(&me.who, &req.thread_id, &req.username)
            .await?;
        Ok(ThreadBody { thread })
    })
    .await;
}

async fn on_remove<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<MemberRequest>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        let thread = app
            .remove_member(&me.who, &req.thread_id, &req.username)
            .await?;
        Ok(ThreadBody { thread })
    })
    .await;
}

async fn on_rename<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<RenameRequest>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        let thread = app
            .rename_thread(&me.who, &req.thread_id, &req.subject)
            .await?;
        Ok(ThreadBody { thread })
    })
    .await;
}

async fn on_mute<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<MuteRequest>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        let request = service::MuteRequest::until(req.until.as_deref())?;
        let thread = app.mute_thread(&me.who, &req.thread_id, request).await?;
        Ok(ThreadBody { thread })
    })
    .await;
}

async fn on_unmute<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<ThreadRef>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        let thread = app
            .mute_thread(&me.who, &req.thread_id, service::MuteRequest::Unmute)
            .await?;
        Ok(ThreadBody { thread })
    })
    .await;
}

/// Relayed (volatile) to the thread's room, except the sender and the members who block them;
/// only from a socket that joined it.
async fn on_typing<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<TypingRequest>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        let room = thread_room(&req.thread_id);
        if !s.rooms().iter().any(|r| *r == room) {
            return Err(DomainError::NotFound.into());
        }
        let event = Typing {
            thread_id: req.thread_id,
            username: me.who.user.username.clone(),
            typing: req.typing,
        };
        let hidden: Vec<String> = app
            .typing_hidden_from(&me.who)
            .await?
            .into_iter()
            .map(user_room)
            .collect();
        let _ = s
            .to(room)
            .except(hidden)
            .volatile()
            .emit(Typing::NAME, &event)
            .await;
        Ok(Empty {})
    })
    .await;
}

/// `sync`: the user's events after `since`, a page at a time, for clients that recover
/// without socket.io's own protocol.
async fn on_sync<A: Adapter>(
    s: SocketRef<A>,
    TryData(req): TryData<SyncRequest>,
    ack: AckSender<A>,
    State(app): State<App>,
) {
    respond(&s, &app, ack, req, async |me, req| {
        Ok(app.sync(&me.who, req.since.as_ref()).await?)
    })
    .await;
}
