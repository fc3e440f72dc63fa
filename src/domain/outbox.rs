//! The one path of every change that users' tabs must hear: written with its events in one
//! transaction (the events to the users' logs), committed, then announced in commit order.
//!
//! Each node has one [`Outbox`]: a queue that the service's announcer reads in order, and a
//! turn that every write with logged events holds from before its transaction begins until
//! its announcement is queued. So the queue's order is the commit order of the node's writes
//! (on PostgreSQL as on SQLite, whose write gate is taken inside the turn), and a tab hears
//! one user's events in the order of their positions. A write of another node reaches this
//! node's tabs through the cluster's bus, in that node's order.

use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard, mpsc, oneshot};

use super::event_log::{self, Entry};
use super::events::{Notice, ServerEvent};
use super::views::UserRef;
use super::{DomainError, DomainResult};
use crate::db::{Database, WriteTxn};

/// The events of one commit, in order, and what to do once they have been emitted.
pub struct Announcement {
    pub notices: Vec<Notice>,
    done: Box<dyn FnOnce() + Send>,
}

impl Announcement {
    pub fn new(notices: Vec<Notice>, done: impl FnOnce() + Send + 'static) -> Announcement {
        Announcement {
            notices,
            done: Box::new(done),
        }
    }

    /// An announcement whose receiver hears once it is out.
    fn signalled(notices: Vec<Notice>) -> (Announcement, oneshot::Receiver<()>) {
        let (done, out) = oneshot::channel();
        let announcement = Announcement::new(notices, move || {
            let _ = done.send(());
        });
        (announcement, out)
    }

    /// The events went out: answers whoever waits for them, and hands the events back.
    pub fn finish(self) -> Vec<Notice> {
        (self.done)();
        self.notices
    }
}

/// The node's queue of announcements, in commit order.
#[derive(Clone)]
pub struct Outbox(Arc<Inner>);

struct Inner {
    queue: mpsc::UnboundedSender<Announcement>,
    turn: Mutex<()>,
}

/// The right to commit a write with logged events and queue its announcement next.
pub struct Turn<'a> {
    outbox: &'a Outbox,
    _held: MutexGuard<'a, ()>,
}

impl Outbox {
    /// The outbox, and the queue its announcements come out of.
    pub fn new() -> (Outbox, mpsc::UnboundedReceiver<Announcement>) {
        let (queue, out) = mpsc::unbounded_channel();
        let inner = Inner {
            queue,
            turn: Mutex::new(()),
        };
        (Outbox(Arc::new(inner)), out)
    }

    /// Waits for this node's writes before it to have queued their announcements.
    pub async fn turn(&self) -> Turn<'_> {
        Turn {
            outbox: self,
            _held: self.0.turn.lock().await,
        }
    }

    /// Queues an announcement; it goes out after those queued before it.
    pub fn queue(&self, announcement: Announcement) -> DomainResult<()> {
        self.0
            .queue
            .send(announcement)
            .map_err(|_| DomainError::Internal("the announcer has stopped".into()))
    }

    /// Queues events that carry no position (nothing was written) and waits until they are
    /// out.
    pub async fn announce(&self, notices: Vec<Notice>) -> DomainResult<()> {
        let (announcement, out) = Announcement::signalled(notices);
        self.queue(announcement)?;
        out.await
            .map_err(|_| DomainError::Internal("the announcer has stopped".into()))
    }

    /// Begins a write whose events will be announced: takes the turn, then the transaction.
    pub async fn begin<'a>(&'a self, db: &'a Database) -> DomainResult<Write<'a>> {
        let turn = self.turn().await;
        let txn = db.begin_write().await?;
        Ok(Write {
            db,
            turn,
            txn,
            notices: Vec::new(),
        })
    }
}

impl Turn<'_> {
    /// Queues the announcement of the commit just made, and gives the turn up.
    pub fn queue(self, announcement: Announcement) -> DomainResult<()> {
        self.outbox.queue(announcement)
    }
}

/// Writes the logged events of `notices` to their users' logs in `txn` (with the log on) and
/// gives each its position.
pub async fn log(db: &Database, txn: &WriteTxn<'_>, notices: &mut [Notice]) -> DomainResult<()> {
    if !db.log_events {
        return Ok(());
    }
    let (at, entries): (Vec<usize>, Vec<Entry>) = notices
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some((i, n.event.log_entry(n.to.id)?)))
        .unzip();
    let seqs = event_log::append(&**txn, &entries, crate::ids::now_micros()).await?;
    for (i, seq) in at.into_iter().zip(seqs) {
        notices[i].offset = Some(seq);
    }
    Ok(())
}

/// A write in progress: its transaction, the outbox's turn, and the events it will announce.
pub struct Write<'a> {
    db: &'a Database,
    turn: Turn<'a>,
    txn: WriteTxn<'a>,
    notices: Vec<Notice>,
}

impl Write<'_> {
    /// The transaction.
    pub fn txn(&self) -> &sea_orm::DatabaseTransaction {
        &self.txn
    }

    /// `event` to `to`'s tabs once committed (and to their log, if the event is logged).
    pub fn tell<E: ServerEvent>(&mut self, to: &UserRef, event: E) {
        self.notices.push(Notice::new(to, event));
    }

    /// Events already made, to their users' tabs once committed.
    pub fn extend(&mut self, notices: impl IntoIterator<Item = Notice>) {
        self.notices.extend(notices);
    }

    /// Logs the events, commits, and returns once every tab of this node has been told (the
    /// other nodes' as soon as the bus carries them).
    pub async fn commit(self) -> DomainResult<()> {
        let Write {
            db,
            turn,
            txn,
            mut notices,
        } = self;
        log(db, &txn, &mut notices).await?;
        txn.commit().await?;
        let (announcement, out) = Announcement::signalled(notices);
        turn.queue(announcement)?;
        out.await
            .map_err(|_| DomainError::Internal("the announcer has stopped".into()))
    }
}
