//! Private threads, direct and group: sending, reading, listing, per-user deletion and a
//! group's membership.
//!
//! Every write is one transaction; the service layer notifies only after it commits. Files by
//! what they do: `validate` (what a send may carry), `directory` (a thread's members and
//! subject, guessed from a cache and checked by the commit), `send` (a new thread; a reply to
//! the group commit), `membership` (adding, removing, renaming), `edit` (a sender's
//! change of a body, or its removal for everyone), `react` (reactions), `search` (the
//! caller's messages by their words), `group_commit`
//! (the writer task that stores replies many to a transaction), `batch` (what a batch carries
//! and hands back, and the events of a stored message), `sqlite_batch` and `postgres_batch`
//! (one batch on each backend), `read`, `hide` (per-user deletion), `replay`
//! (the event log's entries rendered to be sent again), `list`
//! (inbox, history, unread totals) and `queries` (lookups and subqueries shared by all of
//! them, and by `seed`).

mod batch;
mod directory;
mod edit;
mod group_commit;
mod hide;
mod list;
mod membership;
mod mute;
mod postgres_batch;
pub(crate) mod queries;
mod react;
mod read;
pub mod replay;
mod search;
mod send;
mod sqlite_batch;
mod validate;

use serde::Deserialize;

pub use batch::Reply;
pub use directory::{Directory, ThreadMeta};
pub use edit::{EditLimits, edit_message, remove_for_everyone};
pub use group_commit::GroupCommit;
pub use group_commit::store_replies;
pub use hide::{delete_message, delete_thread};
pub use list::{get_message, get_thread, list_messages, list_threads, unread_counts};
pub use membership::{add_member, remove_member, rename};
pub use mute::{MuteRequest, mute};
pub use queries::{Seen, correspondents, ensure_participant};
pub use react::{React, react};
pub use read::{Read, read};
pub use search::search;
pub use send::{SendLimits, send};

use super::views::{MessageView, Rendered};

/// Longest subject of a new thread, in characters.
pub const MAX_SUBJECT: usize = 70;
/// Largest page of threads or messages.
pub const MAX_PAGE: u64 = 100;

/// A new thread (`recipient` or `recipients`, + `subject`) or a reply (`thread_id`), as POST
/// /messages and `message:send` take it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// A new direct thread: who to (with `subject`).
    #[ts(optional)]
    pub recipient: Option<String>,
    /// A new thread to several people: two or more names make a group (one, a direct thread).
    #[ts(optional)]
    pub recipients: Option<Vec<String>>,
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
    /// A reply may answer a message of its thread (its url).
    #[ts(optional)]
    pub reply_to: Option<String>,
}

/// The result of a send.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    /// Stored now, and announced to the participants.
    Created {
        message: MessageView,
        /// `message`, serialised once for every payload that carries it.
        rendered: Rendered,
    },
    /// `client_id` was seen before: the first message, nothing new stored.
    Repeated { message: MessageView },
}
