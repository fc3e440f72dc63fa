//! Limits: how often a client may try a password, register, send or emit, and how many
//! sockets a user may hold. Token buckets keyed by a hash of the client address, username or
//! user, in tables of bounded size (per node).

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashlink::LruCache;

use super::{ServiceError, ServiceResult};
use crate::config::Config;
use crate::metrics::Metrics;

/// Every limit of a node.
pub struct Limits {
    /// Login and registration attempts per client address.
    login_by_addr: RateLimiter,
    /// Failed logins per username.
    login_by_name: RateLimiter,
    /// Mails per address (verification, reset, notices): 5 an hour.
    mails_by_address: RateLimiter,
    /// Messages per user; `None` when the limit is off.
    sends_by_user: Option<RateLimiter>,
    /// Client events per user, all their sockets together; `None` when off.
    events_by_user: Option<RateLimiter>,
    /// Events replayed per user (recovering connects and `sync`); `None` when off.
    replays_by_user: Option<RateLimiter>,
    /// Groups a user is added to by others, per username; `None` when off.
    group_adds_by_name: Option<RateLimiter>,
    /// Client events per socket, per second (bursts of twice that); 0 when off.
    event_rate: u32,
    /// Events of one socket handled at once.
    events_in_flight: usize,
    /// Sockets and lobby connections open per user on this node.
    connections: Arc<ConnectionCounts>,
    /// At most this many of them per user; 0: no cap.
    connections_per_user: usize,
    metrics: Arc<Metrics>,
}

/// Open connections per user on this node.
#[derive(Default)]
struct ConnectionCounts(Mutex<HashMap<i64, usize>>);

/// One admitted socket or lobby connection of a user: counted the moment it is admitted,
/// before anything is awaited, and uncounted when dropped (the connection holds it for its
/// life). Admissions racing each other all see the counts of those before them: 200
/// simultaneous connects admitted 74 sockets with a cap of 64 while the count was taken after
/// the handshake's database read.
pub struct ConnectionSlot {
    counts: Arc<ConnectionCounts>,
    user_id: i64,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.user_id) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.user_id);
            }
        }
    }
}

impl Limits {
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Limits {
        let keys = config.limiter_capacity.max(1);
        let per_user = |rate: u32| {
            (rate > 0)
                .then(|| RateLimiter::new(rate.saturating_mul(2), Duration::from_secs(2), keys))
        };
        Limits {
            login_by_addr: RateLimiter::new(config.login_rate, Duration::from_secs(60), keys),
            login_by_name: RateLimiter::new(
                config.login_failures,
                Duration::from_secs(15 * 60),
                keys,
            ),
            mails_by_address: RateLimiter::new(5, Duration::from_secs(3600), keys),
            sends_by_user: per_user(config.send_rate),
            events_by_user: per_user(config.user_event_rate),
            replays_by_user: per_user(config.replay_rate),
            group_adds_by_name: (config.group_adds > 0)
                .then(|| RateLimiter::new(config.group_adds, Duration::from_secs(60), keys)),
            event_rate: config.event_rate,
            events_in_flight: config.events_in_flight.max(1),
            connections: Arc::default(),
            connections_per_user: config.sockets_per_user,
            metrics,
        }
    }

    /// Grants `user_id` up to `want` events to replay now (a replay's or a `sync`'s page),
    /// paid in advance: the page is read only once granted, so that concurrent replays of one
    /// user cannot all read before any of them pays. Past the budget, says how long until a
    /// page is worth reading (at least an eighth of the budget's burst, or `want`).
    pub fn grant_replay(&self, user_id: i64, want: u64) -> Result<u64, Duration> {
        match &self.replays_by_user {
            Some(limiter) => limiter.grant(&user_id.to_string(), want as f64),
            None => Ok(want),
        }
    }

    /// [`Limits::grant_replay`] for `sync`, which does not wait: past the budget it is
    /// refused (`rate_limited`).
    pub fn grant_sync(&self, user_id: i64, want: u64) -> ServiceResult<u64> {
        self.grant_replay(user_id, want)
            .map_err(|wait| self.refused(wait))
    }

