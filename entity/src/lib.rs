//! Database entities of Missive. Plain data: the rules live in the server's domain services.
//! Times are stored as Unix microseconds (`i64`) so that SQLite and PostgreSQL compare them alike.

pub mod account_token;
pub mod block;
pub mod event_log;
pub mod import_row;
pub mod message;
pub mod message_hide;
pub mod participant;
pub mod push_subscription;
pub mod recovery_code;
pub mod security_event;
pub mod session;
pub mod setting;
pub mod thread;
pub mod thread_change;
pub mod unread_below_mark;
pub mod user;
