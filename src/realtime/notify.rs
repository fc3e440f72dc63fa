//! The Socket.IO notifier: the service's [`Notifier`]. It emits each declared event of a
//! commit to its user's `user:<id>` room, with its position in their log, and its legacy forms
//! to their `legacy:<id>` room, on this node directly and on the others through the bus.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use futures_util::future::BoxFuture;
use serde_json::value::RawValue;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;

use super::adapter::Rooms;
use super::bus::{Bus, Listener, Packet};
use super::delivery::{Delivery, Emitter};
use super::local::LocalSockets;
use super::rooms::{legacy_room, plain_twins, session_room, thread_room, user_of_room, user_room};
use crate::service::Notifier;
use crate::service::events::{Notice, ServerEvent, SessionEnded, Stats};

/// Emits the service's events to user rooms through Socket.IO.
#[derive(Default)]
pub struct SocketIoNotifier {
    rooms: OnceLock<Arc<dyn Rooms>>,
    /// Carries this node's events to the other nodes (clustered only: set, rooms span several
    /// nodes).
    bus: OnceLock<Bus>,
    /// The messaging sockets of this node.
    pub local: LocalSockets,
    /// Event bursts and disconnects that could not reach the other nodes (Redis away).
    adapter_failures: AtomicU64,
    /// Bursts from the bus dropped for a failed MAC or their age.
    bursts_rejected: AtomicU64,
    /// Logged events to this node's users, in the order of their positions.
    pub delivery: Delivery,
}

impl Notifier for SocketIoNotifier {
    /// Each event to its user's tabs, in order: an emit only writes to this node's sockets and
    /// queues the event for the bus, so nothing waits here for another node.
    fn announce<'a>(&'a self, notices: &'a [Notice]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.local.namespaces().is_empty() && self.bus.get().is_none() {
                return;
            }
            // Decided once: the legacy forms are built only if someone may hear them.
            let legacy_heard = self.legacy_heard();
            let mut legacy = Vec::new();
            for n in notices {
                match n.event.payload() {
                    Ok(payload) => {
                        let room = vec![user_room(n.to.id)];
                        self.emit(room, n.event.name(), payload, n.offset, false)
                            .await
                    }
                    Err(e) => tracing::error!(error = %e, "payload did not serialise"),
                }
                if legacy_heard {
                    n.event.legacy(&n.to, &mut legacy);
                    for l in legacy.drain(..) {
                        let room = vec![legacy_room(n.to.id)];
                        self.emit(room, &l.event, l.payload, None, true).await;
                    }
                }
            }
        })
    }

    fn leave_thread<'a>(&'a self, user_id: i64, thread_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(rooms) = self.rooms.get() {
                let failures = rooms
                    .leave(user_room(user_id), thread_room(thread_id))
                    .await;
                self.adapter_failures.fetch_add(failures, Ordering::Relaxed);
            }
        })
    }

    fn disconnect_session<'a>(
        &'a self,
        session_id: &'a str,
        ended: Option<&'a SessionEnded>,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(rooms) = self.rooms.get() {
                let last = ended.and_then(|e| {
                    serde_json::value::to_raw_value(e)
                        .ok()
                        .map(|raw| (SessionEnded::NAME, raw))
                });
                let failures = rooms.disconnect(session_room(session_id), last).await;
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

    fn bursts_rejected(&self) -> u64 {
        self.bursts_rejected.load(Ordering::Relaxed)
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
                rooms.emit_admins(Stats::NAME, &raw).await;
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

impl Emitter for SocketIoNotifier {
    fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    fn emit_logged<'a>(
        &'a self,
        user_id: i64,
        offset: i64,
        event: &'a str,
        payload: &'a RawValue,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.emit_logged_here(user_id, offset, event, payload))
    }
}

impl Listener for SocketIoNotifier {
    fn emit_here<'a>(&'a self, packet: &'a Packet) -> BoxFuture<'a, ()> {
        Box::pin(self.emit_packet(packet))
    }

