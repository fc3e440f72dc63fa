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
//!
//! Whoever can PUBLISH on the Redis could otherwise reach every user's tabs: each burst carries
//! a MAC under a key derived from the nodes' shared secret, and the time it was made; a burst
//! that fails the MAC, or is more than a minute old (a recorded one played again), is dropped
//! and counted (`missive_bus_rejected_total`).

use std::sync::Weak;

use hmac::Mac;

pub use crate::service::redis_conn::BusKey;

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
#[derive(Debug, Serialize, Deserialize)]
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

/// Length of a burst's MAC (HMAC-SHA256), in bytes.
const MAC_LEN: usize = 32;

/// How old a burst may be when it arrives (clocks of the nodes may differ by a little).
const MAX_AGE_MICROS: i64 = 60_000_000;

/// What one publish carries: the id of the node that emitted the events, a newline, the time
/// it was made (microseconds) and a newline, the events in order as a JSON array, then the MAC
/// of all that (a node skips its own bursts without checking or decoding them).
fn burst(key: &BusKey, node: &str, packets: &[Packet]) -> serde_json::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(node.len() + 24 + packets.len() * 256 + MAC_LEN);
    bytes.extend_from_slice(node.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(crate::ids::now_micros().to_string().as_bytes());
    bytes.push(b'\n');
    serde_json::to_writer(&mut bytes, packets)?;
    let mut mac = key.mac();
    mac.update(&bytes);
    bytes.extend_from_slice(&mac.finalize().into_bytes());
    Ok(bytes)
}

/// What a burst from the Redis channel turned out to be.
#[derive(Debug)]
enum Heard {
    /// This node's own.
    Own,
    /// Another node's events.
    Events(Vec<Packet>),
    /// Not made by a node that knows the secret, altered, or too old: dropped.
    Rejected(&'static str),
}

/// Checks and reads a burst, as node `node` hears it at time `now`.
fn hear(key: &BusKey, node: &str, bytes: &[u8], now: i64) -> Heard {
    let Some(split) = bytes.iter().position(|b| *b == b'\n') else {
        return Heard::Rejected("no header");
    };
    if &bytes[..split] == node.as_bytes() {
        return Heard::Own;
    }
    let Some(signed_len) = bytes.len().checked_sub(MAC_LEN) else {
        return Heard::Rejected("too short");
    };
    let (signed, tag) = bytes.split_at(signed_len);
    let mut mac = key.mac();
    mac.update(signed);
    if mac.verify_slice(tag).is_err() {
        return Heard::Rejected("bad MAC");
    }
    let rest = &signed[split + 1..];
    let Some(time_end) = rest.iter().position(|b| *b == b'\n') else {
        return Heard::Rejected("no time");
    };
    let made: Option<i64> = std::str::from_utf8(&rest[..time_end])
        .ok()
        .and_then(|t| t.parse().ok());
    match made {
        Some(made) if (now - made).abs() <= MAX_AGE_MICROS => {}
        _ => return Heard::Rejected("too old"),
    }
    match serde_json::from_slice(&rest[time_end + 1..]) {
        Ok(packets) => Heard::Events(packets),
        Err(_) => Heard::Rejected("unreadable"),
    }
}

/// What the bus hands other nodes' events to (the notifier).
pub trait Listener: Send + Sync + 'static {
    /// Emits another node's event to this node's sockets.
    fn emit_here<'a>(&'a self, packet: &'a Packet) -> BoxFuture<'a, ()>;
    /// A burst did not reach the other nodes.
    fn publish_failed(&self);
    /// A burst failed its MAC or was too old, and was dropped.
    fn burst_rejected(&self);
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
        key: BusKey,
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
            key.clone(),
            listener.clone(),
        ));
        tokio::spawn(async move {
            while let Some((_, bytes)) = incoming.next().await {
                let Some(listener) = listener.upgrade() else {
                    break;
                };
                match hear(&key, &node, &bytes, crate::ids::now_micros()) {
                    Heard::Own => {}
                    Heard::Events(packets) => {
                        for packet in &packets {
                            listener.emit_here(packet).await;
                        }
                    }
                    Heard::Rejected(why) => {
                        tracing::warn!(why, "event burst from redis rejected");
                        listener.burst_rejected();
                    }
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
    key: BusKey,
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
        let bytes = match burst(&key, &node, &packets) {
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
    use super::{BusKey, Heard, MAX_AGE_MICROS, Packet, burst, hear};
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
        let key = BusKey::new("secret");
        let bytes = burst(&key, "node-a", &packets).unwrap();
        let now = missive_now();
        assert!(matches!(hear(&key, "node-a", &bytes, now), Heard::Own));
        let Heard::Events(heard) = hear(&key, "node-b", &bytes, now) else {
            panic!("a burst of a node with the secret was not heard");
        };
        assert_eq!(heard.len(), 2);
        assert_eq!(heard[0].rooms, packets[0].rooms);
        assert_eq!(heard[0].payload.get(), r#"{"body":"a\nb"}"#);
        assert_eq!(heard[0].offset.as_deref(), Some("7"));
        assert!(!heard[0].legacy && heard[1].legacy);
        assert_eq!(heard[1].event, "thread-1");
        assert!(matches!(
            hear(&key, "node-b", b"no newline", now),
            Heard::Rejected(_)
        ));
        // Anyone else who can PUBLISH: without the secret, or altering a burst, or playing a
        // recorded one again later, reaches nobody.
        let forged = burst(&BusKey::new("guess"), "node-a", &packets).unwrap();
        assert!(matches!(
            hear(&key, "node-b", &forged, now),
            Heard::Rejected("bad MAC")
        ));
        let mut altered = bytes.clone();
        let at = altered.iter().position(|b| *b == b'7').unwrap();
        altered[at] = b'8';
        assert!(matches!(
            hear(&key, "node-b", &altered, now),
            Heard::Rejected("bad MAC")
        ));
        assert!(matches!(
            hear(&key, "node-b", &bytes, now + MAX_AGE_MICROS + 1_000_000),
            Heard::Rejected("too old")
        ));
    }

    fn missive_now() -> i64 {
        crate::ids::now_micros()
    }
}
