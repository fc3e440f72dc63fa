//! fanout: U users with T tabs each; S of them send through `message:send` with acks; every tab
//! counts the `message:new` it receives and how long after the send it arrived.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use missive_client::Incoming;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::stats::{self, Latency, Series};
use crate::target::Target;

#[derive(Args, Clone)]
pub struct FanoutArgs {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Other nodes of the same cluster: each user's tabs take turns across `--url` and these,
    /// so the senders and every user's deliveries are split across the nodes.
    #[arg(long)]
    pub also: Vec<String>,
    /// Users online.
    #[arg(long, default_value_t = 500)]
    pub users: usize,
    /// Tabs (sockets) per user.
    #[arg(long, default_value_t = 2)]
    pub tabs: usize,
    /// Users who send (each to the next user, or the next `--group` - 1 users).
    #[arg(long, default_value_t = 100)]
    pub senders: usize,
    /// Members of each sender's conversation, the sender included: 2 is a direct thread, more
    /// a group of the sender and the users after them.
    #[arg(long, default_value_t = 2)]
    pub group: usize,
    /// Target total send rate (messages/s); flat out when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Messages each sender keeps in flight when flat out.
    #[arg(long, default_value_t = 1)]
    pub inflight: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Sockets also ask for the legacy Flask-Messaging events (`W_newmsg`, `<thread_id>`), as
    /// the original client's do; by default they connect as native clients.
    #[arg(long)]
    pub legacy: bool,
    /// Send random `client_id`s (UUIDv4) instead of the web client's time-ordered UUIDv7s.
    #[arg(long)]
    pub random_client_ids: bool,
    /// Server process id, to read its RSS and CPU from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Where results go.
    #[arg(long, default_value = "results")]
    pub out: std::path::PathBuf,
    /// Name of the result files (default: the scenario's).
    #[arg(long)]
    pub name: Option<String>,
}

/// The send time a `message:new` packet carries at the start of its body, decoding nothing
/// else: every tab decodes every delivery, on the CPU the server under test shares.
fn sent_at(packet_json: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct NewMessage<'a> {
        #[serde(borrow)]
        message: Body<'a>,
    }
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow)]
        body: std::borrow::Cow<'a, str>,
    }
    /// `["message:new", payload]`, or with the event's offset after the payload (Missive with its
    /// event log on).
    #[derive(Deserialize)]
    #[allow(dead_code)] // the offset is read only to be skipped
    struct Packet<'a>(
        IgnoredAny,
        #[serde(borrow)] NewMessage<'a>,
        #[serde(default)] Option<IgnoredAny>,
    );
    let Packet(_, new, _) = serde_json::from_str(packet_json).ok()?;
    let sent = new.message.body.split(' ').next()?.parse().ok()?;
    (sent > 0).then_some(sent)
}

/// `None` for an ack `[{"status": true, ...}]`, else the refusal's code; the rest of the ack
/// (the stored message) is skipped, not decoded.
fn refusal(ack_json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Ack<'a> {
        status: bool,
        #[serde(borrow)]
        code: Option<std::borrow::Cow<'a, str>>,
    }
    match serde_json::from_str::<(Ack,)>(ack_json) {
        Ok((Ack { status: true, .. },)) => None,
        Ok((Ack { code, .. },)) => Some(code.map_or_else(|| "?".to_owned(), String::from)),
        Err(_) => Some(format!("unreadable ack: {ack_json}")),
    }
}

/// A `client_id` as the web client makes them: a UUIDv7, the time in milliseconds and then
/// random bits; or, with `random`, a UUIDv4 (random through and through), as other clients may.
/// The server indexes messages by client_id, then sender: time-ordered ids land together at
/// the index's end, random ones anywhere in it; `--random-client-ids` measures what that costs.
fn client_id(random: bool) -> String {
    let mut b: [u8; 16] = rand::random();
    if random {
        b[6] = (b[6] & 0x0f) | 0x40;
    } else {
        let ms = now_micros() / 1000;
        b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
        b[6] = (b[6] & 0x0f) | 0x70;
    }
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id.push('-');
        }
        id.push(HEX[usize::from(byte >> 4)].into());
        id.push(HEX[usize::from(byte & 0xf)].into());
    }
    id
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