    fn publish_failed(&self) {
        self.adapter_failures.fetch_add(1, Ordering::Relaxed);
    }

    fn burst_rejected(&self) {
        self.bursts_rejected.fetch_add(1, Ordering::Relaxed);
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
        if packet.legacy && !self.local.any_legacy() {
            return;
        }
        let offset = packet.offset.as_deref().and_then(|o| o.parse().ok());
        if let Some((user_id, offset)) = logged_to_user(&packet.rooms, offset) {
            return (self as &dyn Emitter)
                .deliver(user_id, offset, &packet.event, &packet.payload)
                .await;
        }
        let Some(io) = self.rooms.get() else { return };
        let namespaces = self.local.namespaces();
        if !namespaces.is_empty() {
            self.emit_here(
                io.as_ref(),
                namespaces,
                packet.rooms.clone(),
                &packet.event,
                &packet.payload,
                packet.offset.as_deref(),
            )
            .await;
        }
    }

    /// Emits a logged event at `offset` to `user_id`'s sockets here (its turn has come).
    async fn emit_logged_here(&self, user_id: i64, offset: i64, event: &str, payload: &RawValue) {
        let Some(io) = self.rooms.get() else { return };
        let namespaces = self.local.namespaces();
        if !namespaces.is_empty() {
            let offset = offset.to_string();
            let room = vec![user_room(user_id)];
            self.emit_here(io.as_ref(), namespaces, room, event, payload, Some(&offset))
                .await;
        }
    }

    /// Emits to this node's sockets in `rooms`, and to the sockets that asked for no offsets
    /// (the plain twins of the user rooms), if this node has any, without the offset.
    async fn emit_here(
        &self,
        io: &dyn Rooms,
        namespaces: Vec<&'static str>,
        rooms: Vec<String>,
        event: &str,
        payload: &RawValue,
        offset: Option<&str>,
    ) {
        let plain = self.local.any_plain().then(|| plain_twins(&rooms));
        io.emit(namespaces.clone(), rooms, event, payload, offset)
            .await;
        if let Some(twins) = plain.filter(|t| !t.is_empty()) {
            io.emit(namespaces, twins, event, payload, None).await;
        }
    }

    /// Whether a legacy event may have a listener: on a single node, only if a socket of this
    /// node hears them; in a cluster, a socket of another node may.
    fn legacy_heard(&self) -> bool {
        self.bus.get().is_some() || self.local.any_legacy()
    }

    /// Emits `payload` to `rooms` on every node, with its position in their user's event log
    /// if it has one.
    async fn emit(
        &self,
        rooms: Vec<String>,
        event: &str,
        payload: Box<RawValue>,
        offset: Option<i64>,
        legacy: bool,
    ) {
        let Some(io) = self.rooms.get() else { return };
        let namespaces = self.local.namespaces();
        let bus = self.bus.get();
        if namespaces.is_empty() && bus.is_none() {
            return;
        }
        let logged = logged_to_user(&rooms, offset);
        let offset = offset.map(|o| o.to_string());
        if let Some((user_id, at)) = logged {
            (self as &dyn Emitter)
                .deliver(user_id, at, event, &payload)
                .await;
        } else if !namespaces.is_empty() {
            self.emit_here(
                io.as_ref(),
                namespaces,
                rooms.clone(),
                event,
                &payload,
                offset.as_deref(),
            )
            .await;
        }
        if let Some(bus) = bus {
            bus.send(Packet {
                rooms,
                event: event.to_owned(),
                payload,
                offset,
                legacy,
            })
            .await;
        }
    }
}

/// The user and position of a logged event to one user's room (what [`SocketIoNotifier::deliver`]
/// puts in order); `None` for anything else.
fn logged_to_user(rooms: &[String], offset: Option<i64>) -> Option<(i64, i64)> {
    let [room] = rooms else { return None };
    Some((user_of_room(room)?, offset?))
}
