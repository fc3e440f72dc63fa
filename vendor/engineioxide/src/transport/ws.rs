//! The ws transport module is responsible for handling websocket connections
//! The only public function is [`new_req`] which is used to upgrade a http request to a websocket connection
//!
//! Other functions are used internally to handle the websocket connection through tasks and channels
//! and to handle upgrade from polling to ws

use std::{future::Future, sync::Arc};

use futures_util::{
    SinkExt, StreamExt, TryStreamExt,
    stream::{SplitSink, SplitStream},
};
use http::{HeaderValue, Request, Response, StatusCode, request::Parts};
use smallvec::smallvec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};
use tokio_util::future::FutureExt as _;

use engineioxide_core::{Packet, ProtocolVersion, Sid, Str, TransportType};

use crate::{
    DisconnectReason, Socket, body::ResponseBody, config::EngineIoConfig, engine::EngineIo,
    errors::Error, handler::EngineIoHandler, socket::InternalRx, transport::make_open_packet,
};

/// Create a response for websocket upgrade
fn ws_response<B>(ws_key: &HeaderValue) -> Response<ResponseBody<B>> {
    let derived = derive_accept_key(ws_key.as_bytes());
    let sec = derived.parse::<HeaderValue>().unwrap();
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::UPGRADE, HeaderValue::from_static("websocket"))
        .header(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        )
        .header(http::header::SEC_WEBSOCKET_ACCEPT, sec)
        .body(ResponseBody::empty_response())
        .unwrap() // we are only using constants
}

/// Upgrade a websocket request to create a websocket connection.
///
/// If a sid is provided in the query it means that is is upgraded from an existing HTTP polling request.
/// In this case the http polling request is closed and the SID is kept for the websocket
pub fn new_req<R: Send + 'static, B, H: EngineIoHandler>(
    engine: Arc<EngineIo<H>>,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req: Request<R>,
) -> Result<Response<ResponseBody<B>>, Error> {
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts.clone(), body);

    let ws_key = parts
        .headers
        .get("Sec-WebSocket-Key")
        .ok_or(Error::InvalidWebSocketKey)?
        .clone();

    // Missive patch (PATCHED.md): the upgrade and the session's opening run in a future of
    // their own on the heap, freed once the socket is open, so that the task that then reads the
    // socket for its whole life is not the size of the opening's largest state.
    let opening: Opening<H, _> = Box::pin({
        let engine = engine.clone();
        async move {
            let conn = match hyper::upgrade::on(req).await {
                Ok(conn) => hyper_util::rt::TokioIo::new(conn),
                Err(_e) => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!("ws upgrade error: {}", _e);
                    return Ok(None);
                }
            };
            open(engine, conn, protocol, sid, parts).await.map(Some)
        }
    });
    tokio::spawn(async move {
        match open_and_serve(engine.clone(), opening).await {
            // The HTTP upgrade failed.
            Ok(false) => {}
            Ok(true) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(?sid, "ws closed")
            }
            Err(Error::MultipleWebsocketRequests) => {}
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(?sid, "ws closed with error: {_e}");
                if let Some(sid) = sid {
                    engine.close_session(sid, DisconnectReason::TransportError);
                }
            }
        }
    });

    Ok(ws_response(&ws_key))
}

/// A websocket connection being opened: the upgraded connection with its session, `None` if
/// the HTTP upgrade failed.
type Opening<H, S> = std::pin::Pin<
    Box<
        dyn Future<
                Output = Result<
                    Option<(
                        Arc<Socket<<H as EngineIoHandler>::Data>>,
                        WebSocketStream<S>,
                    )>,
                    Error,
                >,
            > + Send,
    >,
>;

/// Handle a websocket connection upgrade
///
/// Sends an open packet if it is not an upgrade from a polling request
///
/// Read packets from the websocket and handle them, it will block until the connection is closed
pub fn on_init<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    conn: S,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> impl Future<Output = Result<(), Error>> + Send + 'static
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Opened on the heap, as in `new_req`.
    let opening: Opening<H, S> = Box::pin({
        let engine = engine.clone();
        async move { open(engine, conn, protocol, sid, req_data).await.map(Some) }
    });
    async move { open_and_serve(engine, opening).await.map(drop) }
}

