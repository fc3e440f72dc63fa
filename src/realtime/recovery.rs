//! Connection state recovery on the socket: the replay of missed events to a socket that
//! reconnected with `{pid, offset}`, and `sync` for clients that ask for them themselves.
//!
//! The handshake (`connect::authenticate`) decides whether the socket recovers and, if so,
//! holds back the broadcasts to it before it joins its rooms. Once socketioxide has sent the
//! CONNECT answer, [`replay`] sends every missed event from the user's log, in order, then
//! sends its correspondents' current presence (not logged: state, not history), then releases
//! the held broadcasts, dropping those the replay already carried: a client hears each event
//! once, the missed ones before any new one.

use std::time::Duration;

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide_core::Value;

use crate::service::events::{Presence, ServerEvent};
use crate::service::{App, Identity};

/// Events read from the log at a time during a replay, and about how many bytes of them.
const PAGE: u64 = 500;
const PAGE_BYTES: usize = 256 * 1024;

/// Set by the handshake on a socket that recovers: the position after which to replay.
pub struct ReplayFrom(pub i64);

/// Sends `who`'s events after `after` to `s`, then lets the held broadcasts through (those with
/// a position up to the last one replayed are dropped, now and later). On a failure the socket
/// is closed: its client reconnects and asks again.
pub async fn replay<A: Adapter>(s: &SocketRef<A>, app: &App, who: &Identity, mut after: i64) {
    loop {
        // Replays are paid for before they are read: past the user's budget, the next page
        // waits (the held live events wait with it; they come after the replay anyway).
        let granted = match app.limits.grant_replay(who.id(), PAGE) {
            Ok(granted) => granted,
            Err(wait) => {
                tokio::time::sleep(wait).await;
                if !s.connected() {
                    return;
                }
                continue;
            }
        };
        let (page, last, more) = match app.log_page(who.id(), after, granted, PAGE_BYTES).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "replaying missed events failed");
                let _ = s.clone().disconnect();
                return;
            }
        };
        app.limits
            .return_replay(who.id(), granted.saturating_sub(page.len() as u64));
        for replayed in &page {
            let payload = &replayed.payload;
            // Waits for room in the socket's queue rather than fill it (a full queue closes
            // the socket); live broadcasts are held meanwhile, so the wait holds nothing up.
            while !s.has_room(payload.get().len() + 64) {
                if !s.connected() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let offset = replayed.seq.to_string();
            if s.emit(replayed.event, &(payload, offset)).is_err() {
                return;
            }
        }
        after = last;
        if !more {
            break;
        }
    }
    // Presence is state: the current one of each correspondent, not the flips missed. A flip
    // held meanwhile follows it, so the client ends on the latest.
    match app.correspondents_presence(who).await {
        Ok(everyone) => {
            for presence in everyone {
                let _ = s.emit(Presence::NAME, &presence);
            }
        }
        Err(e) => tracing::warn!(error = %e, "reading presence for a recovered socket failed"),
    }
    s.release_broadcasts(move |packet| offset_of(packet).is_none_or(|o| o > after));
}

/// The position an encoded event packet carries as its last argument, if any:
/// `2/messages,["message:new",{...},"42"]` -> 42.
fn offset_of(packet: &Value) -> Option<i64> {
    let Value::Str(text, _) = packet else {
        return None;
    };
    let body = text.as_str().strip_suffix("\"]")?;
    let start = body.rfind('"')?;
    let digits = &body[start + 1..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    body[..start].ends_with(',').then(|| digits.parse().ok())?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(text: &str) -> Value {
        Value::Str(text.to_owned().into(), None)
    }

    #[test]
    fn the_offset_is_the_last_string_argument() {
        assert_eq!(
            offset_of(&packet(r#"2/messages,["message:new",{"a":"1"},"42"]"#)),
            Some(42)
        );
        assert_eq!(
            offset_of(&packet(r#"2["unread",{"messages":1},"7"]"#)),
            Some(7)
        );
        for none in [
            r#"2/messages,["message:new",{"a":"1"}]"#,
            r#"2["x","y"]"#.replace("y", "12a").as_str(),
            r#"2["typing",{"thread_id":"42"}]"#,
            r#"2["x",{"a":"b,"}]"#,
        ] {
            assert_eq!(offset_of(&packet(none)), None, "{none}");
        }
    }
}
