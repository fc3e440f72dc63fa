//! Connection state recovery: a reconnecting client is sent, in order, the events of its user
//! that it missed, from the user's durable event log (`domain::event_log`).
//!
//! A socket is given a private session id (`pid`) when it connects: where the user's log stood
//! then, a random nonce, and a MAC over both, the user and the login session, under a key
//! derived from the signing secret. A reconnecting client presents the pid and the position
//! (`offset`) of the last event it heard, or no offset if it heard none (then the pid's
//! position is where it stopped). The pid must have been made for the same user and session,
//! else the client is told it did not recover. Nothing about a pid is stored: any node can
//! check it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{App, DomainError, Identity, ServiceError, ServiceResult};
use crate::domain::event_log;
use crate::domain::messaging::replay;
pub use crate::domain::messaging::replay::Replayed;

/// Events of one `sync` page at most.
pub const SYNC_PAGE: u64 = 500;

/// Most bytes of events in one `sync` page (one larger event still goes alone).
pub const SYNC_PAGE_BYTES: usize = 256 * 1024;

/// The key of the pids' MACs.
pub struct Recovery {
    key: [u8; 32],
}

impl Recovery {
    pub fn new(secret: &str) -> Recovery {
        let mut hash = Sha256::new();
        hash.update(b"missive connection state recovery pid\0");
        hash.update(secret.as_bytes());
        Recovery {
            key: hash.finalize().into(),
        }
    }

    fn mac(&self, who: &Identity, head: &str, nonce: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        let session = who.session_id.as_deref().unwrap_or("");
        mac.update(format!("{}\0{session}\0{head}\0{nonce}", who.id()).as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    }

    /// A new pid for a socket of `who`, whose log stood at `who.log_seq`.
    pub fn new_pid(&self, who: &Identity) -> String {
        let head = who.log_seq.to_string();
        let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>());
        let mac = self.mac(who, &head, &nonce);
        format!("{head}.{nonce}.{mac}")
    }

    /// The position `pid` was made at, if it was made for `who` (same user, same session).
    pub fn owns(&self, who: &Identity, pid: &str) -> Option<i64> {
        let mut parts = pid.splitn(3, '.');
        let (head, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
        let expected = self.mac(who, head, nonce);
        // Compared in constant time: a pid is a credential of sorts.
        let same = expected.len() == mac.len()
            && expected
                .bytes()
                .zip(mac.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return None;
        }
        parse_position(head)
    }
}

/// What a CONNECT that may be a reconnection gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Resume {
    /// Every event after `after` can be sent again: the socket keeps its `pid`.
    Recovered { pid: String, after: i64 },
    /// A new session: a new `pid`, and the client reloads what it shows.
    Fresh { pid: String },
    /// The event log is off: no `pid` at all.
    Off,
}

/// A page of `sync`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema, ts_rs::TS)]
#[ts(rename = "SyncPage")]
pub struct SyncPage {
    /// The missed events, oldest first, each `[event, payload, offset]` as it was sent (empty
    /// when `complete` is false).
    #[ts(type = "Array<[string, unknown, string]>")]
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<SyncEvent>,
    /// Whether every event after `since` could be sent: false when some were pruned (older
    /// than the recovery window), when `since` is not a position of the log, or with the log
    /// off; the client then reloads what it shows.
    pub complete: bool,
    /// More events follow: ask again with the last event's offset.
    pub more: bool,
    /// The newest position of the log.
    pub head: String,
}

/// One event of a `sync` page: `[event, payload, offset]`, the arguments it was sent with.
#[derive(Debug)]
pub struct SyncEvent {
    pub offset: String,
    pub event: &'static str,
    pub data: Box<serde_json::value::RawValue>,
}

impl Serialize for SyncEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.event, &self.data, &self.offset).serialize(serializer)
    }
}

