//! The JSON shapes of DESIGN.md, built in one place for HTTP bodies, acks and events alike.

use entity::{message, participant, thread, user};
use serde::Serialize;

use crate::ids;

/// `message` in DESIGN.md.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MessageView {
    pub url: String,
    pub thread_id: String,
    pub sender: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub timestamp: String,
    /// Whether the recipient has read it.
    pub read: bool,
}

/// `thread` in DESIGN.md, as one participant sees it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ThreadView {
    pub thread_id: String,
    pub subject: String,
    pub participants: Vec<String>,
    pub last_message: Option<MessageView>,
    pub unread: i32,
    pub updated_at: String,
}

/// A user's unread totals: messages, and threads holding at least one.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
pub struct UnreadCounts {
    pub messages: i64,
    pub threads: i64,
}

/// Public facts about a user that events need (never the numeric id outside the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    pub id: i64,
    pub username: String,
    pub websocket_id: String,
}

impl From<&user::Model> for UserRef {
    fn from(u: &user::Model) -> Self {
        UserRef {
            id: u.id,
            username: u.username.clone(),
            websocket_id: u.websocket_id.clone(),
        }
    }
}

/// A thread with its participants (one or two), enough to render any of its messages.
#[derive(Debug, Clone)]
pub struct ThreadContext {
    pub thread: thread::Model,
    pub members: Vec<(participant::Model, UserRef)>,
}

impl ThreadContext {
    pub fn username(&self, user_id: i64) -> String {
        self.members
            .iter()
            .find(|(_, u)| u.id == user_id)
            .map(|(_, u)| u.username.clone())
            .unwrap_or_default()
    }

    pub fn member(&self, user_id: i64) -> Option<&participant::Model> {
        self.members
            .iter()
            .find(|(p, _)| p.user_id == user_id)
            .map(|(p, _)| p)
    }

    pub fn participant_names(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|(_, u)| u.username.clone())
            .collect()
    }

    pub fn message_view(&self, m: &message::Model) -> MessageView {
        let read = m.sender_id == m.recipient_id
            || self
                .member(m.recipient_id)
                .is_some_and(|p| p.read_up_to >= m.id);
        MessageView {
            url: m.public_id.clone(),
            thread_id: self.thread.public_id.clone(),
            sender: self.username(m.sender_id),
            recipient: self.username(m.recipient_id),
            subject: self.thread.subject.clone(),
            body: m.body.clone(),
            timestamp: ids::rfc3339(m.created_at),
            read,
        }
    }

    /// The thread as `viewer` sees it, given the newest message visible to them.
    pub fn thread_view(&self, viewer: i64, last: Option<&message::Model>) -> ThreadView {
        ThreadView {
            thread_id: self.thread.public_id.clone(),
            subject: self.thread.subject.clone(),
            participants: self.participant_names(),
            last_message: last.map(|m| self.message_view(m)),
            unread: self.member(viewer).map(|p| p.unread).unwrap_or(0),
            updated_at: ids::rfc3339(self.thread.updated_at),
        }
    }
}
