//! The Socket.IO notifier: the service's [`Notifier`], emitting every server -> client event
//! after its transaction committed, and only to the rooms of the users concerned (never to a
//! whole namespace).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::value::RawValue;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::operators::BroadcastOperators;

use super::MESSAGING_NAMESPACES;
use super::bus::{Bus, Listener, Packet};
use super::connect::SocketUser;
use super::protocol::{
    self, LegacyDeletion, LegacyNewMessage, LegacyNotify, MESSAGE_DELETED, MESSAGE_NEW, NewMessage,
    PRESENCE, Presence, STATS, THREAD_DELETED, THREAD_READ, ThreadRead, UNREAD,
};
use crate::service::ops::Stats;
use crate::service::{
    MessageDeleted, Notifier, ReadOutcome, SendOutcome, ThreadDeleted, UnreadCounts, UserRef,
};

/// Room of every socket of one user.
pub fn user_room(user_id: i64) -> String {
    format!("user:{user_id}")
}

/// Room of the sockets of one user that hear the legacy Flask-Messaging events: every socket
/// but those of native clients, which say `legacy: false` in their CONNECT payload.
pub fn legacy_room(user_id: i64) -> String {
    format!("legacy:{user_id}")
}

/// Room of every socket of one login session.
pub fn session_room(session_id: &str) -> String {
    format!("session:{session_id}")
}

/// Room of sockets viewing one thread (joined after a participant check).
pub fn thread_room(thread_id: &str) -> String {
    format!("thread:{thread_id}")
}

/// What the notifier needs from Socket.IO, whatever the adapter.
trait Rooms: Send + Sync {
    fn emit<'a>(
        &'a self,
        namespaces: Vec<&'static str>,
        rooms: Vec<String>,
        event: &'a str,
        payload: &'a RawValue,
        offset: Option<&'a str>,
    ) -> BoxFuture<'a, ()>;
    fn disconnect(&self, room: String) -> BoxFuture<'_, u64>;
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
        // This node's sockets only: the other nodes hear it through the bus (bus.rs).
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

    fn disconnect(&self, room: String) -> BoxFuture<'_, u64> {
        Box::pin(async move {
            let mut failures = 0;
            for (i, ns) in self.nsps().into_iter().enumerate() {
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

    fn emit_admins<'a>(&'a self, event: &'a str, payload: &'a RawValue) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(op) = self.of(super::admin::NAMESPACE) {
                let _ = op.local().to(super::admin::ROOM).emit(event, payload).await;
            }
        })
    }

    fn has_local_admins(&self) -> bool {
        self.of(super::admin::NAMESPACE)
            .is_some_and(|op| !op.local().to(super::admin::ROOM).sockets().is_empty())
    }

    fn local_admins(&self) -> Vec<i64> {
        let Some(op) = self.of(super::admin::NAMESPACE) else {
            return Vec::new();
        };
        let mut users: Vec<i64> = op
            .local()
            .to(super::admin::ROOM)
            .sockets()
            .iter()
            .filter_map(|s| s.extensions.get::<Arc<SocketUser>>())
            .map(|me| me.who.id())
            .collect();
        users.sort_unstable();
        users.dedup();
        users
    }

    fn revoke_admin(&self, user_id: i64) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(op) = self.of(super::admin::NAMESPACE) {
                let room = super::admin::admin_room(user_id);
                if let Err(e) = op.local().to(room).disconnect().await {
                    tracing::warn!(error = %e, "closing a demoted admin's sockets failed");
                }
            }
        })
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

/// Emits the service's events to user rooms through Socket.IO.
#[derive(Default)]
pub struct SocketIoNotifier {
    rooms: OnceLock<Arc<dyn Rooms>>,
    /// Carries this node's events to the other nodes (clustered only: set, rooms span several
    /// nodes).
    bus: OnceLock<Bus>,
    /// Sockets of this node on each of [`MESSAGING_NAMESPACES`].
    local_sockets: [AtomicUsize; MESSAGING_NAMESPACES.len()],
    /// Sockets of this node that hear the legacy events.
    local_legacy_sockets: AtomicUsize,
    /// Event bursts and disconnects that could not reach the other nodes (Redis away).
    adapter_failures: AtomicU64,
}

