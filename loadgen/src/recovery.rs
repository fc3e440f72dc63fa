//! recovery: how long a reconnecting tab takes to be sent what it missed. One user's tab drops;
//! another user sends `--missed` messages (each is a `message:new` and an `unread` for the tab,
//! so twice as many events); the tab reconnects with its pid and last offset, and the time from
//! its CONNECT to the last replayed event is measured, `--runs` times.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use missive_client::{ConnectOptions, Incoming, Socket};
use serde_json::{Value, json};

use crate::stats::{self, Latency};
use crate::target::Target;

#[derive(Args, Clone)]
pub struct RecoveryArgs {
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Messages sent while the tab is away (it misses twice as many events).
    #[arg(long, default_value_t = 500)]
    pub missed: usize,
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
}

/// A native tab that may present a pid and offset, hearing every event undecoded.
pub async fn tab(url: &str, token: &str, resume: Option<(&str, &str)>) -> anyhow::Result<Socket> {
    let mut auth = json!({"token": token, "legacy": false});
    if let Some((pid, offset)) = resume {
        auth["pid"] = json!(pid);
        auth["offset"] = json!(offset);
    }
    let opts = ConnectOptions::namespace("/messages")
        .auth(auth)
        .raw_payloads();
    Socket::connect(url, opts)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Sends `body` from `sender` in `thread` and waits for its ack; a refused send ends the run.
pub async fn send(sender: &Socket, thread: &Value, body: &str) -> anyhow::Result<()> {
    let ack = sender
        .emit_with_ack(
            "message:send",
            &json!({"thread_id": thread["thread_id"], "body": body}),
            Duration::from_secs(10),
        )
        .await?;
    if ack["status"] != true {
        bail!("send refused: {ack} (start the server with MISSIVE_SEND_RATE=0)");
    }
    Ok(())
}

/// The offset an undecoded event carries last (`[..., "42"]`).
fn offset(json: &str) -> Option<String> {
    let items: Vec<Value> = serde_json::from_str(json).ok()?;
    items.last()?.as_str().map(str::to_owned)
}

pub async fn run(args: RecoveryArgs) -> anyhow::Result<Value> {
    let target = Target::missive(&args.url, false);
    let progress = crate::bar(2, "users");
    let users = target.users(2, 2, &progress).await?;
    progress.finish_and_clear();
    let (reader, writer) = (&users[0], &users[1]);
    let thread = target.conversation(writer, &[reader]).await?;
    let token = reader.auth["token"].as_str().context("token")?.to_owned();
    let sender = target.connect(writer).await?;

    let mut first = tab(&args.url, &token, None).await?;
    let pid = first.pid.clone().context("no pid: is the event log on?")?;
    // Where the tab stands: `sync` answers the log's head.
    let head = first
        .emit_with_ack("sync", &json!({}), Duration::from_secs(10))
        .await?;
    let mut last = head["head"].as_str().context("sync head")?.to_owned();
    let mut samples = Vec::with_capacity(args.runs);
    let bar = crate::bar(args.runs as u64, "replays");
    for _ in 0..args.runs {
        first.close();
        for i in 0..args.missed {
            send(&sender, &thread, &format!("missed {i}")).await?;
        }
        let expected = args.missed * 2;
        let started = Instant::now();
        let back = tab(&args.url, &token, Some((&pid, &last))).await?;
        if back.pid.as_deref() != Some(pid.as_str()) {
            bail!("the tab did not recover (raise MISSIVE_RECOVERY_MAX?)");
        }
        let mut got = 0;
        while got < expected {
            match back.next(Duration::from_secs(10)).await {
                Some(Incoming::Raw { json, .. }) => {
                    got += 1;
                    if let Some(o) = offset(&json) {
                        last = o;
                    }
                }
                Some(Incoming::Event { .. }) => got += 1,
                Some(Incoming::Disconnected) | None => {
                    bail!("replay stopped after {got} of {expected} events")
                }
            }
        }
        samples.push(started.elapsed().as_micros() as u64);
        bar.inc(1);
        first = back;
    }
    bar.finish_and_clear();
    let latency = Latency::of(&mut samples);
    let result = json!({
        "scenario": "recovery",
        "missed_events": args.missed * 2,
        "runs": args.runs,
        "replay": latency,
    });
    println!(
        "replay of {} missed events (CONNECT to the last one): p50 {:.1} ms, max {:.1} ms",
        args.missed * 2,
        latency.p50_ms,
        latency.max_ms
    );
    stats::write_json(&args.out, "recovery", &result)?;
    Ok(result)
}
