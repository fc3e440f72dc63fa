//! Missive: a realtime private-messaging server.
//!
//! Layers, top to bottom (ARCHITECTURE.md; `tests/architecture.rs` keeps imports pointing
//! down): `server` (assembly) -> transports (`http`, `realtime`, `webpush`) -> `service` (use
//! cases) -> `domain` (rules and queries) -> `db`; `config`, `ids` and `metrics` from anywhere.

pub mod config;
pub mod db;
pub mod domain;
pub mod http;
pub mod ids;
pub mod mail;
pub mod metrics;
pub mod realtime;
pub mod server;
pub mod service;
pub mod webpush;

pub use config::Config;
pub use server::Server;
pub use service::App;
