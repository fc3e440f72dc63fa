//! Application state and server assembly: database, Socket.IO, router, background tasks, shutdown.

use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use background::CancelOnDrop;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::net::TcpListener;

use crate::auth::{Credential, OriginPolicy, Principal, Tokens};
use crate::config::Config;
use crate::db::Database;
use crate::domain::{DomainResult, sessions};
use crate::http::error::ApiError;
use crate::lobby::Lobby;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::realtime::notify::Notifier;
use crate::realtime::presence::Presence;

/// Shared state of one server node.
#[derive(Clone)]
pub struct App(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub db: Database,
    pub tokens: Tokens,
    pub origins: OriginPolicy,
    pub login_by_addr: RateLimiter,
    pub login_by_name: RateLimiter,
    /// Messages per user; `None` when the limit is off.
    pub sends_by_user: Option<RateLimiter>,
    pub notifier: Arc<Notifier>,
    pub presence: Presence,
    pub lobby: Lobby,
    pub threads: crate::domain::messaging::Directory,
    pub replies: crate::domain::group_commit::GroupCommit,
    pub metrics: Arc<Metrics>,
}

impl Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    /// Connects to the database, runs migrations and loads the signing secret.
    pub async fn new(config: Config) -> anyhow::Result<App> {
        let db = Database::connect(&config).await?;
        db.migrate().await?;
        let secret = match &config.secret {
            Some(s) if !s.is_empty() => s.clone(),
            _ => sessions::signing_secret(&db.conn).await?,
        };
        let notifier = Arc::new(Notifier::default());
        let metrics = Arc::new(Metrics::default());
        Ok(App(Arc::new(AppInner {
            tokens: Tokens::new(&secret),
            origins: OriginPolicy::new(&config.allowed_origins),
            login_by_addr: RateLimiter::new(config.login_rate, Duration::from_secs(60)),
            login_by_name: RateLimiter::new(config.login_failures, Duration::from_secs(15 * 60)),
            sends_by_user: (config.send_rate > 0).then(|| {
                RateLimiter::new(config.send_rate.saturating_mul(2), Duration::from_secs(2))
            }),
            replies: crate::domain::group_commit::GroupCommit::start(
                db.clone(),
                notifier.clone(),
                metrics.clone(),
            ),
            notifier,
            presence: Presence::default(),
            lobby: Lobby::default(),
            threads: Default::default(),
            metrics,
            db,
            config,
        })))
    }

    /// Checks any credential.
    pub async fn authenticate(&self, credential: &Credential) -> DomainResult<Option<Principal>> {
        crate::auth::authenticate(&self.db, &self.tokens, self.config.session_idle, credential)
            .await
    }

    /// Spends a login attempt for the address and checks the username still has attempts left.
    pub fn check_login_limits(&self, ip: IpAddr, username: &str) -> Result<(), ApiError> {
        self.check_address_limit(&ip.to_string())?;
        self.login_by_name
            .peek(&username.trim().to_lowercase())
            .map_err(|wait| self.refused(wait))
    }

    /// Spends a registration attempt for the address.
    pub fn check_registration_limit(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.check_address_limit(&format!("register:{ip}"))
    }

    /// Spends an attempt from the per-address bucket `key`.
    pub fn check_address_limit(&self, key: &str) -> Result<(), ApiError> {
        self.login_by_addr
            .check(key)
            .map_err(|wait| self.refused(wait))
    }

    fn refused(&self, wait: Duration) -> ApiError {
        Metrics::inc(&self.metrics.rate_limited);
        ApiError::RateLimited(wait)
    }

    /// Counts a failed password against the username.
    pub fn record_login_failure(&self, username: &str) {
        Metrics::inc(&self.metrics.login_failures);
        let _ = self.login_by_name.check(&username.trim().to_lowercase());
    }

    /// Ends sessions and disconnects their sockets on every node.
    pub async fn disconnect_sessions(&self, session_ids: &[String]) {
        for sid in session_ids {
            self.notifier.disconnect_session(sid).await;
            self.lobby.close_session(sid);
        }
    }
}

/// A running server.
pub struct Server {
    pub app: App,
    pub addr: SocketAddr,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    /// Binds `config.bind` and starts serving in the background.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(config.bind).await?;
        Server::start_on(listener, config).await
    }

    /// Serves on an already bound listener.
    pub async fn start_on(listener: TcpListener, config: Config) -> anyhow::Result<Server> {
        let addr = listener.local_addr()?;
        let app = App::new(config).await?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let router = match app.config.redis_url.clone() {
            Some(url) => {
                app.presence
                    .join_cluster(&url, &app.config.redis_prefix)
                    .await?;
                let (layer, io) =
                    crate::realtime::redis_builder(&app.config, &url, &app.config.redis_prefix)
                        .await?
                        .with_state(app.clone())
                        .build_layer();
                crate::realtime::install(&app, &io).await?;
                finish(&app, layer, io)
            }
            None => {
                let (layer, io) = crate::realtime::local_builder(&app.config)
                    .with_state(app.clone())
                    .build_layer();
                crate::realtime::install(&app, &io).await?;
                finish(&app, layer, io)
            }
        };
        let tasks = CancelOnDrop(spawn_background(&app));
        let handle = tokio::spawn({
            let app = app.clone();
            async move {
                // Small frames go out at once: with Nagle's algorithm a frame written while an
                // earlier one is unacknowledged waited for the peer's delayed ACK (40 ms).
                let listener = listener.tap_io(|tcp| {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "TCP_NODELAY was refused");
                    }
                });
                axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = shutdown_rx.await;
                    app.notifier.close_all().await;
                })
                .await?;
                drop(tasks);
                Ok(())
            }
        });
        tracing::info!(%addr, "missive listening");
        Ok(Server {
            app,
            addr,
            handle,
            shutdown: Some(shutdown_tx),
        })
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, closes sockets, finishes in-flight requests.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.handle).await?
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

