//! Redis connections, one home for their settings: presence and the cluster's event bus
//! (`realtime/redis_driver.rs`) each hold a `ConnectionManager` made here.
//!
//! Each command fails fast while Redis is away (the caller falls back to this node alone);
//! reconnection goes on behind it, at most half a second between tries, so that the cluster
//! heals within a second or two of Redis being back.

use std::time::Duration;

use anyhow::Context;
use redis::RedisResult;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::Config;

/// Where Redis is: its URL (`redis://` or `rediss://`) and, for a Redis whose certificate a
/// private authority signed, that authority (PEM), read once at start-up.
#[derive(Clone)]
pub struct Target {
    url: String,
    ca: Option<Vec<u8>>,
}

impl Target {
    /// The Redis of `config`, if any; a CA file that cannot be read stops the start.
    pub fn of(config: &Config) -> anyhow::Result<Option<Target>> {
        let Some(url) = config.redis_url.clone() else {
            return Ok(None);
        };
        let ca = match &config.redis_ca {
            Some(path) => Some(
                std::fs::read(path)
                    .with_context(|| format!("MISSIVE_REDIS_CA: reading {}", path.display()))?,
            ),
            None => None,
        };
        let target = Target { url, ca };
        // A URL or CA that cannot make a client is said now, not at the first connect.
        target.client()?;
        Ok(Some(target))
    }

    /// The same Redis, spoken to in RESP3 (server pushes, for the event bus's subscriptions)
    /// unless the URL names a protocol.
    pub fn resp3(&self) -> Target {
        let url = if self.url.contains("protocol=") {
            self.url.clone()
        } else if self.url.contains('?') {
            format!("{}&protocol=resp3", self.url)
        } else {
            format!("{}?protocol=resp3", self.url)
        };
        Target {
            url,
            ..self.clone()
        }
    }

    fn client(&self) -> RedisResult<redis::Client> {
        // TLS (`rediss://`) is rustls, whose one crypto provider built in (ring, Cargo.toml)
        // it installs by itself.
        match &self.ca {
            None => redis::Client::open(self.url.as_str()),
            Some(ca) => redis::Client::build_with_tls(
                self.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                },
            ),
        }
    }
}

/// The settings of every Redis connection.
pub fn settings() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

/// A connection to `target` that reconnects by itself, with `config` (from [`settings`]).
pub async fn connect(
    target: &Target,
    config: ConnectionManagerConfig,
) -> RedisResult<ConnectionManager> {
    ConnectionManager::new_with_config(target.client()?, config).await
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
