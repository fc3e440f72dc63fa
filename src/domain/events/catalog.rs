//! The declarations: each server -> client event's payload and how it travels.

use serde::Serialize;
use ts_rs::TS;

use super::legacy::{LegacyDeletion, LegacyNewMessage, LegacyNotify};
use std::sync::Arc;

use super::{Audience, Legacy, LegacyForm, Logged, Now, PushNote, Refers, ServerEvent};
use crate::domain::views::{
    Change, ChangeKind, EXCERPT_CHARS, MessageView, Reaction, Rendered, ThreadView, UnreadCounts,
    UserRef,
};

/// `message:new`: the message, and its thread as that participant sees it (the message as
/// its last).
#[derive(Debug, Clone, Serialize, TS)]
pub struct NewMessage {
    #[ts(as = "MessageView")]
    pub message: Rendered,
    #[ts(as = "ThreadView")]
    pub thread: ThreadView<Rendered>,
    /// The message's row and public id (the log's reference, the legacy events' url).
    #[serde(skip)]
    #[ts(skip)]
    pub message_id: i64,
    #[serde(skip)]
    #[ts(skip)]
    pub url: String,
    /// Who sent it (they are not pushed their own message).
    #[serde(skip)]
    #[ts(skip)]
    pub sender_id: i64,
}

impl ServerEvent for NewMessage {
    const NAME: &'static str = "message:new";
    const DOC: &'static str = "A message was stored in one of the user's threads.";
    const AUDIENCE: Audience = Audience::Participants;
    const LOGGED: Logged = Logged::Current(Refers::Message);
    const LEGACY: &'static [LegacyForm] = &[
        LegacyForm::of::<LegacyNewMessage<'static>>(
            "W_newmsg",
            Some("`${string}_newmsg`"),
            "a message arrives in a thread of W (to every participant)",
        ),
        LegacyForm::of::<LegacyNewMessage<'static>>(
            "<thread_id>",
            None,
            "the same, named after the thread's id",
        ),
    ];

    fn legacy(&self, to: &UserRef, out: &mut Vec<Legacy>) {
        let payload = LegacyNewMessage {
            message_url: &self.url,
            thread_id: &self.thread.thread_id,
        };
        out.extend(Legacy::new(format!("{}_newmsg", to.websocket_id), &payload));
        out.extend(Legacy::new(self.thread.thread_id.clone(), &payload));
    }

    fn log_ref(&self) -> Option<i64> {
        Some(self.message_id)
    }

    /// Read back from the rendered message, for the rare recipient with no tab open: the
    /// commit renders nothing more for pushes.
    fn push(&self, to: &UserRef) -> Option<Arc<PushNote>> {
        #[derive(serde::Deserialize)]
        struct Sent {
            sender: String,
            body: Option<String>,
        }
        if to.id == self.sender_id {
            return None;
        }
        let sent: Sent = serde_json::from_str(self.message.text()).ok()?;
        Some(Arc::new(PushNote {
            thread_id: self.thread.thread_id.clone(),
            subject: self.thread.subject.clone(),
            sender: sent.sender,
            preview: sent.body.map(|b| b.chars().take(EXCERPT_CHARS).collect()),
        }))
    }

    fn replay(now: &Now, ref_id: Option<i64>) -> Option<NewMessage> {
        let id = ref_id?;
        let (message, thread) = now.messages.get(&id)?;
        Some(NewMessage {
            message: message.clone(),
            thread: thread.clone(),
            message_id: id,
            url: String::new(),
            sender_id: 0,
        })
    }
}

/// `thread:read` (and its ack): the thread, and the reader's totals.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ThreadRead {
    pub thread_id: String,
    pub unread: UnreadCounts,
    /// Whether the read moved the totals (an `unread` follows, which tells legacy clients
    /// when nothing is left).
    #[serde(skip)]
    #[ts(skip)]
    pub totals_changed: bool,
}