    /// Gives back what a page granted and did not use (the log ended before it).
    pub fn return_replay(&self, user_id: i64, unused: u64) {
        if let Some(limiter) = &self.replays_by_user
            && unused > 0
        {
            limiter.give_back(&user_id.to_string(), unused as f64);
        }
    }

    /// Admits one more socket or lobby connection of `user_id` on this node, or refuses it
    /// (`rate_limited`) when the user already holds `--sockets-per-user` (each holds buffers;
    /// one account must not hold thousands).
    pub fn admit_connection(&self, user_id: i64) -> ServiceResult<ConnectionSlot> {
        let mut counts = self.connections.0.lock().unwrap_or_else(|e| e.into_inner());
        let open = counts.entry(user_id).or_default();
        if self.connections_per_user > 0 && *open >= self.connections_per_user {
            drop(counts);
            return Err(self.refused(Duration::from_secs(1)));
        }
        *open += 1;
        Ok(ConnectionSlot {
            counts: self.connections.clone(),
            user_id,
        })
    }

    /// Spends a login attempt for the address and one of the username's (given back when the
    /// password is right).
    pub fn check_login(&self, client: IpAddr, username: &str) -> ServiceResult<()> {
        self.check_address(client, "login")?;
        // Charged before the password is checked, and given back if it is right: a check
        // takes tens of milliseconds, and guesses sent together all passed a mere look at the
        // budget (20 concurrent wrong passwords were 20 x 401).
        self.login_by_name
            .check(&username_key(username))
            .map_err(|wait| self.refused(wait))
    }

    /// Spends one of the mails an address may get (5 an hour): a mailbox is not flooded,
    /// whoever asks.
    pub fn check_mail(&self, address: &str) -> ServiceResult<()> {
        self.mails_by_address
            .check(&address.trim().to_lowercase())
            .map_err(|wait| self.refused(wait))
    }

    /// Spends a registration attempt for the address.
    pub fn check_registration(&self, client: IpAddr) -> ServiceResult<()> {
        self.check_address(client, "register")
    }

    /// Spends an attempt of `kind` (login, register) from the address's bucket.
    pub fn check_address(&self, client: IpAddr, kind: &str) -> ServiceResult<()> {
        self.login_by_addr
            .check(&format!("{kind}:{}", address_key(client)))
            .map_err(|wait| self.refused(wait))
    }

    /// A failed password: it stays counted against the username.
    pub fn record_login_failure(&self) {
        Metrics::inc(&self.metrics.login_failures);
    }

    /// A right password: the attempt [`check_login`](Self::check_login) charged is given back.
    pub fn record_login_success(&self, username: &str) {
        self.login_by_name.give_back(&username_key(username), 1.0);
    }

    /// Spends one of the user's messages.
    pub fn check_send(&self, user_id: i64) -> ServiceResult<()> {
        self.spend(self.sends_by_user.as_ref(), &user_id.to_string())
    }

    /// Spends one of the adds to groups that `username` may receive from others per minute
    /// (so that nobody is spammed into groups); a name that is nobody's costs the same.
    pub fn check_group_add(&self, username: &str) -> ServiceResult<()> {
        self.spend(self.group_adds_by_name.as_ref(), &username_key(username))
    }

    /// Spends one of the user's client events, for a change asked over HTTP that a socket
    /// event pays through [`Limits::admit_event`].
    pub fn check_user_event(&self, user_id: i64) -> ServiceResult<()> {
        self.spend(self.events_by_user.as_ref(), &user_id.to_string())
    }

    /// Spends one from `key`'s bucket of `limiter` (`None`: that limit is off).
    fn spend(&self, limiter: Option<&RateLimiter>, key: &str) -> ServiceResult<()> {
        match limiter {
            Some(limiter) => limiter.check(key).map_err(|wait| self.refused(wait)),
            None => Ok(()),
        }
    }

