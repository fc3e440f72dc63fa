//! The notifier: how the service tells clients what changed. Called after each commit, in
//! commit order, with the rooms chosen by the users concerned (never a whole namespace). Its
//! Socket.IO implementation lives with the realtime transport and is handed to the [`App`]
//! when the server is assembled.
//!
//! [`App`]: super::App

use futures_util::future::BoxFuture;

use super::ops::Stats;
use crate::domain::messaging::{MessageDeleted, ReadOutcome, SendOutcome, ThreadDeleted};
use crate::domain::views::PresenceEvent;

/// Emits events to the users concerned, on every node.
pub trait Notifier: Send + Sync + 'static {
    /// The messages of one commit, oldest first: `message:new` to every participant, then
    /// each recipient's new unread totals.
    fn messages_sent<'a>(&'a self, outcomes: &'a [SendOutcome]) -> BoxFuture<'a, ()>;
    /// A thread was read: to the reader's tabs.
    fn thread_read<'a>(&'a self, outcome: &'a ReadOutcome) -> BoxFuture<'a, ()>;
    /// A message was hidden: to the deleter's tabs.
    fn message_deleted<'a>(&'a self, outcome: &'a MessageDeleted) -> BoxFuture<'a, ()>;
    /// A thread was hidden: to the deleter's tabs.
    fn thread_deleted<'a>(&'a self, outcome: &'a ThreadDeleted) -> BoxFuture<'a, ()>;
    /// A user came online or went offline: to each of `watchers` (user ids, with the event's
    /// position in each one's log).
    fn presence<'a>(
        &'a self,
        event: &'a PresenceEvent,
        watchers: &'a [(i64, Option<i64>)],
    ) -> BoxFuture<'a, ()>;
    /// Disconnects every socket of a session, on every node.
    fn disconnect_session<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, ()>;
    /// Events and disconnects that could not reach the other nodes (and were applied on this
    /// one only), since the start.
    fn adapter_failures(&self) -> u64;
    /// Whether an admin dashboard is connected to this node.
    fn has_local_admins(&self) -> bool;
    /// The users of the admin dashboards connected to this node.
    fn local_admins(&self) -> Vec<i64>;
    /// Closes the admin dashboards of `user_id` on this node (no longer an admin).
    fn revoke_admin(&self, user_id: i64) -> BoxFuture<'_, ()>;
    /// This node's figures to the admin dashboards connected to it.
    fn admin_stats<'a>(&'a self, stats: &'a Stats) -> BoxFuture<'a, ()>;
    /// Closes every socket of this node (shutdown), so that clients reconnect elsewhere.
    fn close_all(&self) -> BoxFuture<'_, ()>;
}
