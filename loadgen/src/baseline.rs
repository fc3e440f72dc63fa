//! The ceiling: a bare socketioxide server with the fanout's shape and nothing else (no auth, no
//! database). Sockets join `user:<n>` from their CONNECT payload; `message:send` to the
//! conversation `a:b` (or a group's `a:b,c,...`) emits `message:new` to every member's room and
//! acks.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::serve::{Listener, ListenerExt};
use serde::Deserialize;
use serde_json::json;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef, TryData};

#[derive(Deserialize)]
struct Hello {
    user: u64,
}

#[derive(Deserialize)]
struct Send {
    thread_id: String,
    body: String,
}

static NEXT: AtomicU64 = AtomicU64::new(1);

/// Packets queued per socket, as in Missive by default.
const SOCKET_BUFFER: usize = 1024;

async fn on_send(s: SocketRef, Data(req): Data<Send>, ack: AckSender) {
    let Some((a, others)) = req.thread_id.split_once(':') else {
        return;
    };
    let message = json!({
        "url": NEXT.fetch_add(1, Ordering::Relaxed).to_string(),
        "thread_id": req.thread_id,
        "sender": a, "recipient": others, "body": req.body,
    });
    let event = json!({ "message": message });
    let rooms: Vec<String> = std::iter::once(a)
        .chain(others.split(','))
        .map(|u| format!("user:{u}"))
        .collect();
    let _ = s.within(rooms).emit("message:new", &event).await;
    let _ = ack.send(&json!({ "status": true, "message": message }));
}

/// Serves until killed; prints `listening <addr>` first.
pub async fn serve(bind: SocketAddr) -> anyhow::Result<()> {
    // Each socket's queue holds as many packets as Missive's (its `MISSIVE_SOCKET_BUFFER`
    // default), not socketioxide's 128: with 16 sends in flight per sender, a full queue made
    // the bare server drop acks, and each lost ack stalled its sender for loadgen's 10 s wait.
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(SOCKET_BUFFER)
        .build_layer();
    io.ns(
        "/messages",
        async |s: SocketRef, TryData(hello): TryData<Hello>| {
            if let Ok(hello) = hello {
                s.join(format!("user:{}", hello.user));
            }
            s.on("message:send", on_send);
        },
    );
    let app = axum::Router::new().layer(layer);
    // TCP_NODELAY, as Missive sets it.
    let listener = tokio::net::TcpListener::bind(bind).await?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    println!("listening {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
