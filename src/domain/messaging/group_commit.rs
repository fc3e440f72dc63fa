//! Group commit: concurrent replies are queued and stored many to a transaction by one writer
//! task, so the per-transaction and per-statement costs are shared. Each sender still waits
//! for the commit that holds its message to be announced before it is answered.
//!
//! The writer holds the outbox's turn (`domain::outbox`) while it stores a batch, so the
//! batch is announced in commit order with every other write of the node; the service's
//! announcer tells the participants, then answers the senders, while the writer is already
//! storing the next batch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use entity::participant;
use sea_orm::DbBackend;
use tokio::sync::{mpsc, oneshot};

use super::batch::{Delivered, Reply, delivered};
use super::queries::find_by_client_id;
use super::{SendOutcome, postgres_batch, sqlite_batch};
use crate::db::Database;
use crate::domain::outbox::{Announcement, Outbox};
use crate::domain::{DomainError, DomainResult};
use crate::ids;
use crate::metrics::Metrics;

/// Most replies stored in one transaction.
const MAX_BATCH: usize = 256;

type Waiter = oneshot::Sender<DomainResult<SendOutcome>>;
type Job = (Reply, Waiter);

/// Handle to the writer task.
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Job>,
    /// Sends submitted and not answered yet (graceful shutdown waits for them).
    pending: Arc<AtomicUsize>,
}

