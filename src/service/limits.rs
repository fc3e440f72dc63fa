//! Limits: in-memory token buckets keyed by client address, username or user (per node).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{ServiceError, ServiceResult};
use crate::config::Config;
use crate::metrics::Metrics;

/// Every limit of a node: login and registration attempts per address, failed logins per
/// username, messages per user.
pub struct Limits {
    login_by_addr: RateLimiter,
    login_by_name: RateLimiter,
    /// `None` when the send limit is off.
    sends_by_user: Option<RateLimiter>,
    metrics: Arc<Metrics>,
}

impl Limits {
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Limits {
        Limits {
            login_by_addr: RateLimiter::new(config.login_rate, Duration::from_secs(60)),
            login_by_name: RateLimiter::new(config.login_failures, Duration::from_secs(15 * 60)),
            sends_by_user: (config.send_rate > 0).then(|| {
                RateLimiter::new(config.send_rate.saturating_mul(2), Duration::from_secs(2))
            }),
            metrics,
        }
    }

    /// Spends a login attempt for the address and checks the username still has attempts left.
    pub fn check_login(&self, client: IpAddr, username: &str) -> ServiceResult<()> {
        self.check_address(&client.to_string())?;
        self.login_by_name
            .peek(&username.trim().to_lowercase())
            .map_err(|wait| self.refused(wait))
    }

    /// Spends a registration attempt for the address.
    pub fn check_registration(&self, client: IpAddr) -> ServiceResult<()> {
        self.check_address(&format!("register:{client}"))
    }

    /// Spends an attempt from the per-address bucket `key`.
    pub fn check_address(&self, key: &str) -> ServiceResult<()> {
        self.login_by_addr
            .check(key)
            .map_err(|wait| self.refused(wait))
    }

    /// Counts a failed password against the username.
    pub fn record_login_failure(&self, username: &str) {
        Metrics::inc(&self.metrics.login_failures);
        let _ = self.login_by_name.check(&username.trim().to_lowercase());
    }

    /// Spends one of the user's messages.
    pub fn check_send(&self, user_id: i64) -> ServiceResult<()> {
        match &self.sends_by_user {
            Some(limiter) => limiter
                .check(&user_id.to_string())
                .map_err(|wait| self.refused(wait)),
            None => Ok(()),
        }
    }

    fn refused(&self, wait: Duration) -> ServiceError {
        Metrics::inc(&self.metrics.rate_limited);
        ServiceError::RateLimited(wait)
    }
}

/// A family of token buckets: each key may spend `capacity` tokens, refilled evenly over `period`.
pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub fn new(capacity: u32, period: Duration) -> RateLimiter {
        let capacity = f64::from(capacity.max(1));
        RateLimiter {
            capacity,
            per_second: capacity / period.as_secs_f64(),
            buckets: Mutex::default(),
        }
    }

    /// Spends one token for `key`; on refusal, says how long until one is back.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.spend(key, true)
    }

    /// Whether `key` has a token left, without spending it.
    pub fn peek(&self, key: &str) -> Result<(), Duration> {
        self.spend(key, false)
    }

    fn spend(&self, key: &str, spend: bool) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Forget full buckets so a flood of addresses cannot grow this without bound.
            let (cap, rate) = (self.capacity, self.per_second);
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < cap);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        bucket.tokens = (bucket.tokens
            + now.duration_since(bucket.updated).as_secs_f64() * self.per_second)
            .min(self.capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            if spend {
                bucket.tokens -= 1.0;
            }
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_after_its_capacity_and_keys_are_independent() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        let wait = limiter.check("a").unwrap_err();
        assert!(wait > Duration::from_secs(10) && wait <= Duration::from_secs(20));
        assert!(limiter.peek("a").is_err());
        assert!(limiter.check("b").is_ok());
    }
}
