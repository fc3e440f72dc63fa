//! Server assembly: the service's [`App`], the Socket.IO layer (in-process or Redis adapter)
//! with its notifier, the HTTP router, the background tasks, and graceful shutdown.

mod listen;
mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;

use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::realtime::bus::{Bus, Listener};
use crate::realtime::notify::SocketIoNotifier;
use crate::service::App;

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
    pub async fn start_on(listener: TcpListener, mut config: Config) -> anyhow::Result<Server> {
        if config.trust_proxy.is_some() {
            anyhow::bail!(
                "MISSIVE_TRUST_PROXY (--trust-proxy) is gone: it believed X-Forwarded-For from any \
                 peer. List your proxies instead: MISSIVE_TRUSTED_PROXIES=10.0.0.5 (addresses or CIDRs)"
            );
        }
        let addr = listener.local_addr()?;
        if config.public_url.is_none() {
            // The port actually bound (the configured one may be 0).
            config.public_url = Some(format!("http://{addr}"));
        }
        let notifier = Arc::new(SocketIoNotifier::default());
        let app = App::new(config, notifier.clone()).await?;
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let router = match crate::service::redis_conn::Target::of(&app.config)? {
            Some(redis) => {
                app.presence
                    .join_cluster(&redis, &app.config.redis_prefix)
                    .await?;
                let prefix = &app.config.redis_prefix;
                let (builder, driver) =
                    crate::realtime::redis_builder(&app.config, &redis, prefix).await?;
                let (layer, io) = builder
                    .with_state(app.clone())
                    .with_state(notifier.clone())
                    .build_layer();
                let listener: Arc<dyn Listener> = notifier.clone();
                let bus = Bus::start(
                    driver,
                    prefix,
                    app.bus_key.clone(),
                    Arc::downgrade(&listener),
                )
                .await?;
                assemble(&app, &notifier, layer, io, Some(bus))
            }
            None => {
                let (layer, io) = crate::realtime::local_builder(&app.config)
                    .with_state(app.clone())
                    .with_state(notifier.clone())
                    .build_layer();
                assemble(&app, &notifier, layer, io, None)
            }
        };
        // After the cluster is joined: the pushes' coalescing windows live in its Redis.
        let pusher = crate::webpush::WebPush::new(&app.pushes.vapid_private, &app.config)?;
        app.start_pushes(Arc::new(pusher));
        if let Some(url) = app.config.smtp_url.as_deref().filter(|u| !u.is_empty()) {
            let smtp = crate::mail::Smtp::new(url, &app.config.mail_from)?;
            app.start_mail(Arc::new(smtp));
        }
        let mut handles = tasks::spawn(&app);
        // Fills what the bus lost for this node's sockets, from the log.
        handles.push(tokio::spawn(crate::realtime::delivery::watch(
            app.clone(),
            notifier.clone(),
        )));
        let tasks = tasks::CancelOnDrop(handles);
        let policy = listen::Policy {
            header_timeout: app.config.header_timeout,
            per_address: (app.config.connections_per_address > 0)
                .then_some(app.config.connections_per_address),
            trusted_proxies: app.config.trusted_proxies.clone(),
            metrics: app.metrics.clone(),
        };
        let handle = tokio::spawn({
            let app = app.clone();
            async move {
                let signal = async move {
                    let _ = shutdown_rx.await;
                };
                // Accepting has stopped: the sends in flight are answered, then every socket
                // is closed so that its client reconnects to another node.
                let stopping = {
                    let app = app.clone();
                    async move {
                        app.settle_sends().await;
                        app.notifier.close_all().await;
                    }
                };
                listen::serve(listener, router, policy, signal, stopping).await;
                drop(tasks);
                app.shutdown().await;
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

    /// Stops accepting, closes sockets, finishes in-flight requests, leaves the cluster.
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

/// Registers the namespaces, hands the Socket.IO server to the notifier, and puts the
/// Socket.IO layer in front of the HTTP router.
fn assemble<A: Adapter + socketioxide_core::adapter::DefinedAdapter>(
    app: &App,
    notifier: &SocketIoNotifier,
    layer: socketioxide::layer::SocketIoLayer<A>,
    io: SocketIo<A>,
    bus: Option<Bus>,
) -> axum::Router {
    crate::realtime::install(&io);
    notifier.attach(io, bus);
    crate::http::router(app.clone())
        .layer(layer)
        .layer(tower::util::MapRequestLayer::new(
            crate::realtime::detach_head::<axum::body::Body>,
        ))
        .layer(axum::middleware::from_fn(
            crate::http::access_log::log_requests,
        ))
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
