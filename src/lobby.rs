//! The Piratchat lobby: one room of plain WebSockets where everyone hears everyone else.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

/// What the lobby sends down a connection.
#[derive(Debug, Clone)]
pub enum LobbyFrame {
    Text(String),
    Close,
}

/// A connection's handle in the lobby.
pub type ConnectionId = u64;

struct Member {
    user_id: i64,
    username: String,
    session_id: Option<String>,
    tx: mpsc::Sender<LobbyFrame>,
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
        tx: mpsc::Sender<LobbyFrame>,
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
    pub fn broadcast(&self, except: Option<ConnectionId>, text: &str) {
        let inner = self.lock();
        for (id, m) in &inner.members {
            if Some(*id) != except && m.tx.try_send(LobbyFrame::Text(text.to_owned())).is_err() {
                let _ = m.tx.try_send(LobbyFrame::Close);
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
            let _ = m.tx.try_send(LobbyFrame::Close);
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