pub async fn run(target: Target, args: FanoutArgs, default_name: &str) -> anyhow::Result<Value> {
    let name = args.name.clone().unwrap_or_else(|| default_name.to_owned());
    let senders = args.senders.min(args.users.saturating_sub(1)).max(1);
    println!(
        "{name}: {} users x {} tabs, {senders} senders, {}s",
        args.users, args.tabs, args.duration
    );

    let bar = crate::bar(args.users as u64, "users");
    let users = target.users(args.users, 8, &bar).await?;
    bar.finish_and_clear();
    let mut conversations = Vec::with_capacity(senders);
    let others = args.group.clamp(2, args.users.max(2)) - 1;
    for i in 0..senders {
        let to: Vec<_> = (1..=others)
            .map(|k| &users[(i + k) % users.len()])
            .collect();
        conversations.push(target.conversation(&users[i], &to).await?);
    }

    let bar = crate::bar((args.users * args.tabs) as u64, "tabs");
    let mut tabs = Vec::with_capacity(args.users * args.tabs);
    let nodes: Vec<&str> = std::iter::once(args.url.as_str())
        .chain(args.also.iter().map(String::as_str))
        .collect();
    for user in &users {
        for tab in 0..args.tabs {
            let node = nodes[(user.index + tab) % nodes.len()];
            tabs.push(Arc::new(target.connect_at(node, user).await?));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();

    // Receivers: every tab records delivery latency of each message:new.
    let delivered = Arc::new(AtomicU64::new(0));
    let delivery_samples = Arc::new(Mutex::new(Vec::<u64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut receivers = Vec::new();
    for tab in &tabs {
        let (tab, delivered, samples, stop) = (
            tab.clone(),
            delivered.clone(),
            delivery_samples.clone(),
            stop.clone(),
        );
        receivers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match tab.next(Duration::from_millis(200)).await {
                    Some(Incoming::Raw { name, json }) if name == "message:new" => {
                        if let Some(sent) = sent_at(&json) {
                            mine.push(now_micros().saturating_sub(sent));
                            delivered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(Incoming::Disconnected) => break,
                    _ => {}
                }
            }
            samples.lock().await.extend(mine);
        }));
    }

    // Senders.
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let ack_samples = Arc::new(Mutex::new(Vec::<u64>::new()));
    let error_codes = Arc::new(Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let per_sender_interval = args
        .rate
        .map(|r| Duration::from_secs_f64(senders as f64 / r.max(0.001)));
    let mut sender_tasks = Vec::new();
    for (i, conversation) in conversations.into_iter().enumerate() {
        let lanes = if per_sender_interval.is_some() {
            1
        } else {
            args.inflight.max(1)
        };
        for lane in 0..lanes {
            let tab = tabs[i * args.tabs].clone();
            let conversation = conversation.clone();
            let random_ids = args.random_client_ids;
            let (acked, errors, samples, codes) = (
                acked.clone(),
                errors.clone(),
                ack_samples.clone(),
                error_codes.clone(),
            );
            sender_tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut n = 0u64;
                // Spread the senders' first sends over one interval.
                if let Some(every) = per_sender_interval {
                    tokio::time::sleep(every.mul_f64((i % 97) as f64 / 97.0)).await;
                }
                let origin = Instant::now();
                while Instant::now() < deadline {
                    if let Some(every) = per_sender_interval {
                        let at = origin + every * n as u32;
                        tokio::time::sleep_until(at.into()).await;
                        if Instant::now() >= deadline {
                            break;
                        }
                    }
                    n += 1;
                    let t0 = Instant::now();
                    let mut payload = conversation.clone();
                    payload["body"] = json!(format!("{} {i}.{lane}.{n}", now_micros()));
                    payload["client_id"] = json!(client_id(random_ids));
                    let call = serde_json::to_string(&("message:send", &payload))
                        .expect("a JSON value serialises");
                    match tab
                        .call_raw(&call, Duration::from_secs(10))
                        .await
                        .map(|ack| refusal(&ack))
                    {
                        Ok(None) => {
                            mine.push(t0.elapsed().as_micros() as u64);
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Some(code)) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            *codes.lock().await.entry(code).or_default() += 1;
                        }
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            *codes.lock().await.entry(e.to_string()).or_default() += 1;
                        }
                    }
                }
                samples.lock().await.extend(mine);
            }));
        }
    }

    // Once a second: throughput and the server's figures.
    let bar = crate::bar(args.duration, "seconds");
    let mut timeline = Vec::new();
    let (mut last_acked, mut last_delivered) = (0, 0);
    let cpu_start = args.server_pid.and_then(stats::proc_sample);
    let mut peak_rss = cpu_start.map(|s| s.rss_kib).unwrap_or(0);
    for second in 1..=args.duration {
        tokio::time::sleep_until((started + Duration::from_secs(second)).into()).await;
        let (a, d) = (
            acked.load(Ordering::Relaxed),
            delivered.load(Ordering::Relaxed),
        );
        let proc = args.server_pid.and_then(stats::proc_sample);
        peak_rss = peak_rss.max(proc.map(|p| p.rss_kib).unwrap_or(0));
        timeline.push(json!({ "second": second, "acked": a - last_acked, "delivered": d - last_delivered,
            "server_rss_kib": proc.map(|p| p.rss_kib), "server_cpu_seconds": proc.map(|p| p.cpu_seconds) }));
        (last_acked, last_delivered) = (a, d);
        bar.inc(1);
    }
    bar.finish_and_clear();
    for t in sender_tasks {
        let _ = t.await;
    }
    let send_window = started.elapsed();
    let cpu_end = args.server_pid.and_then(stats::proc_sample);
    // Let the last deliveries land.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for r in receivers {
        let _ = r.await;
    }
    for tab in &tabs {
        tab.close();
    }

    let acked = acked.load(Ordering::Relaxed);
    let delivered = delivered.load(Ordering::Relaxed);
    let secs = stats::secs(send_window);
    let ack_latency = Latency::of(&mut ack_samples.lock().await);
    let delivery_latency = Latency::of(&mut delivery_samples.lock().await);
    let cpu_percent = match (cpu_start, cpu_end) {
        (Some(a), Some(b)) => {
            Some(((b.cpu_seconds - a.cpu_seconds) / secs * 100.0 * 10.0).round() / 10.0)
        }
        _ => None,
    };
    let result = json!({
        "scenario": name, "legacy": args.legacy, "random_client_ids": args.random_client_ids,
        "users": args.users, "tabs": args.tabs, "senders": senders, "group": others + 1,
        "inflight": args.inflight,
        "target_rate": args.rate, "duration_s": secs,
        "acked_sends": acked, "acked_per_s": (acked as f64 / secs).round(),
        "deliveries": delivered, "deliveries_per_s": (delivered as f64 / secs).round(),
        "errors": errors.load(Ordering::Relaxed), "error_codes": *error_codes.lock().await,
        "ack_latency": ack_latency, "delivery_latency": delivery_latency,
        "server_peak_rss_kib": args.server_pid.map(|_| peak_rss), "server_cpu_percent": cpu_percent,
        "timeline": timeline,
    });
    println!(
        "{name}: {:.0} acked sends/s, {:.0} deliveries/s, ack p50 {:.1} ms p99 {:.1} ms, delivery p50 {:.1} ms p99 {:.1} ms, errors {}",
        acked as f64 / secs,
        delivered as f64 / secs,
        ack_latency.p50_ms,
        ack_latency.p99_ms,
        delivery_latency.p50_ms,
        delivery_latency.p99_ms,
        result["errors"]
    );
    stats::write_json(&args.out, &name, &result)?;
    timeline_chart(&args.out, &name, &result)?;
    Ok(result)
}

