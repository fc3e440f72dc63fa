//! Web Push: who is pushed what, and when. The announcer hands over each committed event that
//! would be pushed to a user with no socket on this node ([`Pushes::consider`], a bounded
//! queue, never waited for); one task then checks they have none on any node, finds their
//! subscriptions and mutes, and coalesces per thread and subscription: the first push at once,
//! the latest of those that follow within `--push-coalesce` at its end. A bounded queue of
//! sends feeds at most [`CONCURRENT_SENDS`] requests at a time through the [`PushSender`] (the
//! `webpush` transport); a push service's 404 or 410 deletes the subscription, 429 and 5xx are
//! retried with backoff. A message is committed, and so considered, by one node: one node
//! pushes it. In a cluster the coalescing windows are kept in Redis, so two nodes' messages of
//! one thread share one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::BoxFuture;
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc};

use super::{App, Identity, ServiceError, ServiceResult};
use crate::domain::DomainError;
use crate::domain::events::{Notice, PushNote};
use crate::domain::notifications;
pub use crate::domain::notifications::Subscription;
use crate::metrics::Metrics;

/// Events waiting to be considered: beyond it, pushes are dropped (and counted).
const CANDIDATES: usize = 10_000;
/// Pushes waiting to be sent.
const QUEUE: usize = 10_000;
/// Retries waiting for their time.
const RETRIES: usize = 1_000;
/// Requests to push services at once.
pub const CONCURRENT_SENDS: usize = 32;
/// Tries of one push (the first included).
const ATTEMPTS: u32 = 4;
/// The longest wait before a retry, whatever a `Retry-After` asks.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Coalescing windows kept on one node; past it, pushes go out uncoalesced.
const MAX_WINDOWS: usize = 100_000;

/// Sends one push (the Web Push protocol: the `webpush` transport).
pub trait PushSender: Send + Sync + 'static {
    /// The VAPID public key (base64url, uncompressed P-256 point) browsers subscribe with.
    fn public_key(&self) -> &str;
    /// Refuses (with the reason) an endpoint that is not `https://` or resolves to an address
    /// that is not public.
    fn check_endpoint<'a>(&'a self, endpoint: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Encrypts `payload` for `to` and posts it, under the topic `topic`.
    fn send<'a>(
        &'a self,
        to: &'a Subscription,
        payload: &'a [u8],
        topic: &'a str,
    ) -> BoxFuture<'a, PushOutcome>;
}

/// What a push service answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    Sent,
    /// 404, 410: the subscription is no more.
    Gone,
    /// 429, 5xx or no answer: try again (after the time the service asked for, if it did).
    Retry(Option<Duration>),
    /// Refused for good (4xx): the reason.
    Failed(String),
}

/// A new VAPID private key (base64url of the P-256 scalar).
pub fn new_vapid_key() -> String {
    let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
    URL_SAFE_NO_PAD.encode(key.to_bytes())
}

/// The push machinery of a node.
pub struct Pushes {
    candidates: mpsc::Sender<Candidate>,
    inbox: Mutex<Option<mpsc::Receiver<Candidate>>>,
    sender: OnceLock<Arc<dyn PushSender>>,
    /// The VAPID private key the sender signs with.
    pub vapid_private: String,
}

/// An event that may be pushed to a user who had no socket on this node.
struct Candidate {
    user_id: i64,
    note: Arc<PushNote>,
}

/// One push to send.
struct Job {
    to: Subscription,
    note: Arc<PushNote>,
    attempt: u32,
}

impl Pushes {
    pub fn new(vapid_private: String) -> Pushes {
        let (candidates, inbox) = mpsc::channel(CANDIDATES);
        Pushes {
            candidates,
            inbox: Mutex::new(Some(inbox)),
            sender: OnceLock::new(),
            vapid_private,
        }
    }

