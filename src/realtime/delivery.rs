//! Delivery by offset: each node hands a user's logged events to that user's sockets in the
//! order of their positions, each once, and fills from the durable log what never reached it.
//!
//! A user's events are written by whichever node handled the change, and reach the other nodes
//! through the bus. Emitted as they came, two nodes writing for one user at once delivered
//! positions out of order (12 after 14), and what the bus lost (Redis away, a node killed
//! between its commit and its publish, a commit answered `unavailable` that went through) never
//! came: socket.io-client recovers from the last offset it heard, so it never asked again.
//!
//! Here every logged event to a user with sockets on this node goes through that user's
//! [`Line`]: the next position is emitted at once; a later one is held until those before it
//! come (normally within milliseconds, over the bus); past [`GAP_WAIT`], or when the user's log
//! has gone further than this node heard for a whole [`HEAD_CHECK`] (nothing came at all),
//! [`watch`] reads the missing positions from the log and emits them, in order, then what was
//! held. A position already emitted is dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use tokio::sync::Mutex;

use crate::service::App;

/// How long a position may wait for those before it before they are read from the log.
pub const GAP_WAIT: Duration = Duration::from_millis(300);

/// How often the heads of the local users' logs are compared with what this node emitted; a
/// gap seen at two checks in a row is filled (nothing came: Redis away, a node killed).
pub const HEAD_CHECK: Duration = Duration::from_secs(1);

/// Events held for one user at most (and their bytes); past it they are dropped and read from
/// the log when the gap is filled.
const MAX_HELD: usize = 4096;
const MAX_HELD_BYTES: usize = 1 << 20;

/// Events read from the log at a time when a gap is filled, and about how many bytes.
const FILL_PAGE: u64 = 500;
const FILL_PAGE_BYTES: usize = 256 * 1024;

/// The delivery state of this node's users that have sockets here.
#[derive(Default)]
pub struct Delivery {
    lines: Mutex<HashMap<i64, Line>>,
}

/// One user's delivery on this node.
struct Line {
    /// The next position to emit.
    next: i64,
    /// The user's messaging sockets on this node.
    sockets: usize,
    /// Events that came before their turn, by position.
    held: BTreeMap<i64, Held>,
    held_bytes: usize,
    /// The highest position heard (held or dropped).
    highest: i64,
    /// Since when a gap has been waited on.
    waiting_since: Option<Instant>,
    /// A fill from the log is running.
    filling: bool,
    /// The head of the user's log at the last check.
    seen_head: i64,
}

struct Held {
    event: String,
    payload: Box<RawValue>,
}

/// What to emit, in order: (position, event, payload).
pub type Ready = Vec<(i64, String, Box<RawValue>)>;

impl Line {
    /// Takes the held events that are next in turn (and drops those already emitted).
    fn drain(&mut self, ready: &mut Ready) {
        while let Some(entry) = self.held.first_entry() {
            let at = *entry.key();
            if at > self.next {
                break;
            }
            let held = entry.remove();
            self.held_bytes -= held.payload.get().len();
            if at == self.next {
                ready.push((at, held.event, held.payload));
                self.next += 1;
            }
        }
        if self.held.is_empty() && self.highest < self.next {
            self.waiting_since = None;
        }
    }
}

impl Delivery {
    /// A messaging socket of `user_id` opened here; their log stood at `log_seq` when it was
    /// authenticated (it hears what comes after). `join` (the socket joining the user's room)
    /// runs under the lines' lock: no event is delivered between the two.
    pub async fn opened(&self, user_id: i64, log_seq: i64, join: impl FnOnce()) {
        let mut lines = self.lines.lock().await;
        join();
        let line = lines.entry(user_id).or_insert_with(|| Line {
            next: log_seq + 1,
            sockets: 0,
            held: BTreeMap::new(),
            held_bytes: 0,
            highest: log_seq,
            waiting_since: None,
            filling: false,
            seen_head: log_seq,
        });
        line.sockets += 1;
    }

    /// A messaging socket of `user_id` closed here.
    pub async fn closed(&self, user_id: i64) {
        let mut lines = self.lines.lock().await;
        if let Some(line) = lines.get_mut(&user_id) {
            line.sockets -= 1;
            if line.sockets == 0 {
                lines.remove(&user_id);
            }
        }
    }

    /// The users with sockets here.
    async fn users(&self) -> Vec<i64> {
        self.lines.lock().await.keys().copied().collect()
    }
}

/// What delivers a user's logged events to their sockets on this node (the notifier): the
/// lines it keeps, and the emit of an event whose turn has come.
pub trait Emitter: Send + Sync {
    fn delivery(&self) -> &Delivery;
    fn emit_logged<'a>(
        &'a self,
        user_id: i64,
        offset: i64,
        event: &'a str,
        payload: &'a RawValue,
    ) -> futures_util::future::BoxFuture<'a, ()>;
}