impl ServerEvent for ThreadRead {
    const NAME: &'static str = "thread:read";
    const DOC: &'static str = "The user read a thread (from any tab or device).";
    const AUDIENCE: Audience = Audience::Own;
    const LOGGED: Logged = Logged::AsSent;
    const LEGACY: &'static [LegacyForm] = &[LegacyForm::of::<LegacyNotify<'static>>(
        "W_notify",
        Some("`${string}_notify`"),
        "W read a thread (`type: \"thread\"`); nothing is left unread (`type: \"mailbox\"`)",
    )];

    fn legacy(&self, to: &UserRef, out: &mut Vec<Legacy>) {
        let event = format!("{}_notify", to.websocket_id);
        out.extend(Legacy::new(
            event.clone(),
            &LegacyNotify::thread(&self.thread_id),
        ));
        if !self.totals_changed && self.unread.messages == 0 {
            out.extend(Legacy::new(event, &LegacyNotify::MAILBOX));
        }
    }
}

/// `message:deleted` (and `message:delete`'s ack).
#[derive(Debug, Clone, Serialize, TS)]
pub struct MessageDeleted {
    pub url: String,
    pub thread_id: String,
    /// Messages left in the thread for the deleter.
    #[ts(type = "number")]
    pub total_messages: u64,
}

impl ServerEvent for MessageDeleted {
    const NAME: &'static str = "message:deleted";
    const DOC: &'static str = "The user deleted a message (for themself only).";
    const AUDIENCE: Audience = Audience::Own;
    const LOGGED: Logged = Logged::AsSent;
    const LEGACY: &'static [LegacyForm] = &[LegacyForm::of::<LegacyDeletion<'static>>(
        "W_notify_deletion",
        Some("`${string}_notify_deletion`"),
        "W deleted a message (`type: \"message\"`) or a thread (`type: \"thread\"`)",
    )];

    fn legacy(&self, to: &UserRef, out: &mut Vec<Legacy>) {
        let payload = LegacyDeletion {
            kind: "message",
            message_url: Some(&self.url),
            thread_id: &self.thread_id,
            total_messages: Some(self.total_messages),
            total_threads: None,
        };
        out.extend(Legacy::new(
            format!("{}_notify_deletion", to.websocket_id),
            &payload,
        ));
    }
}

/// `thread:deleted` (and `thread:delete`'s ack).
#[derive(Debug, Clone, Serialize, TS)]
pub struct ThreadDeleted {
    pub thread_id: String,
    /// Threads left in the deleter's inbox.
    #[ts(type = "number")]
    pub total_threads: u64,
}

impl ServerEvent for ThreadDeleted {
    const NAME: &'static str = "thread:deleted";
    const DOC: &'static str = "The user deleted a thread (for themself only).";
    const AUDIENCE: Audience = Audience::Own;
    const LOGGED: Logged = Logged::AsSent;
    const LEGACY: &'static [LegacyForm] = &[LegacyForm::of::<LegacyDeletion<'static>>(
        "W_notify_deletion",
        Some("`${string}_notify_deletion`"),
        "W deleted a thread",
    )];

    fn legacy(&self, to: &UserRef, out: &mut Vec<Legacy>) {
        let payload = LegacyDeletion {
            kind: "thread",
            message_url: None,
            thread_id: &self.thread_id,
            total_messages: None,
            total_threads: Some(self.total_threads),
        };
        out.extend(Legacy::new(
            format!("{}_notify_deletion", to.websocket_id),
            &payload,
        ));
    }
}

/// `unread`: the user's totals, whenever they change.
impl ServerEvent for UnreadCounts {
    const NAME: &'static str = "unread";
    const DOC: &'static str = "The user's unread totals changed.";
    const AUDIENCE: Audience = Audience::Own;
    const LOGGED: Logged = Logged::Current(Refers::Totals);
    const LEGACY: &'static [LegacyForm] = &[LegacyForm::of::<LegacyNotify<'static>>(
        "W_notify",
        Some("`${string}_notify`"),
        "nothing is left unread (`type: \"mailbox\"`)",
    )];

    fn legacy(&self, to: &UserRef, out: &mut Vec<Legacy>) {
        if self.messages == 0 {
            out.extend(Legacy::new(
                format!("{}_notify", to.websocket_id),
                &LegacyNotify::MAILBOX,
            ));
        }
    }

    fn replay(now: &Now, _: Option<i64>) -> Option<UnreadCounts> {
        now.totals
    }
}

