//! The JSON shapes of DESIGN.md, built in one place for HTTP bodies, acks and events alike.

use std::sync::Arc;

use entity::{message, participant, thread, user};
use serde::{Deserialize, Serialize};
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
    /// The other person of a direct thread; null in a group.
    pub recipient: Option<String>,
    pub subject: String,
    /// Null once its sender removed it for everyone.
    pub body: Option<String>,
    /// RFC 3339, UTC, milliseconds.
    pub timestamp: String,
    /// In a direct thread, whether the recipient has read it; in a group, whether the viewer
    /// has (their own messages: true).
    pub read: bool,
    /// When its sender last edited it (RFC 3339); null if never.
    pub edited_at: Option<String>,
    /// Whether its sender removed it for everyone (it stays in the history, without a body).
    pub removed: bool,
    /// Its reactions, in first-reacted order.
    pub reactions: Vec<Reaction>,
    /// The message it answers, if any.
    pub reply_to: Option<ReplyTo>,
}

/// One emoji on a message, and who reacted with it (in the order they did).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema, ts_rs::TS)]
pub struct Reaction {
    pub emoji: String,
    pub users: Vec<String>,
}

/// What a reply shows of the message it answers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema, ts_rs::TS)]
pub struct ReplyTo {
    pub url: String,
    pub sender: String,
    /// Its body's first 100 characters; null once it was removed for everyone.
    pub excerpt: Option<String>,
}

/// The characters of a body a reply quotes.
pub const EXCERPT_CHARS: usize = 100;

/// A message's reactions as stored (`messages.reactions`): each emoji with its users' ids.
pub type StoredReactions = Vec<(String, Vec<i64>)>;

/// The reactions stored on `m` (none when the column is empty or unreadable).
pub fn stored_reactions(m: &message::Model) -> StoredReactions {
    m.reactions
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
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

    /// The JSON text.
    pub fn text(&self) -> &str {
        self.0.get()
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
    pub kind: ThreadKind,
    /// The member who holds the right to remove others: the creator, or the longest-standing
    /// member once the creator left.
    pub created_by: String,
    /// The current members (one who left or was removed is not among them).
    pub participants: Vec<String>,
    /// Each other member's last read message (those with receipts on who read at least one);
    /// empty when the viewer has receipts off.
    pub read_by: Vec<ReadBy>,
    #[schema(value_type = Option<MessageView>)]
    pub last_message: Option<M>,
    /// Unread messages for this participant.
    pub unread: i32,
    /// Time of the newest message (RFC 3339).
    pub updated_at: String,
    /// Whether the viewer muted it: no pushes for its messages.
    pub muted: bool,
    /// Until when it is muted (RFC 3339); null when muted until unmuted, or not muted.
    pub muted_until: Option<String>,
}

/// A member's mute of a thread, as stored in `participants.muted_until`: `None` not muted,
/// [`Mute::FOREVER`] until they unmute it, else until that time (Unix microseconds).
pub struct Mute;

impl Mute {
    /// Stored for a mute without end.
    pub const FOREVER: i64 = i64::MAX;

    /// The mute at `now`: `None` when not muted (or its time has passed), `Some(None)` until
    /// unmuted, `Some(Some(until))`.
    pub fn of(stored: Option<i64>, now: i64) -> Option<Option<i64>> {
        match stored? {
            Self::FOREVER => Some(None),
            until if until > now => Some(Some(until)),
            _ => None,
        }
    }
}

/// Whether a thread is between two people for good, or a group whose members change.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
#[ts(rename_all = "lowercase")]
pub enum ThreadKind {
    Direct,
    Group,
}

impl ThreadKind {
    pub const DIRECT: &'static str = "direct";
    pub const GROUP: &'static str = "group";

    pub fn of(stored: &str) -> ThreadKind {
        if stored == Self::GROUP {
            ThreadKind::Group
        } else {
            ThreadKind::Direct
        }
    }

    pub fn stored(self) -> &'static str {
        match self {
            ThreadKind::Direct => Self::DIRECT,
            ThreadKind::Group => Self::GROUP,
        }
    }
}

/// One member's read mark, in a thread's `read_by`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema, ts_rs::TS)]
pub struct ReadBy {
    pub username: String,
    /// The url of the last message they read.
    pub up_to: String,
}

/// A change of a group's membership or subject (`thread:updated`, and the history).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema, ts_rs::TS)]
pub struct Change {
    pub kind: ChangeKind,
    /// Who made it.
    pub by: String,
    /// Who was added, removed or left.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub username: Option<String>,
    /// The new subject (renamed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
#[ts(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Left,
    Renamed,
}

impl ChangeKind {
    pub fn stored(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Left => "left",
            ChangeKind::Renamed => "renamed",
        }
    }

    pub fn of(stored: &str) -> Option<ChangeKind> {
        Some(match stored {
            "added" => ChangeKind::Added,
            "removed" => ChangeKind::Removed,
            "left" => ChangeKind::Left,
            "renamed" => ChangeKind::Renamed,
            _ => return None,
        })
    }
}