/// Opens a websocket session, then serves it until it closes; `false` if the HTTP upgrade
/// failed.
async fn open_and_serve<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    opening: Opening<H, S>,
) -> Result<bool, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The opened connection is handed over within this statement: it is not kept in this
    // future's state while the session is served.
    let serving = opening.await?.map(|(socket, ws)| serve(engine, socket, ws));
    match serving {
        Some(serving) => {
            serving.await;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Opens the session of a websocket connection: a new one (its open packet sent), or the
/// polling session it upgrades.
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", name = "init_websocket", skip(engine, conn, req_data))
)]
async fn open<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    conn: S,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> Result<(Arc<Socket<H::Data>>, WebSocketStream<S>), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(engine.config.ws_read_buffer_size)
        .max_message_size(Some(engine.config.ws_max_message_size))
        .max_frame_size(Some(engine.config.ws_max_frame_size));

    let ws_init = move || WebSocketStream::from_raw_socket(conn, Role::Server, Some(ws_config));
    if let Some(sid) = sid {
        match engine.get_socket(sid) {
            None => Err(Error::UnknownSessionID(sid)),
            Some(socket) if socket.is_ws() => Err(Error::MultipleWebsocketRequests),
            Some(socket) => {
                let mut ws = ws_init().await;

                let upgrade_fut = upgrade_handshake::<H, S>(&socket, &mut ws);
                match tokio::time::timeout(engine.config.upgrade_timeout, upgrade_fut)
                    .with_cancellation_token(&socket.cancellation_token)
                    .await
                {
                    Some(Ok(res)) => res?,
                    Some(Err(_)) => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "ws upgrade timed out, closing session");
                        engine.close_session(socket.id, DisconnectReason::TransportError);
                        return Err(Error::Upgrade);
                    }
                    None => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "socket is being closed");
                        return Err(Error::Upgrade);
                    }
                }
                Ok((socket, ws))
            }
        }
    } else {
        let socket = engine.create_session(protocol, TransportType::Websocket, req_data, false);

        #[cfg(feature = "tracing")]
        tracing::debug!("new websocket connection");

        let mut ws = ws_init().await;
        init_handshake(socket.id, &mut ws, &engine.config).await?;
        engine.start_heartbeat(socket.id);
        Ok((socket, ws))
    }
}

/// An open websocket session: its writer's task spawned at once; the future reads its packets
/// until it closes. Not an `async fn`, whose arguments (the websocket stream among them) would
/// stay in its state for the session's life.
fn serve<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    socket: Arc<Socket<H::Data>>,
    ws: WebSocketStream<S>,
) -> impl Future<Output = ()> + Send + 'static
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = ws.split();

    // Pipe between websocket and internal socket channel.
    tokio::spawn(forward_to_socket::<H, S>(socket.clone(), tx));

    async move {
        // pipe between internal socket channel and websocket
        match forward_to_handler(&engine, rx, &socket)
            .with_cancellation_token(&socket.cancellation_token)
            .await
        {
            Some(Err(ref e)) => {
                let reason =
                    Option::<DisconnectReason>::from(e).unwrap_or(DisconnectReason::TransportError);

                #[cfg(feature = "tracing")]
                tracing::debug!("error when handling packet: {:?}", e);
                engine.close_session(socket.id, reason);
            }
            Some(Ok(())) => {
                #[cfg(feature = "tracing")]
                tracing::debug!(sid = %socket.id, "ws transport was closed");
                engine.close_session(socket.id, DisconnectReason::TransportClose);
            }
            None => {
                #[cfg(feature = "tracing")]
                tracing::debug!(sid = %socket.id, "socket is closing");
            }
        }
    }
}

/// Forwards all packets received from a websocket to a EngineIo [`Socket`]
async fn forward_to_handler<H: EngineIoHandler, S>(
    engine: &Arc<EngineIo<H>>,
    mut rx: SplitStream<WebSocketStream<S>>,
    socket: &Arc<Socket<H::Data>>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    while let Some(msg) = rx.try_next().await? {
        match msg {
            Message::Text(msg) => match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
                Packet::Close => {
                    #[cfg(feature = "tracing")]
                    tracing::debug!("[sid={}] closing session", socket.id);
                    engine.close_session(socket.id, DisconnectReason::TransportClose);
                    break;
                }
                packet @ (Packet::Pong | Packet::Ping) => {
                    socket.on_heartbeat(&packet);
                    Ok::<(), Error>(())
                }
                Packet::Message(msg) => {
                    engine.handler.on_message(msg, socket.clone());
                    Ok(())
                }
                p => return Err(Error::BadPacket(p)),
            },
            Message::Binary(mut data) => {
                if socket.protocol == ProtocolVersion::V3 && !data.is_empty() {
                    // The first byte is the message type, which we don't need.
                    data = data.split_off(1);
                }
                engine.handler.on_binary(data, socket.clone());
                Ok(())
            }
            Message::Close(_) => {
                #[cfg(feature = "tracing")]
                tracing::debug!("websocket closed, closing session");
                engine.close_session(socket.id, DisconnectReason::TransportClose);
                break;
            }
            _ => {
                #[cfg(feature = "tracing")]
                tracing::debug!(sid = ?socket.id, "unexpected ws message");
                Ok(())
            }
        }?
    }
    Ok(())
}

