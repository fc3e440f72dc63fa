//! Realtime transport (socketioxide): namespaces, handshake auth, events, notifications, presence.

pub mod admin;
pub mod connect;
pub mod events;
pub mod notify;
pub mod presence;

use std::time::Duration;

use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::handler::ConnectHandler;
use socketioxide::{SocketIo, SocketIoBuilder};
use socketioxide_core::adapter::{DefinedAdapter, Spawnable};
use socketioxide_redis::{RedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use crate::app::App;
use crate::config::Config;

/// Namespaces that carry the messaging contract (the original client uses `/messages`).
pub const MESSAGING_NAMESPACES: [&str; 2] = ["/messages", "/"];

fn tuned<A: Adapter>(builder: SocketIoBuilder<A>, config: &Config) -> SocketIoBuilder<A> {
    builder
        .ping_interval(Duration::from_secs(25))
        .ping_timeout(Duration::from_secs(20))
        .max_payload(1024 * 1024)
        .ws_read_buffer_size(config.ws_read_buffer.max(64))
        .max_buffer_size(config.socket_buffer.max(4))
}

/// Single node: rooms live in this process.
pub fn local_builder(config: &Config) -> SocketIoBuilder<LocalAdapter> {
    tuned(SocketIo::builder(), config)
}

/// Several nodes: rooms and emits span every node through Redis pub/sub.
pub async fn redis_builder(
    config: &Config,
    url: &str,
    prefix: &str,
) -> anyhow::Result<SocketIoBuilder<RedisAdapter<socketioxide::adapter::Emitter>>> {
    let url = if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    };
    let client = redis::Client::open(url)?;
    let adapter = RedisAdapterConfig::new()
        .with_prefix(prefix.to_owned())
        .with_request_timeout(Duration::from_secs(2));
    let ctr = RedisAdapterCtr::new_with_redis_config(&client, adapter).await?;
    Ok(tuned(SocketIo::builder(), config).with_adapter::<RedisAdapter<_>>(ctr))
}

/// Registers every namespace on `io`.
pub async fn install<A: Adapter + DefinedAdapter>(
    _app: &App,
    io: &SocketIo<A>,
) -> anyhow::Result<()> {
    for ns in MESSAGING_NAMESPACES {
        io.ns(
            ns,
            connect::on_connect::<A>.with(connect::authenticate::<A>),
        )
        .spawn();
    }
    io.ns(
        admin::NAMESPACE,
        admin::on_connect::<A>.with(connect::authenticate_admin::<A>),
    )
    .spawn();
    Ok(())
}
