//! In-memory token buckets keyed by client address or username (per node).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
