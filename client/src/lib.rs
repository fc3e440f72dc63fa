//! A small Socket.IO client (protocol v5 over an Engine.IO v4 websocket) used by Missive's
//! integration tests and by `loadgen`. It speaks just enough of the protocol to be a real
//! peer: the Engine.IO open/ping/pong frames, namespace CONNECT / CONNECT_ERROR, events,
//! acknowledgements and DISCONNECT. Binary attachments are not supported.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// A server -> client event, or the end of the connection.
#[derive(Debug, Clone)]
pub enum Incoming {
    Event {
        name: String,
        data: Value,
        /// The event's position in the user's event log (its last argument, when a string,
        /// as socket.io's connection state recovery has it).
        offset: Option<String>,
    },
    /// An event left undecoded ([`ConnectOptions::raw_payloads`]): `json` is the packet's whole
    /// `["name", payload]` array.
    Raw {
        name: String,
        json: String,
    },
    Disconnected,
}

/// How to open a connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `/messages`, `/` or another namespace.
    pub namespace: String,
    /// CONNECT payload, e.g. `{"token": "..."}`.
    pub auth: Option<Value>,
    /// Extra handshake headers (`Cookie`, `Origin`, `Authorization`).
    pub headers: Vec<(String, String)>,
    /// When set, only these events are decoded and delivered; others are dropped unread.
    pub events: Option<Vec<String>>,
    /// Events are delivered as [`Incoming::Raw`], not decoded.
    pub raw: bool,
}

impl ConnectOptions {
    pub fn namespace(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            ..Self::default()
        }
    }

    pub fn auth(mut self, auth: Value) -> Self {
        self.auth = Some(auth);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Decodes and delivers only `names`: a load generator then spends no CPU on events it
    /// does not measure, CPU that the server on the same machine would otherwise lose.
    pub fn only_events(mut self, names: &[&str]) -> Self {
        self.events = Some(names.iter().map(|n| (*n).to_owned()).collect());
        self
    }

    /// Delivers events undecoded, as [`Incoming::Raw`]: a load generator then decodes only the
    /// field it measures instead of building a JSON tree of every payload.
    pub fn raw_payloads(mut self) -> Self {
        self.raw = true;
        self
    }
}

