//! The JSON shapes of DESIGN.md, built in one place for HTTP bodies, acks and events alike.

use std::sync::Arc;

use entity::{message, participant, thread, user};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::ids;

/// `message` in DESIGN.md.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema, ts_rs::TS)]
#[schema(as = Message)]
#[ts(rename = "Message")]
pub struct MessageView {
    pub url: String,
    pub thread_id: String,
    pub sender: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// RFC 3339, UTC, milliseconds.
    pub timestamp: String,
    /// Whether the recipient has read it.
    pub read: bool,
}

/// A view serialised once, then embedded as is in every payload that carries it: a new
/// message appears twice in each participant's `message:new` (as the message and as its
/// thread's last) and once in the sender's ack.
#[derive(Debug, Clone)]
pub struct Rendered(Arc<RawValue>);

impl Rendered {
    pub fn of(view: &impl Serialize) -> serde_json::Result<Rendered> {
        serde_json::value::to_raw_value(view).map(|raw| Rendered(raw.into()))
    }
}

impl Serialize for Rendered {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// `thread` in DESIGN.md, as one participant sees it; its last message is a [`MessageView`],
/// or the same [`Rendered`] once.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema, ts_rs::TS)]
#[schema(as = Thread, bound = "")]
#[ts(rename = "Thread", concrete(M = MessageView))]
pub struct ThreadView<M = MessageView> {
    pub thread_id: String,
    pub subject: String,
    pub participants: Vec<String>,
    #[schema(value_type = Option<MessageView>)]
    pub last_message: Option<M>,
    /// Unread messages for this participant.
    pub unread: i32,
    /// Time of the newest message (RFC 3339).
    pub updated_at: String,
}

/// A user's unread totals: messages, and threads holding at least one.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default, utoipa::ToSchema, ts_rs::TS)]
#[schema(as = Unread)]
#[ts(rename = "Unread")]
pub struct UnreadCounts {
    #[ts(type = "number")]
    pub messages: i64,
    #[ts(type = "number")]
    pub threads: i64,
}

/// `{username, websocket_id, created_at}`: what a user may know of their own account.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = User)]
pub struct AccountView {
    pub username: String,
    pub websocket_id: String,
    pub created_at: String,
}

/// An account as the layers above the domain see it (entity rows stay below them).
#[derive(Debug, Clone)]
pub struct Account {
    /// Id, username and `websocket_id`.
    pub user: UserRef,
    pub is_admin: bool,
    pub created_at: i64,
    /// Where the user's event log stands.
    pub log_seq: i64,
    /// The epoch of the account's credentials (see `accounts::end_credentials`).
    pub credential_epoch: i64,
}

impl From<&user::Model> for Account {
    fn from(u: &user::Model) -> Self {
        Account {
            user: UserRef::from(u),
            is_admin: u.is_admin,
            created_at: u.created_at,
            log_seq: u.log_seq,
            credential_epoch: u.credential_epoch,
        }
    }
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            username: a.user.username.clone(),
            websocket_id: a.user.websocket_id.clone(),
            created_at: ids::rfc3339(a.created_at),
        }
    }
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
        self.thread_view_with(viewer, last.map(|m| self.message_view(m)))
    }

    /// The thread as `viewer` sees it, with its newest visible message as given.
    pub fn thread_view_with<M>(&self, viewer: i64, last_message: Option<M>) -> ThreadView<M> {
        ThreadView {
            thread_id: self.thread.public_id.clone(),
            subject: self.thread.subject.clone(),
            participants: self.participant_names(),
            last_message,
            unread: self.member(viewer).map(|p| p.unread).unwrap_or(0),
            updated_at: ids::rfc3339(self.thread.updated_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread whose last message was rendered once serialises exactly as the plain view.
    #[test]
    fn a_rendered_last_message_serialises_as_the_view() {
        let message = MessageView {
            url: "u1".into(),
            thread_id: "t1".into(),
            sender: "ann".into(),
            recipient: "bob".into(),
            subject: "Tea \"now\"?".into(),
            body: "line\nbreak \u{e9}\u{1f600}".into(),
            timestamp: "2026-11-25T20:00:00.000000Z".into(),
            read: false,
        };
        let plain = ThreadView {
            thread_id: "t1".into(),
            subject: message.subject.clone(),
            participants: vec!["ann".into(), "bob".into()],
            last_message: Some(message.clone()),
            unread: 3,
            updated_at: message.timestamp.clone(),
        };
        let rendered = ThreadView {
            last_message: Some(Rendered::of(&message).unwrap()),
            thread_id: plain.thread_id.clone(),
            subject: plain.subject.clone(),
            participants: plain.participants.clone(),
            unread: plain.unread,
            updated_at: plain.updated_at.clone(),
        };
        assert_eq!(
            serde_json::to_string(&rendered).unwrap(),
            serde_json::to_string(&plain).unwrap()
        );
    }
}
