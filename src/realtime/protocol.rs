//! The Socket.IO protocol's client side as Rust types: every client -> server payload and
//! every ack, declared once in [`CLIENT_EVENTS`]. The server -> client events are declared in
//! the domain (`service::events`); `reference.rs` generates `web/src/generated/events.ts` and
//! the tables of `docs/protocol.md` from both lists.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use crate::service::events::{MessageDeleted, ThreadDeleted, ThreadRead};
pub use crate::service::recovery::SyncPage;
use crate::service::{MessageView, Rendered, SendMessage, ThreadView};

/// A client -> server event: its name, payload and ack.
pub struct ClientEvent {
    pub name: &'static str,
    /// What it does, for the protocol reference.
    pub doc: &'static str,
    /// The payload's and the ack's TypeScript types, and their declarations.
    pub payload: fn() -> String,
    pub ack: fn() -> String,
    pub decls: [fn() -> String; 2],
}

const fn client<P: TS, A: TS>(name: &'static str, doc: &'static str) -> ClientEvent {
    ClientEvent {
        name,
        doc,
        payload: <P as TS>::name,
        ack: <A as TS>::name,
        decls: [<P as TS>::decl, <A as TS>::decl],
    }
}

pub const MESSAGE_SEND: &str = "message:send";
pub const THREAD_JOIN: &str = "thread:join";
pub const THREAD_LEAVE: &str = "thread:leave";
pub const THREAD_READ: &str = "thread:read";
pub const MESSAGE_DELETE: &str = "message:delete";
pub const THREAD_DELETE: &str = "thread:delete";
pub const MESSAGE_EDIT: &str = "message:edit";
pub const REACTION_ADD: &str = "reaction:add";
pub const REACTION_REMOVE: &str = "reaction:remove";
pub const THREAD_ADD: &str = "thread:add";
pub const THREAD_REMOVE: &str = "thread:remove";
pub const THREAD_RENAME: &str = "thread:rename";
pub const THREAD_MUTE: &str = "thread:mute";
pub const THREAD_UNMUTE: &str = "thread:unmute";
pub const TYPING: &str = "typing";
pub const SYNC: &str = "sync";

/// Every client -> server event of `/messages`, each answered by its ack.
pub const CLIENT_EVENTS: &[ClientEvent] = &[
    client::<SendMessage, MessageAck>(
        MESSAGE_SEND,
        "Send a message: a new thread (`recipient`, `subject`) or a reply (`thread_id`).",
    ),
    client::<ThreadRef, ThreadAck>(
        THREAD_JOIN,
        "Join the thread's room, to hear `typing` (participants only).",
    ),
    client::<ThreadRef, ThreadAck>(THREAD_LEAVE, "Leave the thread's room."),
    client::<ReadRequest, ThreadRead>(
        THREAD_READ,
        "Mark the thread read, up to `up_to` or to its newest message.",
    ),
    client::<EditRequest, MessageAck>(
        MESSAGE_EDIT,
        "Edit one of your messages, within the edit window (see After sending).",
    ),
    client::<ReactionRequest, MessageAck>(
        REACTION_ADD,
        "React to a message with one emoji (any member; see After sending).",
    ),
    client::<ReactionRequest, MessageAck>(REACTION_REMOVE, "Take back your reaction."),
    client::<MessageRef, MessageDeleted>(MESSAGE_DELETE, "Delete a message for yourself."),
    client::<ThreadRef, ThreadDeleted>(THREAD_DELETE, "Delete a thread for yourself."),
    client::<MemberRequest, ThreadBody>(
        THREAD_ADD,
        "Add someone to a group (any member; see Conversations).",
    ),
    client::<MemberRequest, ThreadBody>(
        THREAD_REMOVE,
        "Remove someone from a group (its creator), or leave it (yourself).",
    ),
    client::<RenameRequest, ThreadBody>(THREAD_RENAME, "Rename a group (any member)."),
    client::<MuteRequest, ThreadBody>(
        THREAD_MUTE,
        "Mute a thread for yourself: no pushes for it (until `until`, or until unmuted).",
    ),
    client::<ThreadRef, ThreadBody>(THREAD_UNMUTE, "Unmute a thread for yourself."),
    client::<TypingRequest, Empty>(
        TYPING,
        "Tell the thread's room you are typing (from a socket that joined it).",
    ),
    client::<SyncRequest, SyncPage>(
        SYNC,
        "The events after `since`, a page at a time (see Recovery).",
    ),
];

// ---- client -> server payloads

/// `thread:join`, `thread:leave`, `thread:delete`.
#[derive(Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ThreadRef {
    pub thread_id: String,
}

/// `thread:read`: up to the message `up_to`, or to the end.
#[derive(Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    pub thread_id: String,
    #[ts(optional)]
    pub up_to: Option<String>,
}

/// `message:delete`.
#[derive(Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct MessageRef {
    pub url: String,
}

/// `message:edit`: one of the sender's messages, and its new body.
#[derive(Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    pub url: String,
    pub body: String,
}

/// `reaction:add` and `reaction:remove`: which message, which emoji.
#[derive(Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct ReactionRequest {
    pub url: String,
    pub emoji: String,
}

/// `sync`: the events after `since` (an offset, as events carry it); without it, only where
/// the log stands (`head`).
#[derive(Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    #[ts(optional, type = "string")]
    pub since: Option<serde_json::Value>,
}

/// `thread:add` and `thread:remove`: who, in which group.
#[derive(Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    pub thread_id: String,
    pub username: String,
}

/// `thread:rename`.
#[derive(Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    pub thread_id: String,
    pub subject: String,
}

/// `thread:mute`.
#[derive(Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct MuteRequest {
    pub thread_id: String,
    /// Until when (RFC 3339, in the future); absent: until unmuted.
    #[ts(optional)]
    pub until: Option<String>,
}

/// `typing` (from a socket that joined the thread).
#[derive(Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct TypingRequest {
    pub thread_id: String,
    pub typing: bool,
}

// ---- acks: `{status: true, ...fields}` or `Refused`

/// A refused event's ack.
#[derive(Serialize, TS)]
pub struct Refused {
    #[ts(type = "false")]
    pub status: bool,
    /// `invalid_payload`, `not_found`, `rate_limited`, `unavailable`, a validation code, ...
    pub code: &'static str,
    pub message: String,
}

/// An accepted event's ack: `{status: true}` and the fields of `T`.
#[derive(Serialize)]
pub struct Done<T> {
    pub status: bool,
    #[serde(flatten)]
    pub fields: T,
}

/// `message:send`'s ack.
#[derive(Serialize, TS)]
pub struct MessageAck {
    #[ts(as = "MessageView")]
    pub message: Sent,
}

/// A message as sent: rendered once for all the events of a new message, or a view (the
/// first message of a repeated `client_id`, an edited message).
#[derive(Serialize)]
#[serde(untagged)]
pub enum Sent {
    Created(Rendered),
    View(Box<MessageView>),
}

/// `thread:join` and `thread:leave`'s ack.
#[derive(Serialize, TS)]
pub struct ThreadAck {
    pub thread_id: String,
}

/// `thread:add` and `thread:rename`'s ack: the group after.
#[derive(Serialize, TS)]
pub struct ThreadBody {
    pub thread: ThreadView,
}

/// `typing`'s ack.
#[derive(Serialize, TS)]
pub struct Empty {}
