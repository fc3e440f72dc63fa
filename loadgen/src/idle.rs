//! idle: hold N authenticated websockets open; report handshakes/s and server RSS per connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::stats;
use crate::target::Target;

#[derive(Args, Clone)]
pub struct IdleArgs {
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Connections to open.
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Distinct users (the connections are spread over them).
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Seconds to hold the connections before measuring.
    #[arg(long, default_value_t = 5)]
    pub hold: u64,
    /// Sockets also ask for the legacy Flask-Messaging events (`W_newmsg`, `<thread_id>`), as
    /// the original client's do; by default they connect as native clients.
    #[arg(long)]
    pub legacy: bool,
    /// Server process id (needed for RSS per connection).
    #[arg(long)]
    pub server_pid: Option<u32>,
    #[arg(long, default_value = "results")]
    pub out: std::path::PathBuf,
}

pub async fn run(target: Target, args: IdleArgs, name: &str) -> anyhow::Result<Value> {
    let limit = stats::raise_fd_limit();
    if (limit as usize) < args.connections + 100 {
        anyhow::bail!(
            "open-file limit {limit} is too low for {} connections",
            args.connections
        );
    }
    let bar = crate::bar(args.users as u64, "users");
    let users = target.users(args.users, 8, &bar).await?;
    bar.finish_and_clear();
    // Warm the server up with one socket so one-time allocations are not counted per connection.
    let warm = target.connect(&users[0]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = args.server_pid.and_then(stats::proc_sample);

    let bar = crate::bar(args.connections as u64, "connections");
    let started = Instant::now();
    let opened: Vec<_> = futures_util::stream::iter(0..args.connections)
        .map(|i| {
            let (target, user, bar) = (&target, &users[i % users.len()], &bar);
            async move {
                let s = target.connect(user).await;
                bar.inc(1);
                s
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    let connect_time = started.elapsed();
    bar.finish_and_clear();
    let failed = opened.iter().filter(|s| s.is_err()).count();
    if let Some(Err(e)) = opened.iter().find(|s| s.is_err()) {
        println!("first failure: {e:#}");
    }
    let sockets: Vec<Arc<missive_client::Socket>> = opened
        .into_iter()
        .filter_map(Result::ok)
        .map(Arc::new)
        .collect();
    let ok = sockets.len();
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let held = args.server_pid.and_then(stats::proc_sample);
    let per_conn_kib = match (before, held) {
        (Some(b), Some(h)) if ok > 0 => {
            Some(((h.rss_kib as f64 - b.rss_kib as f64) / ok as f64 * 100.0).round() / 100.0)
        }
        _ => None,
    };
    let handshakes_per_s = (ok as f64 / connect_time.as_secs_f64()).round();
    for s in &sockets {
        s.close();
    }
    drop(warm);
    let result = json!({
        "scenario": name, "legacy": args.legacy, "connections": ok, "failed": failed, "users": args.users,
        "connect_seconds": connect_time.as_secs_f64(), "handshakes_per_s": handshakes_per_s,
        "server_rss_before_kib": before.map(|b| b.rss_kib), "server_rss_held_kib": held.map(|h| h.rss_kib),
        "server_rss_per_connection_kib": per_conn_kib,
    });
    println!(
        "{name}: {ok} connections ({failed} failed), {handshakes_per_s} handshakes/s, {} KiB server RSS per connection",
        per_conn_kib
            .map(|v| v.to_string())
            .unwrap_or_else(|| "?".into())
    );
    stats::write_json(&args.out, name, &result)?;
    Ok(result)
}
