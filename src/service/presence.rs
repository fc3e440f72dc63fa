//! Who is online. Each node counts its own sockets per user and per session; with Redis, the
//! counts of every node are kept in one hash per user, so a user is online while any live node
//! holds a socket of theirs. Nodes heartbeat; the sockets of a node that stops heartbeating
//! (killed, partitioned) are swept by the others, which announce who went offline with it.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::limits::ConnectionSlot;
use super::{App, Identity, ServiceResult, redis_conn};
use crate::domain::presence;
use crate::domain::views::UserRef;

/// How often a node says it is alive, and how long that lasts.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
const HEARTBEAT_TTL_SECS: u64 = 6;
/// Users swept together.
const SWEEP_BATCH: usize = 100;

#[derive(Default)]
pub struct Presence {
    local: Mutex<Counts>,
    cluster: OnceLock<Cluster>,
}

#[derive(Default)]
struct Counts {
    users: HashMap<i64, usize>,
    sessions: HashMap<String, usize>,
}

/// The Redis side of presence.
struct Cluster {
    redis: ConnectionManager,
    prefix: String,
    node: String,
}

/// Sums a user's socket counts over live nodes (the caller's own node always counts).
const LIVE_SUM: &str = r#"
local total = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if fields[i] == ARGV[1] or redis.call('EXISTS', ARGV[2] .. ':node:' .. fields[i]) == 1 then
    total = total + tonumber(fields[i + 1])
  end
end
"#;

impl Presence {
    /// Shares presence across nodes through Redis.
    pub async fn join_cluster(&self, url: &str, prefix: &str) -> anyhow::Result<()> {
        let redis = redis_conn::connect(url, redis_conn::settings()).await?;
        let cluster = Cluster {
            redis,
            prefix: prefix.to_owned(),
            node: crate::ids::hex_id(),
        };
        cluster.heartbeat().await?;
        let _ = self.cluster.set(cluster);
        Ok(())
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a new socket; true when it is the user's first anywhere (they came online).
    pub async fn connected(&self, user_id: i64, session: Option<&str>) -> bool {
        let first_here = {
            let mut c = self.counts();
            if let Some(sid) = session {
                *c.sessions.entry(sid.to_owned()).or_default() += 1;
            }
            let n = c.users.entry(user_id).or_default();
            *n += 1;
            *n == 1
        };
        match self.cluster.get() {
            Some(cluster) => cluster
                .change(user_id, 1)
                .await
                .map(|total| total == 1)
                .unwrap_or(first_here),
            None => first_here,
        }
    }

    /// Records a closed socket; true when it was the user's last anywhere (they went offline).
    pub async fn disconnected(&self, user_id: i64, session: Option<&str>) -> bool {
        let last_here = {
            let mut c = self.counts();
            if let Some(sid) = session
                && let Some(n) = c.sessions.get_mut(sid)
            {
                *n -= 1;
                if *n == 0 {
                    c.sessions.remove(sid);
                }
            }
            match c.users.get_mut(&user_id) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    c.users.remove(&user_id);
                    true
                }
                None => false,
            }
        };
        match self.cluster.get() {
            Some(cluster) => cluster
                .change(user_id, -1)
                .await
                .map(|total| total == 0)
                .unwrap_or(last_here),
            None => last_here,
        }
    }

    pub async fn is_online(&self, user_id: i64) -> bool {
        let here = self.counts().users.contains_key(&user_id);
        match self.cluster.get() {
            Some(cluster) if !here => cluster.total(user_id).await.map(|t| t > 0).unwrap_or(false),
            _ => here,
        }
    }

    /// Sockets of `user_id` on this node.
    pub fn local_sockets(&self, user_id: i64) -> usize {
        self.counts().users.get(&user_id).copied().unwrap_or(0)
    }

    pub fn local_online_users(&self) -> usize {
        self.counts().users.len()
    }

    /// Sessions that have at least one socket open here (kept alive while a tab is open).
    pub fn sessions_with_sockets(&self) -> Vec<String> {
        self.counts().sessions.keys().cloned().collect()
    }

    /// Says this node is alive. If its heartbeat had expired (a pause, a Redis restart), the
    /// others may have swept its users: it registers all of them again and returns them (they
    /// are online again).
    pub async fn heartbeat(&self) -> Vec<i64> {
        let Some(cluster) = self.cluster.get() else {
            return Vec::new();
        };
        match cluster.heartbeat().await {
            Ok(true) => Vec::new(),
            Ok(false) => {
                let users: Vec<(i64, usize)> =
                    self.counts().users.iter().map(|(u, n)| (*u, *n)).collect();
                match cluster.register(&users).await {
                    Ok(()) => {
                        tracing::info!(users = users.len(), "presence registered again");
                        users.into_iter().map(|(u, _)| u).collect()
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "presence registration failed");
                        Vec::new()
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "presence heartbeat failed");
                Vec::new()
            }
        }
    }

    /// Sweeps the nodes that stopped heartbeating; returns the users who went offline with
    /// them. Runs apart from the heartbeat, so that a large sweep cannot make this node miss
    /// its own heartbeat and be swept next.
    pub async fn sweep(&self) -> Vec<i64> {
        let Some(cluster) = self.cluster.get() else {
            return Vec::new();
        };
        cluster.sweep_dead_nodes().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "presence sweep failed");
            Vec::new()
        })
    }

    /// Takes this node out of the cluster's presence at once (graceful shutdown).
    pub async fn leave_cluster(&self) {
        if let Some(cluster) = self.cluster.get() {
            let mut redis = cluster.redis.clone();
            let _: Result<(), _> = redis::cmd("DEL")
                .arg(cluster.key(&format!("node:{}", cluster.node)))
                .query_async(&mut redis)
                .await;
        }
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> bool {
        let Some(cluster) = self.cluster.get() else {
            return false;
        };
        let mut redis = cluster.redis.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut redis)
            .await
            .is_ok()
    }

    pub fn is_clustered(&self) -> bool {
        self.cluster.get().is_some()
    }
}

