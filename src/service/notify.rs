//! The notifier: how the service tells clients what changed. Its Socket.IO implementation
//! lives with the realtime transport and is handed to the [`App`] when the server is
//! assembled.
//!
//! [`App`]: super::App

use futures_util::future::BoxFuture;

use crate::domain::events::{Notice, SessionEnded, Stats};

/// Emits events to the users concerned, on every node.
pub trait Notifier: Send + Sync + 'static {
    /// The events of one commit, in order, each to its user's tabs (with its legacy forms to
    /// those that hear them). Called by the announcer alone, in commit order.
    fn announce<'a>(&'a self, notices: &'a [Notice]) -> BoxFuture<'a, ()>;
    /// Makes every socket of `user_id`, on every node, leave the room of `thread_id` (they
    /// are no longer in the group: its typing is not theirs to hear).
    fn leave_thread<'a>(&'a self, user_id: i64, thread_id: &'a str) -> BoxFuture<'a, ()>;
    /// Disconnects every socket of a session, on every node; with `ended`, they hear it first.
    fn disconnect_session<'a>(
        &'a self,
        session_id: &'a str,
        ended: Option<&'a SessionEnded>,
    ) -> BoxFuture<'a, ()>;
    /// Events and disconnects that could not reach the other nodes (and were applied on this
    /// one only), since the start.
    fn adapter_failures(&self) -> u64;
    /// Bursts from the bus dropped since the start: a failed MAC, or too old.
    fn bursts_rejected(&self) -> u64;
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