/// Forwards all packets waiting to be sent to the websocket
///
/// The websocket stream is flushed only when the internal channel is drained
async fn forward_to_socket<H: EngineIoHandler, S>(
    socket: Arc<Socket<H::Data>>,
    mut tx: SplitSink<WebSocketStream<S>, Message>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A polling request that was in progress during the upgrade may still hold the lock.
    // Missive patch (PATCHED.md): this wait, and the closing flush below, are futures on the
    // heap, so that the task is the size of its forwarding loop for the socket's life.
    let lock = socket.internal_rx.lock();
    let Some(mut internal_rx) =
        Box::pin(lock.with_cancellation_token(&socket.cancellation_token)).await
    else {
        #[cfg(feature = "tracing")]
        tracing::debug!(sid = %socket.id, "session closed before starting the ws writer");
        return;
    };
    let InternalRx {
        buffered_rx,
        volatile_rx,
        ..
    } = &mut *internal_rx;

    // Forward buffered packets until the channel is closed or the session is cancelled.
    // Missive's patch: the cancellation ends the forwarding wherever it waits, a write to a peer
    // that stopped reading included; before, such a write held the `internal_rx` lock for as
    // long as the peer liked, and the closed session's handler was never told.
    // Missive patch (PATCHED.md): every batch of packets is written by one `write_packets`, so
    // that the loop holds one write's state rather than one per place it writes (upstream
    // expanded a macro there, each copy keeping its own iterator of the batch).
    let forward = async {
        loop {
            tokio::select! {
                biased;
                items = buffered_rx.recv() => {
                    match items {
                        Some(packets) => {
                            socket.dequeued(&packets);
                            write_packets(&mut tx, &socket, packets).await;
                            while let Ok(packets) = buffered_rx.try_recv() {
                                socket.dequeued(&packets);
                                write_packets(&mut tx, &socket, packets).await;
                            }
                        }
                        None => break
                    }
                }
                // The session's cancellation ends this loop from outside
                // (`with_cancellation_token` below), wherever it waits.
                Ok(()) = volatile_rx.changed() => {
                    let val = volatile_rx.borrow_and_update().clone();
                    if let Some(packets) = val {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(sid = ?socket.id, "ws volatile flush: {} packets", packets.len());
                        write_packets(&mut tx, &socket, packets).await;
                    }
                },
            }

            #[cfg(feature = "tracing")]
            tracing::trace!(sid = %socket.id, "ws flush");
            tx.flush().await.ok();
        }
    };
    forward
        .with_cancellation_token(&socket.cancellation_token)
        .await;
    drop(internal_rx);

    #[cfg(feature = "tracing")]
    tracing::trace!(sid = %socket.id, "ws closing flush");

    // Bounded for the same reason.
    let closing = async {
        tx.flush().await.ok();
        tx.close().await.ok();
    };
    let _ = Box::pin(tokio::time::timeout(
        std::time::Duration::from_secs(1),
        closing,
    ))
    .await;
}
/// Writes a batch of packets to the websocket, unflushed.
async fn write_packets<D, S>(
    tx: &mut SplitSink<WebSocketStream<S>, Message>,
    socket: &Socket<D>,
    mut packets: Box<engineioxide_core::PacketBuf>,
) where
    D: Default + Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    for packet in packets.drain(..) {
        let Some(message) = to_message(socket.protocol, packet) else {
            continue;
        };
        if let Err(_e) = tx.feed(message).await {
            #[cfg(feature = "tracing")]
            tracing::debug!("[sid={}] error sending packet: {}", socket.id, _e);
        }
    }
}