    /// Hands over the events of a commit that would be pushed to users with no socket here.
    /// Never waits: a full queue drops them.
    pub(super) fn consider(
        &self,
        notices: &[Notice],
        presence: &super::presence::Presence,
        metrics: &Metrics,
    ) {
        // Who is here is asked first: a push's note is made only for those who are not.
        let away = presence.away_here(notices.iter().map(|n| n.to.id));
        for (n, away) in notices.iter().zip(away) {
            let Some(note) = away.then(|| n.event.push(&n.to)).flatten() else {
                continue;
            };
            let user_id = n.to.id;
            if self
                .candidates
                .try_send(Candidate { user_id, note })
                .is_err()
            {
                Metrics::inc(&metrics.pushes.dropped);
            }
        }
    }

    fn sender(&self) -> ServiceResult<&Arc<dyn PushSender>> {
        self.sender.get().ok_or_else(|| {
            ServiceError::from(DomainError::Internal("pushes are not started".into()))
        })
    }
}

impl App {
    /// Starts pushing through `sender` (once; the server hands over the `webpush` transport).
    pub fn start_pushes(&self, sender: Arc<dyn PushSender>) {
        let Some(inbox) = self
            .pushes
            .inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        let _ = self.pushes.sender.set(sender);
        let (jobs, queue) = mpsc::channel(QUEUE);
        let windows = match self.presence.cluster_redis() {
            Some((redis, prefix)) => Windows::Redis { redis, prefix },
            None => Windows::Local(Mutex::default()),
        };
        let pusher = Arc::new(Pusher {
            app: self.clone(),
            jobs,
            windows,
            retries: AtomicUsize::new(0),
        });
        tokio::spawn(pusher.clone().consider_all(inbox));
        tokio::spawn(pusher.send_all(queue));
    }

    /// The VAPID public key, for `GET /push/key`.
    pub fn push_key(&self) -> ServiceResult<String> {
        Ok(self.pushes.sender()?.public_key().to_owned())
    }

    /// Keeps a push subscription for the caller's session (a Basic caller has none).
    pub async fn subscribe_push(
        &self,
        who: &Identity,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> ServiceResult<()> {
        let Some(session) = &who.session_id else {
            return Err(DomainError::NotAllowed(
                "push subscriptions belong to a login session; HTTP Basic has none".into(),
            )
            .into());
        };
        let sender = self.pushes.sender()?;
        if endpoint.len() > notifications::MAX_ENDPOINT {
            return Err(invalid_endpoint("the endpoint is too long".into()));
        }
        sender
            .check_endpoint(endpoint)
            .await
            .map_err(invalid_endpoint)?;
        let user_id = who.id();
        self.db
            .write(async |txn| {
                notifications::subscribe(txn, user_id, session, endpoint, p256dh, auth).await
            })
            .await?;
        Ok(())
    }

    /// Drops the caller's subscription at `endpoint`.
    pub async fn unsubscribe_push(&self, who: &Identity, endpoint: &str) -> ServiceResult<()> {
        let user_id = who.id();
        self.db
            .write(async |txn| notifications::unsubscribe(txn, user_id, endpoint).await)
            .await?;
        Ok(())
    }
}

fn invalid_endpoint(reason: String) -> ServiceError {
    ServiceError::from(DomainError::invalid("endpoint", "invalid_endpoint", reason))
}

/// The tasks that consider events and send pushes.
struct Pusher {
    app: App,
    jobs: mpsc::Sender<Job>,
    windows: Windows,
    /// Retries waiting for their time.
    retries: AtomicUsize,
}

impl Pusher {
    async fn consider_all(self: Arc<Self>, mut inbox: mpsc::Receiver<Candidate>) {
        let mut batch = Vec::new();
        while inbox.recv_many(&mut batch, 256).await > 0 {
            if let Err(e) = self.consider(std::mem::take(&mut batch)).await {
                tracing::warn!(error = %e, "pushes not considered");
            }
        }
    }

