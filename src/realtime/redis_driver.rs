//! The Redis pub/sub driver of the Socket.IO adapter, on a connection that heals.
//!
//! socketioxide-redis's own driver holds one multiplexed connection: after a Redis restart it
//! stays broken, and no event crosses nodes again until the node restarts. This one holds a
//! `ConnectionManager`, which reconnects with exponential backoff and subscribes to the
//! adapter's channels again once it is back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::{FromRedisValue, PushInfo, PushKind};
use socketioxide_redis::drivers::{ChanItem, Driver, MessageStream};
use tokio::sync::mpsc;

use crate::service::redis_conn::{self, Target};

type Handlers = Arc<RwLock<HashMap<String, mpsc::Sender<ChanItem>>>>;

/// Pub/sub over a [`ConnectionManager`].
#[derive(Clone)]
pub struct HealingDriver {
    handlers: Handlers,
    conn: ConnectionManager,
    /// Until when (ms since `epoch`) publishes fail at once, after one failed: while Redis is
    /// away, every event would otherwise wait for a timeout on the announcer's single task.
    down_until: Arc<AtomicU64>,
    epoch: Instant,
}

/// How long publishes fail fast after one failed; then one tries again.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// A Redis error, as the adapter reports it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DriverError(#[from] redis::RedisError);

impl HealingDriver {
    pub async fn new(redis: &Target) -> redis::RedisResult<HealingDriver> {
        let handlers: Handlers = Arc::default();
        let push = handlers.clone();
        let config = redis_conn::settings()
            .set_push_sender(move |msg: PushInfo| {
                deliver(msg, &push);
                Ok::<(), std::convert::Infallible>(())
            })
            .set_automatic_resubscription();
        let conn = redis_conn::connect(redis, config).await?;
        Ok(HealingDriver {
            handlers,
            conn,
            down_until: Arc::default(),
            epoch: Instant::now(),
        })
    }
}

/// Hands a published message to the adapter's handler of its channel.
fn deliver(msg: PushInfo, handlers: &Handlers) {
    if !matches!(msg.kind, PushKind::Message | PushKind::SMessage) || msg.data.len() < 2 {
        return;
    }
    let mut data = msg.data.into_iter();
    let (Some(chan), Some(payload)) = (data.next(), data.next()) else {
        return;
    };
    let (Ok(chan), Ok(payload)) = (
        String::from_redis_value(chan),
        Vec::<u8>::from_redis_value(payload),
    ) else {
        tracing::warn!("unreadable message from redis");
        return;
    };
    let handlers = handlers.read().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = handlers.get(&chan)
        && let Err(e) = tx.try_send((chan, payload))
    {
        tracing::warn!(error = %e, "redis pubsub channel full");
    }
}

impl Driver for HealingDriver {
    type Error = DriverError;

    async fn publish(&self, chan: String, val: Vec<u8>) -> Result<(), DriverError> {
        let now = self.epoch.elapsed().as_millis() as u64;
        if now < self.down_until.load(Ordering::Relaxed) {
            return Err(DriverError(redis::RedisError::from((
                redis::ErrorKind::Io,
                "redis is unavailable",
            ))));
        }
        let mut conn = self.conn.clone();
        let published = redis::cmd("PUBLISH")
            .arg(chan)
            .arg(val)
            .query_async::<redis::Value>(&mut conn)
            .await;
        if published.is_err() {
            let until = self.epoch.elapsed() + RETRY_AFTER;
            self.down_until
                .store(until.as_millis() as u64, Ordering::Relaxed);
        }
        published?;
        Ok(())
    }

    async fn subscribe(
        &self,
        chan: String,
        size: usize,
    ) -> Result<MessageStream<ChanItem>, DriverError> {
        let (tx, rx) = mpsc::channel(size);
        self.handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(chan.clone(), tx);
        self.conn.clone().subscribe(chan).await?;
        Ok(MessageStream::new(rx))
    }

    async fn unsubscribe(&self, chan: String) -> Result<(), DriverError> {
        self.handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&chan);
        self.conn.clone().unsubscribe(chan).await?;
        Ok(())
    }

    async fn num_serv(&self, chan: &str) -> Result<u16, DriverError> {
        let mut conn = self.conn.clone();
        let (_, count): (String, u16) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(chan)
            .query_async(&mut conn)
            .await?;
        Ok(count)
    }
}
