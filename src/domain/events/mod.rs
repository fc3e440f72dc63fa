//! Every server -> client event, declared once: its name, its payload type, who hears it,
//! whether and how it is logged for recovery, and its legacy (Flask-Messaging) forms. The
//! event log's names, the replay of a log entry, `web/src/generated/events.ts`, the protocol
//! reference (`docs/protocol.md`) and the notifier all follow from [`SERVER_EVENTS`].
//!
//! Adding an event: a payload type with `impl ServerEvent` in `catalog.rs`, one line in
//! [`SERVER_EVENTS`], then the use case tells it through an [`Outbox`](super::outbox::Outbox)
//! write. A test fails when a declared event is missing from the generated files.

mod catalog;
mod legacy;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use ts_rs::TS;

pub use catalog::*;
pub use legacy::*;

use super::event_log::Entry;
use super::views::{Rendered, ThreadView, UnreadCounts, UserRef};

/// Whether an event is written to its users' durable logs, so that a client that missed it
/// gets it again (connection state recovery, `sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged {
    /// Not logged: a recovering client does not get it again.
    No,
    /// Logged with its payload; replayed as it was sent.
    AsSent,
    /// Logged as a reference to what it reports; replayed as that is at replay time.
    Current(Refers),
}

/// What the log entry of a [`Logged::Current`] event refers to; a replay loads each kind once
/// for a whole page of entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refers {
    /// A message (`ref_id`): its view, and its thread as the user sees it.
    Message,
    /// The user's unread totals (no `ref_id`).
    Totals,
}

/// Who hears an event. Events of a change go to the `user:<id>` rooms of the users it names;
/// the others to the rooms said here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The tabs of the user whose state changed (the reader, the deleter).
    Own,
    /// The tabs of every participant of the thread.
    Participants,
    /// The tabs of the thread's other members (not the one whose doing it reports).
    OtherMembers,
    /// The tabs of every user who shares a thread with the subject.
    Correspondents,
    /// The other sockets that joined the thread's room (`thread:join`), volatile.
    ThreadRoom,
    /// The admin dashboards (`/admin`) of one node.
    Admins,
    /// The tabs of one login session (`session:<sid>`).
    Session,
}

impl Audience {
    /// Who hears it, in the protocol reference's words.
    pub fn describe(self) -> &'static str {
        match self {
            Audience::Own => "the user's own tabs (`user:<id>`)",
            Audience::Participants => "every participant's tabs (`user:<id>`)",
            Audience::OtherMembers => "the other members' tabs (`user:<id>`)",
            Audience::Correspondents => "the tabs of users who share a thread (`user:<id>`)",
            Audience::ThreadRoom => "other sockets in `thread:<thread_id>` (volatile)",
            Audience::Admins => "`/admin` sockets of the node",
            Audience::Session => "the sockets of one login session, before they are disconnected",
        }
    }
}

/// A server -> client event.
pub trait ServerEvent: Serialize + TS + Send + Sync + 'static {
    /// Its name on the wire.
    const NAME: &'static str;
    /// What it says, for the protocol reference (one sentence).
    const DOC: &'static str;
    const AUDIENCE: Audience;
    const LOGGED: Logged;
    /// The legacy events sent alongside it, for the reference and the typings.
    const LEGACY: &'static [LegacyForm] = &[];

    /// The legacy events that go with this one to `to`'s sockets that hear them.
    fn legacy(&self, _to: &UserRef, _out: &mut Vec<Legacy>) {}

    /// What the log entry of a [`Logged::Current`] event names (`ref_id`).
    fn log_ref(&self) -> Option<i64> {
        None
    }

    /// What a push to `to` says of this event, when `to` has no tab open (`None`: it is not
    /// pushed, e.g. to the sender of a message).
    fn push(&self, _to: &UserRef) -> Option<Arc<PushNote>> {
        None
    }

    /// A [`Logged::Current`] entry as it is now (`None`: nothing to send again, e.g. its
    /// message is gone).
    fn replay(_now: &Now, _ref_id: Option<i64>) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}

/// A legacy event as the reference lists it.
#[derive(Debug, Clone, Copy)]
pub struct LegacyForm {
    /// Its name, with `W` for the user's `websocket_id`: `W_newmsg`, `<thread_id>`.
    pub name: &'static str,
    /// Its key in `LegacyServerToClientEvents` (a template literal), if it has one.
    pub ts_key: Option<&'static str>,
    /// Its payload's TypeScript type, and that type's declaration.
    pub payload: fn() -> String,
    pub decl: fn() -> String,
    /// When it is sent.
    pub when: &'static str,
}

impl LegacyForm {
    pub const fn of<P: TS>(
        name: &'static str,
        ts_key: Option<&'static str>,
        when: &'static str,
    ) -> LegacyForm {
        LegacyForm {
            name,
            ts_key,
            payload: <P as TS>::name,
            decl: <P as TS>::decl,
            when,
        }
    }
}

/// One legacy event to send.
pub struct Legacy {
    pub event: String,
    pub payload: Box<RawValue>,
}

impl Legacy {
    pub fn new(event: String, payload: &impl Serialize) -> Option<Legacy> {
        let payload = serde_json::value::to_raw_value(payload).ok()?;
        Some(Legacy { event, payload })
    }
}