    /// Those of `batch` still away on every node, subscribed and not muted: each pushed to
    /// each of their subscriptions, or kept for the end of its window.
    async fn consider(self: &Arc<Self>, batch: Vec<Candidate>) -> ServiceResult<()> {
        let users: Vec<i64> = batch
            .iter()
            .map(|c| c.user_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let away = self.app.presence.away_everywhere(&users).await;
        let db = &self.app.db.conn;
        let mut subscriptions: HashMap<i64, Vec<Subscription>> = HashMap::new();
        for s in notifications::subscriptions_of(db, &away).await? {
            subscriptions.entry(s.user_id).or_default().push(s);
        }
        let pairs: Vec<(i64, String)> = batch
            .iter()
            .filter(|c| subscriptions.contains_key(&c.user_id))
            .map(|c| (c.user_id, c.note.thread_id.clone()))
            .collect();
        let muted = notifications::muted_among(db, &pairs).await?;
        for c in batch {
            if muted.contains(&(c.user_id, c.note.thread_id.clone())) {
                continue;
            }
            for to in subscriptions.get(&c.user_id).into_iter().flatten() {
                if self.windows.open(self, to, &c.note).await {
                    self.queue(to.clone(), c.note.clone(), 0);
                }
            }
        }
        Ok(())
    }

    fn queue(&self, to: Subscription, note: Arc<PushNote>, attempt: u32) {
        if self.jobs.try_send(Job { to, note, attempt }).is_err() {
            Metrics::inc(&self.app.metrics.pushes.dropped);
        }
    }

    /// The end of a window: its latest push, if one came and the user is still away.
    async fn close(self: Arc<Self>, to: Subscription, thread_id: String) {
        tokio::time::sleep(self.app.config.push_coalesce).await;
        let Some(note) = self.windows.close(to.id, &thread_id).await else {
            return;
        };
        if self
            .app
            .presence
            .away_everywhere(&[to.user_id])
            .await
            .is_empty()
        {
            return;
        }
        let muted = notifications::muted_among(&self.app.db.conn, &[(to.user_id, thread_id)])
            .await
            .unwrap_or_default();
        if muted.is_empty() {
            self.queue(to, note, 0);
        }
    }

    async fn send_all(self: Arc<Self>, mut queue: mpsc::Receiver<Job>) {
        let Ok(sender) = self.app.pushes.sender().cloned() else {
            return;
        };
        let slots = Arc::new(Semaphore::new(CONCURRENT_SENDS));
        while let Some(job) = queue.recv().await {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let pusher = self.clone();
            let sender = sender.clone();
            tokio::spawn(async move {
                pusher.send(&*sender, job).await;
                drop(slot);
            });
        }
    }

    async fn send(self: Arc<Self>, sender: &dyn PushSender, job: Job) {
        let counts = &self.app.metrics.pushes;
        let payload = payload(&job.note, self.app.config.push_preview);
        let outcome = sender
            .send(&job.to, &payload, &topic(&job.note.thread_id))
            .await;
        match outcome {
            PushOutcome::Sent => {
                Metrics::inc(&counts.sent);
            }
            PushOutcome::Gone => {
                Metrics::inc(&counts.gone);
                let id = job.to.id;
                let forgotten = self
                    .app
                    .db
                    .write(async |txn| notifications::forget(txn, id).await)
                    .await;
                if let Err(e) = forgotten {
                    tracing::warn!(error = %e, "a gone push subscription was not deleted");
                }
            }
            PushOutcome::Retry(after) if job.attempt + 1 < ATTEMPTS => {
                if self.retries.fetch_add(1, Ordering::Relaxed) >= RETRIES {
                    self.retries.fetch_sub(1, Ordering::Relaxed);
                    Metrics::inc(&counts.dropped);
                    return;
                }
                Metrics::inc(&counts.retried);
                let wait = after
                    .unwrap_or(Duration::from_secs(1 << job.attempt))
                    .min(MAX_BACKOFF);
                tokio::time::sleep(wait).await;
                self.retries.fetch_sub(1, Ordering::Relaxed);
                // Still subscribed? (it may have ended with its session meanwhile)
                if let Ok(Some(to)) =
                    notifications::subscription(&self.app.db.conn, job.to.id).await
                {
                    self.queue(to, job.note, job.attempt + 1);
                }
            }
            PushOutcome::Retry(_) | PushOutcome::Failed(_) => {
                Metrics::inc(&counts.failed);
                tracing::info!(outcome = ?outcome, "a push was not delivered");
            }
        }
    }
}

/// A push's payload: its note as JSON, without the preview when previews are off.
fn payload(note: &PushNote, preview: bool) -> Vec<u8> {
    let note = match preview {
        true => std::borrow::Cow::Borrowed(note),
        false => std::borrow::Cow::Owned(PushNote {
            preview: None,
            ..note.clone()
        }),
    };
    serde_json::to_vec(&*note).unwrap_or_default()
}

/// A thread's `Topic` (RFC 8030: at most 32 characters of base64url): a newer push of the
/// thread replaces an older one still waiting at the push service or on the device.
pub fn topic(thread_id: &str) -> String {
    let digest = Sha256::digest(thread_id.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..24])
}

/// The coalescing windows: per subscription and thread, from a push sent at once until
/// `--push-coalesce` later, with the latest note that came meanwhile.
enum Windows {
    Local(Mutex<HashMap<(i64, String), Window>>),
    /// Shared by the nodes: `push:w:<sub>:<thread>` while open (its node closes it),
    /// `push:p:<sub>:<thread>` the note waiting for its end.
    Redis {
        redis: ConnectionManager,
        prefix: String,
    },
}

struct Window {
    latest: Option<Arc<PushNote>>,
}

/// Opens a window (`1`) or, one being open, keeps the note for its end (`0`).
const OPEN: &str = r#"
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 0
"#;

/// Closes a window: the note kept for its end, if any.
const CLOSE: &str = r#"
redis.call('DEL', KEYS[1])
return redis.call('GETDEL', KEYS[2])
"#;

impl Windows {
    /// Whether `note` is pushed to `to` now (a window opens, whose end `pusher` awaits);
    /// otherwise it waits for the open window's end, replacing any note before it.
    async fn open(&self, pusher: &Arc<Pusher>, to: &Subscription, note: &Arc<PushNote>) -> bool {
        let coalesce = pusher.app.config.push_coalesce;
        if coalesce.is_zero() {
            return true;
        }
        let opened = match self {
            Windows::Local(windows) => {
                let mut windows = windows.lock().unwrap_or_else(|e| e.into_inner());
                let key = (to.id, note.thread_id.clone());
                let full = windows.len() >= MAX_WINDOWS;
                match windows.get_mut(&key) {
                    // Open until its node's timer closes it.
                    Some(w) => {
                        w.latest = Some(note.clone());
                        false
                    }
                    _ if full => return true,
                    _ => {
                        windows.insert(key, Window { latest: None });
                        true
                    }
                }
            }
            Windows::Redis { redis, prefix } => {
                let Ok(text) = serde_json::to_string(&**note) else {
                    return true;
                };
                let ms = coalesce.as_millis() as u64;
                let opened: redis::RedisResult<i64> = redis::Script::new(OPEN)
                    .key(format!("{prefix}:push:w:{}:{}", to.id, note.thread_id))
                    .key(format!("{prefix}:push:p:{}:{}", to.id, note.thread_id))
                    // The node that opened it closes it first.
                    .arg(ms + 1000)
                    .arg(text)
                    .arg(ms * 2 + 1000)
                    .invoke_async(&mut redis.clone())
                    .await;
                // Redis away: push rather than lose it.
                opened.map(|n| n == 1).unwrap_or(true)
            }
        };
        if opened {
            tokio::spawn(pusher.clone().close(to.clone(), note.thread_id.clone()));
        }
        opened
    }

    /// Closes the window of `subscription` and `thread_id`: the latest note that came in it.
    async fn close(&self, subscription: i64, thread_id: &str) -> Option<Arc<PushNote>> {
        match self {
            Windows::Local(windows) => {
                windows
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&(subscription, thread_id.to_owned()))?
                    .latest
            }
            Windows::Redis { redis, prefix } => {
                let text: Option<String> = redis::Script::new(CLOSE)
                    .key(format!("{prefix}:push:w:{subscription}:{thread_id}"))
                    .key(format!("{prefix}:push:p:{subscription}:{thread_id}"))
                    .invoke_async(&mut redis.clone())
                    .await
                    .ok()?;
                serde_json::from_str::<PushNote>(&text?).ok().map(Arc::new)
            }
        }
    }
}
