//! Test harness: a real Missive server on 127.0.0.1:0 (SQLite in a temp dir, or a fresh
//! PostgreSQL schema), a cookie-keeping HTTP client, and Socket.IO clients.
#![allow(dead_code)]

pub mod push_service;
pub mod smtp;

use std::time::Duration;

use missive::{Config, Server};
use missive_client::{ConnectOptions, Socket};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(5);
pub const QUIET: Duration = Duration::from_millis(600);
pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `$test(Backend)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name($crate::common::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name($crate::common::Backend::Postgres).await }
        }
    )* };
}

/// Whether a missing service must fail the test (CI) rather than skip it.
pub fn services_required() -> bool {
    std::env::var("MISSIVE_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// Skips (returns false) or fails, with a one-line reason, when a service is missing.
pub fn service_missing(what: &str, why: impl std::fmt::Display) -> bool {
    if services_required() {
        panic!("{what} is required (MISSIVE_REQUIRE_SERVICES=1) but unavailable: {why}");
    }
    eprintln!("SKIPPED: {what} unavailable ({why})");
    false
}

/// A fresh PostgreSQL schema for one test; `None` when PostgreSQL is absent and not required.
pub async fn postgres_schema() -> Option<String> {
    let conn = match tokio::time::timeout(
        Duration::from_secs(5),
        sea_orm::Database::connect(POSTGRES_URL),
    )
    .await
    {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            service_missing("PostgreSQL at 127.0.0.1:5432", e);
            return None;
        }
        Err(_) => {
            service_missing("PostgreSQL at 127.0.0.1:5432", "connect timed out");
            return None;
        }
    };
    let schema = format!("missive_test_{}", missive::ids::random_hex::<6>());
    conn.execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    Some(schema)
}

pub async fn drop_postgres_schema(schema: &str) {
    if let Ok(conn) = sea_orm::Database::connect(POSTGRES_URL).await {
        let _ = conn
            .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
            .await;
    }
}

pub struct TestServer {
    pub server: Server,
    pub url: String,
    /// The database the server uses (for the `missive` command in tests).
    pub database_url: String,
    pub backend: Backend,
    _dir: tempfile::TempDir,
    schema: Option<String>,
}

impl TestServer {
    /// Starts a server; `None` only when the backend's service is absent and not required.
    pub async fn start(backend: Backend) -> Option<TestServer> {
        TestServer::start_with(backend, |_| {}).await
    }

    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut Config),
    ) -> Option<TestServer> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            bind: "127.0.0.1:0".parse().unwrap(),
            login_rate: 1000,
            login_failures: 1000,
            // Tests that watch a user go offline need not wait the default 5 s.
            presence_grace: Duration::from_millis(200),
            ..Config::default()
        };
        let mut schema = None;
        match backend {
            Backend::Sqlite => {
                config.database_url =
                    format!("sqlite://{}/missive.db?mode=rwc", dir.path().display());
            }
            Backend::Postgres => {
                schema = Some(postgres_schema().await?);
                config.database_url = POSTGRES_URL.into();
                config.database_schema = schema.clone();
                config.db_pool = 8;
            }
        }
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .expect("bind");
        let database_url = match &schema {
            Some(s) => format!("{POSTGRES_URL}?options=-c%20search_path%3D{s}"),
            None => config.database_url.clone(),
        };
        let server = Server::start_on(listener, config)
            .await
            .expect("server starts");
        let url = server.url();
        Some(TestServer {
            server,
            url,
            database_url,
            backend,
            _dir: dir,
            schema,
        })
    }

    pub fn http(&self) -> Http {
        Http::new(&self.url)
    }

    /// The server's own PostgreSQL schema.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Registers and logs in a new user.
    pub async fn user(&self, name: &str) -> User {
        let http = self.http();
        let (status, body) = http
            .post(
                "/api/v1/auth/register",
                json!({"username": name, "password": "correct horse"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register {name}: {body}");

        http.login(name, "correct horse").await
    }

    pub async fn stop(self) {
        let schema = self.schema.clone();
        self.server.shutdown().await.expect("clean shutdown");
        if let Some(schema) = schema
            && let Ok(conn) = sea_orm::Database::connect(POSTGRES_URL).await
        {
            let _ = conn
                .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
                .await;
        }
    }
}

/// An HTTP client with its own cookie jar, like one browser profile.
#[derive(Clone)]
pub struct Http {
    pub client: reqwest::Client,
    pub base: String,
}

/// A logged-in user: their browser (cookie jar), token and public ids.
#[derive(Clone)]
pub struct User {
    pub name: String,
    pub http: Http,
    pub token: String,
    pub websocket_id: String,
}

impl Http {
    pub fn new(base: &str) -> Http {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");
        Http {
            client,
            base: base.to_owned(),
        }
    }

    /// Sends `req`; every answer of a documented route is checked against the OpenAPI
    /// document (its status is documented, its JSON body fits the schema).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let (client, req) = req.build_split();
        let req = req.expect("request builds");
        let (method, url) = (req.method().clone(), req.url().clone());
        let res = client.execute(req).await.expect("request");
        let status = res.status();
        let json = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        openapi::check(&method, url.path(), status, json.then_some(&body));
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.client.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.client
                .patch(format!("{}{path}", self.base))
                .json(&body),
        )
        .await
    }

    pub async fn put(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.client.put(format!("{}{path}", self.base)))
            .await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.client.delete(format!("{}{path}", self.base)))
            .await
    }

    pub async fn login(&self, name: &str, password: &str) -> User {
        let (status, body) = self
            .post(
                "/api/v1/auth/login",
                json!({"username": name, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {name}: {body}");
        User {
            name: name.to_owned(),
            http: self.clone(),
            token: body["token"].as_str().expect("token").to_owned(),
            websocket_id: body["user"]["websocket_id"]
                .as_str()
                .expect("websocket_id")
                .to_owned(),
        }
    }
}

impl User {
    /// A new tab: a socket on `/messages` authenticated with this user's token.
    pub async fn tab(&self) -> Socket {
        self.tab_with(json!({"token": self.token})).await
    }

    /// A new tab of a native client: it says `legacy: false`, so it gets no legacy events.
    pub async fn native_tab(&self) -> Socket {
        self.tab_with(json!({"token": self.token, "legacy": false}))
            .await
    }

    async fn tab_with(&self, auth: Value) -> Socket {
        Socket::connect(
            &self.http.base,
            ConnectOptions::namespace("/messages").auth(auth),
        )
        .await
        .expect("socket connects")
    }

    /// A new tab authenticated by the session cookie, the way a browser page connects.
    pub async fn cookie_tab(
        &self,
        origin: Option<&str>,
    ) -> Result<Socket, missive_client::ConnectError> {
        let mut opts = ConnectOptions::namespace("/messages")
            .header("cookie", &format!("missive_session={}", self.token));
        if let Some(origin) = origin {
            opts = opts.header("origin", origin);
        }
        Socket::connect(&self.http.base, opts).await
    }

    /// Sends a message over HTTP and returns it.
    pub async fn send_new(&self, to: &str, subject: &str, body: &str) -> Value {
        let (status, res) = self
            .http
            .post(
                "/api/v1/messages",
                json!({"recipient": to, "subject": subject, "body": body}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "send: {res}");
        res["message"].clone()
    }

    /// Starts a group with `others` over HTTP and returns its first message.
    pub async fn send_group(&self, others: &[&str], subject: &str, body: &str) -> Value {
        let (status, res) = self
            .http
            .post(
                "/api/v1/messages",
                json!({"recipients": others, "subject": subject, "body": body}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "send to a group: {res}");
        res["message"].clone()
    }

    pub async fn reply(&self, thread_id: &str, body: &str) -> Value {
        let (status, res) = self
            .http
            .post(
                "/api/v1/messages",
                json!({"thread_id": thread_id, "body": body}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "reply: {res}");
        res["message"].clone()
    }

    pub async fn unread(&self) -> Value {
        let (status, res) = self.http.get("/api/v1/unread").await;
        assert_eq!(status, StatusCode::OK);
        res
    }
}

/// The names of events in a drained list.
pub fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

/// Waits until `tab` has received every event in `wanted` (in any order); returns their payloads.
pub async fn expect_all(
    tab: &missive_client::Socket,
    wanted: &[&str],
    timeout: Duration,
) -> std::collections::HashMap<String, Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = std::collections::HashMap::new();
    while wanted.iter().any(|w| !seen.contains_key(*w)) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tab.next(left).await {
            Some(missive_client::Incoming::Event { name, data, .. }) => {
                seen.entry(name).or_insert(data);
            }
            other => panic!(
                "still waiting for {wanted:?} (have {:?}): {other:?}",
                seen.keys()
            ),
        }
    }
    seen
}

/// Spawns a `missive` process from `cmd` (its environment set by the caller) and waits until
/// it listens; returns it and its `http://addr`. Its log is read and dropped, so that it never
/// blocks on a full pipe.
pub async fn spawn_missive(mut cmd: tokio::process::Command) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = cmd
        .env("MISSIVE_BIND", "127.0.0.1:0")
        .env("MISSIVE_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("missive starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = line
                .split("addr=")
                .nth(1)
                .filter(|_| line.contains("missive listening"))
            {
                return format!("http://{}", addr.split_whitespace().next().unwrap());
            }
        }
        panic!("missive exited before listening");
    })
    .await
    .expect("missive listens within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// The original Flask-Messaging sample database (`../shared/flask-messaging/sample.db`, beside
/// this repository): 12 users with passwords `password-<username>`, 302 messages.
pub fn flask_sample() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/flask-messaging/sample.db");
    assert!(
        path.exists(),
        "{} is missing: the shared Flask-Messaging sample sits beside the repository",
        path.display()
    );
    path
}

