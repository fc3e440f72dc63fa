//! The deployment files in `deploy/`: the systemd unit is checked by `systemd-analyze verify`
//! (where that command exists), the nginx example for what Missive needs from its proxy.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where `deploy/missive.service` expects the binary (README: copied there after `cargo install`).
const INSTALLED_BINARY: &str = "/usr/local/bin/missive";

#[test]
fn the_systemd_unit_verifies() {
    if let Err(e) = Command::new("systemd-analyze").arg("--version").output() {
        if e.kind() == ErrorKind::NotFound {
            eprintln!("skipped: systemd-analyze is not installed");
            return;
        }
        panic!("systemd-analyze --version: {e}");
    }
    let dir = TempDir::new("missive-deploy");
    let env_file = dir.0.join("missive.env");
    fs::write(&env_file, deploy_file("missive.env")).expect("write the env file");
    let unit = dir.0.join("missive.service");
    fs::write(
        &unit,
        unit_for_test(&deploy_file("missive.service"), &env_file),
    )
    .expect("write the unit");

    let output = verify(&unit);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "systemd-analyze verify failed ({}):\n{said}",
        output.status
    );
    // Unknown or misspelt settings are only warned about (and ignored, so a hardening line
    // would silently do nothing); warnings about a line of the file cite its path.
    let unit_path = unit.display().to_string();
    for warning in ["Unknown key", "Unknown lvalue", "Unknown section"] {
        assert!(
            !said.contains(warning),
            "systemd-analyze verify says {warning}:\n{said}"
        );
    }
    assert!(
        !said.lines().any(|line| line.contains(&unit_path)),
        "systemd-analyze verify warns about deploy/missive.service:\n{said}"
    );
}

#[test]
fn the_nginx_example_has_what_missive_needs() {
    let conf = deploy_file("nginx.conf");
    // Directives only: a line that is commented out proves nothing.
    let directives: Vec<&str> = conf
        .lines()
        .map(|line| line.split_once('#').map_or(line, |(code, _)| code).trim())
        .filter(|line| !line.is_empty())
        .collect();
    let values = |name: &str| directive_values(&directives, name);

    for name in ["ssl_certificate", "ssl_certificate_key", "proxy_pass"] {
        assert!(!values(name).is_empty(), "deploy/nginx.conf has no {name}");
    }
    let headers = values("proxy_set_header");
    for header in [
        "Host",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "Upgrade",
        "Connection",
    ] {
        assert!(
            headers
                .iter()
                .any(|h| h.split_whitespace().next() == Some(header)),
            "deploy/nginx.conf does not set the {header} header (it sets {headers:?})"
        );
    }
    assert_eq!(
        values("proxy_http_version"),
        ["1.1"],
        "websockets need HTTP/1.1 to Missive"
    );

    // A live socket is pinged every ping interval and closed when no answer comes within the
    // ping timeout: the proxy must not give up on it first.
    let defaults = missive::Config::default();
    let quiet = defaults.ping_interval + defaults.ping_timeout;
    for name in ["proxy_read_timeout", "proxy_send_timeout"] {
        let timeouts = values(name);
        assert!(!timeouts.is_empty(), "deploy/nginx.conf has no {name}");
        for timeout in timeouts {
            assert!(
                nginx_duration(timeout) > quiet,
                "{name} {timeout} is not longer than the ping interval and timeout ({quiet:?})"
            );
        }
    }

    // nginx must not refuse a body that Missive accepts.
    let sizes = values("client_max_body_size");
    assert!(
        !sizes.is_empty(),
        "deploy/nginx.conf has no client_max_body_size"
    );
    for size in sizes {
        assert!(
            nginx_size(size) >= missive::http::MAX_REQUEST_BODY,
            "client_max_body_size {size} is below Missive's own limit of {} bytes",
            missive::http::MAX_REQUEST_BODY
        );
    }
}

/// `systemd-analyze verify` of `unit`. Where the installed systemd can (250 and later), only
/// warnings about the unit itself fail it, not those about the host's units it depends on.
fn verify(unit: &Path) -> Output {
    let run = |extra: &[&str]| {
        Command::new("systemd-analyze")
            .env("LC_ALL", "C") // the messages read below are English
            .args(["verify", "--man=no"])
            .args(extra)
            .arg(unit)
            .output()
            .expect("run systemd-analyze verify")
    };
    let output = run(&["--recursive-errors=no"]);
    if String::from_utf8_lossy(&output.stderr).contains("unrecognized option") {
        run(&[])
    } else {
        output
    }
}

/// The values of every `name` directive (`name value;`).
fn directive_values<'a>(directives: &[&'a str], name: &str) -> Vec<&'a str> {
    directives
        .iter()
        .filter_map(|d| d.strip_prefix(name)?.strip_prefix(char::is_whitespace))
        .map(|value| value.trim_end_matches(';').trim())
        .collect()
}