/// The event name of an encoded `["name", ...]` array, read without decoding the rest.
fn event_name(array_json: &str) -> Option<&str> {
    array_json.strip_prefix("[\"")?.split('"').next()
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The server answered the namespace CONNECT with CONNECT_ERROR and this payload.
    Refused(Value),
    /// Transport or protocol failure before the namespace answered.
    Transport(anyhow::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Refused(v) => write!(f, "connect refused: {v}"),
            ConnectError::Transport(e) => write!(f, "transport error: {e:#}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Waiting acks by id; each gets its packet's `[...]` array undecoded.
type AckMap = Arc<Mutex<HashMap<u64, oneshot::Sender<String>>>>;

/// Bytes read from the socket at a time. tungstenite zero-fills the free part of its read
/// buffer before every read: at its default 128 KiB, that memset was a tenth of loadgen's CPU.
/// Larger frames still arrive whole (the buffer grows to fit a frame).
const READ_BUFFER: usize = 8 * 1024;

/// One connected socket on one namespace.
pub struct Socket {
    ns_prefix: String,
    out: mpsc::UnboundedSender<Message>,
    acks: AckMap,
    next_ack: AtomicU64,
    events: Mutex<mpsc::UnboundedReceiver<Incoming>>,
    /// The socket id the server gave in its CONNECT answer.
    pub sid: String,
    /// The private session id of connection state recovery, when the CONNECT answer has one.
    pub pid: Option<String>,
}

impl Socket {
    /// Opens a websocket to `base` (`http://127.0.0.1:8000`) and connects to a namespace.
    pub async fn connect(base: &str, opts: ConnectOptions) -> Result<Socket, ConnectError> {
        let url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            base.replacen("http", "ws", 1).trim_end_matches('/')
        );
        let mut request = url
            .into_client_request()
            .map_err(|e| ConnectError::Transport(e.into()))?;
        for (name, value) in &opts.headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName = name
                .parse()
                .map_err(|e| ConnectError::Transport(anyhow!("bad header name: {e}")))?;
            let value =
                HeaderValue::from_str(value).map_err(|e| ConnectError::Transport(e.into()))?;
            request.headers_mut().insert(name, value);
        }
        // TCP_NODELAY, as browsers do: no frame waits for the server's delayed ACK.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .map_err(|e| ConnectError::Transport(anyhow!(e).context("websocket handshake")))?;
        let (mut sink, mut stream) = ws.split();

        // Engine.IO OPEN packet.
        let open = next_text(&mut stream)
            .await
            .map_err(ConnectError::Transport)?;
        if !open.starts_with('0') {
            return Err(ConnectError::Transport(anyhow!(
                "expected engine.io open, got {open}"
            )));
        }

        let ns = if opts.namespace.is_empty() {
            "/".to_owned()
        } else {
            opts.namespace.clone()
        };
        let ns_prefix = if ns == "/" {
            String::new()
        } else {
            format!("{ns},")
        };
        let connect = match &opts.auth {
            Some(auth) => format!("40{ns_prefix}{auth}"),
            None => format!("40{ns_prefix}"),
        };
        sink.send(Message::text(connect))
            .await
            .map_err(|e| ConnectError::Transport(e.into()))?;

        let (sid, pid) = loop {
            let text = next_text(&mut stream)
                .await
                .map_err(ConnectError::Transport)?;
            if text == "2" {
                sink.send(Message::text("3"))
                    .await
                    .map_err(|e| ConnectError::Transport(e.into()))?;
                continue;
            }
            if let Some(rest) = text
                .strip_prefix("40")
                .and_then(|r| r.strip_prefix(ns_prefix.as_str()))
            {
                let v: Value = serde_json::from_str(rest).unwrap_or(Value::Null);
                let field = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
                break (field("sid").unwrap_or_default(), field("pid"));
            }
            if let Some(rest) = text
                .strip_prefix("44")
                .and_then(|r| r.strip_prefix(ns_prefix.as_str()))
            {
                return Err(ConnectError::Refused(
                    serde_json::from_str(rest).unwrap_or(Value::Null),
                ));
            }
            if text.starts_with("41") {
                return Err(ConnectError::Refused(Value::Null));
            }
        };

        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let acks: AckMap = Arc::default();

        tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                let close = matches!(msg, Message::Close(_));
                if sink.send(msg).await.is_err() || close {
                    break;
                }
            }
        });

        let reader_acks = acks.clone();
        let reader_out = out_tx.clone();
        let reader_prefix = ns_prefix.clone();
        let events_kept = opts.events.clone();
        let raw = opts.raw;
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                    continue;
                };
                let text = text.as_str();
                if text == "2" {
                    let _ = reader_out.send(Message::text("3"));
                    continue;
                }
                let Some(packet) = text.strip_prefix('4') else {
                    continue;
                };
                let kind = packet.chars().next();
                let body = packet.get(1..).unwrap_or_default();
                let Some(body) = body.strip_prefix(reader_prefix.as_str()) else {
                    continue;
                };
                match kind {
                    Some('2') => {
                        let (_, json) = split_ack_id(body);
                        let name = event_name(json);
                        if let Some(keep) = &events_kept
                            && !name.is_some_and(|n| keep.iter().any(|k| k == n))
                        {
                            continue;
                        }
                        if raw {
                            if let Some(name) = name {
                                let (name, json) = (name.to_owned(), json.to_owned());
                                let _ = ev_tx.send(Incoming::Raw { name, json });
                            }
                            continue;
                        }
                        if let Ok(Value::Array(mut items)) = serde_json::from_str::<Value>(json) {
                            if items.is_empty() {
                                continue;
                            }
                            let name = items.remove(0).as_str().unwrap_or_default().to_owned();
                            let offset = match items.as_slice() {
                                [_, .., Value::String(o)] => Some(o.clone()),
                                _ => None,
                            };
                            let data = if items.is_empty() {
                                Value::Null
                            } else {
                                items.remove(0)
                            };
                            let _ = ev_tx.send(Incoming::Event { name, data, offset });
                        }
                    }
                    Some('3') => {
                        if let (Some(id), json) = split_ack_id(body)
                            && let Some(tx) = reader_acks.lock().await.remove(&id)
                        {
                            let _ = tx.send(json.to_owned());
                        }
                    }
                    Some('1') => break,
                    _ => {}
                }
            }
            let _ = ev_tx.send(Incoming::Disconnected);
        });

        Ok(Socket {
            ns_prefix,
            out: out_tx,
            acks,
            next_ack: AtomicU64::new(1),
            events: Mutex::new(ev_rx),
            sid,
            pid,
        })
    }

    /// Sends an event without asking for an acknowledgement.
    pub fn emit(&self, event: &str, data: &Value) -> anyhow::Result<()> {
        let frame = format!("42{}{}", self.ns_prefix, serde_json::json!([event, data]));
        self.out
            .send(Message::text(frame))
            .map_err(|_| anyhow!("socket closed"))
    }

    /// Sends a raw Socket.IO packet body after the namespace (for malformed-input tests).
    pub fn emit_raw(
        &self,
        packet_type: char,
        ack_id: Option<u64>,
        json: &str,
    ) -> anyhow::Result<()> {
        let id = ack_id.map(|i| i.to_string()).unwrap_or_default();
        let frame = format!("4{packet_type}{}{id}{json}", self.ns_prefix);
        self.out
            .send(Message::text(frame))
            .map_err(|_| anyhow!("socket closed"))
    }

    /// Sends an event and waits for its acknowledgement.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        data: &Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        self.call(&serde_json::json!([event, data]).to_string(), timeout)
            .await
    }

    /// Sends an already encoded `["event", ...]` array with an ack id and waits for the ack.
    pub async fn call(&self, array_json: &str, timeout: Duration) -> anyhow::Result<Value> {
        let ack = self.call_raw(array_json, timeout).await?;
        let items: Vec<Value> =
            serde_json::from_str(&ack).with_context(|| format!("ack is not an array: {ack}"))?;
        Ok(items.into_iter().next().unwrap_or(Value::Null))
    }

    /// As [`Socket::call`], but the ack comes back undecoded, as its whole `[...]` array: a
    /// load generator then reads only the fields it checks instead of building a JSON tree.
    pub async fn call_raw(&self, array_json: &str, timeout: Duration) -> anyhow::Result<String> {
        let id = self.next_ack.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.acks.lock().await.insert(id, tx);
        let frame = format!("42{}{id}{array_json}", self.ns_prefix);
        self.out
            .send(Message::text(frame))
            .map_err(|_| anyhow!("socket closed"))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(ack)) => Ok(ack),
            Ok(Err(_)) => bail!("socket closed before the ack"),
            Err(_) => {
                self.acks.lock().await.remove(&id);
                bail!("no ack within {timeout:?}")
            }
        }
    }

    /// The next incoming event or disconnect, if one arrives within `timeout`.
    pub async fn next(&self, timeout: Duration) -> Option<Incoming> {
        let mut rx = self.events.lock().await;
        tokio::time::timeout(timeout, rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits for an event called `name`, skipping others; fails after `timeout`.
    pub async fn expect(&self, name: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(Incoming::Event { name: n, data, .. }) if n == name => return Ok(data),
                Some(Incoming::Event { .. } | Incoming::Raw { .. }) => continue,
                Some(Incoming::Disconnected) => bail!("disconnected while waiting for {name}"),
                None => bail!("no {name} event within {timeout:?}"),
            }
        }
    }

    /// Every event received during `window` (stops early on disconnect).
    pub async fn drain(&self, window: Duration) -> Vec<(String, Value)> {
        let deadline = tokio::time::Instant::now() + window;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(Incoming::Event { name, data, .. }) => seen.push((name, data)),
                _ => return seen,
            }
        }
    }

    /// Waits until the server disconnects this socket.
    pub async fn expect_disconnect(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(Incoming::Disconnected) => return Ok(()),
                Some(Incoming::Event { .. } | Incoming::Raw { .. }) => continue,
                None => bail!("still connected after {timeout:?}"),
            }
        }
    }

    /// Leaves the namespace and closes the websocket.
    pub fn close(&self) {
        let _ = self
            .out
            .send(Message::text(format!("41{}", self.ns_prefix)));
        let _ = self.out.send(Message::Close(None));
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = self.out.send(Message::Close(None));
    }
}

fn split_ack_id(body: &str) -> (Option<u64>, &str) {
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return (None, body);
    }
    (body[..digits].parse().ok(), &body[digits..])
}

async fn next_text<S>(stream: &mut S) -> anyhow::Result<String>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .context("timed out waiting for the server")?
            .ok_or_else(|| anyhow!("connection closed"))??;
        match msg {
            Message::Text(t) => return Ok(Utf8Bytes::as_str(&t).to_owned()),
            Message::Close(_) => bail!("connection closed"),
            _ => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::event_name;

    #[test]
    fn event_names_are_read_without_decoding_the_payload() {
        assert_eq!(event_name(r#"["unread",{"messages":1}]"#), Some("unread"));
        assert_eq!(
            event_name(r#"["message:new",{"body":"a \"quoted\" word"}]"#),
            Some("message:new")
        );
        assert_eq!(event_name(r#"{"not":"an array"}"#), None);
        assert_eq!(event_name("[5]"), None);
    }
}
