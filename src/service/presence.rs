//! Who is online. Each node counts its own sockets per user and per session; with Redis, the
//! counts of every node are kept in one hash per user, so a user is online while any live node
//! holds a socket of theirs. Nodes heartbeat; the sockets of a node that stops heartbeating
//! (killed, partitioned) are swept by the others, which announce who went offline with it.
//!
//! Presence is state, not history: what the correspondents were last told is kept (`shown`,
//! in Redis when clustered), a user is shown online with their first socket and offline only
//! once `--presence-grace` has passed without any, so a tab that reloads, or a client that
//! opens and closes sockets a thousand times, tells the others nothing new. Nothing of it is
//! logged: a recovering socket is sent the current presence instead (`correspondents_presence`).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

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
    /// Users the correspondents were told are online (single node; the cluster keeps this in
    /// Redis).
    shown: HashSet<i64>,
    /// Users whose last socket here closed, waiting out the grace period: when it closed.
    leaving: HashMap<i64, Instant>,
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
    pub async fn join_cluster(
        &self,
        target: &redis_conn::Target,
        prefix: &str,
    ) -> anyhow::Result<()> {
        let redis = redis_conn::connect(target, redis_conn::settings()).await?;
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

    /// Records a new socket; true when the user is to be shown online (they were not).
    pub async fn connected(&self, user_id: i64, session: Option<&str>) -> bool {
        let newly_shown_here = {
            let mut c = self.counts();
            if let Some(sid) = session {
                *c.sessions.entry(sid.to_owned()).or_default() += 1;
            }
            *c.users.entry(user_id).or_default() += 1;
            c.shown.insert(user_id)
        };
        match self.cluster.get() {
            Some(cluster) => cluster.connected(user_id).await.unwrap_or(newly_shown_here),
            None => newly_shown_here,
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

    /// Notes that the user's last socket here closed at `now`; true when no grace period of
    /// theirs was running already (the caller starts one; a running one sees the new time).
    pub fn start_leaving(&self, user_id: i64) -> bool {
        self.counts()
            .leaving
            .insert(user_id, Instant::now())
            .is_none()
    }

    /// How long the user's grace period still runs; `None` once it is over (and forgotten).
    pub fn grace_left(&self, user_id: i64, grace: Duration) -> Option<Duration> {
        let mut c = self.counts();
        let since = *c.leaving.get(&user_id)?;
        let left = grace.saturating_sub(since.elapsed());
        if left.is_zero() {
            c.leaving.remove(&user_id);
            return None;
        }
        Some(left)
    }

    /// Whether the user is to be shown offline now: no socket of theirs anywhere, and shown
    /// online until now (they are shown offline from here on).
    pub async fn hide_if_gone(&self, user_id: i64) -> bool {
        let hidden_here = {
            let mut c = self.counts();
            !c.users.contains_key(&user_id) && c.shown.remove(&user_id)
        };
        match self.cluster.get() {
            Some(cluster) => cluster.hide_if_gone(user_id).await.unwrap_or(hidden_here),
            None => hidden_here,
        }
    }

    /// Shows the user online again if they were not (this node registered its sockets again).
    async fn show(&self, user_id: i64) -> bool {
        let here = self.counts().shown.insert(user_id);
        match self.cluster.get() {
            Some(cluster) => cluster.show(user_id).await.unwrap_or(here),
            None => here,
        }
    }

    /// Which of `user_ids` are shown online.
    pub async fn shown_among(&self, user_ids: &[i64]) -> Vec<bool> {
        if let Some(cluster) = self.cluster.get()
            && let Ok(shown) = cluster.shown_among(user_ids).await
        {
            return shown;
        }
        let c = self.counts();
        user_ids.iter().map(|u| c.shown.contains(u)).collect()
    }

    /// Which of `user_ids` hold no socket on this node.
    pub fn away_here(&self, user_ids: impl Iterator<Item = i64>) -> Vec<bool> {
        let c = self.counts();
        user_ids.map(|u| !c.users.contains_key(&u)).collect()
    }

    /// Those of `user_ids` who hold no socket on any live node (this one's count is exact; the
    /// others' are read from Redis, and a user whose count cannot be read counts as away).
    pub async fn away_everywhere(&self, user_ids: &[i64]) -> Vec<i64> {
        let away: Vec<i64> = user_ids
            .iter()
            .copied()
            .zip(self.away_here(user_ids.iter().copied()))
            .filter_map(|(u, away)| away.then_some(u))
            .collect();
        let Some(cluster) = self.cluster.get() else {
            return away;
        };
        let mut gone = Vec::with_capacity(away.len());
        for user_id in away {
            if cluster.total(user_id).await.unwrap_or(0) == 0 {
                gone.push(user_id);
            }
        }
        gone
    }

    /// The Redis connection and key prefix shared by the cluster's nodes, when clustered.
    pub fn cluster_redis(&self) -> Option<(ConnectionManager, String)> {
        let cluster = self.cluster.get()?;
        Some((cluster.redis.clone(), cluster.prefix.clone()))
    }

    pub fn local_online_users(&self) -> usize {
        self.counts().users.len()
    }

    /// Grants (sessions, Basic credentials) that have at least one socket open here (a
    /// session is kept alive while a tab is open; all are revalidated).
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

    /// A socket of `who` opened on this node; if they were not shown online, their
    /// correspondents hear it now (without holding up the caller).
    pub async fn socket_opened(&self, who: &Identity) {
        if self.presence.connected(who.id(), Some(&who.grant())).await {
            let (app, user) = (self.clone(), who.user.clone());
            tokio::spawn(async move { app.announce_presence(&user, true).await });
        }
    }

    /// A socket of `who` closed on this node; if it was their last anywhere, they are shown
    /// offline once the grace period has passed without a new one.
    pub async fn socket_closed(&self, who: &Identity) {
        if self
            .presence
            .disconnected(who.id(), Some(&who.grant()))
            .await
            && self.presence.start_leaving(who.id())
        {
            let (app, user) = (self.clone(), who.user.clone());
            tokio::spawn(async move { app.offline_after_grace(user).await });
        }
    }

    /// Waits out `user`'s grace period (restarted by every last socket that closes during it),
    /// then shows them offline if they still hold no socket anywhere.
    async fn offline_after_grace(&self, user: UserRef) {
        let grace = self.config.presence_grace;
        while let Some(left) = self.presence.grace_left(user.id, grace) {
            tokio::time::sleep(left).await;
        }
        if self.presence.hide_if_gone(user.id).await {
            self.announce_presence(&user, false).await;
        }
    }

    /// The current presence of everyone who shares a thread with `who`: what a recovering
    /// socket is sent instead of the flips it missed.
    pub async fn correspondents_presence(
        &self,
        who: &Identity,
    ) -> ServiceResult<Vec<crate::domain::events::Presence>> {
        let people = crate::domain::messaging::correspondents(
            &self.db.conn,
            who.id(),
            crate::domain::messaging::Seen::By,
        )
        .await?;
        let ids: Vec<i64> = people.iter().map(|p| p.id).collect();
        let shown = self.presence.shown_among(&ids).await;
        Ok(people
            .into_iter()
            .zip(shown)
            .map(|(p, online)| crate::domain::events::Presence {
                username: p.username,
                online,
            })
            .collect())
    }

    /// Heartbeats this node; if it had been given up for dead, its users are registered and
    /// announced again.
    pub async fn presence_heartbeat(&self) {
        for user_id in self.presence.heartbeat().await {
            if self.presence.show(user_id).await {
                self.announce_user(user_id, true).await;
            }
        }
    }

    /// Sweeps stopped nodes and announces the users who went offline with them.
    pub async fn presence_sweep(&self) {
        for user_id in self.presence.sweep().await {
            if self.presence.hide_if_gone(user_id).await {
                self.announce_user(user_id, false).await;
            }
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

    /// The user's socket count over live nodes.
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

    fn shown_key(&self, user_id: i64) -> String {
        self.key(&format!("shown:{user_id}"))
    }

    /// Counts a new socket of the user here; says whether they are to be shown online (they
    /// were not), in one script with the count so that a concurrent hide cannot interleave.
    async fn connected(&self, user_id: i64) -> redis::RedisResult<bool> {
        let script = redis::Script::new(
            r#"
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], ARGV[2])
if redis.call('SET', KEYS[3], '1', 'NX') then return 1 end
return 0
"#,
        );
        let mut redis = self.redis.clone();
        let shown: i64 = script
            .key(self.key(&format!("presence:{user_id}")))
            .key(self.key(&format!("node_users:{}", self.node)))
            .key(self.shown_key(user_id))
            .arg(&self.node)
            .arg(user_id)
            .invoke_async(&mut redis)
            .await?;
        Ok(shown == 1)
    }

    /// Shows the user offline if no live node holds a socket of theirs and they were shown
    /// online; says whether it did.
    async fn hide_if_gone(&self, user_id: i64) -> redis::RedisResult<bool> {
        let script = redis::Script::new(&format!(
            "{LIVE_SUM}\nif total > 0 then return 0 end\nreturn redis.call('DEL', KEYS[2])"
        ));
        let mut redis = self.redis.clone();
        let hidden: i64 = script
            .key(self.key(&format!("presence:{user_id}")))
            .key(self.shown_key(user_id))
            .arg(&self.node)
            .arg(&self.prefix)
            .invoke_async(&mut redis)
            .await?;
        Ok(hidden == 1)
    }

    /// Shows the user online if they were not; says whether it did.
    async fn show(&self, user_id: i64) -> redis::RedisResult<bool> {
        let mut redis = self.redis.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.shown_key(user_id))
            .arg(1)
            .arg("NX")
            .query_async(&mut redis)
            .await?;
        Ok(set.is_some())
    }

    async fn shown_among(&self, user_ids: &[i64]) -> redis::RedisResult<Vec<bool>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut redis = self.redis.clone();
        let keys: Vec<String> = user_ids.iter().map(|u| self.shown_key(*u)).collect();
        let values: Vec<Option<String>> =
            redis::cmd("MGET").arg(keys).query_async(&mut redis).await?;
        Ok(values.into_iter().map(|v| v.is_some()).collect())
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