impl Notifier for SocketIoNotifier {
    /// Every `message:new`, then one `unread` per recipient with their totals after the commit
    /// (the same totals would otherwise go out once per message), in commit order: an emit only
    /// writes to this node's sockets and queues the event for the bus, so nothing waits here
    /// for another node.
    fn messages_sent<'a>(&'a self, outcomes: &'a [SendOutcome]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            for outcome in outcomes {
                self.message_new(outcome).await;
            }
            let mut announced = HashSet::new();
            let unread = outcomes
                .iter()
                .filter_map(|o| match o {
                    SendOutcome::Created { participants, .. } => Some(participants),
                    SendOutcome::Repeated { .. } => None,
                })
                .flatten()
                .filter_map(|p| Some((p, p.unread.as_ref()?)))
                .filter(|(p, _)| announced.insert(p.user.id))
                .collect::<Vec<_>>();
            for (p, counts) in unread {
                self.to_user(&p.user, UNREAD, counts, p.unread_offset).await;
            }
        })
    }

    fn thread_read<'a>(&'a self, r: &'a ReadOutcome) -> BoxFuture<'a, ()> {
        Box::pin(self.emit_thread_read(r))
    }

    fn message_deleted<'a>(&'a self, d: &'a MessageDeleted) -> BoxFuture<'a, ()> {
        Box::pin(self.emit_message_deleted(d))
    }

    fn thread_deleted<'a>(&'a self, d: &'a ThreadDeleted) -> BoxFuture<'a, ()> {
        Box::pin(self.emit_thread_deleted(d))
    }

    fn presence<'a>(
        &'a self,
        event: &'a Presence,
        watchers: &'a [(i64, Option<i64>)],
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.emit_presence(event, watchers))
    }

    fn disconnect_session<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(rooms) = self.rooms.get() {
                let failures = rooms.disconnect(session_room(session_id)).await;
                self.adapter_failures.fetch_add(failures, Ordering::Relaxed);
            }
        })
    }

    fn has_local_admins(&self) -> bool {
        self.rooms.get().is_some_and(|r| r.has_local_admins())
    }

    fn local_admins(&self) -> Vec<i64> {
        self.rooms
            .get()
            .map(|r| r.local_admins())
            .unwrap_or_default()
    }

    fn adapter_failures(&self) -> u64 {
        self.adapter_failures.load(Ordering::Relaxed)
    }

    fn revoke_admin(&self, user_id: i64) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(rooms) = self.rooms.get() {
                rooms.revoke_admin(user_id).await;
            }
        })
    }

    /// `stats` to the admin sockets of this node (each node reports its own figures).
    fn admin_stats<'a>(&'a self, stats: &'a Stats) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(rooms) = self.rooms.get() else {
                return;
            };
            if let Ok(raw) = serde_json::value::to_raw_value(stats) {
                rooms.emit_admins(STATS, &raw).await;
            }
        })
    }

    fn close_all(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(bus) = self.bus.get() {
                bus.close().await;
            }
            if let Some(rooms) = self.rooms.get() {
                rooms.close().await;
            }
        })
    }
}

impl Listener for SocketIoNotifier {
    fn emit_here<'a>(&'a self, packet: &'a Packet) -> BoxFuture<'a, ()> {
        Box::pin(self.emit_packet(packet))
    }

    fn publish_failed(&self) {
        self.adapter_failures.fetch_add(1, Ordering::Relaxed);
    }
}

impl SocketIoNotifier {
    /// Connects the notifier to the Socket.IO server once it is built, and to the other nodes'
    /// through `bus` when clustered.
    pub fn attach<A: Adapter>(&self, io: SocketIo<A>, bus: Option<Bus>) {
        if let Some(bus) = bus {
            let _ = self.bus.set(bus);
        }
        let _ = self.rooms.set(Arc::new(io));
    }

    /// Emits another node's event to this node's sockets.
    async fn emit_packet(&self, packet: &Packet) {
        if packet.legacy && self.local_legacy_sockets.load(Ordering::Relaxed) == 0 {
            return;
        }
        let Some(io) = self.rooms.get() else { return };
        let namespaces = self.namespaces();
        if !namespaces.is_empty() {
            io.emit(
                namespaces,
                packet.rooms.clone(),
                &packet.event,
                &packet.payload,
                packet.offset.as_deref(),
            )
            .await;
        }
    }