    /// A new connection's event budget.
    pub fn budget(&self) -> Arc<Budget> {
        Arc::new(Budget {
            bucket: (self.event_rate > 0).then(|| {
                let capacity = f64::from(self.event_rate.saturating_mul(2));
                Mutex::new(Bucket::full(capacity))
            }),
            per_second: f64::from(self.event_rate),
            in_flight: AtomicUsize::new(0),
        })
    }

    /// Admits one client event of `user_id` on the connection of `budget`: within the
    /// connection's rate and in-flight cap, and the user's rate. A refused event costs nothing
    /// more: the caller answers `rate_limited` at once and queues nothing.
    pub fn admit_event(&self, user_id: i64, budget: &Arc<Budget>) -> ServiceResult<EventPermit> {
        let in_flight = budget.in_flight.fetch_add(1, Ordering::AcqRel);
        let permit = EventPermit(budget.clone());
        if in_flight >= self.events_in_flight {
            return Err(self.refused(Duration::from_millis(100)));
        }
        if let Some(bucket) = &budget.bucket {
            let capacity = f64::from(self.event_rate.saturating_mul(2));
            let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
            bucket
                .spend(capacity, budget.per_second)
                .map_err(|wait| self.refused(wait))?;
        }
        self.check_user_event(user_id)?;
        Ok(permit)
    }

    fn refused(&self, wait: Duration) -> ServiceError {
        Metrics::inc(&self.metrics.rate_limited);
        ServiceError::RateLimited(wait)
    }

    /// Keys held by each table (for the memory bound's test and /metrics).
    pub fn keys(&self) -> usize {
        self.login_by_addr.len()
            + self.login_by_name.len()
            + self.mails_by_address.len()
            + self.sends_by_user.as_ref().map_or(0, RateLimiter::len)
            + self.events_by_user.as_ref().map_or(0, RateLimiter::len)
            + self.group_adds_by_name.as_ref().map_or(0, RateLimiter::len)
    }
}

/// The events budget of one connection (a socket or a lobby connection): a token bucket and
/// the count of its events being handled.
pub struct Budget {
    bucket: Option<Mutex<Bucket>>,
    per_second: f64,
    in_flight: AtomicUsize,
}

/// One admitted event; it leaves the connection's in-flight count when dropped.
pub struct EventPermit(Arc<Budget>);

impl Drop for EventPermit {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A username as limits key it: trimmed and lowercased, as logins look it up.
fn username_key(username: &str) -> String {
    username.trim().to_lowercase()
}

/// A client address as limits key it: IPv4 as is, IPv6 by its /64 (one host usually holds a
/// whole /64, so keying by the full address would give it 2^64 buckets).
pub fn address_key(client: IpAddr) -> String {
    match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// A family of token buckets: each key may spend `capacity` tokens, refilled evenly over
/// `period`. Keys are kept as a keyed hash (a client's long or numerous strings cost the same
/// as short ones), at most `max_keys` of them: past that the least recently used is forgotten.
pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    hasher: RandomState,
    buckets: Mutex<LruCache<u64, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(capacity: f64) -> Bucket {
        Bucket {
            tokens: capacity,
            updated: Instant::now(),
        }
    }

    /// Refills for the time passed.
    fn refill(&mut self, capacity: f64, per_second: f64) {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.updated).as_secs_f64() * per_second)
            .min(capacity);
        self.updated = now;
    }

    /// Refills for the time passed, then spends up to `want` whole tokens if there are at
    /// least `least`; otherwise says how long until there are.
    fn grant(
        &mut self,
        want: f64,
        least: f64,
        capacity: f64,
        per_second: f64,
    ) -> Result<f64, Duration> {
        self.refill(capacity, per_second);
        if self.tokens >= least {
            let granted = want.min(self.tokens.floor());
            self.tokens -= granted;
            Ok(granted)
        } else {
            Err(Duration::from_secs_f64((least - self.tokens) / per_second))
        }
    }

    /// Refills for the time passed, then spends a token.
    fn spend(&mut self, capacity: f64, per_second: f64) -> Result<(), Duration> {
        self.refill(capacity, per_second);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
        }
    }
}

