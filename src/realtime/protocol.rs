//! The Socket.IO protocol as Rust types: every payload both ways and every ack. The handlers
//! read and answer these, the notifier emits these, and `web/src/generated/events.ts` (socket.io's
//! `ServerToClientEvents` / `ClientToServerEvents`) is generated from them: a test fails when
//! the committed file is stale (`MISSIVE_WRITE_TYPES=1` rewrites it).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::service::ops::Stats;
pub use crate::service::recovery::SyncPage;
use crate::service::{MessageView, Rendered, SendMessage, ThreadView, UnreadCounts};

// ---- event names

pub const MESSAGE_SEND: &str = "message:send";
pub const THREAD_JOIN: &str = "thread:join";
pub const THREAD_LEAVE: &str = "thread:leave";
pub const THREAD_READ: &str = "thread:read";
pub const MESSAGE_DELETE: &str = "message:delete";
pub const THREAD_DELETE: &str = "thread:delete";
pub const TYPING: &str = "typing";
pub const SYNC: &str = "sync";

pub const MESSAGE_NEW: &str = "message:new";
pub const MESSAGE_DELETED: &str = "message:deleted";
pub const THREAD_DELETED: &str = "thread:deleted";
pub const UNREAD: &str = "unread";
pub const PRESENCE: &str = "presence";
pub const STATS: &str = "stats";

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

/// `sync`: the events after `since` (an offset, as events carry it); without it, only where
/// the log stands (`head`).
#[derive(Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    #[ts(optional, type = "string")]
    pub since: Option<serde_json::Value>,
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

/// A message as sent: rendered once for all the events of a new message, or the view of the
/// first message of a repeated `client_id`.
#[derive(Serialize)]
#[serde(untagged)]
pub enum Sent {
    Created(Rendered),
    Repeated(MessageView),
}

/// `thread:join` and `thread:leave`'s ack.
#[derive(Serialize, TS)]
pub struct ThreadAck {
    pub thread_id: String,
}

/// `thread:read`'s ack and event, `message:delete`'s and `thread:delete`'s acks and the
/// events of the same names: the domain writes these to the event log too.
pub use crate::service::{
    MessageDeletedEvent as MessageDeleted, ThreadDeletedEvent as ThreadDeleted,
    ThreadReadEvent as ThreadRead,
};

/// `typing`'s ack.
#[derive(Serialize, TS)]
pub struct Empty {}

// ---- server -> client events

/// `message:new`, to the sender's and the recipient's tabs: the message, and its thread as
/// that user sees it (the message as its last).
#[derive(Serialize, TS)]
pub struct NewMessage<'a> {
    #[ts(as = "MessageView")]
    pub message: &'a Rendered,
    #[ts(as = "ThreadView")]
    pub thread: &'a ThreadView<Rendered>,
}

pub use crate::service::PresenceEvent as Presence;

/// `typing`, to the other sockets that joined the thread (volatile).
#[derive(Serialize, TS)]
pub struct Typing<'a> {
    pub thread_id: &'a str,
    pub username: &'a str,
    pub typing: bool,
}

// ---- legacy (Flask-Messaging) events, to sockets that did not say `legacy: false`

/// `<websocket_id>_newmsg`, and `<thread_id>` (same payload).
#[derive(Serialize, TS)]
pub struct LegacyNewMessage<'a> {
    pub message_url: &'a str,
}

/// `<websocket_id>_notify`: a thread read (`thread_id`), or nothing left unread (`mailbox`).
#[derive(Serialize, TS)]
pub struct LegacyNotify<'a> {
    #[serde(rename = "type")]
    #[ts(rename = "type", type = "\"thread\" | \"mailbox\"")]
    pub kind: &'static str,
    #[ts(type = "\"false\"")]
    pub notify: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub thread_id: Option<&'a str>,
}

/// `<websocket_id>_notify_deletion`: a message or a thread deleted.
#[derive(Serialize, TS)]
pub struct LegacyDeletion<'a> {
    #[serde(rename = "type")]
    #[ts(rename = "type", type = "\"message\" | \"thread\"")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub message_url: Option<&'a str>,
    pub thread_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "number")]
    pub total_messages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "number")]
    pub total_threads: Option<u64>,
}

// ---- TypeScript