fn finish<A: Adapter + socketioxide_core::adapter::DefinedAdapter>(
    app: &App,
    layer: socketioxide::layer::SocketIoLayer<A>,
    io: SocketIo<A>,
) -> axum::Router {
    app.notifier.attach(io, app.config.redis_url.is_some());
    crate::http::router(app.clone())
        .layer(layer)
        .layer(tower::util::MapRequestLayer::new(
            crate::realtime::detach_head::<axum::body::Body>,
        ))
}

/// The session sweeper, the keep-alive of sessions that have open sockets, the SQLite
/// checkpointer, the admin stats stream and, in a cluster, the presence heartbeat.
fn spawn_background(app: &App) -> Vec<tokio::task::JoinHandle<()>> {
    let sweeper = every(Duration::from_millis(500), {
        let app = app.clone();
        move || {
            let app = app.clone();
            async move {
                match sessions::sweep_expired(&app.db.conn).await {
                    Ok(expired) if !expired.is_empty() => {
                        tracing::info!(count = expired.len(), "expired idle sessions");
                        app.disconnect_sessions(&expired).await;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "session sweep failed"),
                }
            }
        }
    });
    // An open tab is activity: sessions with sockets on this node are kept alive.
    let period =
        (app.config.session_idle / 4).clamp(Duration::from_millis(250), Duration::from_secs(60));
    let keepalive = every(period, {
        let app = app.clone();
        move || {
            let app = app.clone();
            async move {
                let now = crate::ids::now_micros();
                let mut open = app.presence.sessions_with_sockets();
                open.extend(app.lobby.sessions());
                open.sort();
                open.dedup();
                if let Err(e) =
                    sessions::touch(&app.db.conn, &open, now, app.config.session_idle).await
                {
                    tracing::warn!(error = %e, "session keep-alive failed");
                }
            }
        }
    });
    let admin = tokio::spawn(crate::realtime::admin::stream_stats(app.clone()));
    let mut tasks = vec![sweeper, keepalive, admin];
    if app.db.backend() == sea_orm::DbBackend::Sqlite {
        // Every 100 ms: flat out, the WAL grows by tens of MB a second, and whatever this task
        // leaves behind the writer copies itself (past 10,000 pages), fsync included, while the
        // senders of its batch wait. On an idle server each run finds nothing to copy.
        let db = app.db.clone();
        tasks.push(every(Duration::from_millis(100), move || {
            let db = db.clone();
            async move {
                if let Err(e) = db.checkpoint().await {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
            }
        }));
    }
    if app.presence.is_clustered() {
        tasks.push(tokio::spawn({
            let app = app.clone();
            async move {
                let mut tick = tokio::time::interval(crate::realtime::presence::HEARTBEAT);
                loop {
                    tick.tick().await;
                    for user_id in app.presence.tick().await {
                        if let Ok(Some(user)) =
                            crate::domain::accounts::find_by_id(&app.db.conn, user_id).await
                        {
                            crate::realtime::connect::announce(&app, &user, false).await;
                        }
                    }
                }
            }
        }));
    }
    tasks
}

/// Runs `work` every `period`; a late tick delays the next ones instead of bunching them up.
fn every<F, Fut>(period: Duration, mut work: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            work().await;
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

mod background {
    /// Aborts background tasks when the server stops.
    pub struct CancelOnDrop(pub Vec<tokio::task::JoinHandle<()>>);

    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            for t in &self.0 {
                t.abort();
            }
        }
    }
}

/// The operations both transports offer: a domain call, then notification after commit.
impl App {
    pub async fn send_message(
        &self,
        sender: &entity::user::Model,
        req: crate::domain::messaging::SendMessage,
    ) -> DomainResult<crate::domain::messaging::SendOutcome> {
        use crate::domain::messaging::{self, SendOutcome};
        if let Some(limiter) = &self.sends_by_user {
            limiter.check(&sender.id.to_string()).map_err(|wait| {
                Metrics::inc(&self.metrics.rate_limited);
                crate::domain::DomainError::RateLimited(wait)
            })?;
        }
        let outcome = messaging::send(
            &self.db,
            &self.threads,
            &self.replies,
            sender,
            req,
            self.config.max_body,
        )
        .await?;
        if let SendOutcome::Created { .. } = &outcome {
            Metrics::inc(&self.metrics.messages_sent);
        }
        Ok(outcome)
    }

    pub async fn read_thread(
        &self,
        reader: &entity::user::Model,
        thread_id: &str,
        up_to: Option<&str>,
    ) -> DomainResult<crate::domain::messaging::ReadOutcome> {
        let outcome = crate::domain::messaging::read(&self.db, reader, thread_id, up_to).await?;
        self.notifier.thread_read(&outcome).await;
        Ok(outcome)
    }

    pub async fn delete_message(
        &self,
        user: &entity::user::Model,
        url: &str,
    ) -> DomainResult<crate::domain::messaging::MessageDeleted> {
        let outcome = crate::domain::messaging::delete_message(&self.db, user, url).await?;
        self.notifier.message_deleted(&outcome).await;
        Ok(outcome)
    }

    pub async fn delete_thread(
        &self,
        user: &entity::user::Model,
        thread_id: &str,
    ) -> DomainResult<crate::domain::messaging::ThreadDeleted> {
        let outcome = crate::domain::messaging::delete_thread(&self.db, user, thread_id).await?;
        self.notifier.thread_deleted(&outcome).await;
        Ok(outcome)
    }
}
