//! push: how many Web Push messages a server sends per second. `--recipients` users, none with a
//! tab open, each subscribe a made-up browser whose endpoint is a push sink started here (on
//! loopback: start the server with `MISSIVE_PUSH_ALLOW_PRIVATE=1`, and
//! `MISSIVE_PUSH_COALESCE=0` to measure every message rather than one per thread and window);
//! `--senders` users each write to their own recipients as fast as their acks come back. The
//! sink answers 201 and counts what arrives with the headers a push service requires (the test
//! suite's push service also verifies the signature and decrypts each one; here the CPU is left
//! to the server). Reported: acked sends/s, pushes/s, and pushes missing once the sends stop.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::http::{HeaderMap, StatusCode};
use clap::Args;
use serde_json::{Value, json};

use crate::recovery::send;
use crate::stats;
use crate::target::Target;

#[derive(Args, Clone)]
pub struct PushArgs {
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Users pushed to (no tab open), one subscription each.
    #[arg(long, default_value_t = 200)]
    pub recipients: usize,
    /// Users sending, each to `recipients / senders` of them in turn.
    #[arg(long, default_value_t = 20)]
    pub senders: usize,
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Server pid, for its CPU and memory.
    #[arg(long)]
    pub server_pid: Option<u32>,
    #[arg(long, default_value = "push")]
    pub name: String,
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
}

/// Pushes taken by the sink, and those missing a header a push service requires.
#[derive(Default)]
struct Sink {
    pushes: AtomicU64,
    malformed: AtomicU64,
}

async fn start_sink(sink: Arc<Sink>) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/push/{id}",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let complete = [
                    "authorization",
                    "ttl",
                    "urgency",
                    "topic",
                    "content-encoding",
                ]
                .iter()
                .all(|h| headers.contains_key(*h))
                    && !body.is_empty()
                    && body.len() <= 4096;
                match complete {
                    true => sink.pushes.fetch_add(1, Ordering::Relaxed),
                    false => sink.malformed.fetch_add(1, Ordering::Relaxed),
                };
                StatusCode::CREATED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

/// A made-up browser's subscription at `endpoint`: a fresh P-256 key and auth secret.
fn browser(endpoint: &str) -> Value {
    use base64::Engine;
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let point = key.public_key().to_encoded_point(false);
    json!({
        "endpoint": endpoint,
        "keys": {"p256dh": b64.encode(point.as_bytes()), "auth": b64.encode(rand::random::<[u8; 16]>())}
    })
}

pub async fn run(args: PushArgs) -> anyhow::Result<Value> {
    let target = Target::missive(&args.url, false);
    let Target::Missive { http, .. } = &target else {
        bail!("push runs against Missive");
    };
    let sink = Arc::new(Sink::default());
    let sink_url = start_sink(sink.clone()).await?;
    let n = args.recipients + args.senders;
    let progress = crate::bar(n as u64, "users");
    let users = target.users(n, 16, &progress).await?;
    progress.finish_and_clear();
    let (senders, recipients) = users.split_at(args.senders);
    for (i, r) in recipients.iter().enumerate() {
        let token = r.auth["token"].as_str().context("token")?;
        let res = http
            .post(format!("{}/api/v1/push/subscriptions", args.url))
            .bearer_auth(token)
            .json(&browser(&format!("{sink_url}/push/{i}")))
            .send()
            .await?;
        if !res.status().is_success() {
            bail!(
                "subscribing failed (start the server with MISSIVE_PUSH_ALLOW_PRIVATE=1): {}",
                res.text().await.unwrap_or_default()
            );
        }
    }
    // Each sender writes to its share of the recipients, one thread each.
    let mut work = Vec::new();
    for (s, sender) in senders.iter().enumerate() {
        let mut threads = Vec::new();
        for r in recipients.iter().skip(s).step_by(args.senders) {
            threads.push(target.conversation(sender, &[r]).await?);
        }
        work.push((target.connect(sender).await?, threads));
    }
    // The conversations' first messages were pushed too: wait for them, then count afresh.
    let opening = recipients.len() as u64;
    let settle = Instant::now() + Duration::from_secs(10);
    while sink.pushes.load(Ordering::Relaxed) < opening && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let base = sink.pushes.load(Ordering::Relaxed);
    let before = args.server_pid.and_then(stats::proc_sample);
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration);
    let sent = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = work
        .into_iter()
        .map(|(socket, threads)| {
            let sent = sent.clone();
            tokio::spawn(async move {
                let mut i = 0usize;
                while Instant::now() < until {
                    send(&socket, &threads[i % threads.len()], "push load").await?;
                    sent.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let sending = started.elapsed();
    let sent = sent.load(Ordering::Relaxed);
    // Every acked message owes its recipient one push: wait for the stragglers.
    let drain = Instant::now() + Duration::from_secs(30);
    while sink.pushes.load(Ordering::Relaxed) - base < sent && Instant::now() < drain {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = started.elapsed();
    let pushed = sink.pushes.load(Ordering::Relaxed) - base;
    let cpu = match (before, args.server_pid.and_then(stats::proc_sample)) {
        (Some(a), Some(b)) => Some((b.cpu_seconds - a.cpu_seconds) / stats::secs(all)),
        _ => None,
    };
    let result = json!({
        "scenario": "push",
        "recipients": args.recipients,
        "senders": args.senders,
        "duration_s": stats::secs(sending),
        "acked_sends": sent,
        "acked_per_s": sent as f64 / stats::secs(sending),
        "pushes": pushed,
        "pushes_per_s": pushed as f64 / stats::secs(all),
        "missing": sent.saturating_sub(pushed),
        "malformed": sink.malformed.load(Ordering::Relaxed),
        "server_cpu_cores": cpu,
    });
    println!(
        "push: {sent} acked sends in {:.1} s ({:.0}/s), {pushed} pushes ({:.0}/s over {:.1} s), {} missing, {} malformed",
        stats::secs(sending),
        result["acked_per_s"].as_f64().unwrap_or(0.0),
        result["pushes_per_s"].as_f64().unwrap_or(0.0),
        stats::secs(all),
        result["missing"],
        result["malformed"]
    );
    stats::write_json(&args.out, &args.name, &result)?;
    Ok(result)
}
