//! `loadgen`: reproducible benchmarks of a running Missive over real Socket.IO websockets and HTTP.
//! Results go to `results/<scenario>.json` and `.png`.

mod baseline;
mod fanout;
mod history;
mod idle;
mod push;
mod recovery;
mod stats;
mod storm;
mod target;

use std::process::Stdio;

use clap::{Parser, Subcommand};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Parser)]
#[command(name = "loadgen", about = "Benchmarks for Missive")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Users with several tabs; some send through message:send; count deliveries and latency.
    Fanout(fanout::FanoutArgs),
    /// The same fanout against a bare socketioxide server started here (the ceiling).
    Baseline(fanout::FanoutArgs),
    /// Hold many authenticated websockets; handshakes/s and server RSS per connection.
    Idle(idle::IdleArgs),
    /// The same idle connections held by the bare socketioxide server (the reference).
    IdleBaseline(idle::IdleArgs),
    /// Time the replay of missed events to a tab that reconnects with its pid.
    Recovery(recovery::RecoveryArgs),
    /// Another user's send latency while one user's sockets storm the server with recoveries.
    Storm(storm::StormArgs),
    /// Web Push: pushes per second to a local push sink, for users with no tab open.
    Push(push::PushArgs),
    /// Seed a growing history and time the listings at each size.
    History(history::HistoryArgs),
    /// Redraw the charts of the results in a directory (default docs/perf), with `targets.png`
    /// comparing the targets side by side.
    Chart {
        #[arg(default_value = "docs/perf")]
        dir: std::path::PathBuf,
    },
    /// Run the bare socketioxide server alone (used by `baseline`).
    ServeBaseline {
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: std::net::SocketAddr,
    },
}

/// A progress bar on standard error (hidden when it is not a terminal).
pub fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{{bar:40}} {{pos}}/{{len}} {what} {{elapsed}}"
    )) {
        bar.set_style(style);
    }
    bar
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    stats::raise_fd_limit();
    match Cli::parse().scenario {
        Scenario::Chart { dir } => fanout::redraw(&dir)?,
        Scenario::Fanout(args) => {
            let target = target::Target::missive(&args.url, args.legacy);
            let out = args.out.clone();
            let result = fanout::run(target, args, "fanout").await?;
            if let Some(base) = stats::read_json(&out, "baseline") {
                let ratio = result["deliveries_per_s"].as_f64().unwrap_or(0.0)
                    / base["deliveries_per_s"]
                        .as_f64()
                        .unwrap_or(f64::MAX)
                        .max(1.0);
                println!(
                    "fanout delivers {:.0}% of the bare socketioxide baseline",
                    ratio * 100.0
                );
            }
        }
        Scenario::Baseline(mut args) => {
            let (mut child, url, pid) = spawn_baseline().await?;
            (args.url, args.server_pid) = (url.clone(), pid);
            fanout::run(target::Target::Baseline { url }, args, "baseline").await?;
            child.kill().await?;
        }
        Scenario::IdleBaseline(mut args) => {
            let (mut child, url, pid) = spawn_baseline().await?;
            (args.url, args.server_pid) = (url.clone(), pid);
            idle::run(target::Target::Baseline { url }, args, "idle-baseline").await?;
            child.kill().await?;
        }
        Scenario::Idle(args) => {
            let target = target::Target::missive(&args.url, args.legacy);
            idle::run(target, args, "idle").await?;
        }
        Scenario::History(args) => {
            history::run(args).await?;
        }
        Scenario::Recovery(args) => {
            recovery::run(args).await?;
        }
        Scenario::Storm(args) => {
            storm::run(args).await?;
        }
        Scenario::Push(args) => {
            push::run(args).await?;
        }
        Scenario::ServeBaseline { bind } => baseline::serve(bind).await?,
    }
    Ok(())
}

/// Starts `loadgen serve-baseline` as its own process (so its RSS and CPU are its own).
async fn spawn_baseline() -> anyhow::Result<(tokio::process::Child, String, Option<u32>)> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("serve-baseline")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let line = lines.next_line().await?.unwrap_or_default();
    let addr = line
        .strip_prefix("listening ")
        .ok_or_else(|| anyhow::anyhow!("baseline server said {line}"))?;
    let pid = child.id();
    Ok((child, format!("http://{addr}"), pid))
}