/// `message:edited`: a message's sender changed its body; the message as it is now.
#[derive(Debug, Clone, Serialize, TS)]
pub struct MessageEdited {
    #[ts(as = "MessageView")]
    pub message: Rendered,
    /// The message's row (the log's reference).
    #[serde(skip)]
    #[ts(skip)]
    pub message_id: i64,
}

impl ServerEvent for MessageEdited {
    const NAME: &'static str = "message:edited";
    const DOC: &'static str = "A message's sender edited it (a replay shows it as it is then).";
    const AUDIENCE: Audience = Audience::Participants;
    const LOGGED: Logged = Logged::Current(Refers::Message);

    fn log_ref(&self) -> Option<i64> {
        Some(self.message_id)
    }

    fn replay(now: &Now, ref_id: Option<i64>) -> Option<MessageEdited> {
        let id = ref_id?;
        let (message, _) = now.messages.get(&id)?;
        Some(MessageEdited {
            message: message.clone(),
            message_id: id,
        })
    }
}

/// `message:reactions`: a message's reactions changed; all of them, as they are after it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct MessageReactions {
    pub url: String,
    pub thread_id: String,
    pub reactions: Vec<Reaction>,
}

impl ServerEvent for MessageReactions {
    const NAME: &'static str = "message:reactions";
    const DOC: &'static str =
        "A member added or removed a reaction to a message (its reactions after the change).";
    const AUDIENCE: Audience = Audience::Participants;
    const LOGGED: Logged = Logged::AsSent;
}

/// `message:removed`: a message's sender removed it for everyone; it stays in the history
/// as `removed`, without a body.
#[derive(Debug, Clone, Serialize, TS)]
pub struct MessageRemoved {
    pub url: String,
    pub thread_id: String,
}

impl ServerEvent for MessageRemoved {
    const NAME: &'static str = "message:removed";
    const DOC: &'static str = "A message's sender removed it for everyone.";
    const AUDIENCE: Audience = Audience::Participants;
    const LOGGED: Logged = Logged::AsSent;
}

/// `thread:updated`: a group's membership or subject changed; the thread as the user sees it
/// after the change.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ThreadUpdated {
    pub thread: ThreadView,
    pub change: Change,
}

impl ServerEvent for ThreadUpdated {
    const NAME: &'static str = "thread:updated";
    const DOC: &'static str = "A group's membership or subject changed (told to every member, and to the one \
         removed or leaving).";
    const AUDIENCE: Audience = Audience::Participants;
    const LOGGED: Logged = Logged::AsSent;

    /// The member added is pushed that they were.
    fn push(&self, to: &UserRef) -> Option<Arc<PushNote>> {
        let added = self.change.kind == ChangeKind::Added
            && self.change.username.as_deref() == Some(to.username.as_str());
        added.then(|| {
            Arc::new(PushNote {
                thread_id: self.thread.thread_id.clone(),
                subject: self.thread.subject.clone(),
                sender: self.change.by.clone(),
                preview: None,
            })
        })
    }
}

/// `thread:muted` (and `thread:mute`'s and `thread:unmute`'s thread): the user muted or
/// unmuted a thread.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ThreadMuted {
    pub thread_id: String,
    pub muted: bool,
    /// Until when (RFC 3339); null when muted until unmuted, or not muted.
    pub muted_until: Option<String>,
}

impl ServerEvent for ThreadMuted {
    const NAME: &'static str = "thread:muted";
    const DOC: &'static str = "The user muted or unmuted a thread: no pushes for it while muted (told to the \
         user's own tabs only).";
    const AUDIENCE: Audience = Audience::Own;
    const LOGGED: Logged = Logged::AsSent;
}