impl GroupCommit {
    /// Starts the writer on `db`; its commits are announced through `outbox`.
    pub fn start(db: Database, outbox: Outbox, metrics: Arc<Metrics>) -> GroupCommit {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (replies, waiters): (Vec<Reply>, Vec<_>) =
                    std::mem::take(&mut batch).into_iter().unzip();
                let turn = outbox.turn().await;
                match store_replies(&db, replies).await {
                    Ok(stored) => {
                        Metrics::inc(&metrics.reply_commits);
                        let announcement = announcement(waiters, stored);
                        // The announcer has stopped (shutdown): the senders hear so.
                        let _ = turn.queue(announcement);
                    }
                    Err(e) => {
                        // Nothing of the batch was committed: each sender may retry.
                        tracing::error!(error = %e, "storing a batch of replies failed");
                        let unavailable = matches!(e, DomainError::Unavailable);
                        for waiter in waiters {
                            let _ = waiter.send(Err(if unavailable {
                                DomainError::Unavailable
                            } else {
                                DomainError::Internal("the message could not be stored".into())
                            }));
                        }
                    }
                }
            }
        });
        GroupCommit {
            queue,
            pending: Arc::default(),
        }
    }

    /// Queues a reply and waits until it is committed and announced.
    pub async fn submit(&self, reply: Reply) -> DomainResult<SendOutcome> {
        let (done, outcome) = oneshot::channel();
        let _pending = Pending::new(&self.pending);
        self.queue
            .send((reply, done))
            .map_err(|_| DomainError::Internal("the writer has stopped".into()))?;
        outcome
            .await
            .map_err(|_| DomainError::Internal("the group commit has stopped".into()))?
    }

    /// Counts a send answered elsewhere (a new thread's first message) until it is dropped.
    pub(super) fn pending(&self) -> Pending<'_> {
        Pending::new(&self.pending)
    }

    /// Waits, at most `limit`, until every send submitted so far has been answered: a
    /// stopping server lets the batch in flight commit and be announced.
    pub async fn settle(&self, limit: std::time::Duration) {
        let _ = tokio::time::timeout(limit, async {
            while self.pending.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
    }
}

/// The events of one committed batch: every `message:new`, then one `unread` per recipient
/// with their totals after the commit (the same totals would otherwise go out once per
/// message); its senders are answered once they are out. A reply that failed after the
/// commit is answered at once.
fn announcement(waiters: Vec<Waiter>, stored: Vec<DomainResult<Delivered>>) -> Announcement {
    let mut notices = Vec::new();
    let mut totals = Vec::new();
    let mut told = HashSet::new();
    let mut answers = Vec::with_capacity(waiters.len());
    for (waiter, result) in waiters.into_iter().zip(stored) {
        match result {
            Ok(d) => {
                notices.extend(d.news);
                totals.extend(d.totals.into_iter().filter(|t| told.insert(t.to.id)));
                answers.push((waiter, d.outcome));
            }
            Err(e) => {
                let _ = waiter.send(Err(e));
            }
        }
    }
    notices.extend(totals);
    Announcement::new(notices, move || {
        for (waiter, outcome) in answers {
            let _ = waiter.send(Ok(outcome));
        }
    })
}

/// Stores a batch of replies in one transaction with a fixed number of statements, whatever the
/// batch size: stamp (and on PostgreSQL row-lock) the threads, insert the messages, move the
/// threads' and participants' newest message and unread counts, read the recipients' totals.
/// A reply whose `client_id` was already used is not stored again and answers with the first.
///
/// The outer error means nothing was committed. Once the batch is committed, each reply gets
/// an outcome of its own: a stored message is never reported as failed because a later
/// look-up (the first copy of another reply's repeated `client_id`) failed.
pub async fn store_replies(
    db: &Database,
    batch: Vec<Reply>,
) -> DomainResult<Vec<DomainResult<Delivered>>> {
    let urls: Vec<String> = batch.iter().map(|_| ids::message_url()).collect();
    let mut written = if db.backend() == DbBackend::Sqlite {
        sqlite_batch::write(db, &batch, &urls).await?
    } else {
        postgres_batch::write(db, &batch, &urls).await?
    };

    let mut rows_of: HashMap<i64, Vec<participant::Model>> = HashMap::new();
    for p in written.participants {
        rows_of.entry(p.thread_id).or_default().push(p);
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for (reply, url) in batch.into_iter().zip(urls) {
        outcomes.push(match written.messages.remove(&url) {
            Some(message) => {
                let rows = rows_of.get(&reply.meta.id).cloned().unwrap_or_default();
                delivered(
                    &reply.meta,
                    &message,
                    rows,
                    &written.unread,
                    &written.offsets,
                )
            }
            None => {
                let client_id = reply.client_id.unwrap_or_default();
                find_by_client_id(&db.conn, reply.sender.id, &client_id)
                    .await
                    .and_then(|first| first.ok_or(DomainError::NotFound))
                    .map(Delivered::repeated)
            }
        });
    }
    Ok(outcomes)
}

/// One send between its submission and its answer.
pub(super) struct Pending<'a>(&'a AtomicUsize);

impl<'a> Pending<'a> {
    fn new(count: &'a AtomicUsize) -> Pending<'a> {
        count.fetch_add(1, Ordering::AcqRel);
        Pending(count)
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::PaginatorTrait;

    use entity::message;
    use sea_orm::EntityTrait;

    use super::*;
    use crate::domain::accounts;
    use crate::domain::messaging::{Directory, SendMessage, send};
    use crate::domain::views::UserRef;

    /// Two replies with one `client_id` in the same batch: the first is stored, the second
    /// answered with it, and so is a later one (concurrent HTTP retries rarely share a batch).
    #[tokio::test]
    async fn a_client_id_repeated_within_one_batch_is_stored_once() {
        let (_dir, db) = crate::db::fresh_sqlite().await;
        db.migrate().await.unwrap();
        let user = |name: &str| accounts::insert_user(&db.conn, name.into(), None, None, false);
        let (alice, _bob) = (user("alice").await.unwrap(), user("bob").await.unwrap());
        let alice = UserRef::from(&alice);
        let directory = Directory::default();
        let (outbox, mut committed) = Outbox::new();
        let replies = GroupCommit::start(db.clone(), outbox.clone(), Arc::default());
        // Nobody to tell: each commit is answered at once.
        tokio::spawn(async move {
            while let Some(announcement) = committed.recv().await {
                announcement.finish();
            }
        });
        let first = SendMessage {
            recipient: Some("bob".into()),
            subject: Some("s".into()),
            thread_id: None,
            body: "first".into(),
            client_id: None,
        };
        let SendOutcome::Created { message, .. } =
            send(&db, &outbox, &directory, &replies, &alice, first, 100)
                .await
                .unwrap()
        else {
            panic!("a new thread's first message is created");
        };
        let meta = directory
            .load(&db.conn, &message.thread_id)
            .await
            .unwrap()
            .unwrap();
        let reply = |body: &str| Reply {
            sender: alice.clone(),
            meta: meta.clone(),
            body: body.into(),
            client_id: Some("again".into()),
        };
        let outcomes: Vec<SendOutcome> = store_replies(&db, vec![reply("one"), reply("two")])
            .await
            .unwrap()
            .into_iter()
            .map(|stored| stored.unwrap().outcome)
            .collect();
        let (
            SendOutcome::Created {
                message: stored, ..
            },
            SendOutcome::Repeated { message: repeated },
        ) = (&outcomes[0], &outcomes[1])
        else {
            panic!("created, then repeated: {outcomes:?}");
        };
        assert_eq!((stored.body.as_str(), &stored.url), ("one", &repeated.url));
        let later = store_replies(&db, vec![reply("three")]).await.unwrap();
        assert!(
            matches!(&later[0], Ok(Delivered { outcome: SendOutcome::Repeated { message }, .. }) if message.url == stored.url)
        );
        let count = message::Entity::find().count(&db.conn).await.unwrap();
        assert_eq!(count, 2);
    }
}