    fn counter(&self, ns: &str) -> Option<&AtomicUsize> {
        MESSAGING_NAMESPACES
            .iter()
            .position(|n| *n == ns)
            .map(|i| &self.local_sockets[i])
    }

    /// A socket joined messaging namespace `ns` on this node.
    pub fn socket_opened(&self, ns: &str, legacy: bool) {
        if let Some(c) = self.counter(ns) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if legacy {
            self.local_legacy_sockets.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A socket left messaging namespace `ns` on this node.
    pub fn socket_closed(&self, ns: &str, legacy: bool) {
        if let Some(c) = self.counter(ns) {
            c.fetch_sub(1, Ordering::Relaxed);
        }
        if legacy {
            self.local_legacy_sockets.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether a legacy event may have a listener: on a single node, only if a socket of this
    /// node hears them; in a cluster, a socket of another node may.
    fn legacy_heard(&self) -> bool {
        self.bus.get().is_some() || self.local_legacy_sockets.load(Ordering::Relaxed) > 0
    }

    /// The namespaces of this node worth emitting to: those with sockets (an emit serialises
    /// its packet before it looks for listeners).
    fn namespaces(&self) -> Vec<&'static str> {
        MESSAGING_NAMESPACES
            .iter()
            .zip(&self.local_sockets)
            .filter(|(_, n)| n.load(Ordering::Relaxed) > 0)
            .map(|(ns, _)| *ns)
            .collect()
    }

    /// Emits `payload` to `rooms` on every node, with its position in their user's event log
    /// if it has one.
    async fn emit_at(
        &self,
        rooms: Vec<String>,
        event: &str,
        payload: &impl Serialize,
        offset: Option<i64>,
        legacy: bool,
    ) {
        let Some(io) = self.rooms.get() else { return };
        let namespaces = self.namespaces();
        let bus = self.bus.get();
        if namespaces.is_empty() && bus.is_none() {
            return;
        }
        // Serialised once, then copied into each namespace's packet and the bus's.
        let raw = match serde_json::value::to_raw_value(payload) {
            Ok(raw) => raw,
            Err(e) => return tracing::error!(error = %e, event, "payload did not serialise"),
        };
        let offset = offset.map(|o| o.to_string());
        if !namespaces.is_empty() {
            io.emit(namespaces, rooms.clone(), event, &raw, offset.as_deref())
                .await;
        }
        if let Some(bus) = bus {
            bus.send(Packet {
                rooms,
                event: event.to_owned(),
                payload: raw,
                offset,
                legacy,
            })
            .await;
        }
    }

    /// A legacy event (no offset) to `rooms`, on every node that has legacy sockets.
    async fn emit_legacy(&self, rooms: Vec<String>, event: &str, payload: &impl Serialize) {
        self.emit_at(rooms, event, payload, None, true).await;
    }

    /// An event to every socket of `user`, at `offset` in their event log.
    async fn to_user(
        &self,
        user: &UserRef,
        event: &str,
        payload: &impl Serialize,
        offset: Option<i64>,
    ) {
        self.emit_at(vec![user_room(user.id)], event, payload, offset, false)
            .await;
    }

    /// A legacy event to the user's sockets that hear them.
    async fn to_legacy(&self, user: &UserRef, event: &str, payload: &impl Serialize) {
        if self.legacy_heard() {
            self.emit_legacy(vec![legacy_room(user.id)], event, payload)
                .await;
        }
    }

    /// `message:new` (+ `W_newmsg`, `<thread_id>`) to every participant of one message.
    async fn message_new(&self, outcome: &SendOutcome) {
        let SendOutcome::Created {
            message,
            rendered,
            participants,
        } = outcome
        else {
            return;
        };
        // Decided once: the legacy payload and event names are built only if someone hears
        // them (this runs for every message, on the announcer's single task).
        let legacy = self.legacy_heard().then(|| LegacyNewMessage {
            message_url: &message.url,
        });
        for p in participants {
            let new = NewMessage {
                message: rendered,
                thread: &p.thread,
            };
            self.to_user(&p.user, MESSAGE_NEW, &new, p.offset).await;
            if let Some(legacy) = &legacy {
                let event = format!("{}_newmsg", p.user.websocket_id);
                self.emit_legacy(vec![legacy_room(p.user.id)], &event, legacy)
                    .await;
            }
        }
        // Same payload for everyone: one packet for all the participants' rooms.
        if let Some(legacy) = &legacy {
            let everyone = participants
                .iter()
                .map(|p| legacy_room(p.user.id))
                .collect();
            self.emit_legacy(everyone, &message.thread_id, legacy).await;
        }
    }

    /// `thread:read` (+ `unread`, `W_notify`) to the reader's tabs.
    async fn emit_thread_read(&self, r: &ReadOutcome) {
        self.to_user(
            &r.reader,
            THREAD_READ,
            &ThreadRead {
                thread_id: r.thread_id.clone(),
                unread: r.unread,
            },
            r.offset,
        )
        .await;
        let notify = format!("{}_notify", r.reader.websocket_id);
        self.to_legacy(
            &r.reader,
            &notify,
            &LegacyNotify {
                kind: "thread",
                notify: "false",
                thread_id: Some(&r.thread_id),
            },
        )
        .await;
        if r.changed {
            self.to_user(&r.reader, UNREAD, &r.unread, r.unread_offset)
                .await;
        }
        if r.unread.messages == 0 {
            self.mailbox_empty(&r.reader).await;
        }
    }

    /// Legacy `W_notify {type: "mailbox", notify: "false"}`: nothing is left unread.
    async fn mailbox_empty(&self, user: &UserRef) {
        let notify = format!("{}_notify", user.websocket_id);
        self.to_legacy(
            user,
            &notify,
            &LegacyNotify {
                kind: "mailbox",
                notify: "false",
                thread_id: None,
            },
        )
        .await;
    }

    /// New unread totals after a deletion, and the legacy mailbox notice if they reached zero.
    async fn unread_after_deletion(
        &self,
        user: &UserRef,
        unread: &UnreadCounts,
        offset: Option<i64>,
    ) {
        self.to_user(user, UNREAD, unread, offset).await;
        if unread.messages == 0 {
            self.mailbox_empty(user).await;
        }
    }

    /// `message:deleted` (+ `W_notify_deletion`, `unread`) to the deleter's tabs.
    async fn emit_message_deleted(&self, d: &MessageDeleted) {
        self.to_user(
            &d.user,
            MESSAGE_DELETED,
            &protocol::MessageDeleted {
                url: d.url.clone(),
                thread_id: d.thread_id.clone(),
                total_messages: d.total_messages,
            },
            d.offset,
        )
        .await;
        self.to_legacy(
            &d.user,
            &format!("{}_notify_deletion", d.user.websocket_id),
            &LegacyDeletion {
                kind: "message",
                message_url: Some(&d.url),
                thread_id: &d.thread_id,
                total_messages: Some(d.total_messages),
                total_threads: None,
            },
        )
        .await;
        if d.unread_changed {
            self.unread_after_deletion(&d.user, &d.unread, d.unread_offset)
                .await;
        }
    }

    /// `thread:deleted` (+ `W_notify_deletion`, `unread`) to the deleter's tabs.
    async fn emit_thread_deleted(&self, d: &ThreadDeleted) {
        self.to_user(
            &d.user,
            THREAD_DELETED,
            &protocol::ThreadDeleted {
                thread_id: d.thread_id.clone(),
                total_threads: d.total_threads,
            },
            d.offset,
        )
        .await;
        self.to_legacy(
            &d.user,
            &format!("{}_notify_deletion", d.user.websocket_id),
            &LegacyDeletion {
                kind: "thread",
                message_url: None,
                thread_id: &d.thread_id,
                total_messages: None,
                total_threads: Some(d.total_threads),
            },
        )
        .await;
        if d.unread_changed {
            self.unread_after_deletion(&d.user, &d.unread, d.unread_offset)
                .await;
        }
    }

    /// `presence` to each of `watchers`, at its position in each one's log.
    async fn emit_presence(&self, event: &Presence, watchers: &[(i64, Option<i64>)]) {
        for (id, offset) in watchers {
            self.emit_at(vec![user_room(*id)], PRESENCE, event, *offset, false)
                .await;
        }
    }
}
