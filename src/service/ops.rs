//! Operating a node: health, metrics, and the admin dashboard's figures.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::App;
use crate::domain::events::Stats;
use crate::domain::{accounts, sessions};

/// What `/healthz` reports.
#[derive(Debug, Clone, Copy)]
pub struct Health {
    pub database: bool,
    /// `None` on a single node (no Redis configured).
    pub redis: Option<bool>,
}

impl App {
    /// Closes the dashboards of users who are no longer admins (`missive user demote` runs in
    /// another process): within a second of the demotion, before the next figures go out.
    async fn close_demoted_dashboards(&self) {
        let watching = self.notifier.local_admins();
        match accounts::admins_among(&self.db.conn, &watching).await {
            Ok(admins) => {
                for user_id in watching.iter().filter(|id| !admins.contains(id)) {
                    tracing::info!(user_id, "closing the admin dashboard of a demoted user");
                    self.notifier.revoke_admin(*user_id).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "admin check failed"),
        }
    }

    /// Whether the database answers within two seconds, and Redis (when configured) too.
    pub async fn health(&self) -> Health {
        let database = async {
            matches!(
                tokio::time::timeout(Duration::from_secs(2), self.db.ping()).await,
                Ok(Ok(()))
            )
        };
        let redis = async {
            match self.presence.is_clustered() {
                true => Some(
                    tokio::time::timeout(Duration::from_secs(2), self.presence.ping())
                        .await
                        .is_ok_and(|ok| ok),
                ),
                false => None,
            }
        };
        let (database, redis) = tokio::join!(database, redis);
        Health { database, redis }
    }

    /// The Prometheus text exposition of this node's figures: counters and gauges kept in
    /// memory, no database read (a scrape, however frequent, costs the database nothing).
    pub fn metrics_text(&self) -> String {
        self.metrics.render(
            self.presence.local_online_users(),
            self.notifier.adapter_failures(),
            self.notifier.bursts_rejected(),
        )
    }

    /// Counts the live sessions for `/metrics` and the dashboard (a background task's job).
    pub async fn count_sessions(&self) {
        match sessions::count_live(&self.db.conn).await {
            Ok(n) => self
                .metrics
                .sessions_live
                .store(i64::try_from(n).unwrap_or(i64::MAX), Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "counting sessions failed"),
        }
    }

    /// Sends `stats` to this node's admin dashboards every second while one is connected.
    pub async fn stream_admin_stats(self) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = (
            Instant::now(),
            self.metrics.messages_sent.load(Ordering::Relaxed),
        );
        loop {
            tick.tick().await;
            let now = Instant::now();
            let sent = self.metrics.messages_sent.load(Ordering::Relaxed);
            let rate = (sent - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(0.001);
            last = (now, sent);
            if !self.notifier.has_local_admins() {
                continue;
            }
            self.close_demoted_dashboards().await;
            // A dashboard is watching: its sessions figure is a second old at most.
            self.count_sessions().await;
            let started = Instant::now();
            let healthy = self.db.ping().await.is_ok();
            let db_latency_ms = if healthy {
                started.elapsed().as_secs_f64() * 1000.0
            } else {
                -1.0
            };
            let stats = Stats {
                connections: self.metrics.sockets_connected.load(Ordering::Relaxed)
                    + self.metrics.lobby_connected.load(Ordering::Relaxed),
                sessions: u64::try_from(self.metrics.sessions_live.load(Ordering::Relaxed))
                    .unwrap_or(0),
                messages_per_second: (rate * 10.0).round() / 10.0,
                db_latency_ms: (db_latency_ms * 100.0).round() / 100.0,
                timestamp: crate::ids::rfc3339(crate::ids::now_micros()),
            };
            self.notifier.admin_stats(&stats).await;
        }
    }
}
