//! The heartbeats of every socket of an engine, kept by one task.
//!
//! Upstream spawns a task per socket that sleeps between pings (about 1.3 KiB per socket,
//! with its pong channel). Here one task per engine keeps a queue of what is due next, by
//! socket id: a ping (v4), the check that the ping was answered, or the deadline by which a v3
//! client must have pinged. The transports only note the time of each ping or pong they read
//! ([`Socket::heard`]); a v3 client's ping is answered right where it is read.
//!
//! Timing is the reference server's: the first ping one interval after the session opens (not
//! at once, as upstream did), a session closed when its ping is not answered within the timeout,
//! the next ping one interval after the last if it was answered by then (else when the answer is
//! found, at the timeout). A v3 session is closed when its client has not pinged for
//! the interval plus the timeout.

use std::{
    cmp::Ordering,
    collections::BinaryHeap,
    sync::{Arc, OnceLock, Weak},
};

#[cfg(feature = "v3")]
use engineioxide_core::ProtocolVersion;
use engineioxide_core::Sid;
use tokio::{sync::mpsc, time::Instant};

use crate::{engine::EngineIo, handler::EngineIoHandler, socket::DisconnectReason};

/// The queue's door: sessions to keep a heartbeat for, sent to the engine's heartbeat task,
/// which is started with the first one.
#[derive(Debug, Default)]
pub(crate) struct Heartbeats {
    tx: OnceLock<mpsc::UnboundedSender<(Sid, Instant)>>,
}

impl Heartbeats {
    /// Keeps the heartbeat of the session `sid` of `engine` from now on, until it closes.
    pub(crate) fn watch<H: EngineIoHandler>(&self, engine: &Arc<EngineIo<H>>, sid: Sid) {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(Arc::downgrade(engine), rx));
            tx
        });
        tx.send((sid, Instant::now())).ok();
    }
}

/// What falls due for a session.
#[derive(Debug, Clone, Copy)]
enum Due {
    /// Send a ping (v4).
    Ping,
    /// The ping due at `ping_at`, sent at `sent_at` (socket time `sent`), must have been
    /// answered: checked after the interval if it is the shorter, and at the timeout.
    Pong {
        ping_at: Instant,
        sent_at: Instant,
        sent: u64,
    },
    /// A v3 client must have pinged within the interval and the timeout.
    #[cfg(feature = "v3")]
    ClientPing,
}

#[derive(Debug)]
struct Entry {
    at: Instant,
    /// Breaks ties in arrival order, and makes the order total.
    seq: u64,
    sid: Sid,
    due: Due,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed, so that the heap's top is the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The due times of every session, earliest first.
#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, at: Instant, sid: Sid, due: Due) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            sid,
            due,
        });
    }
}

/// The engine's heartbeat task: ends when the engine is dropped.
async fn run<H: EngineIoHandler>(
    engine: Weak<EngineIo<H>>,
    mut rx: mpsc::UnboundedReceiver<(Sid, Instant)>,
) {
    let mut queue = Queue::default();
    let mut due_now = Vec::new();
    let sleep = tokio::time::sleep(std::time::Duration::ZERO);
    tokio::pin!(sleep);
    let mut armed = None;
    loop {
        let next = queue.heap.peek().map(|e| e.at);
        if next.is_some() && next != armed {
            sleep.as_mut().reset(next.unwrap());
            armed = next;
        }
        tokio::select! {
            biased;
            watched = rx.recv() => {
                let Some((sid, since)) = watched else { return };
                let Some(engine) = engine.upgrade() else { return };
                first_due(&engine, &mut queue, sid, since);
            }
            () = &mut sleep, if next.is_some() => {
                armed = None;
                let Some(engine) = engine.upgrade() else { return };
                let now = Instant::now();
                while queue.heap.peek().is_some_and(|e| e.at <= now) {
                    due_now.extend(queue.heap.pop());
                }
                for entry in due_now.drain(..) {
                    fall_due(&engine, &mut queue, entry, now);
                }
            }
        }
    }
}

fn first_due<H: EngineIoHandler>(
    engine: &EngineIo<H>,
    queue: &mut Queue,
    sid: Sid,
    since: Instant,
) {
    let config = &engine.config;
    #[cfg(feature = "v3")]
    if let Some(socket) = engine.get_socket(sid)
        && socket.protocol == ProtocolVersion::V3
    {
        socket.heard();
        queue.push(
            since + config.ping_interval + config.ping_timeout,
            sid,
            Due::ClientPing,
        );
        return;
    }
    queue.push(since + config.ping_interval, sid, Due::Ping);
}

/// Does what `entry` asks of its session, if it is still open, and queues what follows.
fn fall_due<H: EngineIoHandler>(
    engine: &EngineIo<H>,
    queue: &mut Queue,
    entry: Entry,
    now: Instant,
) {
    let Some(socket) = engine.get_socket(entry.sid) else {
        return;
    };
    if socket.cancellation_token.is_cancelled() {
        return;
    }
    let (interval, timeout) = (engine.config.ping_interval, engine.config.ping_timeout);
    match entry.due {
        Due::Ping if socket.is_upgrading() => queue.push(entry.at + interval, entry.sid, Due::Ping),
        Due::Ping => {
            #[cfg(feature = "tracing")]
            tracing::trace!(sid = ?socket.id, "emitting ping");
            let sent = socket.clock();
            if socket
                .send_heartbeat(engineioxide_core::Packet::Ping)
                .is_err()
            {
                socket.close(DisconnectReason::HeartbeatTimeout);
                return;
            }
            let due = Due::Pong {
                ping_at: entry.at,
                sent_at: now,
                sent,
            };
            queue.push(now + timeout.min(interval), entry.sid, due);
        }
        Due::Pong {
            ping_at,
            sent_at,
            sent,
        } => {
            if socket.last_heard() >= sent {
                queue.push((ping_at + interval).max(now), entry.sid, Due::Ping);
            } else if now >= sent_at + timeout {
                #[cfg(feature = "tracing")]
                tracing::debug!(sid = ?socket.id, "heartbeat timeout: no pong");
                socket.close(DisconnectReason::HeartbeatTimeout);
            } else {
                queue.push(sent_at + timeout, entry.sid, entry.due);
            }
        }
        #[cfg(feature = "v3")]
        Due::ClientPing => {
            let deadline = socket.instant_of(socket.last_heard()) + interval + timeout;
            if deadline <= now {
                #[cfg(feature = "tracing")]
                tracing::debug!(sid = ?socket.id, "heartbeat timeout: no ping");
                socket.close(DisconnectReason::HeartbeatTimeout);
                return;
            }
            queue.push(deadline, entry.sid, Due::ClientPing);
        }
    }
}
