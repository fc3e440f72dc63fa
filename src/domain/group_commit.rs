//! Group commit: concurrent replies are queued and stored many to a transaction by one writer
//! task, so the per-transaction and per-statement costs are shared. Each sender still waits
//! for the commit that holds its message before it is answered.

use tokio::sync::{mpsc, oneshot};

use super::messaging::{self, Reply, SendOutcome};
use super::{DomainError, DomainResult};
use crate::db::Database;

/// Most replies stored in one transaction.
const MAX_BATCH: usize = 256;

type Job = (Reply, oneshot::Sender<DomainResult<SendOutcome>>);

/// Handle to the writer task.
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Job>,
}

impl GroupCommit {
    /// Starts the writer on `db`.
    pub fn start(db: Database) -> GroupCommit {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (replies, waiters): (Vec<Reply>, Vec<_>) =
                    std::mem::take(&mut batch).into_iter().unzip();
                match messaging::store_replies(&db, replies).await {
                    Ok(outcomes) => {
                        for (waiter, outcome) in waiters.into_iter().zip(outcomes) {
                            let _ = waiter.send(Ok(outcome));
                        }
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
        GroupCommit { queue }
    }

    /// Queues a reply and waits until it is committed.
    pub async fn submit(&self, reply: Reply) -> DomainResult<SendOutcome> {
        let (done, outcome) = oneshot::channel();
        self.queue
            .send((reply, done))
            .map_err(|_| DomainError::Internal("the writer has stopped".into()))?;
        outcome
            .await
            .map_err(|_| DomainError::Internal("the writer has stopped".into()))?
    }
}