impl dyn Emitter + '_ {
    /// Emits `user_id`'s logged event at `offset` to their sockets here in its turn: at once if
    /// it is next, held if it came early, dropped if it was emitted already. A user without
    /// sockets here has no line: nothing to emit.
    pub async fn deliver(&self, user_id: i64, offset: i64, event: &str, payload: &RawValue) {
        // Outside tokio's cooperative budget: the announcer delivers thousands of events a
        // batch, and a budgeted lock made it yield every 128 of them.
        let mut lines = tokio::task::unconstrained(self.delivery().lines.lock()).await;
        let Some(line) = lines.get_mut(&user_id) else {
            return;
        };
        if offset < line.next {
            return;
        }
        if offset == line.next && line.held.is_empty() {
            line.next += 1;
            self.emit_logged(user_id, offset, event, payload).await;
            if line.highest < line.next {
                line.waiting_since = None;
            }
            return;
        }
        line.highest = line.highest.max(offset);
        line.waiting_since.get_or_insert_with(Instant::now);
        let size = payload.get().len();
        if line.held.len() < MAX_HELD && line.held_bytes + size <= MAX_HELD_BYTES {
            line.held_bytes += size;
            line.held.insert(
                offset,
                Held {
                    event: event.to_owned(),
                    payload: payload.to_owned(),
                },
            );
        }
        let mut ready = Ready::new();
        line.drain(&mut ready);
        for (at, event, payload) in ready {
            self.emit_logged(user_id, at, &event, &payload).await;
        }
    }

    /// Emits a page read from `user_id`'s log after `after` (through `last`, the last position
    /// read), in turn, then what was held behind it; drops what was emitted already.
    async fn deliver_filled(&self, user_id: i64, page: Ready, last: i64) {
        let mut lines = self.delivery().lines.lock().await;
        let Some(line) = lines.get_mut(&user_id) else {
            return;
        };
        for (at, event, payload) in page {
            if at < line.next {
                continue;
            }
            // Positions the log no longer renders (pruned, or a message gone) are passed.
            line.next = at + 1;
            self.emit_logged(user_id, at, &event, &payload).await;
        }
        line.next = line.next.max(last + 1);
        line.highest = line.highest.max(last);
        let mut ready = Ready::new();
        line.drain(&mut ready);
        for (at, event, payload) in ready {
            self.emit_logged(user_id, at, &event, &payload).await;
        }
    }

    /// Starts a fill of `user_id`'s line if none is running; says up to where to fill.
    async fn start_fill(&self, user_id: i64, until: impl Fn(&Line) -> Option<i64>) -> Option<i64> {
        let mut lines = self.delivery().lines.lock().await;
        let line = lines.get_mut(&user_id)?;
        if line.filling {
            return None;
        }
        let until = until(line).filter(|u| *u >= line.next)?;
        line.filling = true;
        Some(until)
    }

    async fn end_fill(&self, user_id: i64) {
        if let Some(line) = self.delivery().lines.lock().await.get_mut(&user_id) {
            line.filling = false;
        }
    }

    /// Where `user_id`'s line stands: the next position to emit.
    async fn next_of(&self, user_id: i64) -> Option<i64> {
        self.delivery()
            .lines
            .lock()
            .await
            .get(&user_id)
            .map(|l| l.next)
    }

    /// The users whose gap has been waited on for longer than [`GAP_WAIT`].
    async fn overdue(&self) -> Vec<i64> {
        let lines = self.delivery().lines.lock().await;
        lines
            .iter()
            .filter(|(_, l)| !l.filling && l.waiting_since.is_some_and(|t| t.elapsed() >= GAP_WAIT))
            .map(|(u, _)| *u)
            .collect()
    }
}

/// Reads `user_id`'s log from where this node's line stands through `until` and delivers it.
async fn fill(app: &App, notifier: &dyn Emitter, user_id: i64, until: i64) {
    loop {
        let Some(next) = notifier.next_of(user_id).await else {
            break;
        };
        if next > until {
            break;
        }
        match app
            .log_page(user_id, next - 1, FILL_PAGE, FILL_PAGE_BYTES)
            .await
        {
            Ok((page, last, more)) => {
                let page = page
                    .into_iter()
                    .map(|r| (r.seq, r.event.to_owned(), r.payload))
                    .collect();
                notifier.deliver_filled(user_id, page, last).await;
                if !more {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, user_id, "filling a gap from the event log failed");
                break;
            }
        }
    }
    notifier.end_fill(user_id).await;
}

/// Fills the gaps of this node's users: those waited on past [`GAP_WAIT`], and every
/// [`HEAD_CHECK`] those where the user's log went further than this node heard and stayed so
/// since the last check. Runs for as long as the node.
pub async fn watch(app: App, notifier: Arc<dyn Emitter>) {
    if !app.db.log_events {
        return;
    }
    let mut tick = tokio::time::interval(GAP_WAIT / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_check = Instant::now();
    loop {
        tick.tick().await;
        for user_id in notifier.overdue().await {
            if let Some(until) = notifier
                .start_fill(user_id, |l| Some(l.highest.max(l.next)))
                .await
            {
                fill(&app, notifier.as_ref(), user_id, until).await;
            }
        }
        if last_check.elapsed() < HEAD_CHECK {
            continue;
        }
        last_check = Instant::now();
        let ids = notifier.delivery().users().await;
        if ids.is_empty() {
            continue;
        }
        let heads = match app.log_heads(&ids).await {
            Ok(heads) => heads,
            Err(e) => {
                tracing::warn!(error = %e, "reading the log heads failed");
                continue;
            }
        };
        for (user_id, head) in heads {
            let until = notifier
                .start_fill(user_id, |l| {
                    let behind = head >= l.next && l.seen_head >= l.next;
                    behind.then_some(head)
                })
                .await;
            note_head(notifier.as_ref(), user_id, head).await;
            if let Some(until) = until {
                tracing::info!(user_id, until, "delivering events this node missed");
                fill(&app, notifier.as_ref(), user_id, until).await;
            }
        }
    }
}

async fn note_head(notifier: &dyn Emitter, user_id: i64, head: i64) {
    if let Some(line) = notifier.delivery().lines.lock().await.get_mut(&user_id) {
        line.seen_head = head;
    }
}