impl RateLimiter {
    pub fn new(capacity: u32, period: Duration, max_keys: usize) -> RateLimiter {
        let capacity = f64::from(capacity.max(1));
        RateLimiter {
            capacity,
            per_second: capacity / period.as_secs_f64(),
            hasher: RandomState::new(),
            buckets: Mutex::new(LruCache::new(max_keys.max(1))),
        }
    }

    /// Spends one token for `key`; on refusal, says how long until one is back.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.with_bucket(key, |b| b.spend(self.capacity, self.per_second))
    }

    /// Spends up to `want` whole tokens for `key`, once it has at least an eighth of the
    /// capacity (or `want`, if fewer); otherwise says how long until it has.
    pub fn grant(&self, key: &str, want: f64) -> Result<u64, Duration> {
        let least = want.min(self.capacity / 8.0).max(1.0);
        self.with_bucket(key, |b| {
            b.grant(want, least, self.capacity, self.per_second)
        })
        .map(|n| n as u64)
    }

    /// `f` on the bucket of `key`; a key not held gets a full one (a full table forgets its
    /// least recently used key).
    fn with_bucket<R>(&self, key: &str, f: impl FnOnce(&mut Bucket) -> R) -> R {
        let hash = self.hasher.hash_one(key);
        let mut buckets = self.lock();
        if buckets.get_mut(&hash).is_none() {
            buckets.insert(hash, Bucket::full(self.capacity));
        }
        f(buckets.get_mut(&hash).expect("held or just inserted"))
    }

    /// Gives back `n` tokens spent for `key` (if the key is still held).
    pub fn give_back(&self, key: &str, n: f64) {
        let hash = self.hasher.hash_one(key);
        if let Some(bucket) = self.lock().get_mut(&hash) {
            bucket.tokens = (bucket.tokens + n).min(self.capacity);
        }
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<u64, Bucket>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_after_its_capacity_and_keys_are_independent() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60), 100);
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        let wait = limiter.check("a").unwrap_err();
        assert!(wait > Duration::from_secs(10) && wait <= Duration::from_secs(20));
        assert!(limiter.check("b").is_ok());
        // A token given back can be spent again, once.
        limiter.give_back("a", 1.0);
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_err());
    }

    /// A grant is paid before the work: up to what is asked, while the bucket holds at least an
    /// eighth of its capacity; then refused with the wait until it does again.
    #[test]
    fn grants_are_paid_in_advance_and_wait_for_an_eighth() {
        // 0.8 tokens a second: a stall of this machine between the calls adds none.
        let limiter = RateLimiter::new(800, Duration::from_secs(1000), 100);
        assert_eq!(limiter.grant("u", 500.0), Ok(500));
        // 300 left: fewer than asked, but more than an eighth (100).
        assert_eq!(limiter.grant("u", 500.0), Ok(300));
        let wait = limiter.grant("u", 500.0).unwrap_err();
        assert!(wait > Duration::from_secs(120) && wait <= Duration::from_secs(125));
        // What a page did not use comes back.
        limiter.give_back("u", 200.0);
        assert_eq!(limiter.grant("u", 500.0), Ok(200));
        assert_eq!(limiter.grant("v", 10.0), Ok(10));
    }

    /// 100,000 distinct usernames (each up to a kilobyte) keep the table at its capacity.
    #[test]
    fn the_table_stays_at_its_capacity() {
        let limiter = RateLimiter::new(10, Duration::from_secs(900), 1_000);
        for i in 0..100_000 {
            let long_name = format!("{i}{}", "x".repeat(i % 1024));
            let _ = limiter.check(&long_name);
        }
        assert_eq!(limiter.len(), 1_000);
        // A key in use is remembered in a full table: its bucket still runs out.
        for _ in 0..10 {
            assert!(limiter.check("in use").is_ok());
        }
        assert!(limiter.check("in use").is_err());
        assert_eq!(limiter.len(), 1_000);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_ipv4_by_address() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(other));
        assert_eq!(address_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(address_key("10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}