/// Runs `missive import flask-messaging <source>` into `database_url` (and PostgreSQL
/// `schema`), returning its output.
pub async fn run_import(
    database_url: &str,
    schema: Option<&str>,
    source: &str,
) -> std::process::Output {
    run_import_with(database_url, schema, source, &[]).await
}

/// [`run_import`] with more arguments (`--update`, `--dry-run`).
pub async fn run_import_with(
    database_url: &str,
    schema: Option<&str>,
    source: &str,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_missive"));
    cmd.args(["import", "flask-messaging", source])
        .args(args)
        .env("MISSIVE_DATABASE_URL", database_url)
        .env("MISSIVE_LOG", "warn")
        .env_remove("MISSIVE_DATABASE_SCHEMA")
        .stdin(std::process::Stdio::null());
    if let Some(schema) = schema {
        cmd.env("MISSIVE_DATABASE_SCHEMA", schema);
    }
    cmd.output().await.expect("missive import runs")
}

/// Answers checked against the server's own OpenAPI document.
pub mod openapi {
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, Mutex};

    use reqwest::{Method, StatusCode};
    use serde_json::{Value, json};

    pub static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
        serde_json::to_value(missive::http::openapi_document()).expect("document serialises")
    });

    type Validators = HashMap<(String, String, u16), Option<Arc<jsonschema::Validator>>>;
    static VALIDATORS: LazyLock<Mutex<Validators>> = LazyLock::new(Default::default);

    /// The documented path template that `path` is an instance of (literal segments first).
    pub fn template(path: &str) -> Option<String> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let paths = DOCUMENT["paths"].as_object()?;
        paths
            .keys()
            .filter(|t| {
                let parts: Vec<&str> = t.split('/').collect();
                parts.len() == segments.len()
                    && parts.iter().zip(&segments).all(|(p, s)| {
                        p == s || (p.starts_with('{') && p.ends_with('}') && !s.is_empty())
                    })
            })
            .min_by_key(|t| t.matches('{').count())
            .cloned()
    }

    /// Panics when a documented route answers a status its document does not list, or JSON
    /// that does not fit the listed schema.
    pub fn check(method: &Method, path: &str, status: StatusCode, json: Option<&Value>) {
        let Some(template) = template(path) else {
            return;
        };
        let method = method.as_str().to_lowercase();
        if DOCUMENT["paths"][&template][&method].is_null() {
            return;
        }
        let key = (template.clone(), method.clone(), status.as_u16());
        let validator = VALIDATORS
            .lock()
            .unwrap()
            .entry(key)
            .or_insert_with(|| {
                let response = &DOCUMENT["paths"][&template][&method]["responses"]
                    [status.as_str()];
                assert!(
                    !response.is_null(),
                    "{method} {template} answered {status}, which its OpenAPI document does not list"
                );
                let schema = &response["content"]["application/json"]["schema"];
                if schema.is_null() {
                    return None;
                }
                let mut root = schema.clone();
                let mut wrapped = json!({ "allOf": [root.take()] });
                wrapped["components"] = DOCUMENT["components"].clone();
                Some(Arc::new(
                    jsonschema::validator_for(&wrapped).expect("the document's schema compiles"),
                ))
            })
            .clone();
        if let (Some(validator), Some(body)) = (validator, json) {
            let problems: Vec<String> = validator
                .iter_errors(body)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(
                problems.is_empty(),
                "{method} {template} {status}: the body does not fit the OpenAPI schema: {problems:?}\n{body}"
            );
        }
    }
}