impl App {
    /// How a CONNECT of `who` presenting `pid` and `offset` (as the client sent them, if it
    /// did) resumes. While the database is unavailable it cannot say: the error is handed back
    /// (the CONNECT is refused `unavailable`, and the client's next try recovers), where a
    /// fresh session would have made the client drop what it missed.
    pub async fn resume(
        &self,
        who: &Identity,
        pid: Option<&serde_json::Value>,
        offset: Option<&serde_json::Value>,
    ) -> ServiceResult<Resume> {
        let fresh = || {
            Ok(Resume::Fresh {
                pid: self.recovery.new_pid(who),
            })
        };
        if !self.db.log_events {
            return Ok(Resume::Off);
        }
        let Some(pid) = pid.and_then(serde_json::Value::as_str) else {
            return fresh();
        };
        let Some(made_at) = self.recovery.owns(who, pid) else {
            return fresh();
        };
        // No offset: the client heard nothing since it was given the pid.
        let after = match offset {
            None | Some(serde_json::Value::Null) => Some(made_at),
            Some(offset) => parse_offset(offset),
        };
        let Some(after) = after else {
            return fresh();
        };
        // `who` was read by this handshake: its log's head is current, and the client cannot
        // have heard a later position.
        let head = who.log_seq;
        match self
            .recoverable(who, after, head, self.config.recovery_max)
            .await
        {
            Ok(true) => Ok(Resume::Recovered {
                pid: pid.to_owned(),
                after,
            }),
            Ok(false) => fresh(),
            Err(e) => {
                tracing::warn!(error = %e, "checking a recovery failed");
                match e {
                    ServiceError::Domain(DomainError::Unavailable) => Err(e),
                    _ => fresh(),
                }
            }
        }
    }

    /// Whether `who`'s events after `after`, up to `head`, can all be sent again: at most
    /// `max` of them, none pruned or older than the window.
    async fn recoverable(
        &self,
        who: &Identity,
        after: i64,
        head: i64,
        max: u64,
    ) -> ServiceResult<bool> {
        Ok(event_log::recoverable(
            &self.db.conn,
            who.id(),
            after,
            head,
            self.window_start(),
            max,
        )
        .await?)
    }

    /// The oldest time an event may have to be sent again (the recovery window's start).
    fn window_start(&self) -> i64 {
        crate::ids::now_micros() - crate::ids::duration_micros(self.config.recovery_window)
    }

    /// Up to `limit` events of `who` after position `after`, rendered to be sent again, and
    /// the last position read (`after` if none).
    pub async fn missed(
        &self,
        user_id: i64,
        after: i64,
        limit: u64,
    ) -> ServiceResult<(Vec<Replayed>, i64)> {
        let entries = event_log::entries_after(&self.db.conn, user_id, after, limit).await?;
        // Rendering may skip an entry (its message gone): the page ends at the last one read.
        let last = entries.last().map_or(after, |e| e.seq);
        Ok((replay::render(&self.db.conn, user_id, entries).await?, last))
    }

    /// Where the logs of `user_ids` stand.
    pub async fn log_heads(&self, user_ids: &[i64]) -> ServiceResult<Vec<(i64, i64)>> {
        Ok(event_log::heads(&self.db.conn, user_ids).await?)
    }

    /// Events of `who` after `after`, rendered to be sent again: at most `max_events`, and
    /// about `max_bytes` of them (at least one). They are read and rendered a few at a time,
    /// as many as the ones before say will fit, so that a page of large messages is not
    /// rendered whole (500 of them were 30 MB) to be cut. Also says the last position read,
    /// and whether the log goes on past it.
    pub async fn log_page(
        &self,
        user_id: i64,
        after: i64,
        max_events: u64,
        max_bytes: usize,
    ) -> ServiceResult<(Vec<Replayed>, i64, bool)> {
        let mut events: Vec<Replayed> = Vec::new();
        let (mut bytes, mut last) = (0usize, after);
        let mut chunk = 8u64;
        loop {
            let want = chunk.min(max_events - events.len() as u64);
            if want == 0 {
                return Ok((events, last, true));
            }
            let (page, read_last) = self.missed(user_id, last, want).await?;
            // Positions are consecutive: fewer than asked means the log's end was reached.
            let more = read_last - last >= want as i64;
            for r in page {
                let size = r.payload.get().len() + r.event.len() + 24;
                if !events.is_empty() && bytes + size > max_bytes {
                    return Ok((events, last, true));
                }
                bytes += size;
                last = r.seq;
                events.push(r);
            }
            last = read_last;
            if !more {
                return Ok((events, last, false));
            }
            let average = bytes / events.len().max(1) + 1;
            chunk = (max_bytes.saturating_sub(bytes) / average).clamp(1, 500) as u64;
        }
    }

