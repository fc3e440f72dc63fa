//! Realtime transport (socketioxide): namespaces, handshake auth, events, and the Socket.IO
//! implementation of the service's notifier.

mod adapter;
pub mod admin;
pub mod bus;
pub mod connect;
pub mod delivery;
pub mod events;
mod local;
pub mod notify;
pub mod protocol;
pub mod recovery;
pub mod redis_driver;
pub mod reference;
pub mod rooms;
pub mod socket_user;

use std::time::Duration;

use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Uri};

use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::handler::ConnectHandler;
use socketioxide::{SocketIo, SocketIoBuilder};
use socketioxide_core::adapter::{DefinedAdapter, Spawnable};
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use crate::service::redis_conn::Target;
use redis_driver::HealingDriver;

/// The Redis adapter on [`HealingDriver`].
pub type RedisAdapter = CustomRedisAdapter<socketioxide::adapter::Emitter, HealingDriver>;

use crate::config::Config;

/// Namespaces that carry the messaging contract (the original client uses `/messages`).
pub const MESSAGING_NAMESPACES: [&str; 2] = ["/messages", "/"];

fn tuned<A: Adapter>(builder: SocketIoBuilder<A>, config: &Config) -> SocketIoBuilder<A> {
    // A socket whose queue reaches either bound is closed (vendor/engineioxide/PATCHED.md).
    engineioxide::socket::set_max_buffer_bytes(config.socket_buffer_bytes);
    builder
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .max_payload(1024 * 1024)
        // The largest legal event (a message of `--max-body` characters, each escaped as
        // `\uXXXX` at worst, with its subject and client_id) fits; a larger frame is refused
        // before it is read whole.
        .ws_max_message_size(max_event_size(config))
        .ws_max_frame_size(max_event_size(config))
        .ws_read_buffer_size(config.ws_read_buffer.max(64))
        .max_buffer_size(config.socket_buffer.max(4))
}

/// Bytes of the largest websocket message a legal event makes, with room to spare.
fn max_event_size(config: &Config) -> usize {
    config.max_body * 12 + 16 * 1024
}

/// Single node: rooms live in this process.
pub fn local_builder(config: &Config) -> SocketIoBuilder<LocalAdapter> {
    tuned(SocketIo::builder(), config)
}

/// Several nodes: rooms span every node through Redis pub/sub. The driver is returned for the
/// event bus (`bus.rs`), which carries the emits.
pub async fn redis_builder(
    config: &Config,
    redis: &Target,
    prefix: &str,
) -> anyhow::Result<(SocketIoBuilder<RedisAdapter>, HealingDriver)> {
    let adapter = RedisAdapterConfig::new()
        .with_prefix(prefix.to_owned())
        .with_request_timeout(Duration::from_secs(2));
    let driver = HealingDriver::new(&redis.resp3()).await?;
    let ctr = RedisAdapterCtr::new_with_driver(driver.clone(), adapter);
    Ok((
        tuned(SocketIo::builder(), config).with_adapter::<RedisAdapter>(ctr),
        driver,
    ))
}

/// Registers every namespace on `io`.
pub fn install<A: Adapter + DefinedAdapter>(io: &SocketIo<A>) {
    let handlers = std::sync::Arc::new(events::handlers::<A>());
    for ns in MESSAGING_NAMESPACES {
        let handlers = handlers.clone();
        let authenticate = move |s, payload, app, notifier| {
            connect::authenticate::<A>(s, payload, app, notifier, handlers.clone())
        };
        io.ns(ns, connect::on_connect::<A>.with(authenticate))
            .spawn();
    }
    io.ns(
        admin::NAMESPACE,
        connect::on_admin_connect.with(connect::authenticate_admin::<A>),
    )
    .spawn();
}

/// Request headers no Socket.IO handler reads: dropped from the handshake head that
/// engineioxide keeps for the socket's whole life.
const UNREAD_HEADERS: [HeaderName; 7] = [
    header::USER_AGENT,
    header::ACCEPT,
    header::ACCEPT_ENCODING,
    header::ACCEPT_LANGUAGE,
    header::CACHE_CONTROL,
    header::PRAGMA,
    header::SEC_WEBSOCKET_EXTENSIONS,
];

fn is_read(name: &HeaderName) -> bool {
    let name = name.as_str();
    !(UNREAD_HEADERS.iter().any(|h| h == name)
        || name.starts_with("sec-fetch-")
        || name.starts_with("sec-ch-"))
}

/// Gives a Socket.IO request a head of its own, out of hyper's read buffer.
///
/// hyper parses a request head without copying: the URI and every header value are slices of
/// the connection's read buffer (8 KiB or more), and engineioxide keeps the handshake's head
/// for as long as the socket lives, so every idle websocket used to pin a buffer nobody reads
/// again. With owned copies of the URI and of the headers a handler may read, that buffer is
/// freed once the connection is upgraded.
pub fn detach_head<B>(req: Request<B>) -> Request<B> {
    if !req.uri().path().starts_with("/socket.io/") {
        return req;
    }
    let (mut parts, body) = req.into_parts();
    if let Ok(uri) = Uri::try_from(parts.uri.to_string()) {
        parts.uri = uri;
    }
    let mut headers = HeaderMap::with_capacity(parts.headers.keys_len());
    for (name, value) in parts.headers.iter().filter(|(name, _)| is_read(name)) {
        // `from_bytes` copies; a standard name is static, a custom one is copied likewise.
        let (Ok(name), Ok(mut copy)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) else {
            continue;
        };
        copy.set_sensitive(value.is_sensitive());
        headers.append(name, copy);
    }
    parts.headers = headers;
    Request::from_parts(parts, body)
}