/// The websocket message of a packet; none for a Noop.
fn to_message(protocol: ProtocolVersion, packet: Packet) -> Option<Message> {
    match packet {
        Packet::Binary(bin) | Packet::BinaryV3(bin) => {
            if protocol == ProtocolVersion::V3 {
                // v3 protocol requires packet type as the first byte.
                // This requires a new buffer. This is OK as it is only for the V3 protocol.
                let mut buff = Vec::with_capacity(bin.len() + 1);
                buff.push(0x04);
                buff.extend(bin);
                Some(Message::Binary(buff.into()))
            } else {
                Some(Message::Binary(bin))
            }
        }
        // A Noop Packet maybe sent by the server to upgrade from a polling connection
        // In the case that the packet was not poll in time it will remain in the buffer and therefore
        // it should be discarded here
        Packet::Noop => None,
        packet => {
            let packet: String = packet.try_into().unwrap();
            Some(Message::Text(packet.into()))
        }
    }
}

/// Send a Engine.IO [`OpenPacket`] to initiate a websocket connection
async fn init_handshake<S>(
    sid: Sid,
    ws: &mut WebSocketStream<S>,
    config: &EngineIoConfig,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let packet = Packet::Open(make_open_packet(TransportType::Websocket, sid, config));
    let packet: String = packet.into();
    ws.send(Message::Text(packet.into())).await?;
    Ok(())
}

/// Upgrade a session from a polling request to a websocket request.
///
/// Before upgrading the session the server should send a NOOP packet to any pending polling request.
///
/// ## Handshake :
/// ```text
/// CLIENT                                                 SERVER
///│                                                      │
///│   GET /engine.io/?EIO=4&transport=websocket&sid=...  │
///│ ───────────────────────────────────────────────────► │
///│  ◄─────────────────────────────────────────────────┘ │
///│            HTTP 101 (WebSocket handshake)            │
///│                                                      │
///│            -----  WebSocket frames -----             │
///│  ─────────────────────────────────────────────────►  │
///│                         2probe                       │ (ping packet)
///│  ◄─────────────────────────────────────────────────  │
///│                         3probe                       │ (pong packet)
///│  ─────────────────────────────────────────────────►  │
///│                         5                            │ (upgrade packet)
///│                                                      │
///│            -----  WebSocket frames -----             │
/// ```
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", skip(socket, ws))
)]
async fn upgrade_handshake<H: EngineIoHandler, S>(
    socket: &Arc<Socket<H::Data>>,
    ws: &mut WebSocketStream<S>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "tracing")]
    tracing::debug!("starting websocket connection upgrade");

    // The socket is upgrading, from now on all polling
    // request will return a `Packet::Noop`
    socket.start_upgrade();

    // We send a last Noop request to close a potential waiting polling request.
    socket
        .internal_tx
        .send(Box::new(smallvec![Packet::Noop]))
        .await
        .map_err(|_| Error::Upgrade)?;

    // wait for any current polling connection to finish by waiting for the socket to be unlocked
    // All other polling connection will be immediately closed with a NOOP packet.
    let _lock = socket.internal_rx.lock().await;

    // Fetch the next packet from the ws stream, it should be a PingUpgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        _ => Err(Error::Upgrade)?,
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::PingUpgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("received first ping upgrade");
            // Respond with a PongUpgrade packet
            ws.send(Message::Text(String::from(Packet::PongUpgrade).into()))
                .await?;
        }
        p => Err(Error::BadPacket(p))?,
    };

    // Fetch the next packet from the ws stream, it should be an Upgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        Some(Ok(Message::Close(_))) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws stream closed before upgrade");
            Err(Error::Upgrade)?
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!("unexpected ws message before upgrade");
            Err(Error::Upgrade)?
        }
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::Upgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws upgraded successfully")
        }
        p => Err(Error::BadPacket(p))?,
    };

    socket.upgrade_to_websocket();
    Ok(())
}

