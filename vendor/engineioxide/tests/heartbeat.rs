//! The heartbeat, kept for every socket of an engine by one task: the first ping one interval
//! after the session opens (as the reference server and the engine.io protocol test suite
//! expect), pings every interval while they are answered, a close when one is not, and a v3
//! client's pings answered and required.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use engineioxide::{
    Str,
    config::EngineIoConfig,
    handler::EngineIoHandler,
    service::EngineIoService,
    socket::{DisconnectReason, Socket},
};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

mod fixture;
use fixture::{create_polling_connection, create_ws_connection, create_ws_connection_v3};

#[derive(Debug)]
struct Handler {
    disconnect_tx: mpsc::UnboundedSender<DisconnectReason>,
}

impl EngineIoHandler for Handler {
    type Data = ();
    fn on_connect(self: Arc<Self>, _: Arc<Socket<()>>) {}
    fn on_disconnect(&self, _: Arc<Socket<()>>, reason: DisconnectReason) {
        self.disconnect_tx.send(reason).unwrap();
    }
    fn on_message(self: &Arc<Self>, _: Str, _: Arc<Socket<()>>) {}
    fn on_binary(self: &Arc<Self>, _: Bytes, _: Arc<Socket<()>>) {}
}

fn server(
    interval: u64,
    timeout: u64,
) -> (
    EngineIoService<Handler>,
    mpsc::UnboundedReceiver<DisconnectReason>,
) {
    let (disconnect_tx, disconnect_rx) = mpsc::unbounded_channel();
    let config = EngineIoConfig::builder()
        .ping_interval(Duration::from_millis(interval))
        .ping_timeout(Duration::from_millis(timeout))
        .build();
    let svc = EngineIoService::with_config(Arc::new(Handler { disconnect_tx }), config);
    (svc, disconnect_rx)
}

/// The next text frame, or None if there is none within `within`.
async fn next_text<S>(ws: &mut S, within: Duration) -> Option<String>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(within, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.as_str().to_owned()),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("the connection ended: {other:?}"),
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn the_first_ping_comes_one_interval_after_the_open() {
    let (mut svc, _disconnect_rx) = server(400, 400);
    let opened = Instant::now();
    let mut ws = create_ws_connection(&mut svc).await;
    let open = next_text(&mut ws, Duration::from_secs(1)).await.unwrap();
    assert!(open.starts_with('0'), "{open}");
    let ping = next_text(&mut ws, Duration::from_secs(2)).await.unwrap();
    let waited = opened.elapsed();
    assert_eq!(ping, "2");
    assert!(
        waited >= Duration::from_millis(390),
        "the first ping came after {waited:?}"
    );
}

#[tokio::test]
async fn the_first_ping_of_a_polling_session_waits_an_interval_too() {
    let (mut svc, _disconnect_rx) = server(400, 400);
    let opened = Instant::now();
    let sid = create_polling_connection(&mut svc).await;
    let body = fixture::send_req(
        &mut svc,
        format!("transport=polling&sid={sid}"),
        http::Method::GET,
        None,
    )
    .await;
    let waited = opened.elapsed();
    // send_req strips the packet type: a lone ping is an empty body.
    assert_eq!(body, "");
    assert!(
        waited >= Duration::from_millis(390),
        "the first ping came after {waited:?}"
    );
}

#[tokio::test]
async fn answered_pings_keep_coming_every_interval_and_the_session_stays() {
    let (mut svc, mut disconnect_rx) = server(150, 120);
    let mut ws = create_ws_connection(&mut svc).await;
    next_text(&mut ws, Duration::from_secs(1)).await.unwrap();
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        let ping = next_text(&mut ws, Duration::from_secs(1))
            .await
            .expect("a ping");
        assert_eq!(ping, "2");
        pings += 1;
        ws.send(Message::text("3")).await.unwrap();
    }
    // About one per 150 ms: fewer would mean pings wait for something else, more that they do
    // not wait for the interval.
    assert!((7..=11).contains(&pings), "{pings} pings in 1.5 s");
    assert!(disconnect_rx.try_recv().is_err(), "the session was closed");
}

/// A timeout longer than the interval does not space the pings by the timeout.
#[tokio::test]
async fn pings_keep_the_interval_when_the_timeout_is_longer() {
    let (mut svc, mut disconnect_rx) = server(100, 1000);
    let mut ws = create_ws_connection(&mut svc).await;
    next_text(&mut ws, Duration::from_secs(1)).await.unwrap();
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < Duration::from_millis(1000) {
        let ping = next_text(&mut ws, Duration::from_secs(2))
            .await
            .expect("a ping");
        assert_eq!(ping, "2");
        pings += 1;
        ws.send(Message::text("3")).await.unwrap();
    }
    // About one per 100 ms (one per second if they waited for the timeout).
    assert!((6..=11).contains(&pings), "{pings} pings in a second");
    assert!(disconnect_rx.try_recv().is_err(), "the session was closed");
}

#[tokio::test]
async fn an_unanswered_ping_closes_the_session_after_the_timeout() {
    let (mut svc, mut disconnect_rx) = server(200, 200);
    let opened = Instant::now();
    let mut ws = create_ws_connection(&mut svc).await;
    next_text(&mut ws, Duration::from_secs(1)).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(2), disconnect_rx.recv())
        .await
        .expect("the session should be closed")
        .unwrap();
    let waited = opened.elapsed();
    assert_eq!(reason, DisconnectReason::HeartbeatTimeout);
    assert!(
        waited >= Duration::from_millis(390),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn a_polling_client_that_stops_polling_is_closed() {
    let (mut svc, mut disconnect_rx) = server(100, 100);
    create_polling_connection(&mut svc).await;
    let reason = tokio::time::timeout(Duration::from_secs(2), disconnect_rx.recv())
        .await
        .expect("the session should be closed")
        .unwrap();
    assert_eq!(reason, DisconnectReason::HeartbeatTimeout);
}

#[tokio::test]
async fn a_v3_clients_pings_are_answered_and_required() {
    let (mut svc, mut disconnect_rx) = server(200, 300);
    let mut ws = create_ws_connection_v3(&mut svc).await;
    next_text(&mut ws, Duration::from_secs(1)).await.unwrap();
    // The server never pings a v3 client, and waits the interval and the timeout (500 ms) for
    // the client's first ping.
    assert_eq!(next_text(&mut ws, Duration::from_millis(300)).await, None);
    let mut last_ping = Instant::now();
    for _ in 0..4 {
        last_ping = Instant::now();
        ws.send(Message::text("2")).await.unwrap();
        assert_eq!(
            next_text(&mut ws, Duration::from_secs(1)).await.as_deref(),
            Some("3")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        disconnect_rx.try_recv().is_err(),
        "a pinging v3 client was closed"
    );
    let reason = tokio::time::timeout(Duration::from_secs(2), disconnect_rx.recv())
        .await
        .expect("a silent v3 client should be closed")
        .unwrap();
    assert_eq!(reason, DisconnectReason::HeartbeatTimeout);
    // Closed the interval and the timeout after the server read the last ping, which it did
    // after the client sent it.
    let silent = last_ping.elapsed();
    assert!(
        silent >= Duration::from_millis(495),
        "closed {silent:?} after the last ping"
    );
}