    /// `sync`: the events of `who` after `since` (a position, as a string or a number; none:
    /// only where the log stands), a page at a time.
    pub async fn sync(
        &self,
        who: &Identity,
        since: Option<&serde_json::Value>,
    ) -> ServiceResult<SyncPage> {
        let head = if self.db.log_events {
            event_log::head(&self.db.conn, who.id()).await?
        } else {
            0
        };
        let page = |events, complete, more| SyncPage {
            events,
            complete,
            more,
            head: head.to_string(),
        };
        let Some(since) = since else {
            return Ok(page(Vec::new(), self.db.log_events, false));
        };
        let Some(after) = parse_offset(since) else {
            return Ok(page(Vec::new(), false, false));
        };
        // Paid before it is read: past the budget, `rate_limited`.
        let granted = self.limits.grant_sync(who.id(), SYNC_PAGE)?;
        // The bound of a replay applies here too: a client further behind reloads instead.
        let complete = self.db.log_events
            && self
                .recoverable(who, after, head, self.config.recovery_max)
                .await?;
        if !complete {
            self.limits.return_replay(who.id(), granted);
            return Ok(page(Vec::new(), false, false));
        }
        // A page whose entries were all skipped (their messages gone) is not answered empty
        // with `more`: the client could not say where to go on from.
        // At most SYNC_PAGE_BYTES (at least one event): 500 events of large messages made an
        // answer of tens of MB, queued whole for a client that may not read it.
        let mut after = after;
        let (missed, last) = loop {
            let (missed, last, more) = self
                .log_page(who.id(), after, granted, SYNC_PAGE_BYTES)
                .await?;
            if !missed.is_empty() || !more || last == after {
                break (missed, last);
            }
            after = last;
        };
        self.limits
            .return_replay(who.id(), granted.saturating_sub(missed.len() as u64));
        let events = missed
            .into_iter()
            .map(|r| SyncEvent {
                offset: r.seq.to_string(),
                event: r.event,
                data: r.payload,
            })
            .collect();
        Ok(page(events, true, last < head))
    }

    /// Deletes the log entries older than the recovery window (a background task calls this).
    pub async fn prune_event_log(&self) -> ServiceResult<u64> {
        let before = self.window_start();
        Ok(self
            .db
            .write(async |txn| event_log::prune(txn, before).await)
            .await?)
    }
}

/// A position as a client sends it: a decimal string (socket.io's offsets are strings) or a
/// number. Anything else is not a position.
pub fn parse_offset(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::String(s) => parse_position(s),
        serde_json::Value::Number(n) => n.as_i64().filter(|n| *n >= 0),
        _ => None,
    }
}

/// A position written as decimal digits (no sign, at most 19 of them).
fn parse_position(text: &str) -> Option<i64> {
    let digits = !text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok())?
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn offsets_are_decimal_positions() {
        assert_eq!(parse_offset(&json!("42")), Some(42));
        assert_eq!(parse_offset(&json!(42)), Some(42));
        for bad in [
            json!(""),
            json!("-1"),
            json!("4a"),
            json!(-3),
            json!(1.5),
            json!("99999999999999999999"),
            json!(null),
            json!({"a": 1}),
        ] {
            assert_eq!(parse_offset(&bad), None, "{bad}");
        }
    }
}
