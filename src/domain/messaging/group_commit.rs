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

use sea_orm::DbBackend;
use tokio::sync::{mpsc, oneshot};

use super::batch::{Delivered, MemberRow, Reply, delivered};
use super::directory::Directory;
use super::queries::find_by_client_id;
use super::{SendOutcome, postgres_batch, sqlite_batch};
use crate::db::Database;
use crate::domain::outbox::{Announcement, Outbox};
use crate::domain::{DomainError, DomainResult};
use crate::ids;
use crate::metrics::Metrics;

/// Most replies stored in one transaction.
const MAX_BATCH: usize = 256;

/// Most times a reply is stored again after its thread changed under it (a change of
/// membership or subject each time, in the instant between reading the thread and storing).
const MAX_TRIES: usize = 3;

type Waiter = oneshot::Sender<DomainResult<SendOutcome>>;
type Job = (Reply, Waiter);

/// Handle to the writer task.
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Job>,
    /// Sends submitted and not answered yet (graceful shutdown waits for them).
    pending: Arc<AtomicUsize>,
}

impl GroupCommit {
    /// Starts the writer on `db`; its commits are announced through `outbox`. A reply whose
    /// thread changed since `directory`'s copy is checked again against the thread as it is
    /// and stored in a batch of its own, or refused when its sender is no longer a member.
    pub fn start(
        db: Database,
        outbox: Outbox,
        directory: Arc<Directory>,
        metrics: Arc<Metrics>,
    ) -> GroupCommit {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let mut todo = std::mem::take(&mut batch);
                let _turn = outbox.turn().await;
                for tries_left in (0..MAX_TRIES).rev() {
                    let (replies, waiters): (Vec<Reply>, Vec<_>) = todo.into_iter().unzip();
                    todo = match store_replies(&db, replies).await {
                        Ok(stored) => {
                            Metrics::inc(&metrics.reply_commits);
                            let (announcement, stale) = announcement(waiters, stored);
                            // The announcer has stopped (shutdown): the senders hear so.
                            let _ = outbox.queue(announcement);
                            recheck(&db, &directory, stale, tries_left).await
                        }
                        Err(e) => {
                            fail(waiters, e);
                            Vec::new()
                        }
                    };
                    if todo.is_empty() {
                        break;
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

/// Answers every sender of a batch that was not committed (each may retry).
fn fail(waiters: Vec<Waiter>, e: DomainError) {
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

/// The replies whose thread changed under them, each with the thread read again if its
/// sender is still a member; the others are answered `not_found` (or, out of tries,
/// `unavailable`: the thread kept changing).
async fn recheck(
    db: &Database,
    directory: &Directory,
    stale: Vec<Job>,
    tries_left: usize,
) -> Vec<Job> {
    let mut again = Vec::with_capacity(stale.len());
    for (mut reply, waiter) in stale {
        let fresh = match directory
            .load_missing(&db.conn, &reply.meta.public_id)
            .await
        {
            Ok(Some(meta)) if meta.is_member(reply.sender.id) => meta,
            Ok(_) => {
                let _ = waiter.send(Err(DomainError::NotFound));
                continue;
            }
            Err(e) => {
                let _ = waiter.send(Err(e));
                continue;
            }
        };
        if tries_left == 0 {
            let _ = waiter.send(Err(DomainError::Unavailable));
            continue;
        }
        reply.meta = fresh;
        again.push((reply, waiter));
    }
    again
}

/// The events of one committed batch: every `message:new`, then one `unread` per recipient
/// with their totals after the commit (the same totals would otherwise go out once per
/// message); its senders are answered once they are out. A reply that failed after the
/// commit is answered at once; one whose thread changed under it is handed back.
fn announcement(waiters: Vec<Waiter>, stored: Vec<Stored>) -> (Announcement, Vec<Job>) {
    let mut notices = Vec::new();
    let mut totals = Vec::new();
    let mut told = HashSet::new();
    let mut answers = Vec::with_capacity(waiters.len());
    let mut stale = Vec::new();
    for (waiter, result) in waiters.into_iter().zip(stored) {
        match result {
            Stored::Done(Ok(d)) => {
                notices.extend(d.news);
                totals.extend(d.totals.into_iter().filter(|t| told.insert(t.to.id)));
                answers.push((waiter, d.outcome));
            }
            Stored::Done(Err(e)) => {
                let _ = waiter.send(Err(e));
            }
            Stored::Stale(reply) => stale.push((reply, waiter)),
        }
    }
    notices.extend(totals);
    let announcement = Announcement::new(notices, move || {
        for (waiter, outcome) in answers {
            let _ = waiter.send(Ok(outcome));
        }
    });
    (announcement, stale)
}

/// What became of one reply of a committed batch. Short-lived, one per reply, and nearly
/// always `Done`: boxing it would cost every reply an allocation to save the rare stale one
/// some bytes.
#[allow(clippy::large_enum_variant)]
pub enum Stored {
    /// Stored (or a repeat of one stored before), or failed after the commit.
    Done(DomainResult<Delivered>),
    /// Not stored: its thread changed since the copy its sender was checked against.
    Stale(Reply),
}

/// Stores a batch of replies in one transaction with a fixed number of statements, whatever the
/// batch size: stamp (and on PostgreSQL row-lock) the threads, insert the messages, move the
/// threads' and participants' newest message and unread counts, read the recipients' totals.
/// A reply whose `client_id` was already used is not stored again and answers with the first.
///
/// The outer error means nothing was committed. Once the batch is committed, each reply gets
/// an outcome of its own: a stored message is never reported as failed because a later
/// look-up (the first copy of another reply's repeated `client_id`) failed.
pub async fn store_replies(db: &Database, batch: Vec<Reply>) -> DomainResult<Vec<Stored>> {
    let urls: Vec<String> = batch.iter().map(|_| ids::message_url()).collect();
    let mut written = if db.backend() == DbBackend::Sqlite {
        sqlite_batch::write(db, &batch, &urls).await?
    } else {
        postgres_batch::write(db, &batch, &urls).await?
    };

    let mut rows_of: HashMap<i64, Vec<MemberRow>> = HashMap::new();
    for p in written.participants {
        rows_of.entry(p.row.thread_id).or_default().push(p);
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for (reply, url) in batch.into_iter().zip(urls) {
        let version = written.versions.get(&reply.meta.id).copied();
        outcomes.push(match written.messages.remove(&url) {
            Some(message) => {
                let rows = rows_of.get(&reply.meta.id).cloned().unwrap_or_default();
                Stored::Done(delivered(
                    &reply.meta,
                    &message,
                    rows,
                    &written.unread,
                    &written.offsets,
                    &written.hidden,
                ))
            }
            None if version.is_some_and(|v| v != reply.meta.version) => Stored::Stale(reply),
            None => {
                let client_id = reply.client_id.unwrap_or_default();
                Stored::Done(
                    find_by_client_id(&db.conn, reply.sender.id, &client_id)
                        .await
                        .and_then(|first| first.ok_or(DomainError::NotFound))
                        .map(Delivered::repeated),
                )
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
    use crate::domain::messaging::{SendLimits, SendMessage, send};
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
        let directory = Arc::new(Directory::default());
        let (outbox, mut committed) = Outbox::new();
        let replies = GroupCommit::start(
            db.clone(),
            outbox.clone(),
            directory.clone(),
            Arc::default(),
        );
        // Nobody to tell: each commit is answered at once.
        tokio::spawn(async move {
            while let Some(announcement) = committed.recv().await {
                announcement.finish();
            }
        });
        let first = SendMessage {
            recipient: Some("bob".into()),
            recipients: None,
            subject: Some("s".into()),
            thread_id: None,
            body: "first".into(),
            client_id: None,
            reply_to: None,
        };
        let SendOutcome::Created { message, .. } = send(
            &db,
            &outbox,
            &directory,
            &replies,
            &alice,
            first,
            SendLimits::TEST,
        )
        .await
        .unwrap() else {
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
            reply_to_id: None,
            terms: String::new(),
        };
        let outcomes: Vec<SendOutcome> = store_replies(&db, vec![reply("one"), reply("two")])
            .await
            .unwrap()
            .into_iter()
            .map(|stored| match stored {
                Stored::Done(d) => d.unwrap().outcome,
                Stored::Stale(_) => panic!("nothing changed the thread"),
            })
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
        assert_eq!(
            (stored.body.as_deref(), &stored.url),
            (Some("one"), &repeated.url)
        );
        let later = store_replies(&db, vec![reply("three")]).await.unwrap();
        assert!(
            matches!(&later[0], Stored::Done(Ok(Delivered { outcome: SendOutcome::Repeated { message }, .. })) if message.url == stored.url)
        );
        let count = message::Entity::find().count(&db.conn).await.unwrap();
        assert_eq!(count, 2);
    }

    /// A reply checked against an older copy of its group (another node's, or one read just
    /// before a change): the commit refuses a sender removed since, and a reply of a member
    /// is stored once the group is read again, delivered to whoever was added since and not
    /// to whoever was removed.
    #[tokio::test]
    async fn a_reply_with_an_older_copy_of_its_group_is_checked_by_the_commit() {
        use crate::domain::messaging::{add_member, remove_member};
        let (_dir, db) = crate::db::fresh_sqlite().await;
        db.migrate().await.unwrap();
        let user = async |name: &str| {
            UserRef::from(
                &accounts::insert_user(&db.conn, name.into(), None, None, false)
                    .await
                    .unwrap(),
            )
        };
        let (alice, bob, carol, dave) = (
            user("alice").await,
            user("bob").await,
            user("carol").await,
            user("dave").await,
        );
        let directory = Arc::new(Directory::default());
        let (outbox, mut committed) = Outbox::new();
        let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = heard.clone();
        tokio::spawn(async move {
            while let Some(announcement) = committed.recv().await {
                for n in &announcement.notices {
                    log.lock().unwrap().push((n.to.id, n.event.name()));
                }
                announcement.finish();
            }
        });
        let replies = GroupCommit::start(
            db.clone(),
            outbox.clone(),
            directory.clone(),
            Arc::default(),
        );
        let first = SendMessage {
            recipient: None,
            recipients: Some(vec!["bob".into(), "carol".into()]),
            subject: Some("g".into()),
            thread_id: None,
            body: "first".into(),
            client_id: None,
            reply_to: None,
        };
        let SendOutcome::Created { message, .. } = send(
            &db,
            &outbox,
            &directory,
            &replies,
            &alice,
            first,
            SendLimits::TEST,
        )
        .await
        .unwrap() else {
            panic!("created");
        };
        let thread = message.thread_id;
        let old = directory.load(&db.conn, &thread).await.unwrap().unwrap();
        remove_member(&db, &outbox, &directory, &alice, &thread, "carol")
            .await
            .unwrap();
        add_member(&db, &outbox, &directory, &alice, &thread, "dave", 32)
            .await
            .unwrap();
        let reply = |sender: &UserRef| Reply {
            sender: sender.clone(),
            meta: old.clone(),
            body: "in flight".into(),
            client_id: None,
            reply_to_id: None,
            terms: String::new(),
        };

        let refused = replies.submit(reply(&carol)).await;
        assert!(matches!(refused, Err(DomainError::NotFound)), "{refused:?}");
        heard.lock().unwrap().clear();
        let stored = replies.submit(reply(&bob)).await.unwrap();
        assert!(matches!(stored, SendOutcome::Created { .. }));
        let mut told: Vec<i64> = heard
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, name)| *name == "message:new")
            .map(|(to, _)| *to)
            .collect();
        told.sort_unstable();
        assert_eq!(told, [alice.id, bob.id, dave.id]);
        let count = message::Entity::find().count(&db.conn).await.unwrap();
        assert_eq!(count, 2, "the first message and bob's, never carol's");
    }
}
