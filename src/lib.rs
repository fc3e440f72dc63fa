//! Missive: a realtime private-messaging server.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod http;
pub mod ids;
pub mod lobby;
pub mod metrics;
pub mod ratelimit;
pub mod realtime;
pub mod seed;

pub use app::{App, Server};
pub use config::Config;