/// `web/src/generated/events.ts`.
pub fn typescript() -> String {
    let mut out = String::from(
        "// Generated from Missive's Rust types (src/realtime/protocol.rs); do not edit.\n\
         // A test fails when this file is stale; MISSIVE_WRITE_TYPES=1 cargo nextest run -E \
         'test(typescript)' rewrites it.\n\n",
    );
    for decl in [
        MessageView::decl(),
        ThreadView::<MessageView>::decl(),
        UnreadCounts::decl(),
        SendMessage::decl(),
        ThreadRef::decl(),
        ReadRequest::decl(),
        MessageRef::decl(),
        TypingRequest::decl(),
        SyncRequest::decl(),
        SyncPage::decl(),
        Refused::decl(),
        MessageAck::decl(),
        ThreadAck::decl(),
        ThreadRead::decl(),
        MessageDeleted::decl(),
        ThreadDeleted::decl(),
        NewMessage::decl(),
        Presence::decl(),
        Typing::decl(),
        // `Record<string, never>` as ts-rs has it would make `Ack<Empty>`'s `status` never.
        "type Empty = object;".to_owned(),
        LegacyNewMessage::decl(),
        LegacyNotify::decl(),
        LegacyDeletion::decl(),
        Stats::decl(),
    ] {
        out.push_str("export ");
        out.push_str(&decl);
        out.push_str("\n\n");
    }
    out.push_str(
        "/** An event's ack: `{status: true}` and its fields, or a refusal. */\n\
         export type Ack<T> = ({ status: true } & T) | Refused;\n\n",
    );
    // Events written to the user's event log carry their offset as a last argument.
    let logged = [
        MESSAGE_NEW,
        THREAD_READ,
        MESSAGE_DELETED,
        THREAD_DELETED,
        UNREAD,
        PRESENCE,
    ];
    let server: [(&str, String); 8] = [
        (MESSAGE_NEW, NewMessage::name()),
        (THREAD_READ, ThreadRead::name()),
        (MESSAGE_DELETED, MessageDeleted::name()),
        (THREAD_DELETED, ThreadDeleted::name()),
        (UNREAD, UnreadCounts::name()),
        (PRESENCE, Presence::name()),
        (TYPING, Typing::name()),
        // The `/admin` namespace (admins only).
        (STATS, Stats::name()),
    ];
    out.push_str("/** Events the server emits on `/messages` (and `stats` on `/admin`). */\n");
    out.push_str("export interface ServerToClientEvents {\n");
    for (name, payload) in server {
        let offset = if logged.contains(&name) {
            ", offset?: string"
        } else {
            ""
        };
        out.push_str(&format!(
            "  '{name}': (payload: {payload}{offset}) => void;\n"
        ));
    }
    out.push_str("}\n\n");
    let client: [(&str, String, String); 8] = [
        (MESSAGE_SEND, SendMessage::name(), MessageAck::name()),
        (THREAD_JOIN, ThreadRef::name(), ThreadAck::name()),
        (THREAD_LEAVE, ThreadRef::name(), ThreadAck::name()),
        (THREAD_READ, ReadRequest::name(), ThreadRead::name()),
        (MESSAGE_DELETE, MessageRef::name(), MessageDeleted::name()),
        (THREAD_DELETE, ThreadRef::name(), ThreadDeleted::name()),
        (TYPING, TypingRequest::name(), Empty::name()),
        (SYNC, SyncRequest::name(), SyncPage::name()),
    ];
    out.push_str("/** Events a client sends on `/messages`, each answered by its ack. */\n");
    out.push_str("export interface ClientToServerEvents {\n");
    for (name, payload, ack) in client {
        out.push_str(&format!(
            "  '{name}': (payload: {payload}, ack: (answer: Ack<{ack}>) => void) => void;\n"
        ));
    }
    out.push_str("}\n\n");
    out.push_str(&format!(
        "/**\n * The original Flask-Messaging events, named after the user's `websocket_id` (W), sent\n \
         * to sockets that did not connect with `legacy: false`. `<thread_id>` (a thread's id as\n \
         * the event name) carries a {new} too.\n */\n\
         export interface LegacyServerToClientEvents {{\n  \
         [event: `${{string}}_newmsg`]: (payload: {new}) => void;\n  \
         [event: `${{string}}_notify`]: (payload: {notify}) => void;\n  \
         [event: `${{string}}_notify_deletion`]: (payload: {deletion}) => void;\n}}\n",
        new = LegacyNewMessage::name(),
        notify = LegacyNotify::name(),
        deletion = LegacyDeletion::name(),
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The committed TypeScript matches the Rust types (run with MISSIVE_WRITE_TYPES=1 to
    /// rewrite it after changing them).
    #[test]
    fn the_committed_typescript_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/src/generated/events.ts");
        let current = super::typescript();
        if std::env::var("MISSIVE_WRITE_TYPES").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &current).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == current,
            "{} is stale: run MISSIVE_WRITE_TYPES=1 cargo nextest run -E 'test(typescript)'",
            path.display()
        );
    }
}
