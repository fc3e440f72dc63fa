//! A node's background tasks: the session sweeper, the keep-alive of sessions that have open
//! sockets, the SQLite checkpointer, the sessions count,
//! the admin stats stream, the event log's pruning and, in a
//! cluster, the presence heartbeat. Each calls one service function on a timer.

use std::time::Duration;

use crate::service::App;

/// Aborts background tasks when the server stops.
pub struct CancelOnDrop(pub Vec<tokio::task::JoinHandle<()>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

pub fn spawn(app: &App) -> Vec<tokio::task::JoinHandle<()>> {
    let sweeper = every(Duration::from_millis(500), app, |app| async move {
        app.sweep_sessions().await
    });
    // An open tab is activity: sessions with sockets on this node are kept alive.
    let period =
        (app.config.session_idle / 4).clamp(Duration::from_millis(250), Duration::from_secs(60));
    let keepalive = every(
        period,
        app,
        |app| async move { app.keep_sessions_alive().await },
    );
    // A socket whose session ended elsewhere is closed within this period even if the
    // disconnect message never reached this node.
    let revalidate = every(Duration::from_secs(5), app, |app| async move {
        app.revalidate_sessions().await
    });
    // The sessions gauge of /metrics and the dashboard: counted here, not per scrape.
    let sessions = every(Duration::from_secs(5), app, |app| async move {
        app.count_sessions().await
    });
    let admin = tokio::spawn(app.clone().stream_admin_stats());
    // Security log entries are kept 90 days.
    let security_log = every(Duration::from_secs(600), app, |app| async move {
        app.sweep_security_log().await
    });
    let mut tasks = vec![
        sweeper,
        keepalive,
        revalidate,
        sessions,
        admin,
        security_log,
    ];
    if app.db.log_events {
        // Entries past the recovery window go within a quarter of it (a minute at most).
        let period = (app.config.recovery_window / 4)
            .clamp(Duration::from_millis(250), Duration::from_secs(60));
        tasks.push(every(period, app, |app| async move {
            match app.prune_event_log().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(entries = n, "event log pruned"),
                Err(e) => tracing::warn!(error = %e, "pruning the event log failed"),
            }
        }));
    }
    if app.db.backend() == sea_orm::DbBackend::Sqlite {
        // Every 100 ms: flat out, the WAL grows by tens of MB a second, and whatever this task
        // leaves behind the writer copies itself (past 10,000 pages), fsync included, while the
        // senders of its batch wait. On an idle server each run finds nothing to copy.
        tasks.push(every(Duration::from_millis(100), app, |app| async move {
            if let Err(e) = app.db.checkpoint().await {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }));
    }
    if app.presence.is_clustered() {
        let beat = crate::service::presence::HEARTBEAT;
        tasks.push(every(beat, app, |app| async move {
            app.presence_heartbeat().await
        }));
        // Apart from the heartbeat: sweeping a large node takes a while.
        tasks.push(every(
            beat,
            app,
            |app| async move { app.presence_sweep().await },
        ));
    }
    tasks
}

/// Runs `work` every `period`; a late tick delays the next ones instead of bunching them up.
fn every<F, Fut>(period: Duration, app: &App, work: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(App) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let app = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            work(app.clone()).await;
        }
    })
}
