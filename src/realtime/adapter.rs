//! What the notifier needs from Socket.IO, whatever the adapter (in-process or Redis): emits
//! to this node's rooms, disconnects, and the admin sockets.

use futures_util::future::BoxFuture;
use serde_json::value::RawValue;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;

use super::admin;

/// A Socket.IO server of any adapter.
pub trait Rooms: Send + Sync {
    /// `payload` to `rooms` of `namespaces`, on this node only (the other nodes hear it
    /// through the bus), with its position in the users' log as a last argument if it has one.
    fn emit<'a>(
        &'a self,
        namespaces: Vec<&'static str>,
        rooms: Vec<String>,
        event: &'a str,
        payload: &'a RawValue,
        offset: Option<&'a str>,
    ) -> BoxFuture<'a, ()>;
    /// Disconnects `room`'s sockets on every node, after sending them `last` (an event and its
    /// payload) if given; returns how many namespaces failed to reach the other nodes.
    fn disconnect(
        &self,
        room: String,
        last: Option<(&'static str, Box<RawValue>)>,
    ) -> BoxFuture<'_, u64>;
    /// Makes `room`'s sockets leave `left`, on every node; returns how many namespaces failed
    /// to reach the other nodes.
    fn leave(&self, room: String, left: String) -> BoxFuture<'_, u64>;
    fn emit_admins<'a>(&'a self, event: &'a str, payload: &'a RawValue) -> BoxFuture<'a, ()>;
    fn has_local_admins(&self) -> bool;
    fn local_admins(&self) -> Vec<i64>;
    fn revoke_admin(&self, user_id: i64) -> BoxFuture<'_, ()>;
    fn close(&self) -> BoxFuture<'_, ()>;
}

impl<A: Adapter> Rooms for SocketIo<A> {
    fn emit<'a>(
        &'a self,
        namespaces: Vec<&'static str>,
        rooms: Vec<String>,
        event: &'a str,
        payload: &'a RawValue,
        offset: Option<&'a str>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            for ns in namespaces {
                let Some(op) = self.of(ns) else { continue };
                let to = op.local().to(rooms.clone());
                if let Err(e) = emit_with_offset(to, event, payload, offset).await {
                    // A socket whose queue is full is being closed (engineioxide's bound).
                    tracing::debug!(error = %e, event, "emit failed");
                }
            }
        })
    }

    fn disconnect(
        &self,
        room: String,
        last: Option<(&'static str, Box<RawValue>)>,
    ) -> BoxFuture<'_, u64> {
        Box::pin(async move {
            let mut failures = 0;
            for (i, ns) in self.nsps().into_iter().enumerate() {
                if let Some((event, payload)) = &last {
                    // Through the adapter like the disconnect that follows, so each node sends
                    // it before it disconnects.
                    if let Err(e) = ns.clone().to(room.clone()).emit(*event, payload).await {
                        tracing::debug!(error = %e, "last words failed");
                    }
                }
                if let Err(e) = ns.to(room.clone()).disconnect().await {
                    // Here at least; the other nodes close theirs when they revalidate.
                    tracing::warn!(error = %e, "disconnect failed; disconnecting on this node");
                    failures += 1;
                    if let Some(ns) = self.nsps().into_iter().nth(i) {
                        let _ = ns.local().to(room.clone()).disconnect().await;
                    }
                }
            }
            failures
        })
    }

    fn leave(&self, room: String, left: String) -> BoxFuture<'_, u64> {
        Box::pin(async move {
            let mut failures = 0;
            for (i, ns) in self.nsps().into_iter().enumerate() {
                if let Err(e) = ns.to(room.clone()).leave(left.clone()).await {
                    tracing::warn!(error = %e, "leaving a room failed; leaving on this node");
                    failures += 1;
                    if let Some(ns) = self.nsps().into_iter().nth(i) {
                        let _ = ns.local().to(room.clone()).leave(left.clone()).await;
                    }
                }
            }
            failures
        })
    }

    fn emit_admins<'a>(&'a self, event: &'a str, payload: &'a RawValue) -> BoxFuture<'a, ()> {
        Box::pin(admin::emit(self, event, payload))
    }

    fn has_local_admins(&self) -> bool {
        admin::any(self)
    }

    fn local_admins(&self) -> Vec<i64> {
        admin::users(self)
    }

    fn revoke_admin(&self, user_id: i64) -> BoxFuture<'_, ()> {
        Box::pin(admin::revoke(self, user_id))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(SocketIo::close(self))
    }
}

/// Emits `payload` to the rooms of `to`; a logged event carries its position as a last
/// argument, as socket.io's connection state recovery has it (a tuple is spread into
/// arguments).
async fn emit_with_offset<A: Adapter>(
    to: BroadcastOperators<A>,
    event: &str,
    payload: &RawValue,
    offset: Option<&str>,
) -> Result<(), socketioxide::BroadcastError> {
    match offset {
        Some(offset) => to.emit(event, &(payload, offset)).await,
        None => to.emit(event, payload).await,
    }
}
