//! Every loadgen scenario, briefly and at tiny sizes, against a real server: proof that the
//! benchmarks run. No timing is asserted here; the numbers belong in docs/performance.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

struct Server {
    server: missive::Server,
    dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = missive::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        database_url: format!("sqlite://{}/bench.db?mode=rwc", dir.path().display()),
        login_rate: 100_000,
        send_rate: 0,
        // loadgen opens many sockets from one address and emits flat out (scripts/bench-server).
        event_rate: 0,
        user_event_rate: 0,
        sockets_per_user: 0,
        connections_per_address: 0,
        group_adds: 0,
        ..missive::Config::default()
    };
    Server {
        server: missive::Server::start(config).await.unwrap(),
        dir,
    }
}

fn loadgen(args: &[&str], out: &Path) -> Value {
    let status = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .arg("--out")
        .arg(out)
        .status()
        .expect("loadgen runs");
    assert!(status.success(), "loadgen {args:?} failed");
    let name = args[0];
    serde_json::from_str(&std::fs::read_to_string(out.join(format!("{name}.json"))).unwrap())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_idle_baseline_and_history_run_at_tiny_sizes() {
    let srv = server().await;
    let url = srv.server.url();
    let out = srv.dir.path().join("results");
    let pid = std::process::id().to_string();
    let common = ["--url", url.as_str(), "--server-pid", pid.as_str()];

    let fanout = loadgen(
        &[
            &["fanout"][..],
            &common,
            &[
                "--users",
                "6",
                "--tabs",
                "2",
                "--senders",
                "3",
                "--duration",
                "2",
            ],
        ]
        .concat(),
        &out,
    );
    assert!(fanout["acked_sends"].as_u64().unwrap() > 0, "{fanout}");
    assert_eq!(fanout["errors"], 0, "{fanout}");
    // Each message reaches both tabs of the sender and of the recipient.
    assert!(
        fanout["deliveries"].as_u64().unwrap()
            >= fanout["acked_sends"].as_u64().unwrap() * 4 * 9 / 10,
        "{fanout}"
    );
    assert!(fanout["server_peak_rss_kib"].as_u64().unwrap() > 0);
    assert!(
        out.join("fanout.png").exists()
            || !Path::new("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists()
    );

    // The group shape: each sender writes to a group of three, each message reaches 3 x 2 tabs.
    let group = loadgen(
        &[
            &["fanout"][..],
            &common,
            &[
                "--users",
                "6",
                "--tabs",
                "2",
                "--senders",
                "3",
                "--duration",
                "2",
                "--group",
                "3",
            ],
        ]
        .concat(),
        &out,
    );
    assert_eq!(
        (group["group"].as_u64(), &group["errors"]),
        (Some(3), &Value::from(0)),
        "{group}"
    );
    assert!(
        group["deliveries"].as_u64().unwrap()
            >= group["acked_sends"].as_u64().unwrap() * 6 * 9 / 10,
        "{group}"
    );

    let idle = loadgen(
        &[
            &["idle"][..],
            &common,
            &["--connections", "40", "--users", "4", "--hold", "1"],
        ]
        .concat(),
        &out,
    );
    assert_eq!(idle["connections"], 40, "{idle}");
    assert_eq!(idle["failed"], 0, "{idle}");

    let baseline = loadgen(
        &[
            "baseline",
            "--users",
            "6",
            "--tabs",
            "2",
            "--senders",
            "3",
            "--duration",
            "2",
        ],
        &out,
    );
    assert!(baseline["deliveries"].as_u64().unwrap() > 0, "{baseline}");

    let missive_bin: PathBuf = Path::new(env!("CARGO_BIN_EXE_loadgen")).with_file_name("missive");
    if missive_bin.exists() {
        let db = format!("sqlite://{}/bench.db?mode=rwc", srv.dir.path().display());
        let history = loadgen(
            &[
                "history",
                "--url",
                &url,
                "--missive-bin",
                missive_bin.to_str().unwrap(),
                "--database-url",
                &db,
                "--sizes",
                "200,600",
                "--threads",
                "20",
                "--samples",
                "5",
            ],
            &out,
        );
        let points = history["points"].as_array().unwrap();
        assert_eq!(points.len(), 2);
        assert!(points[1]["messages_page"]["count"].as_u64() == Some(5));
    } else {
        panic!(
            "{} is not built: run the tests with --workspace",
            missive_bin.display()
        );
    }
    srv.server.shutdown().await.unwrap();
}
