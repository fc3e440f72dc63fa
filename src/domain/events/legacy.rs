//! The payloads of the original Flask-Messaging events, named after the user's
//! `websocket_id` (W) and sent to sockets that did not connect with `legacy: false`.

use serde::Serialize;
use ts_rs::TS;

/// `W_newmsg`, and `<thread_id>` (same payload). The original sent only `message_url`;
/// `thread_id` tells a page which thread to refresh without asking.
#[derive(Serialize, TS)]
pub struct LegacyNewMessage<'a> {
    pub message_url: &'a str,
    pub thread_id: &'a str,
}

/// `W_notify`: a thread read (`thread_id`), or nothing left unread (`mailbox`).
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

impl<'a> LegacyNotify<'a> {
    /// Nothing is left unread.
    pub const MAILBOX: LegacyNotify<'static> = LegacyNotify {
        kind: "mailbox",
        notify: "false",
        thread_id: None,
    };

    /// The thread was read.
    pub fn thread(thread_id: &'a str) -> LegacyNotify<'a> {
        LegacyNotify {
            kind: "thread",
            notify: "false",
            thread_id: Some(thread_id),
        }
    }
}

/// `W_notify_deletion`: a message or a thread deleted.
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