impl App {
    /// Admits one more socket or lobby connection of `who` on this node (see
    /// [`Limits::admit_connection`](super::limits::Limits::admit_connection)); the connection
    /// holds the slot for its life.
    pub fn admit_connection(&self, who: &Identity) -> ServiceResult<ConnectionSlot> {
        self.limits.admit_connection(who.id())
    }

    /// A socket of `who` opened on this node; if they came online, their correspondents hear
    /// it (without holding up the caller).
    pub async fn socket_opened(&self, who: &Identity) {
        if self
            .presence
            .connected(who.id(), who.session_id.as_deref())
            .await
        {
            let (app, user) = (self.clone(), who.user.clone());
            tokio::spawn(async move { app.announce_presence(&user, true).await });
        }
    }

    /// A socket of `who` closed on this node; if it was their last anywhere, their
    /// correspondents hear they went offline.
    pub async fn socket_closed(&self, who: &Identity) {
        if self
            .presence
            .disconnected(who.id(), who.session_id.as_deref())
            .await
        {
            self.announce_presence(&who.user, false).await;
        }
    }

    /// Heartbeats this node; if it had been given up for dead, its users are registered and
    /// announced again.
    pub async fn presence_heartbeat(&self) {
        for user_id in self.presence.heartbeat().await {
            self.announce_user(user_id, true).await;
        }
    }

    /// Sweeps stopped nodes and announces the users who went offline with them.
    pub async fn presence_sweep(&self) {
        for user_id in self.presence.sweep().await {
            self.announce_user(user_id, false).await;
        }
    }

    async fn announce_user(&self, user_id: i64, online: bool) {
        if let Err(e) = presence::announce_user(&self.db, &self.outbox, user_id, online).await {
            tracing::warn!(error = %e, "announcing presence failed");
        }
    }

    /// Tells the users who share a thread with `user` that they came or went.
    async fn announce_presence(&self, user: &UserRef, online: bool) {
        if let Err(e) = presence::announce(&self.db, &self.outbox, user, online).await {
            tracing::warn!(error = %e, "announcing presence failed");
        }
    }
}

