//! Redis connections, one home for their settings: presence and the cluster's event bus
//! (`realtime/redis_driver.rs`) each hold a `ConnectionManager` made here.
//!
//! Each command fails fast while Redis is away (the caller falls back to this node alone);
//! reconnection goes on behind it, at most half a second between tries, so that the cluster
//! heals within a second or two of Redis being back.

use std::time::Duration;

use redis::RedisResult;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The settings of every Redis connection.
pub fn settings() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

/// A connection to `url` that reconnects by itself, with `config` (from [`settings`]).
pub async fn connect(url: &str, config: ConnectionManagerConfig) -> RedisResult<ConnectionManager> {
    ConnectionManager::new_with_config(redis::Client::open(url)?, config).await
}

/// The key of the event bus's MACs, derived from the nodes' shared secret: a burst published
/// by anyone without it reaches nobody.
#[derive(Clone)]
pub struct BusKey([u8; 32]);

impl BusKey {
    pub fn new(secret: &str) -> BusKey {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        hash.update(b"missive event bus\0");
        hash.update(secret.as_bytes());
        BusKey(hash.finalize().into())
    }

    /// A MAC under this key, to be fed.
    pub fn mac(&self) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.0).expect("any key length")
    }
}
