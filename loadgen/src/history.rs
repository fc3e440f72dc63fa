//! history: grow a seeded history (via `missive seed`) and time the inbox and thread listings
//! and searches at each size, to show their cost stays flat.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::stats::{self, Latency, Series};

#[derive(Args, Clone)]
pub struct HistoryArgs {
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// The `missive` binary that seeds (it writes to the server's database).
    #[arg(long, default_value = "target/release/missive")]
    pub missive_bin: PathBuf,
    /// The server's database URL (passed to `missive seed`).
    #[arg(long, default_value = "sqlite://missive.db?mode=rwc")]
    pub database_url: String,
    /// Total messages at each measuring point.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub sizes: Vec<usize>,
    /// Threads the messages are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub threads: usize,
    /// Requests per listing per size.
    #[arg(long, default_value_t = 300)]
    pub samples: usize,
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
}

/// The searches timed at each size: (key in the result, query).
const SEARCHES: &[(&str, &str)] = &[
    ("search_common", "tea"),
    ("search_rare", "quasar"),
    ("search_prefix", "meet%20tomo"),
];

async fn timed(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    n: usize,
) -> anyhow::Result<(Latency, Value)> {
    let mut samples = Vec::with_capacity(n);
    let mut last = Value::Null;
    for _ in 0..n {
        // Timed until the whole body has arrived: decoding it is the load generator's own
        // work, not the server's.
        let t0 = Instant::now();
        let res = http.get(url).bearer_auth(token).send().await?;
        let status = res.status();
        let bytes = res.bytes().await?;
        samples.push(t0.elapsed().as_micros() as u64);
        let body: Value = serde_json::from_slice(&bytes)?;
        if !status.is_success() {
            bail!("GET {url}: {status} {body}");
        }
        last = body;
    }
    Ok((Latency::of(&mut samples), last))
}

pub async fn run(args: HistoryArgs) -> anyhow::Result<Value> {
    let http = reqwest::Client::new();
    let mut seeded = 0;
    let mut points = Vec::new();
    for &size in &args.sizes {
        if size > seeded {
            let started = Instant::now();
            let status = tokio::process::Command::new(&args.missive_bin)
                .arg("seed")
                .args([
                    "--threads",
                    &args.threads.to_string(),
                    "--messages",
                    &(size - seeded).to_string(),
                ])
                .env("MISSIVE_DATABASE_URL", &args.database_url)
                .env("MISSIVE_LOG", "warn")
                .status()
                .await
                .with_context(|| format!("running {}", args.missive_bin.display()))?;
            if !status.success() {
                bail!("missive seed failed");
            }
            println!(
                "history: seeded up to {size} messages in {:.1?}",
                started.elapsed()
            );
            seeded = size;
        }
        let login = http
            .post(format!("{}/api/v1/auth/login", args.url))
            .json(&json!({ "username": "seed_0", "password": "seed-password" }))
            .send()
            .await?
            .json::<Value>()
            .await?;
        let token = login["token"]
            .as_str()
            .context("seed_0 cannot log in")?
            .to_owned();
        let (inbox, page) = timed(
            &http,
            &format!("{}/api/v1/threads?limit=20", args.url),
            &token,
            args.samples,
        )
        .await?;
        let thread_id = page["threads"][0]["thread_id"]
            .as_str()
            .context("seed_0 has no threads")?
            .to_owned();
        let (deep_inbox, _) = match page["next"].as_str() {
            Some(next) => {
                timed(
                    &http,
                    &format!("{}/api/v1/threads?limit=20&before={next}", args.url),
                    &token,
                    args.samples,
                )
                .await?
            }
            None => (Latency::default(), Value::Null),
        };
        let messages_url = format!("{}/api/v1/threads/{thread_id}/messages?limit=50", args.url);
        let (history, page) = timed(&http, &messages_url, &token, args.samples).await?;
        let oldest = page["messages"][0]["url"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let (older, _) = timed(
            &http,
            &format!("{messages_url}&before={oldest}"),
            &token,
            args.samples,
        )
        .await?;
        // Search: a word in a third of the bodies, one in a few hundredth, and two words of
        // which the last is a prefix (the seeded bodies draw from `seed`'s vocabulary).
        let mut searches = serde_json::Map::new();
        for (key, q) in SEARCHES {
            let (latency, page) = timed(
                &http,
                &format!("{}/api/v1/search?q={q}&limit=20", args.url),
                &token,
                args.samples,
            )
            .await?;
            let found = page["results"].as_array().map_or(0, Vec::len);
            println!(
                "history {size}: search {q:?} p50 {:.2} p99 {:.2} ms ({found} results)",
                latency.p50_ms, latency.p99_ms
            );
            searches.insert((*key).to_owned(), json!(latency));
        }
        println!(
            "history {size}: inbox p50 {:.2} p99 {:.2} ms; messages p50 {:.2} p99 {:.2} ms",
            inbox.p50_ms, inbox.p99_ms, history.p50_ms, history.p99_ms
        );
        let mut point = json!({ "messages": size, "threads_page": inbox,
            "threads_next_page": deep_inbox, "messages_page": history,
            "messages_older_page": older });
        point.as_object_mut().unwrap().extend(searches);
        points.push(point);
    }
    let result = json!({ "scenario": "history", "threads": args.threads, "points": points });
    stats::write_json(&args.out, "history", &result)?;
    chart(&args.out, &result)?;
    Ok(result)
}

/// The chart of a history result: each listing's p50 and p99 as the database grows.
pub fn chart(out: &std::path::Path, result: &Value) -> anyhow::Result<()> {
    let points = result["points"].as_array().cloned().unwrap_or_default();
    let series = |key: &str, q: &str, label: &str| Series {
        label: label.to_owned(),
        points: points
            .iter()
            .map(|p| {
                (
                    p["messages"].as_f64().unwrap_or(1.0),
                    p[key][q].as_f64().unwrap_or(0.0),
                )
            })
            .collect(),
    };
    stats::chart(
        out,
        "history",
        &format!(
            "History listings on SQLite as the database grows ({} threads)",
            stats::number(result["threads"].as_f64().unwrap_or(0.0))
        ),
        "messages in the database",
        "ms",
        &[
            series("threads_page", "p50_ms", "GET /threads p50"),
            series("threads_page", "p99_ms", "GET /threads p99"),
            series("messages_page", "p50_ms", "GET /threads/{id}/messages p50"),
            series("messages_page", "p99_ms", "GET /threads/{id}/messages p99"),
            series("search_common", "p50_ms", "GET /search (common word) p50"),
            series("search_common", "p99_ms", "GET /search (common word) p99"),
            series(
                "search_prefix",
                "p99_ms",
                "GET /search (two words, prefix) p99",
            ),
        ],
        true,
    )
}
