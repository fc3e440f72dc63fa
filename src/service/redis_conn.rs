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
