//! The cluster's event bus: what one node emits reaches the sockets of every other node in one
//! Redis publish per burst, instead of one per event and namespace.
//!
//! Through socketioxide's Redis adapter, each emit was a publish of its own: a message in a
//! two-person thread made about a dozen (`message:new` to two users on two namespaces, their
//! legacy copies, `unread`), and every node received and decoded every one of them. Here the
//! notifier emits to this node's sockets directly and hands each event to [`Bus::send`]; one task
//! publishes whatever has queued meanwhile as one burst, and every other node emits its
//! packets to its own sockets. Events keep their order: one queue, one publisher, and Redis
//! delivers one connection's publishes in order.

use std::sync::Weak;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use socketioxide_redis::drivers::Driver;
use tokio::sync::mpsc;

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

/// What one publish carries: the id of the node that emitted the events, a newline, and the
/// events in order as a JSON array (a node skips its own bursts without decoding them).
fn burst(node: &str, packets: &[Packet]) -> serde_json::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(node.len() + 1 + packets.len() * 256);
    bytes.extend_from_slice(node.as_bytes());
    bytes.push(b'\n');
    serde_json::to_writer(&mut bytes, packets)?;
    Ok(bytes)
}

/// The events of a burst from another node than `node`.
fn others(node: &str, bytes: &[u8]) -> Option<serde_json::Result<Vec<Packet>>> {
    let split = bytes.iter().position(|b| *b == b'\n')?;
    (&bytes[..split] != node.as_bytes()).then(|| serde_json::from_slice(&bytes[split + 1..]))
}

/// What the bus hands other nodes' events to (the notifier).
pub trait Listener: Send + Sync + 'static {
    /// Emits another node's event to this node's sockets.
    fn emit_here<'a>(&'a self, packet: &'a Packet) -> BoxFuture<'a, ()>;
    /// A burst did not reach the other nodes.
    fn publish_failed(&self);
}

/// This node's end of the bus.
pub struct Bus {
    tx: mpsc::Sender<Packet>,
    driver: HealingDriver,
    channel: String,
}

impl Bus {
    /// Starts the publisher, and the subscriber that hands other nodes' events to `listener`
    /// for as long as it lives.
    pub async fn start(
        driver: HealingDriver,
        prefix: &str,
        listener: Weak<dyn Listener>,
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
            listener.clone(),
        ));
        tokio::spawn(async move {
            while let Some((_, bytes)) = incoming.next().await {
                let Some(listener) = listener.upgrade() else {
                    break;
                };
                match others(&node, &bytes) {
                    None => {}
                    Some(Ok(packets)) => {
                        for packet in &packets {
                            listener.emit_here(packet).await;
                        }
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "unreadable event burst from redis"),
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
    listener: Weak<dyn Listener>,
) {
    while let Some(first) = rx.recv().await {
        let mut packets = vec![first];
        while packets.len() < MAX_BURST {
            match rx.try_recv() {
                Ok(p) => packets.push(p),
                Err(_) => break,
            }
        }
        let bytes = match burst(&node, &packets) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(error = %e, "event burst did not serialise");
                continue;
            }
        };
        if let Err(e) = driver.publish(channel.clone(), bytes).await {
            // This node's sockets heard them; the other nodes' tabs do not (Redis is away:
            // publishes fail at once for half a second after one failed).
            tracing::warn!(error = %e, events = packets.len(), "publishing events failed");
            if let Some(listener) = listener.upgrade() {
                listener.publish_failed();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Packet, burst, others};
    use serde_json::value::to_raw_value;

    #[test]
    fn a_burst_reaches_the_other_nodes_and_not_its_own() {
        let packets = vec![
            Packet {
                rooms: vec!["user:1".into(), "user:2".into()],
                event: "message:new".into(),
                payload: to_raw_value(&serde_json::json!({"body": "a\nb"})).unwrap(),
                offset: Some("7".into()),
                legacy: false,
            },
            Packet {
                rooms: vec!["legacy:2".into()],
                event: "thread-1".into(),
                payload: to_raw_value(&serde_json::json!({"message_url": "u"})).unwrap(),
                offset: None,
                legacy: true,
            },
        ];
        let bytes = burst("node-a", &packets).unwrap();
        assert!(others("node-a", &bytes).is_none());
        let heard = others("node-b", &bytes).unwrap().unwrap();
        assert_eq!(heard.len(), 2);
        assert_eq!(heard[0].rooms, packets[0].rooms);
        assert_eq!(heard[0].payload.get(), r#"{"body":"a\nb"}"#);
        assert_eq!(heard[0].offset.as_deref(), Some("7"));
        assert!(!heard[0].legacy && heard[1].legacy);
        assert_eq!(heard[1].event, "thread-1");
        assert!(others("node-b", b"no newline").is_none());
    }
}