/// A change as a thread's history lists it, in place among the messages.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema, ts_rs::TS)]
pub struct ChangeNotice {
    /// Always `"change"` (a message has no `kind`).
    #[ts(type = "\"change\"")]
    #[schema(value_type = String, example = "change")]
    pub kind: &'static str,
    pub change: Change,
    /// When it happened (RFC 3339).
    pub at: String,
}

/// One entry of a thread's history: a message, or a change of the group.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema, ts_rs::TS)]
#[serde(untagged)]
#[ts(untagged)]
pub enum HistoryItem {
    Message(MessageView),
    Change(ChangeNotice),
}

/// One message a search found: the message, its thread, and where the words matched.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema, ts_rs::TS)]
pub struct SearchResult {
    pub message: MessageView,
    pub thread: SearchThread,
    /// Ranges of `message.body` where a word of the query matched, in Unicode code points,
    /// end excluded (empty when only the subject matched).
    #[schema(value_type = Vec<Vec<u32>>)]
    pub highlights: Vec<[u32; 2]>,
}

/// The thread of a search result.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema, ts_rs::TS)]
pub struct SearchThread {
    pub thread_id: String,
    pub subject: String,
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

/// `{username, websocket_id, created_at, ...}`: what a user may know of their own account.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = User)]
pub struct AccountView {
    pub username: String,
    pub websocket_id: String,
    pub created_at: String,
    /// Whether the user sends read receipts and sees others'.
    pub read_receipts: bool,
    /// The account's e-mail address, if it has one.
    pub email: Option<String>,
    /// Whether that address was confirmed (password resets are mailed to it).
    pub email_verified: bool,
    /// Whether logging in needs a second factor.
    pub two_factor: bool,
    /// False for accounts made with a Piratchat key: what needs the password is not theirs.
    pub has_password: bool,
}

/// How an account is protected, as the layers above the domain see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    pub email: Option<String>,
    pub email_verified: bool,
    pub two_factor: bool,
    pub has_password: bool,
    pub disabled: bool,
}

impl From<&user::Model> for Security {
    fn from(u: &user::Model) -> Self {
        Security {
            email: u.email.clone(),
            email_verified: u.email_verified,
            two_factor: u.totp_secret.is_some(),
            has_password: u.password_hash.is_some() || u.legacy_password_hash.is_some(),
            disabled: u.disabled,
        }
    }
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
    /// Whether the user sends read receipts and sees others'.
    pub read_receipts: bool,
    pub security: Security,
}

impl From<&user::Model> for Account {
    fn from(u: &user::Model) -> Self {
        Account {
            user: UserRef::from(u),
            is_admin: u.is_admin,
            created_at: u.created_at,
            log_seq: u.log_seq,
            credential_epoch: u.credential_epoch,
            read_receipts: u.read_receipts,
            security: Security::from(u),
        }
    }
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            username: a.user.username.clone(),
            websocket_id: a.user.websocket_id.clone(),
            created_at: ids::rfc3339(a.created_at),
            read_receipts: a.read_receipts,
            email: a.security.email.clone(),
            email_verified: a.security.email_verified,
            two_factor: a.security.two_factor,
            has_password: a.security.has_password,
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

/// How a deleted account's name shows in the threads it was in (the name itself stays
/// reserved, so that nobody can take it and pass for them).
pub const DELETED_USER: &str = "deleted user";

impl From<&user::Model> for UserRef {
    fn from(u: &user::Model) -> Self {
        UserRef {
            id: u.id,
            username: match u.deleted_at {
                Some(_) => DELETED_USER.to_owned(),
                None => u.username.clone(),
            },
            websocket_id: u.websocket_id.clone(),
        }
    }
}

/// One participant of a thread (current or former), as views need them.
#[derive(Debug, Clone)]
pub struct Member {
    pub row: participant::Model,
    pub user: UserRef,
    /// Whether they send and see read receipts.
    pub receipts: bool,
    /// The url of their last read message (`row.read_up_to`), if any.
    pub read_url: Option<String>,
}

impl Member {
    /// Whether they are a member now (not left or removed).
    pub fn current(&self) -> bool {
        self.row.member_until.is_none()
    }
}

/// A thread with its participants, current and former, enough to render any of its messages.
#[derive(Debug, Clone)]
pub struct ThreadContext {
    pub thread: thread::Model,
    /// By user id.
    pub members: Vec<Member>,
}

impl ThreadContext {
    pub fn kind(&self) -> ThreadKind {
        ThreadKind::of(&self.thread.kind)
    }

    pub fn username(&self, user_id: i64) -> String {
        self.members
            .iter()
            .find(|m| m.user.id == user_id)
            .map(|m| m.user.username.clone())
            .unwrap_or_default()
    }

    pub fn member(&self, user_id: i64) -> Option<&participant::Model> {
        self.members
            .iter()
            .find(|m| m.user.id == user_id)
            .map(|m| &m.row)
    }

    /// The current members.
    pub fn current(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.current())
    }

    pub fn participant_names(&self) -> Vec<String> {
        self.current().map(|m| m.user.username.clone()).collect()
    }

