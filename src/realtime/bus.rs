//! The cluster's event bus: what one node emits reaches the sockets of every other node in one
//! Redis publish per burst, instead of one per event and namespace.
//!
//! Through socketioxide's Redis adapter, each emit was a publish of its own: a message in a
//! two-person thread made about a dozen (`message:new` to two users on two namespaces, their
//! legacy copies, `unread`), and every node received and decoded every one of them. Here the
//! notifier emits to this node's sockets directly and hands each event to [`Bus::send`]; one task
//! publishes whatever has queued meanwhile as one [`Burst`], and every other node emits its
//! packets to its own sockets. Events keep their order: one queue, one publisher, and Redis
//! delivers one connection's publishes in order.

use std::sync::Weak;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use socketioxide_redis::drivers::Driver;
use tokio::sync::mpsc;

use super::notify::SocketIoNotifier;
use super::redis_driver::HealingDriver;

/// Events waiting for the publisher: the announcer waits when this many are queued (Redis is
/// slow), rather than letting the queue grow without bound.
const QUEUE: usize = 16 * 1024;

/// Most events in one publish.
const MAX_BURST: usize = 4096;

/// One event to rooms of every messaging namespace.
#[derive(Serialize, Deserialize)]
pub struct Packet {
    pub rooms: Vec<String>,
    pub event: String,
    pub payload: Box<RawValue>,
    /// Its position in the users' event log (recovery), if logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// A legacy Flask-Messaging event: a node without legacy sockets skips it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legacy: bool,
}

/// What one publish carries: the events one node emitted, in order.
#[derive(Serialize, Deserialize)]
struct Burst {
    node: String,
    packets: Vec<Packet>,
}

/// This node's end of the bus.
pub struct Bus {
    tx: mpsc::Sender<Packet>,
    driver: HealingDriver,
    channel: String,
}

impl Bus {
    /// Starts the publisher, and the subscriber that hands other nodes' events to `notifier`.
    pub async fn start(
        driver: HealingDriver,
        prefix: &str,
        notifier: Weak<SocketIoNotifier>,
    ) -> anyhow::Result<Bus> {
        let channel = format!("{prefix}#missive#events");
        let node = crate::ids::hex_id();
        let mut incoming = driver.subscribe(channel.clone(), 1024).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(publish(
            rx,
            driver.clone(),
            channel.clone(),
            node.clone(),
            notifier.clone(),
        ));
        tokio::spawn(async move {
            while let Some((_, bytes)) = incoming.next().await {
                let Some(notifier) = notifier.upgrade() else {
                    break;
                };
                match serde_json::from_slice::<Burst>(&bytes) {
                    Ok(burst) if burst.node == node => {}
                    Ok(burst) => {
                        for packet in &burst.packets {
                            notifier.emit_here(packet).await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "unreadable event burst from redis"),
                }
            }
        });
        Ok(Bus {
            tx,
            driver,
            channel,
        })
    }

    /// Queues `packet` for the other nodes.
    pub async fn send(&self, packet: Packet) {
        let _ = self.tx.send(packet).await;
    }

    /// Stops hearing other nodes (shutdown).
    pub async fn close(&self) {
        let _ = self.driver.unsubscribe(self.channel.clone()).await;
    }
}

/// Publishes what has queued, a burst at a time, until the notifier is gone.
async fn publish(
    mut rx: mpsc::Receiver<Packet>,
    driver: HealingDriver,
    channel: String,
    node: String,
    notifier: Weak<SocketIoNotifier>,
) {
    while let Some(first) = rx.recv().await {
        let mut packets = vec![first];
        while packets.len() < MAX_BURST {
            match rx.try_recv() {
                Ok(p) => packets.push(p),
                Err(_) => break,
            }
        }
        let burst = Burst {
            node: node.clone(),
            packets,
        };
        let bytes = match serde_json::to_vec(&burst) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(error = %e, "event burst did not serialise");
                continue;
            }
        };
        if let Err(e) = driver.publish(channel.clone(), bytes).await {
            // This node's sockets heard them; the other nodes' tabs recover the gap from the
            // event log when they reconnect.
            tracing::warn!(error = %e, events = burst.packets.len(), "publishing events failed");
            if let Some(n) = notifier.upgrade() {
                n.adapter_failed(1);
            }
        }
    }
}
