//! Group commit: concurrent replies are queued and stored many to a transaction by one writer
//! task, so the per-transaction and per-statement costs are shared. Each sender still waits
//! for the commit that holds its message before it is answered.
//!
//! Behind the writer, one announcer task tells the participants about each commit, in commit
//! order, while the writer is already storing the next batch; a sender is answered once its
//! message has been announced. Every sent message goes through it, a new thread's too, so the
//! events of one conversation never overtake each other.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use super::messaging::{self, Reply, SendOutcome};
use super::{DomainError, DomainResult};
use crate::db::Database;
use crate::metrics::Metrics;

/// Most replies stored in one transaction.
const MAX_BATCH: usize = 256;

/// Tells the participants about committed messages.
pub trait Announce: Send + Sync + 'static {
    /// Announces the messages of one commit, oldest first.
    fn announce<'a>(&'a self, outcomes: &'a [SendOutcome]) -> BoxFuture<'a, ()>;
}

type Waiter = oneshot::Sender<DomainResult<SendOutcome>>;
type Job = (Reply, Waiter);

/// Handle to the writer and announcer tasks.
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Job>,
    committed: mpsc::UnboundedSender<Committed>,
}

/// One commit on its way to the announcer.
struct Committed {
    outcomes: Vec<SendOutcome>,
    waiters: Vec<Waiter>,
}

impl GroupCommit {
    /// Starts the writer on `db` and the announcer on `announce`.
    pub fn start(db: Database, announce: Arc<dyn Announce>, metrics: Arc<Metrics>) -> GroupCommit {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
        let (committed, mut announced) = mpsc::unbounded_channel::<Committed>();
        let to_announcer = committed.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (replies, waiters): (Vec<Reply>, Vec<_>) =
                    std::mem::take(&mut batch).into_iter().unzip();
                match messaging::store_replies(&db, replies).await {
                    Ok(outcomes) => {
                        Metrics::inc(&metrics.reply_commits);
                        let _ = to_announcer.send(Committed { outcomes, waiters });
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "storing a batch of replies failed");
                        for waiter in waiters {
                            let _ = waiter.send(Err(DomainError::Internal(
                                "the message could not be stored".into(),
                            )));
                        }
                    }
                }
            }
        });
        tokio::spawn(async move {
            while let Some(Committed { outcomes, waiters }) = announced.recv().await {
                announce.announce(&outcomes).await;
                for (waiter, outcome) in waiters.into_iter().zip(outcomes) {
                    let _ = waiter.send(Ok(outcome));
                }
            }
        });
        GroupCommit { queue, committed }
    }

    /// Queues a reply and waits until it is committed and announced.
    pub async fn submit(&self, reply: Reply) -> DomainResult<SendOutcome> {
        let (done, outcome) = oneshot::channel();
        self.queue
            .send((reply, done))
            .map_err(|_| DomainError::Internal("the writer has stopped".into()))?;
        Self::answer(outcome).await
    }

    /// Announces a message committed elsewhere (a new thread's first), in turn with the
    /// replies, and waits until it is announced.
    pub async fn announce(&self, outcome: SendOutcome) -> DomainResult<SendOutcome> {
        let (done, answer) = oneshot::channel();
        self.committed
            .send(Committed {
                outcomes: vec![outcome],
                waiters: vec![done],
            })
            .map_err(|_| DomainError::Internal("the announcer has stopped".into()))?;
        Self::answer(answer).await
    }

    async fn answer(
        outcome: oneshot::Receiver<DomainResult<SendOutcome>>,
    ) -> DomainResult<SendOutcome> {
        outcome
            .await
            .map_err(|_| DomainError::Internal("the group commit has stopped".into()))?
    }
}
