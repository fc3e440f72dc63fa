//! storm: whether one user's recovery storm slows another user's sends. One user has a long
//! log (`--missed` messages, twice as many events); `--sockets` of their sockets reconnect
//! with their pid again and again asking for all of it, half of them also `sync` it from the
//! start; meanwhile a second user sends to a third, one send at a time, and the latency of
//! those sends is measured before the storm (quiet) and during it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use missive_client::{Incoming, Socket};
use serde_json::{Value, json};

use crate::recovery::{send, tab};
use crate::stats::{self, Latency};
use crate::target::Target;

#[derive(Args, Clone)]
pub struct StormArgs {
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Messages in the storming user's log (each a `message:new` and an `unread`).
    #[arg(long, default_value_t = 2_000)]
    pub missed: usize,
    /// Sockets of the storming user, each reconnecting in a loop.
    #[arg(long, default_value_t = 32)]
    pub sockets: usize,
    /// Seconds of quiet sends, then as many of sends during the storm.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
}

/// One send after another from `sender` in `thread` until `until`; their latencies (µs).
async fn sends(sender: &Socket, thread: &Value, until: Instant) -> anyhow::Result<Vec<u64>> {
    let mut samples = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        send(sender, thread, "calm").await?;
        samples.push(started.elapsed().as_micros() as u64);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(samples)
}

pub async fn run(args: StormArgs) -> anyhow::Result<Value> {
    let target = Target::missive(&args.url, false);
    let progress = crate::bar(4, "users");
    let users = target.users(4, 4, &progress).await?;
    progress.finish_and_clear();
    let (storming, filler, calm, reader) = (&users[0], &users[1], &users[2], &users[3]);
    let token = storming.auth["token"].as_str().context("token")?.to_owned();
    let long = target.conversation(filler, &[storming]).await?;
    let quiet = target.conversation(calm, &[reader]).await?;
    let first = target.connect(storming).await?;
    let pid = first.pid.clone().context("no pid: is the event log on?")?;
    first.close();
    let filler_socket = target.connect(filler).await?;
    let bar = crate::bar(args.missed as u64, "messages");
    for i in 0..args.missed {
        send(&filler_socket, &long, &format!("missed {i}")).await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let sender = target.connect(calm).await?;
    let _reader = target.connect(reader).await?;
    let phase = Duration::from_secs(args.duration);

    let mut before = sends(&sender, &quiet, Instant::now() + phase).await?;
    let storm_ends = Instant::now() + phase;
    let replayed = Arc::new(AtomicUsize::new(0));
    let reconnects = Arc::new(AtomicUsize::new(0));
    let storm: Vec<_> = (0..args.sockets)
        .map(|i| {
            let (url, token, pid) = (args.url.clone(), token.clone(), pid.clone());
            let (replayed, reconnects) = (replayed.clone(), reconnects.clone());
            tokio::spawn(async move {
                while Instant::now() < storm_ends {
                    let Ok(socket) = tab(&url, &token, Some((&pid, "1"))).await else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    reconnects.fetch_add(1, Ordering::Relaxed);
                    if i % 2 == 0 {
                        let _ = socket
                            .emit_with_ack("sync", &json!({"since": "0"}), Duration::from_secs(10))
                            .await;
                    }
                    let deadline = (Instant::now() + Duration::from_millis(500)).min(storm_ends);
                    while let Some(incoming) = socket
                        .next(deadline.saturating_duration_since(Instant::now()))
                        .await
                    {
                        if matches!(incoming, Incoming::Raw { .. } | Incoming::Event { .. }) {
                            replayed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    socket.close();
                }
            })
        })
        .collect();
    let mut during = sends(&sender, &quiet, storm_ends).await?;
    for task in storm {
        task.await?;
    }
    let (quiet_latency, storm_latency) = (Latency::of(&mut before), Latency::of(&mut during));
    let (replayed, reconnects) = (
        replayed.load(Ordering::Relaxed),
        reconnects.load(Ordering::Relaxed),
    );
    let result = json!({
        "scenario": "storm",
        "log_events": args.missed * 2,
        "sockets": args.sockets,
        "reconnects": reconnects,
        "replayed_events": replayed,
        "quiet": quiet_latency,
        "storm": storm_latency,
    });
    println!(
        "another user's sends: quiet p50 {:.1} ms p99 {:.1} ms; during the storm ({reconnects} \
         recovering connects, {replayed} events replayed) p50 {:.1} ms p99 {:.1} ms",
        quiet_latency.p50_ms, quiet_latency.p99_ms, storm_latency.p50_ms, storm_latency.p99_ms
    );
    stats::write_json(&args.out, "storm", &result)?;
    Ok(result)
}
