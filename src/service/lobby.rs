//! The Piratchat lobby: one room of plain WebSockets where everyone hears everyone else. The
//! `/ws` transport reads and writes the frames; joining, speaking and leaving are here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{App, Identity, ServiceResult};
use crate::domain::DomainError;

/// Longest lobby message, in characters.
pub const MAX_LOBBY_MESSAGE: usize = 300;

/// A connection's handle in the lobby.
pub type ConnectionId = u64;

struct Member {
    user_id: i64,
    username: String,
    session_id: Option<String>,
    /// Frames to the connection.
    tx: mpsc::Sender<String>,
    /// Cancelled to close the connection: logout, expiry, a consumer too slow to keep up. A
    /// token, not a frame in `tx`: a close must not be lost when that queue is full.
    closed: CancellationToken,
}

/// Connections of this node, several per user allowed (tabs); join/leave is per user.
#[derive(Default)]
pub struct Lobby {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: ConnectionId,
    members: HashMap<ConnectionId, Member>,
}

impl Lobby {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a connection; true when it is the user's first (announce a join).
    pub fn join(
        &self,
        user_id: i64,
        username: &str,
        session_id: Option<String>,
        tx: mpsc::Sender<String>,
        closed: CancellationToken,
    ) -> (ConnectionId, bool) {
        let mut inner = self.lock();
        inner.next += 1;
        let id = inner.next;
        let first = !inner.members.values().any(|m| m.user_id == user_id);
        inner.members.insert(
            id,
            Member {
                user_id,
                username: username.to_owned(),
                session_id,
                tx,
                closed,
            },
        );
        (id, first)
    }

    /// Removes a connection; returns the username when it was the user's last (announce a leave).
    pub fn leave(&self, id: ConnectionId) -> Option<String> {
        let mut inner = self.lock();
        let member = inner.members.remove(&id)?;
        let last = !inner.members.values().any(|m| m.user_id == member.user_id);
        last.then_some(member.username)
    }

    /// Sends `text` to every connection but `except`. A connection too slow to keep up is closed.
    /// The lock is held only to copy the senders: joining, leaving and other broadcasts do not
    /// wait for this one's copies.
    pub fn broadcast(&self, except: Option<ConnectionId>, text: &str) {
        let receivers: Vec<(mpsc::Sender<String>, CancellationToken)> = self
            .lock()
            .members
            .iter()
            .filter(|(id, _)| Some(**id) != except)
            .map(|(_, m)| (m.tx.clone(), m.closed.clone()))
            .collect();
        for (tx, closed) in receivers {
            if tx.try_send(text.to_owned()).is_err() {
                closed.cancel();
            }
        }
    }

    /// Usernames with at least one connection, sorted.
    pub fn online(&self) -> Vec<String> {
        let inner = self.lock();
        let mut names: Vec<String> = inner.members.values().map(|m| m.username.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Closes every connection of a session (logout, expiry).
    pub fn close_session(&self, session_id: &str) {
        let inner = self.lock();
        for m in inner
            .members
            .values()
            .filter(|m| m.session_id.as_deref() == Some(session_id))
        {
            m.closed.cancel();
        }
    }

    /// Sessions with an open lobby connection here (kept alive while connected).
    pub fn sessions(&self) -> Vec<String> {
        self.lock()
            .members
            .values()
            .filter_map(|m| m.session_id.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.lock().members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl App {
    /// Adds a lobby connection of `who` that frames are sent down through `tx`; the others
    /// hear that they joined, if it is their first connection.
    pub fn lobby_join(
        &self,
        who: &Identity,
        tx: mpsc::Sender<String>,
        closed: CancellationToken,
    ) -> ConnectionId {
        let username = &who.user.username;
        let (id, first) = self
            .lobby
            .join(who.id(), username, Some(who.grant()), tx, closed);
        self.metrics.lobby_connected.fetch_add(1, Ordering::Relaxed);
        if first {
            let joined = json!({ "event": "join", "username": username });
            self.lobby.broadcast(Some(id), &joined.to_string());
        }
        id
    }

    /// `who` says `message` on connection `from`: everyone else hears it.
    pub fn lobby_say(
        &self,
        who: &Identity,
        from: ConnectionId,
        message: &str,
    ) -> ServiceResult<()> {
        if message.chars().count() > MAX_LOBBY_MESSAGE {
            return Err(DomainError::invalid(
                "message",
                "message_too_long",
                format!("messages are at most {MAX_LOBBY_MESSAGE} characters"),
            )
            .into());
        }
        if message.trim().is_empty() {
            return Err(DomainError::invalid("message", "empty_body", "message is empty").into());
        }
        let said = json!({ "message": message, "author": who.user.username });
        self.lobby.broadcast(Some(from), &said.to_string());
        Ok(())
    }

    /// A lobby connection closed; the others hear that its user left, if it was their last.
    pub fn lobby_leave(&self, id: ConnectionId) {
        self.metrics.lobby_connected.fetch_sub(1, Ordering::Relaxed);
        if let Some(name) = self.lobby.leave(id) {
            let left = json!({ "event": "leave", "username": name });
            self.lobby.broadcast(None, &left.to_string());
        }
    }
}