/// `receipt`: another member read a thread up to a message.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Receipt {
    pub thread_id: String,
    pub username: String,
    /// The url of the last message they read.
    pub up_to: String,
    /// When (RFC 3339).
    pub at: String,
}

impl ServerEvent for Receipt {
    const NAME: &'static str = "receipt";
    const DOC: &'static str = "Another member read further in a thread (never sent by or to a user with receipts \
         off).";
    const AUDIENCE: Audience = Audience::OtherMembers;
    const LOGGED: Logged = Logged::AsSent;
}

/// `presence`: a user came online or went offline.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Presence {
    pub username: String,
    pub online: bool,
}

impl ServerEvent for Presence {
    const NAME: &'static str = "presence";
    const DOC: &'static str = "A user who shares a thread with this one came online or went offline (state, not \
         history: a recovering socket is sent everyone's current presence instead).";
    const AUDIENCE: Audience = Audience::Correspondents;
    const LOGGED: Logged = Logged::No;
}

/// `typing`, relayed from a socket that joined the thread.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Typing {
    pub thread_id: String,
    pub username: String,
    pub typing: bool,
}

impl ServerEvent for Typing {
    const NAME: &'static str = "typing";
    const DOC: &'static str = "Someone in the thread started or stopped typing.";
    const AUDIENCE: Audience = Audience::ThreadRoom;
    const LOGGED: Logged = Logged::No;
}

/// `stats`, every second, on `/admin`: the node's figures for the live dashboard.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Stats {
    /// Socket.IO and lobby connections on this node.
    #[ts(type = "number")]
    pub connections: i64,
    /// Live sessions (all nodes).
    #[ts(type = "number")]
    pub sessions: u64,
    /// Messages stored by this node during the last second.
    pub messages_per_second: f64,
    /// Round trip of `SELECT 1`.
    pub db_latency_ms: f64,
    pub timestamp: String,
}

impl ServerEvent for Stats {
    const NAME: &'static str = "stats";
    const DOC: &'static str = "The node's figures, every second (admin accounts only).";
    const AUDIENCE: Audience = Audience::Admins;
    const LOGGED: Logged = Logged::No;
}

/// `account:changed`: the user's password, e-mail address or second factor changed (from any
/// tab or device); their tabs read their account again.
#[derive(Debug, Clone, Serialize, TS)]
pub struct AccountChanged {
    /// `password`, `email` or `two_factor`.
    #[ts(type = "'password' | 'email' | 'two_factor'")]
    pub what: &'static str,
}

impl AccountChanged {
    pub const PASSWORD: AccountChanged = AccountChanged { what: "password" };
    pub const EMAIL: AccountChanged = AccountChanged { what: "email" };
    pub const TWO_FACTOR: AccountChanged = AccountChanged { what: "two_factor" };
}

impl ServerEvent for AccountChanged {
    const NAME: &'static str = "account:changed";
    const DOC: &'static str = "The user's password, e-mail address or second factor changed.";
    const AUDIENCE: Audience = Audience::Own;
    const LOGGED: Logged = Logged::AsSent;
}

/// Why a session ended, as `session:ended` tells its tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(rename_all = "snake_case")]
pub enum EndReason {
    /// Logged out (this session, or everywhere).
    Logout,
    /// The password was changed or reset.
    PasswordChanged,
    /// Ended from another session, or by an operator.
    EndedElsewhere,
    /// The account was disabled.
    Disabled,
    /// The account was deleted.
    Deleted,
}

/// `session:ended`: this session ended; the server disconnects its sockets right after.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SessionEnded {
    pub reason: EndReason,
}

impl ServerEvent for SessionEnded {
    const NAME: &'static str = "session:ended";
    const DOC: &'static str = "The session ended (logout, a new password, ended from elsewhere, the account \
         disabled or deleted): its sockets are disconnected right after.";
    const AUDIENCE: Audience = Audience::Session;
    const LOGGED: Logged = Logged::No;
}