/// What a replay knows of the present, loaded once for a page of entries.
#[derive(Default)]
pub struct Now {
    /// The messages that `Current(Message)` entries name, rendered for the user, with their
    /// thread as the user sees it now.
    pub messages: HashMap<i64, (Rendered, ThreadView<Rendered>)>,
    /// The user's unread totals, when a `Current(Totals)` entry is on the page.
    pub totals: Option<UnreadCounts>,
}

/// One declared event, as the lists and generators read it.
#[derive(Clone, Copy)]
pub struct Declared {
    pub name: &'static str,
    pub doc: &'static str,
    pub audience: Audience,
    pub logged: Logged,
    pub legacy: &'static [LegacyForm],
    /// Its payload's TypeScript type, and that type's declaration.
    pub payload: fn() -> String,
    pub decl: fn() -> String,
    replay: fn(&Now, Option<i64>) -> Option<Box<RawValue>>,
}

impl Declared {
    /// A [`Logged::Current`] entry rendered as it is now.
    pub fn replay_current(&self, now: &Now, ref_id: Option<i64>) -> Option<Box<RawValue>> {
        (self.replay)(now, ref_id)
    }
}

/// The declaration of `E`.
pub const fn declare<E: ServerEvent>() -> Declared {
    Declared {
        name: E::NAME,
        doc: E::DOC,
        audience: E::AUDIENCE,
        logged: E::LOGGED,
        legacy: E::LEGACY,
        payload: <E as TS>::name,
        decl: <E as TS>::decl,
        replay: replay_raw::<E>,
    }
}

fn replay_raw<E: ServerEvent>(now: &Now, ref_id: Option<i64>) -> Option<Box<RawValue>> {
    serde_json::value::to_raw_value(&E::replay(now, ref_id)?).ok()
}

/// Every server -> client event, in the order the reference lists them.
pub const SERVER_EVENTS: &[Declared] = &[
    declare::<NewMessage>(),
    declare::<ThreadRead>(),
    declare::<MessageDeleted>(),
    declare::<ThreadDeleted>(),
    declare::<UnreadCounts>(),
    declare::<MessageEdited>(),
    declare::<MessageReactions>(),
    declare::<MessageRemoved>(),
    declare::<ThreadUpdated>(),
    declare::<ThreadMuted>(),
    declare::<Receipt>(),
    declare::<Presence>(),
    declare::<Typing>(),
    declare::<Stats>(),
    declare::<AccountChanged>(),
    declare::<SessionEnded>(),
];

/// What a Web Push tells a user with no tab open (its payload, as JSON): a message in a thread
/// (`preview`: its first characters) or their addition to a group (`sender` is who added
/// them; no preview).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PushNote {
    pub thread_id: String,
    pub subject: String,
    pub sender: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<String>,
}

/// The declaration named `name` in `events`.
pub fn find<'a>(events: &'a [Declared], name: &str) -> Option<&'a Declared> {
    events.iter().find(|d| d.name == name)
}

/// An event on its way to one user's tabs, at its position in their log (`None`: not logged,
/// or the log is off).
pub struct Notice {
    pub to: UserRef,
    pub offset: Option<i64>,
    pub event: Box<dyn Outgoing>,
}

impl Notice {
    /// `event` to `to`'s tabs, without a position.
    pub fn new<E: ServerEvent>(to: &UserRef, event: E) -> Notice {
        Notice {
            to: to.clone(),
            offset: None,
            event: Box::new(event),
        }
    }
}

/// A declared event, its type erased: what the notifier emits.
pub trait Outgoing: Send + Sync {
    fn name(&self) -> &'static str;
    fn payload(&self) -> serde_json::Result<Box<RawValue>>;
    fn legacy(&self, to: &UserRef, out: &mut Vec<Legacy>);
    /// Its entry in `user_id`'s log, if it is logged.
    fn log_entry(&self, user_id: i64) -> Option<Entry>;
    /// What a push to `to` would say of it, if it is pushed.
    fn push(&self, to: &UserRef) -> Option<Arc<PushNote>>;
}

impl<E: ServerEvent> Outgoing for E {
    fn name(&self) -> &'static str {
        E::NAME
    }

    fn payload(&self) -> serde_json::Result<Box<RawValue>> {
        serde_json::value::to_raw_value(self)
    }

    fn legacy(&self, to: &UserRef, out: &mut Vec<Legacy>) {
        ServerEvent::legacy(self, to, out);
    }

    fn push(&self, to: &UserRef) -> Option<Arc<PushNote>> {
        ServerEvent::push(self, to)
    }

    fn log_entry(&self, user_id: i64) -> Option<Entry> {
        match E::LOGGED {
            Logged::No => None,
            Logged::AsSent => Some(Entry::json(user_id, E::NAME, self)),
            Logged::Current(_) => Some(Entry {
                user_id,
                event: E::NAME,
                ref_id: self.log_ref(),
                payload: None,
            }),
        }
    }
}

impl std::fmt::Debug for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notice")
            .field("to", &self.to.id)
            .field("event", &self.event.name())
            .field("offset", &self.offset)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_is_declared_once() {
        let mut names: Vec<&str> = SERVER_EVENTS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "an event is declared twice");
    }

    #[test]
    fn only_events_to_user_rooms_are_logged() {
        for d in SERVER_EVENTS {
            if matches!(d.audience, Audience::ThreadRoom | Audience::Admins) {
                assert_eq!(d.logged, Logged::No, "{}", d.name);
            }
        }
    }
}