impl Cluster {
    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.prefix)
    }

    /// Renews this node's heartbeat; says whether it was still alive before.
    async fn heartbeat(&self) -> redis::RedisResult<bool> {
        let mut redis = self.redis.clone();
        let (previous,): (Option<String>,) = redis::pipe()
            .cmd("SET")
            .arg(self.key(&format!("node:{}", self.node)))
            .arg(1)
            .arg("EX")
            .arg(HEARTBEAT_TTL_SECS)
            .arg("GET")
            .cmd("SADD")
            .arg(self.key("nodes"))
            .arg(&self.node)
            .ignore()
            .query_async(&mut redis)
            .await?;
        Ok(previous.is_some())
    }

    /// Writes this node's socket counts of `users` again, a hundred users per round trip.
    async fn register(&self, users: &[(i64, usize)]) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        for chunk in users.chunks(100) {
            let mut pipe = redis::pipe();
            for (user_id, n) in chunk {
                pipe.cmd("HSET")
                    .arg(self.key(&format!("presence:{user_id}")))
                    .arg(&self.node)
                    .arg(*n)
                    .ignore()
                    .cmd("SADD")
                    .arg(self.key(&format!("node_users:{}", self.node)))
                    .arg(*user_id)
                    .ignore();
            }
            pipe.query_async::<()>(&mut redis).await?;
        }
        Ok(())
    }

    /// Adds `delta` to this node's count for the user; returns the user's live total.
    async fn change(&self, user_id: i64, delta: i64) -> redis::RedisResult<i64> {
        let script = redis::Script::new(&format!(
            r#"
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[3])
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('SADD', KEYS[2], ARGV[4])
{LIVE_SUM}
return total
"#
        ));
        let mut redis = self.redis.clone();
        script
            .key(self.key(&format!("presence:{user_id}")))
            .key(self.key(&format!("node_users:{}", self.node)))
            .arg(&self.node)
            .arg(&self.prefix)
            .arg(delta)
            .arg(user_id)
            .invoke_async(&mut redis)
            .await
    }

    async fn total(&self, user_id: i64) -> redis::RedisResult<i64> {
        let script = redis::Script::new(&format!("{LIVE_SUM}\nreturn total"));
        let mut redis = self.redis.clone();
        script
            .key(self.key(&format!("presence:{user_id}")))
            .arg(&self.node)
            .arg(&self.prefix)
            .invoke_async(&mut redis)
            .await
    }

    async fn sweep_dead_nodes(&self) -> redis::RedisResult<Vec<i64>> {
        let mut redis = self.redis.clone();
        let nodes: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.key("nodes"))
            .query_async(&mut redis)
            .await?;
        let mut offline = Vec::new();
        for node in nodes.into_iter().filter(|n| *n != self.node) {
            let alive: bool = redis::cmd("EXISTS")
                .arg(self.key(&format!("node:{node}")))
                .query_async(&mut redis)
                .await?;
            if alive {
                continue;
            }
            // One live node sweeps each dead one.
            let claimed: Option<String> = redis::cmd("SET")
                .arg(self.key(&format!("sweep:{node}")))
                .arg(&self.node)
                .arg("NX")
                .arg("EX")
                .arg(30)
                .query_async(&mut redis)
                .await?;
            if claimed.is_none() {
                continue;
            }
            let users: Vec<i64> = redis::cmd("SMEMBERS")
                .arg(self.key(&format!("node_users:{node}")))
                .query_async(&mut redis)
                .await?;
            let script = redis::Script::new(&format!(
                "if redis.call('HDEL', KEYS[1], ARGV[3]) == 0 then return -1 end\n{LIVE_SUM}\nreturn total"
            ));
            // A hundred users at a time, their scripts in flight together on the multiplexed
            // connection: a node of many thousand users is swept in a few round trips' time.
            for chunk in users.chunks(SWEEP_BATCH) {
                let totals = futures_util::future::join_all(chunk.iter().map(|user_id| {
                    let mut redis = self.redis.clone();
                    let mut call = script.key(self.key(&format!("presence:{user_id}")));
                    call.arg(&self.node).arg(&self.prefix).arg(&node);
                    async move { call.invoke_async::<i64>(&mut redis).await }
                }))
                .await;
                for (user_id, total) in chunk.iter().zip(totals) {
                    if total? == 0 {
                        offline.push(*user_id);
                    }
                }
            }
            redis::pipe()
                .cmd("DEL")
                .arg(self.key(&format!("node_users:{node}")))
                .ignore()
                .cmd("SREM")
                .arg(self.key("nodes"))
                .arg(&node)
                .ignore()
                .query_async::<()>(&mut redis)
                .await?;
            tracing::info!(
                node,
                swept = offline.len(),
                "swept the presence of a stopped node"
            );
        }
        Ok(offline)
    }
}
