//! Private threads: sending, reading, listing and per-user deletion.
//!
//! Every write is one transaction; the service layer notifies only after it commits. Files by
//! what they do: `validate` (what a send may carry), `directory` (the cache of what never
//! changes about a thread), `send` (a new thread, and the replies' batches), `group_commit`
//! (the writer task that stores replies many to a transaction), `sqlite_batch` and
//! `postgres_batch` (one batch on each backend), `read`, `hide` (per-user deletion), `replay`
//! (the event log's entries rendered to be sent again), `list`
//! (inbox, history, unread totals) and `queries` (lookups and subqueries shared by all of
//! them, and by `seed`).

mod directory;
mod group_commit;
mod hide;
mod list;
mod postgres_batch;
pub(crate) mod queries;
mod read;
pub mod replay;
mod send;
mod sqlite_batch;
mod validate;

use serde::Deserialize;

pub use directory::{Directory, ThreadMeta};
pub use group_commit::{Committed, GroupCommit};
pub use hide::{delete_message, delete_thread};
pub use list::{get_thread, list_messages, list_threads, unread_counts};
pub use queries::{correspondents, ensure_participant};
pub use read::read;
pub use send::{Reply, send, store_replies};

use super::views::{MessageView, Rendered, ThreadView, UnreadCounts, UserRef};

/// Longest subject of a new thread, in characters.
pub const MAX_SUBJECT: usize = 70;
/// Largest page of threads or messages.
pub const MAX_PAGE: u64 = 100;

/// A new thread (`recipient` + `subject`) or a reply (`thread_id`), as POST /messages and
/// `message:send` take it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// A new thread: who to (with `subject`).
    #[ts(optional)]
    pub recipient: Option<String>,
    /// A new thread's subject, 1 to 70 characters.
    #[ts(optional)]
    pub subject: Option<String>,
    /// A reply: the thread.
    #[ts(optional)]
    pub thread_id: Option<String>,
    /// 1 to MISSIVE_MAX_BODY characters after trimming.
    pub body: String,
    /// Chosen by the sender: a repeat is answered with the first message, nothing stored.
    #[ts(optional)]
    pub client_id: Option<String>,
}

/// What a participant needs to hear about a new message.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub user: UserRef,
    /// The thread as the participant sees it, the new message last.
    pub thread: ThreadView<Rendered>,
    /// The participant's unread totals after the commit; `None` for the sender, whose totals
    /// did not change.
    pub unread: Option<UnreadCounts>,
    /// Positions of this participant's `message:new` and `unread` in their event log (`None`
    /// with the log off).
    pub offset: Option<i64>,
    pub unread_offset: Option<i64>,
}

/// The result of a send.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    /// Stored now; `participants` are to be notified.
    Created {
        message: MessageView,
        /// `message`, serialised once for every payload that carries it.
        rendered: Rendered,
        participants: Vec<Recipient>,
    },
    /// `client_id` was seen before: the first message, nothing new stored.
    Repeated { message: MessageView },
}

/// After a read.
#[derive(Debug, Clone)]
pub struct ReadOutcome {
    pub reader: UserRef,
    pub thread_id: String,
    pub unread: UnreadCounts,
    pub changed: bool,
    /// Positions of `thread:read` and `unread` in the reader's event log (`None` when nothing
    /// was written, or with the log off).
    pub offset: Option<i64>,
    pub unread_offset: Option<i64>,
}

/// After a message deletion.
#[derive(Debug, Clone)]
pub struct MessageDeleted {
    pub user: UserRef,
    pub url: String,
    pub thread_id: String,
    pub total_messages: u64,
    pub unread: UnreadCounts,
    pub unread_changed: bool,
    /// Positions of this event and of `unread` in the user's event log.
    pub offset: Option<i64>,
    pub unread_offset: Option<i64>,
}

/// After a thread deletion.
#[derive(Debug, Clone)]
pub struct ThreadDeleted {
    pub user: UserRef,
    pub thread_id: String,
    pub total_threads: u64,
    pub unread: UnreadCounts,
    pub unread_changed: bool,
    /// Positions of this event and of `unread` in the user's event log.
    pub offset: Option<i64>,
    pub unread_offset: Option<i64>,
}