/// What a result's name says it measured, for chart titles.
fn target_of(name: &str) -> &'static str {
    if name.starts_with("baseline") {
        "Bare socketioxide (no auth, no database)"
    } else if name.starts_with("pg-two") {
        "Missive, two nodes on PostgreSQL + Redis"
    } else if name.starts_with("pg-") {
        "Missive on PostgreSQL"
    } else {
        "Missive on SQLite"
    }
}

/// The per-second chart of a fanout result, titled with what ran and its shape.
pub fn timeline_chart(out: &std::path::Path, name: &str, result: &Value) -> anyhow::Result<()> {
    let series = |key: &str, label: &str| Series {
        label: label.to_owned(),
        points: result["timeline"]
            .as_array()
            .map(|t| {
                t.iter()
                    .map(|p| {
                        (
                            p["second"].as_f64().unwrap_or(0.0),
                            p[key].as_f64().unwrap_or(0.0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    let load = match result["target_rate"].as_f64() {
        Some(rate) => format!("at {} sends/s", stats::number(rate)),
        None => format!("x {} in flight", result["inflight"]),
    };
    let mut extras = String::new();
    if result["legacy"] == true {
        extras.push_str(", legacy events");
    }
    if result["random_client_ids"] == true {
        extras.push_str(", random client_ids");
    }
    stats::chart(
        out,
        name,
        &format!(
            "{}: {} users x {} tabs, {} senders {load}{extras}",
            target_of(name),
            result["users"],
            result["tabs"],
            result["senders"],
        ),
        "second",
        "per second",
        &[
            series("acked", "acked sends"),
            series("delivered", "deliveries (message:new)"),
        ],
        false,
    )
}

/// Redraws the charts of every fanout result in `dir`, and `targets.png`: the best fanout of
/// each target side by side.
pub fn redraw(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut best: std::collections::BTreeMap<&str, (f64, f64)> = Default::default();
    // `dir` and its subdirectories (one per recorded comparison).
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)?.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path)?.filter_map(|e| e.ok().map(|e| e.path())));
        } else {
            files.push(path);
        }
    }
    for path in files {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let Ok(result) = serde_json::from_str::<Value>(&std::fs::read_to_string(&path)?) else {
            continue;
        };
        if result["scenario"] == "history" {
            crate::history::chart(path.parent().unwrap_or(dir), &result)?;
            continue;
        }
        if result["timeline"].is_null() {
            continue;
        }
        timeline_chart(path.parent().unwrap_or(dir), &name, &result)?;
        // The comparison takes flat-out runs of the standard shape only.
        let standard = result["target_rate"].is_null()
            && result["legacy"] != true
            && result["random_client_ids"] != true
            && result["inflight"] == 8
            && result["users"] == 500;
        // Only the recorded run (`dir` itself), not the comparisons kept beside it, and
        // only its best runs (`fanout`, `pg`, `pg-two`, `baseline`: scripts/bench copies the
        // best of three under these names).
        let recorded = path.parent() == Some(dir)
            && ["baseline", "fanout", "pg", "pg-two"].contains(&name.as_str());
        if !standard || !recorded {
            continue;
        }
        let entry = best.entry(target_of(&name)).or_default();
        let acked = result["acked_per_s"].as_f64().unwrap_or(0.0);
        if acked > entry.0 {
            *entry = (acked, result["deliveries_per_s"].as_f64().unwrap_or(0.0));
        }
    }
    let order = [
        "Bare socketioxide (no auth, no database)",
        "Missive on SQLite",
        "Missive on PostgreSQL",
        "Missive, two nodes on PostgreSQL + Redis",
    ];
    let short = [
        "bare socketioxide",
        "SQLite",
        "PostgreSQL",
        "2 nodes, PostgreSQL + Redis",
    ];
    let groups: Vec<stats::Group> = order
        .iter()
        .zip(short)
        .filter_map(|(target, label)| {
            let (acked, delivered) = best.get(target)?;
            Some(stats::Group {
                label: label.to_owned(),
                values: vec![*acked, *delivered],
            })
        })
        .collect();
    stats::bars(
        dir,
        "targets",
        "Fanout by target: 500 users x 2 tabs, 100 senders x 8 in flight, best of three",
        "per second",
        &["acked sends", "deliveries (message:new)"],
        &groups,
    )
}

#[cfg(test)]
mod tests {
    use super::{client_id, now_micros, refusal, sent_at};

    #[test]
    fn the_send_time_is_read_from_the_body_alone() {
        let missive = r#"["message:new",{"message":{"url":"u","body":"1700000000000000 3.1.7","read":false},"thread":{"subject":"s \"q\""}}]"#;
        assert_eq!(sent_at(missive), Some(1_700_000_000_000_000));
        let escaped = r#"["message:new",{"message":{"body":"42 caf\u00e9"}}]"#;
        assert_eq!(sent_at(escaped), Some(42));
        let with_offset = r#"["message:new",{"message":{"body":"42 x"}},"17"]"#;
        assert_eq!(sent_at(with_offset), Some(42));
        assert_eq!(
            sent_at(r#"["message:new",{"message":{"body":"hello"}}]"#),
            None
        );
        assert_eq!(sent_at(r#"["message:new",{}]"#), None);
    }

    #[test]
    fn an_ack_is_judged_by_its_status_and_code() {
        let sent = r#"[{"status":true,"message":{"url":"u","body":"b \"q\" {"}}]"#;
        assert_eq!(refusal(sent), None);
        let refused = r#"[{"status":false,"code":"rate_limited","message":"slow down"}]"#;
        assert_eq!(refusal(refused).as_deref(), Some("rate_limited"));
        assert_eq!(refusal(r#"[{"status":false}]"#).as_deref(), Some("?"));
        assert!(
            refusal(r#"[{"ok":true}]"#)
                .unwrap()
                .starts_with("unreadable ack")
        );
        assert!(refusal("[]").unwrap().starts_with("unreadable ack"));
    }

    #[test]
    fn client_ids_are_uuids_that_start_with_the_time_unless_random() {
        let before = format!("{:012x}", now_micros() / 1000);
        let id = client_id(false);
        let after = format!("{:012x}", now_micros() / 1000);
        let (hex, groups): (String, Vec<usize>) =
            (id.replace('-', ""), id.split('-').map(str::len).collect());
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert!(hex[..12] >= *before && hex[..12] <= *after, "{id}");
        assert_eq!(&hex[12..13], "7");
        assert!("89ab".contains(&hex[16..17]));
        let random = client_id(true).replace('-', "");
        assert_eq!(&random[12..13], "4");
        assert_ne!(client_id(false), client_id(false));
    }
}
