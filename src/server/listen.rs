//! Serving HTTP on a TCP listener: hyper's HTTP/1 with a header-read timeout, which also
//! closes idle keep-alive connections (slowloris), at most `--connections-per-address` open
//! connections per client address, TCP_NODELAY, and a graceful shutdown.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::metrics::Metrics;
use crate::service::limits::address_key;

/// How connections are accepted.
pub struct Policy {
    /// Time a client has to send a request's headers, and that a keep-alive connection may
    /// sit idle.
    pub header_timeout: Duration,
    /// Open connections per client address; `None`: no cap.
    pub per_address: Option<usize>,
    /// Peers exempt from that cap: the trusted proxies, every connection of which carries
    /// many clients (cap them at the proxy).
    pub trusted_proxies: Vec<crate::config::IpNet>,
    pub metrics: Arc<Metrics>,
}

/// Serves `router` until `shutdown` completes; then stops accepting, runs `stopping` (which
/// closes the sockets), and lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    policy: Policy,
    shutdown: impl Future<Output = ()>,
    stopping: impl Future<Output = ()>,
) {
    let slots = Slots::default();
    let (close_tx, close_rx) = tokio::sync::watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let cap = policy
            .per_address
            .filter(|_| !crate::config::is_trusted_proxy(&policy.trusted_proxies, peer.ip()));
        let Some(slot) = slots.take(peer.ip(), cap) else {
            Metrics::inc(&policy.metrics.connections_refused);
            continue;
        };
        // Small frames go out at once: with Nagle's algorithm a frame written while an
        // earlier one is unacknowledged waited for the peer's delayed ACK (40 ms).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY was refused");
        }
        let service = router
            .clone()
            .map_request(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let io = TokioIo::new(Counted {
            stream,
            _slot: slot,
        });
        let mut close = close_rx.clone();
        let header_timeout = policy.header_timeout;
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(io, TowerToHyperService::new(service))
                .with_upgrades();
            let mut connection = pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = close.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    stopping.await;
    drop(close_rx);
    let _ = close_tx.send(());
    // Every connection task holds a receiver: this returns once the last has finished.
    close_tx.closed().await;
}

/// Open connections per client address (IPv6 by /64).
#[derive(Default, Clone)]
struct Slots(Arc<Mutex<HashMap<String, usize>>>);

/// One open connection of `key`; given back when dropped (with the connection's stream,
/// which an upgraded websocket keeps after its HTTP connection ended).
struct Slot {
    slots: Option<(Slots, String)>,
}

impl Slots {
    fn take(&self, client: IpAddr, cap: Option<usize>) -> Option<Slot> {
        let Some(cap) = cap else {
            return Some(Slot { slots: None });
        };
        let key = address_key(client);
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key.clone()).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: Some((self.clone(), key)),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((slots, key)) = self.slots.take() else {
            return;
        };
        let mut open = slots.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&key);
            }
        }
    }
}

/// A connection's stream, holding its address's slot for as long as it is open.
struct Counted {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