    /// `m` as `viewer` sees it: in a group, read when the viewer has read it.
    pub fn message_view(&self, m: &message::Model, viewer: i64) -> MessageView {
        let (recipient, read) = match self.kind() {
            ThreadKind::Direct => (
                Some(self.username(m.recipient_id)),
                m.sender_id == m.recipient_id
                    || self
                        .member(m.recipient_id)
                        .is_some_and(|p| p.read_up_to >= m.id),
            ),
            ThreadKind::Group => (
                None,
                m.sender_id == viewer || self.member(viewer).is_some_and(|p| p.read_up_to >= m.id),
            ),
        };
        MessageView {
            url: m.public_id.clone(),
            thread_id: self.thread.public_id.clone(),
            sender: self.username(m.sender_id),
            recipient,
            subject: self.thread.subject.clone(),
            body: m.removed_at.is_none().then(|| m.body.clone()),
            timestamp: ids::rfc3339(m.created_at),
            read,
            edited_at: m.edited_at.map(ids::rfc3339),
            removed: m.removed_at.is_some(),
            reactions: self.reactions(m),
            reply_to: m
                .reply_to
                .as_deref()
                .and_then(|json| serde_json::from_str(json).ok()),
        }
    }

    /// `m`'s reactions, with its members' names.
    pub fn reactions(&self, m: &message::Model) -> Vec<Reaction> {
        if m.reactions.is_none() {
            return Vec::new();
        }
        stored_reactions(m)
            .into_iter()
            .map(|(emoji, users)| Reaction {
                emoji,
                users: users.into_iter().map(|id| self.username(id)).collect(),
            })
            .collect()
    }

    /// Whether a message's view is the same for every viewer (in a group, `read` is each
    /// viewer's own).
    pub fn same_for_all(&self) -> bool {
        self.kind() == ThreadKind::Direct
    }

    /// The thread as `viewer` sees it, given the newest message visible to them.
    pub fn thread_view(&self, viewer: i64, last: Option<&message::Model>) -> ThreadView {
        self.thread_view_with(viewer, last.map(|m| self.message_view(m, viewer)))
    }

    /// The other current members' read marks, as `viewer` may see them: none when the viewer
    /// has receipts off, and none of members who have them off.
    pub fn read_by(&self, viewer: i64) -> Vec<ReadBy> {
        let sees = self
            .members
            .iter()
            .find(|m| m.user.id == viewer)
            .is_some_and(|m| m.receipts);
        if !sees {
            return Vec::new();
        }
        self.current()
            .filter(|m| m.user.id != viewer && m.receipts)
            .filter_map(|m| {
                Some(ReadBy {
                    username: m.user.username.clone(),
                    up_to: m.read_url.clone()?,
                })
            })
            .collect()
    }

    /// The thread as `viewer` sees it, with its newest visible message as given.
    pub fn thread_view_with<M>(&self, viewer: i64, last_message: Option<M>) -> ThreadView<M> {
        let mute = self
            .member(viewer)
            .and_then(|p| Mute::of(p.muted_until, ids::now_micros()));
        ThreadView {
            thread_id: self.thread.public_id.clone(),
            subject: self.thread.subject.clone(),
            kind: self.kind(),
            created_by: self.username(self.thread.created_by.unwrap_or_default()),
            participants: self.participant_names(),
            read_by: self.read_by(viewer),
            last_message,
            unread: self.member(viewer).map(|p| p.unread).unwrap_or(0),
            updated_at: ids::rfc3339(self.thread.updated_at),
            muted: mute.is_some(),
            muted_until: mute.flatten().map(ids::rfc3339),
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
            recipient: Some("bob".into()),
            subject: "Tea \"now\"?".into(),
            body: Some("line\nbreak \u{e9}\u{1f600}".into()),
            timestamp: "2026-11-25T20:00:00.000000Z".into(),
            read: false,
            edited_at: None,
            removed: false,
            reactions: vec![Reaction {
                emoji: "\u{1f44d}".into(),
                users: vec!["bob".into()],
            }],
            reply_to: None,
        };
        let plain = ThreadView {
            thread_id: "t1".into(),
            subject: message.subject.clone(),
            kind: ThreadKind::Direct,
            created_by: "ann".into(),
            participants: vec!["ann".into(), "bob".into()],
            read_by: vec![ReadBy {
                username: "bob".into(),
                up_to: "u0".into(),
            }],
            last_message: Some(message.clone()),
            unread: 3,
            updated_at: message.timestamp.clone(),
            muted: true,
            muted_until: Some("2026-11-26T20:00:00.000Z".into()),
        };
        let rendered = ThreadView {
            last_message: Some(Rendered::of(&message).unwrap()),
            thread_id: plain.thread_id.clone(),
            subject: plain.subject.clone(),
            kind: plain.kind,
            created_by: plain.created_by.clone(),
            participants: plain.participants.clone(),
            read_by: plain.read_by.clone(),
            unread: plain.unread,
            updated_at: plain.updated_at.clone(),
            muted: plain.muted,
            muted_until: plain.muted_until.clone(),
        };
        assert_eq!(
            serde_json::to_string(&rendered).unwrap(),
            serde_json::to_string(&plain).unwrap()
        );
    }
}