fn ws_bytes_to_str(bytes: tungstenite::Utf8Bytes) -> Str {
    // SAFETY: the bytes are guaranteed to be valid UTF-8 by the tungstenite parser
    unsafe { Str::from_bytes_unchecked(bytes.into()) }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use http::Request;
    use tokio::io::DuplexStream;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    #[derive(Debug)]
    struct StubHandler;
    impl EngineIoHandler for StubHandler {
        type Data = ();
        fn on_connect(self: Arc<Self>, _: Arc<Socket<()>>) {}
        fn on_disconnect(&self, _: Arc<Socket<()>>, _: DisconnectReason) {}
        fn on_message(self: &Arc<Self>, _: Str, _: Arc<Socket<()>>) {}
        fn on_binary(self: &Arc<Self>, _: Bytes, _: Arc<Socket<()>>) {}
    }

    fn socket() -> Arc<Socket<()>> {
        Arc::new(Socket::new(
            ProtocolVersion::V4,
            TransportType::Websocket,
            &EngineIoConfig::default(),
            Request::<()>::default().into_parts().0,
            Box::new(|_, _| ()),
            false,
        ))
    }

    async fn ws_pair() -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (server, client) = tokio::io::duplex(1024);
        (
            WebSocketStream::from_raw_socket(server, Role::Server, None).await,
            WebSocketStream::from_raw_socket(client, Role::Client, None).await,
        )
    }

    /// A polling request can still hold the lock at the end of an upgrade.
    #[tokio::test]
    async fn writer_waits_for_the_lock_of_a_polling_request() {
        let socket = socket();
        let (server, mut client) = ws_pair().await;
        let (tx, _rx) = server.split();

        let polling = socket.internal_rx.lock().await;
        let writer = tokio::spawn(forward_to_socket::<StubHandler, _>(socket.clone(), tx));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!writer.is_finished(), "the writer should wait for the lock");

        drop(polling);
        socket.emit(Str::from("hello")).unwrap();
        let msg = tokio::time::timeout(TIMEOUT, client.next())
            .await
            .expect("the writer should send the packet")
            .unwrap()
            .unwrap();
        assert_eq!(msg, Message::text("4hello"));
    }

    #[tokio::test]
    async fn writer_waiting_for_the_lock_stops_with_the_session() {
        let socket = socket();
        let (server, _client) = ws_pair().await;
        let (tx, _rx) = server.split();

        let _polling = socket.internal_rx.lock().await;
        let writer = tokio::spawn(forward_to_socket::<StubHandler, _>(socket.clone(), tx));
        tokio::time::sleep(Duration::from_millis(20)).await;

        socket.cancellation_token.cancel();
        tokio::time::timeout(TIMEOUT, writer)
            .await
            .expect("the writer should stop")
            .unwrap();
    }
}

#[cfg(test)]
mod sizes {
    use super::*;
    use tokio::io::DuplexStream;

    #[derive(Debug)]
    struct StubHandler;
    impl EngineIoHandler for StubHandler {
        type Data = ();
        fn on_connect(self: Arc<Self>, _: Arc<Socket<()>>) {}
        fn on_disconnect(&self, _: Arc<Socket<()>>, _: DisconnectReason) {}
        fn on_message(self: &Arc<Self>, _: Str, _: Arc<Socket<()>>) {}
        fn on_binary(self: &Arc<Self>, _: bytes::Bytes, _: Arc<Socket<()>>) {}
    }

    /// Missive patch (PATCHED.md): a websocket's two tasks live as long as it does, and each is
    /// as large as its future's largest state. Upstream's were 1,824 and 1,544 bytes here (the
    /// opening's and the lock's states, the writer's three copies of a batch's iterator); the
    /// opening and the transient waits now live on the heap while they last.
    #[tokio::test]
    async fn a_websockets_long_lived_futures_stay_small() {
        let engine = Arc::new(EngineIo::new(
            Arc::new(StubHandler),
            EngineIoConfig::default(),
        ));
        let (server, _client) = tokio::io::duplex(64);
        let parts = http::Request::<()>::default().into_parts().0;
        let reader = on_init::<StubHandler, DuplexStream>(
            engine.clone(),
            server,
            ProtocolVersion::V4,
            None,
            parts,
        );
        let (server, _client) = tokio::io::duplex(64);
        let ws = WebSocketStream::from_raw_socket(server, Role::Server, None).await;
        let (tx, _rx) = ws.split();
        let socket = engine.create_session(
            ProtocolVersion::V4,
            TransportType::Websocket,
            http::Request::<()>::default().into_parts().0,
            false,
        );
        let writer = forward_to_socket::<StubHandler, DuplexStream>(socket, tx);
        assert!(
            std::mem::size_of_val(&reader) <= 512,
            "reader: {}",
            std::mem::size_of_val(&reader)
        );
        assert!(
            std::mem::size_of_val(&writer) <= 768,
            "writer: {}",
            std::mem::size_of_val(&writer)
        );
    }
}
