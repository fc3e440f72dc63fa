//! The service layer: every use case, whichever transport asks. Who is asking (one
//! [`Identity`], built by [`App::authenticate`] with one set of limits and one Origin policy),
//! registration, login and logout, sending, reading, deleting, presence and the lobby. A
//! transport decodes, calls one function here and encodes the result; the domain below holds
//! the rules and queries, and events leave through the [`Notifier`] after each commit.

pub mod account_security;
pub mod accounts;
pub mod auth;
mod error;
mod export;
mod identity;
pub mod limits;
pub mod lobby;
pub mod mail;
pub mod messaging;
mod notifications;
pub mod notify;
pub mod ops;
pub mod presence;
pub mod push;
pub mod recovery;
pub mod redis_conn;

use std::ops::Deref;
use std::sync::Arc;

pub use error::{ServiceError, ServiceResult};
pub use identity::Identity;
pub use notify::Notifier;

/// The domain's types that transports encode or decode, as the service hands them over.
pub use crate::domain::DomainError;
pub use crate::domain::events;
pub use crate::domain::messaging::{MuteRequest, React, SendMessage, SendOutcome};
pub use crate::domain::security_log::Place;
pub use crate::domain::views::{
    AccountView, Change, ChangeKind, ChangeNotice, HistoryItem, MessageView, Reaction, ReadBy,
    Rendered, ReplyTo, SearchResult, SearchThread, ThreadKind, ThreadView, UnreadCounts, UserRef,
};

use crate::config::Config;
use crate::db::Database;
use crate::domain::messaging::{Directory, GroupCommit};
use crate::domain::outbox::Outbox;
use crate::domain::sessions;
use crate::metrics::Metrics;
use auth::{OriginPolicy, Tokens};
use limits::Limits;
use lobby::Lobby;
use presence::Presence;
use recovery::Recovery;

/// Shared state of one server node.
#[derive(Clone)]
pub struct App(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    /// The key of the event bus's MACs (from the shared secret).
    pub bus_key: redis_conn::BusKey,
    pub db: Database,
    pub tokens: Tokens,
    pub origins: OriginPolicy,
    pub limits: Limits,
    pub notifier: Arc<dyn Notifier>,
    pub presence: Presence,
    pub lobby: Lobby,
    pub recovery: Recovery,
    threads: Arc<Directory>,
    replies: GroupCommit,
    /// Every change's events, to the announcer in commit order.
    outbox: Outbox,
    pub metrics: Arc<Metrics>,
    /// Web Push: what goes to users with no tab open.
    pub pushes: push::Pushes,
    /// Mail to users' addresses.
    pub mails: mail::Mails,
}

impl Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    /// Connects to the database, runs migrations, loads the signing secret and starts the
    /// group commit, whose commits `notifier` announces.
    pub async fn new(config: Config, notifier: Arc<dyn Notifier>) -> anyhow::Result<App> {
        let db = Database::connect(&config).await?;
        db.migrate().await?;
        // A database from before the search index: its messages are indexed once.
        crate::domain::search::catch_up(&db).await?;
        let secret = match &config.secret {
            Some(s) if !s.is_empty() => s.clone(),
            _ => {
                db.write(async |txn| sessions::signing_secret(txn).await)
                    .await?
            }
        };
        // Refusals of every name take an imported password's time too (see `authenticate`).
        crate::domain::accounts::learn_legacy_rounds(&db.conn).await?;
        let metrics = Arc::new(Metrics::default());
        let (outbox, committed) = Outbox::new();
        let threads = Arc::new(Directory::default());
        let replies =
            GroupCommit::start(db.clone(), outbox.clone(), threads.clone(), metrics.clone());
        let vapid_private = match &config.vapid_private_key {
            Some(k) if !k.is_empty() => k.clone(),
            _ => {
                db.write(async |txn| {
                    crate::domain::notifications::vapid_key(txn, push::new_vapid_key).await
                })
                .await?
            }
        };
        let app = App(Arc::new(AppInner {
            tokens: Tokens::new(&secret),
            bus_key: redis_conn::BusKey::new(&secret),
            recovery: Recovery::new(&secret),
            origins: OriginPolicy::new(&config.allowed_origins),
            limits: Limits::new(&config, metrics.clone()),
            replies,
            outbox,
            notifier,
            presence: Presence::default(),
            lobby: Lobby::default(),
            threads,
            metrics,
            pushes: push::Pushes::new(vapid_private),
            mails: mail::Mails::new(config.smtp_url.as_deref().is_some_and(|u| !u.is_empty())),
            db,
            config,
        }));
        messaging::start_announcer(committed, app.clone());
        Ok(app)
    }

    /// Lets the sends in flight commit and be answered (at most 5 s), before the sockets
    /// close at shutdown.
    pub async fn settle_sends(&self) {
        self.replies.settle(std::time::Duration::from_secs(5)).await;
    }

    /// Leaves the cluster's presence at once, instead of when the heartbeat expires.
    pub async fn shutdown(&self) {
        self.presence.leave_cluster().await;
    }
}