/// `deploy/` file `name`.
fn deploy_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The unit as installed, but starting the binary this build made (`verify` checks that the
/// executable exists) and reading `env_file`.
fn unit_for_test(unit: &str, env_file: &Path) -> String {
    for key in ["ExecStart=", "EnvironmentFile="] {
        assert!(
            unit.lines().any(|line| line.starts_with(key)),
            "deploy/missive.service has no {key}"
        );
    }
    let lines: Vec<String> = unit
        .lines()
        .map(|line| {
            if let Some(command) = line.strip_prefix("ExecStart=") {
                let args = command.strip_prefix(INSTALLED_BINARY).unwrap_or_else(|| {
                    panic!("ExecStart does not start {INSTALLED_BINARY}: {line}")
                });
                format!("ExecStart=\"{}\"{args}", env!("CARGO_BIN_EXE_missive"))
            } else if line.starts_with("EnvironmentFile=") {
                format!("EnvironmentFile={}", env_file.display())
            } else {
                line.to_owned()
            }
        })
        .collect();
    lines.join("\n") + "\n"
}

/// An nginx time: `75s`, `2m`, `500ms`, or bare seconds.
fn nginx_duration(value: &str) -> Duration {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let n: u64 = number
        .parse()
        .unwrap_or_else(|_| panic!("`{value}` is not an nginx time"));
    match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => panic!("unexpected unit in nginx time `{value}`"),
    }
}

/// An nginx size: `1m`, `512k`, or bare bytes.
fn nginx_size(value: &str) -> usize {
    let (number, multiplier) = if let Some(n) = value.strip_suffix(['k', 'K']) {
        (n, 1 << 10)
    } else if let Some(n) = value.strip_suffix(['m', 'M']) {
        (n, 1 << 20)
    } else if let Some(n) = value.strip_suffix(['g', 'G']) {
        (n, 1 << 30)
    } else {
        (value, 1)
    };
    number
        .parse::<usize>()
        .unwrap_or_else(|_| panic!("`{value}` is not an nginx size"))
        * multiplier
}

/// A directory of the test's own under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

mod common;

/// At `info`, with `MISSIVE_LOG_FORMAT=json`: every line is one JSON object; each HTTP
/// request has a line with its method, route template, status, milliseconds and user; each
/// socket one when it connects and one with the reason when it disconnects; no line holds a
/// password, a token, a message body or a raw path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_logs_a_json_line_per_request_and_socket_and_no_secret() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .env(
            "MISSIVE_DATABASE_URL",
            format!("sqlite://{}/m.db?mode=rwc", dir.path().display()),
        )
        .env("MISSIVE_BIND", "127.0.0.1:0")
        .env("MISSIVE_LOG", "info")
        .env("MISSIVE_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("missive starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut logged = Vec::new();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let entry: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not one JSON object: {line:?}: {e}"));
            logged.push(line);
            if entry["message"] == "missive listening" {
                return format!("http://{}", entry["addr"].as_str().unwrap());
            }
        }
        panic!("missive exited before listening");
    })
    .await
    .expect("missive listens within 30 s");
    let rest = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    });

    let http = common::Http::new(&url);
    for name in ["alice", "bob"] {
        let (status, _) = http
            .post(
                "/api/v1/auth/register",
                serde_json::json!({"username": name, "password": "correct horse"}),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED);
    }
    let alice = common::Http::new(&url)
        .login("alice", "correct horse")
        .await;
    let sent = alice.send_new("bob", "Subject", "a body nobody logs").await;
    let thread_id = sent["thread_id"].as_str().unwrap().to_owned();
    let (status, _) = alice
        .http
        .get(&format!("/api/v1/threads/{thread_id}"))
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let (status, _) = http.get("/api/v1/no/such/route").await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    let tab = alice.tab().await;
    tab.close();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, me) = alice.http.get("/api/v1/me").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let alice_id = me["id"].as_i64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(child);
    logged.extend(rest.await.unwrap());

    let entries: Vec<serde_json::Value> = logged
        .iter()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object: {line:?}: {e}"))
        })
        .collect();
    let request = |method: &str, route: &str| {
        entries
            .iter()
            .find(|e| e["message"] == "request" && e["method"] == method && e["route"] == route)
            .unwrap_or_else(|| panic!("no line for {method} {route}: {logged:#?}"))
    };
    let read = request("GET", "/api/v1/threads/{thread_id}");
    assert_eq!(read["status"], 200);
    assert!(read["ms"].as_f64().is_some(), "{read}");
    assert_eq!(read["level"], "INFO");
    assert!(read["timestamp"].is_string(), "{read}");
    if let Some(id) = alice_id {
        assert_eq!(read["user"], id, "{read}");
    } else {
        assert!(read["user"].is_i64(), "{read}");
    }
    let login = request("POST", "/api/v1/auth/login");
    assert_eq!(login["status"], 200);
    let missing = request("GET", "*");
    assert_eq!(missing["status"], 404);
    assert!(missing.get("user").is_none(), "{missing}");
    let upgrade = request("GET", "/socket.io/");
    assert_eq!(upgrade["status"], 101);
    let socket = |message: &str| {
        entries
            .iter()
            .find(|e| e["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line: {logged:#?}"))
    };
    let connected = socket("socket connected");
    assert_eq!(connected["ns"], "/messages");
    assert_eq!(connected["transport"], "websocket");
    assert_eq!(connected["user"], read["user"]);
    let disconnected = socket("socket disconnected");
    assert_eq!(disconnected["sid"], connected["sid"]);
    assert!(
        ["client_disconnect", "transport_close"]
            .contains(&disconnected["reason"].as_str().unwrap()),
        "{disconnected}"
    );
    for secret in [
        "correct horse",
        alice.token.as_str(),
        "a body nobody logs",
        thread_id.as_str(),
        "no/such/route",
    ] {
        assert!(
            logged.iter().all(|line| !line.contains(secret)),
            "{secret:?} is logged: {logged:#?}"
        );
    }
}
