//! `/admin`: live server figures, once a second, for admin accounts only.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::app::App;
use crate::domain::sessions;

pub const NAMESPACE: &str = "/admin";
/// Room of the admin sockets connected to this node.
pub const ROOM: &str = "admins";

/// One `stats` event.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// Socket.IO and lobby connections on this node.
    pub connections: i64,
    /// Live sessions (all nodes).
    pub sessions: u64,
    /// Messages stored by this node during the last second.
    pub messages_per_second: f64,
    /// Round trip of `SELECT 1`.
    pub db_latency_ms: f64,
    pub timestamp: String,
}

/// Sets up an admin socket during its handshake: admin sockets only listen.
pub fn admit<A: Adapter>(s: &SocketRef<A>, session_id: Option<&str>) {
    s.join(ROOM);
    // Logout and expiry disconnect this socket like the others of its session.
    if let Some(sid) = session_id {
        s.join(super::notify::session_room(sid));
    }
}

/// Emits `stats` every second while an admin is connected here.
pub async fn stream_stats(app: App) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = (
        Instant::now(),
        app.metrics.messages_sent.load(Ordering::Relaxed),
    );
    loop {
        tick.tick().await;
        let now = Instant::now();
        let sent = app.metrics.messages_sent.load(Ordering::Relaxed);
        let rate = (sent - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(0.001);
        last = (now, sent);
        if !app.notifier.has_local_admins() {
            continue;
        }
        let started = Instant::now();
        let healthy = app.db.ping().await.is_ok();
        let db_latency_ms = if healthy {
            started.elapsed().as_secs_f64() * 1000.0
        } else {
            -1.0
        };
        let stats = Stats {
            connections: app.metrics.sockets_connected.load(Ordering::Relaxed)
                + app.metrics.lobby_connected.load(Ordering::Relaxed),
            sessions: sessions::count_live(&app.db.conn).await.unwrap_or(0),
            messages_per_second: (rate * 10.0).round() / 10.0,
            db_latency_ms: (db_latency_ms * 100.0).round() / 100.0,
            timestamp: crate::ids::rfc3339(crate::ids::now_micros()),
        };
        app.notifier.admin_stats(&stats).await;
    }
}
