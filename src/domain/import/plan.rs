//! From the original rows to Missive's: users, threads, messages, each reader's read mark,
//! unread count and deletions, as if the messages had been sent through Missive. Pure: ids
//! are assigned from the bases given, so the whole import is known before anything is written.
//! Rows the original app left broken are repaired here, and every repair is recorded.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDateTime;
use entity::{import_row, message, message_hide, participant, thread, unread_below_mark, user};

use super::rows;
use super::source::{SourceMessage, SourceUser};
use crate::domain::views::ThreadKind;
use crate::ids;

/// Longest thread subject Missive stores.
const MAX_SUBJECT: usize = 280;
/// Longest name a Missive login looks up (the original's `VARCHAR(80)`).
pub(super) const MAX_NAME: usize = 80;
/// Name of the placeholder account for messages whose sender or recipient is NULL.
pub(super) const UNKNOWN_USER: &str = "[unknown]";

/// Where the new rows' ids start (each table's next free id).
#[derive(Debug, Clone, Copy)]
pub struct IdBase {
    pub user: i64,
    pub thread: i64,
    pub message: i64,
}

/// Everything an import writes.
#[derive(Debug, Default)]
pub struct Plan {
    pub users: Vec<user::Model>,
    /// Accounts made for usernames that messages name but no `users` row has.
    pub placeholders: usize,
    pub threads: Vec<thread::Model>,
    pub messages: Vec<message::Model>,
    pub participants: Vec<participant::Model>,
    pub hides: Vec<message_hide::Model>,
    pub unread_below_mark: Vec<unread_below_mark::Model>,
    /// What each original row became (for a later update).
    pub rows: Vec<import_row::Model>,
    pub repairs: Repairs,
}

/// What was repaired, by kind, each with the original rows concerned.
#[derive(Debug, Default)]
pub struct Repairs(pub BTreeMap<&'static str, Vec<String>>);

impl Repairs {
    pub(super) fn note(&mut self, kind: &'static str, detail: impl Into<String>) {
        self.0.entry(kind).or_default().push(detail.into());
    }

    pub fn total(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }
}

/// Builds the import of `users` and `messages` (in the original's id order).
pub fn plan(users: &[SourceUser], messages: &[SourceMessage], base: IdBase, now: i64) -> Plan {
    let mut plan = Plan::default();
    let mut accounts = Accounts::new(base.user);
    for u in users {
        if let Some(id) = accounts.add_original(u, &mut plan.repairs) {
            plan.rows.push(rows::of_user(u, id));
        }
    }

    let mut threads = Threads::new(base.thread);
    let mut urls: HashSet<String> = HashSet::with_capacity(messages.len());
    let mut previous_time = None;
    for (k, m) in messages.iter().enumerate() {
        let id = base.message + k as i64;
        let sender = accounts.named(m.sender.as_deref(), m.id, "sender", &mut plan.repairs);
        let recipient =
            accounts.named(m.recipient.as_deref(), m.id, "recipient", &mut plan.repairs);
        let created_at = match m.timestamp.as_deref().and_then(parse_time) {
            Some(t) => t,
            None => {
                let t = previous_time.unwrap_or(now);
                plan.repairs.note(
                    "timestamp missing or unreadable: the previous message's time taken",
                    format!(
                        "message {} ({:?})",
                        m.id,
                        m.timestamp.as_deref().unwrap_or("NULL")
                    ),
                );
                t
            }
        };
        previous_time = Some(created_at);
        plan.rows.push(rows::of_message(m, id));
        let url = match m.url.as_deref().filter(|u| !u.is_empty() && u.len() <= 32) {
            Some(u) if urls.insert(u.to_owned()) => u.to_owned(),
            original => {
                let fresh = ids::message_url();
                let kind = match original {
                    None if m.url.is_none() => "url NULL: a fresh id given",
                    None => "url empty or over 32 characters: a fresh id given",
                    Some(_) => "url repeated from an earlier message: a fresh id given",
                };
                plan.repairs.note(
                    kind,
                    format!(
                        "message {} ({:?} -> {fresh})",
                        m.id,
                        m.url.as_deref().unwrap_or("NULL")
                    ),
                );
                urls.insert(fresh.clone());
                fresh
            }
        };
        let thread = threads.thread_of(m, (sender, recipient), created_at, &mut plan.repairs);
        threads.add_message(thread, id, created_at);
        for (flag, column) in [
            (m.read, "read"),
            (m.sender_del, "sender_del"),
            (m.recipient_del, "recipient_del"),
        ] {
            if flag.is_none() {
                plan.repairs.note(
                    match column {
                        "read" => "read NULL: taken as false",
                        "sender_del" => "sender_del NULL: taken as false",
                        _ => "recipient_del NULL: taken as false",
                    },
                    format!("message {}", m.id),
                );
            }
        }
        if m.body.is_none() {
            plan.repairs
                .note("body NULL: taken as empty", format!("message {}", m.id));
        }
        let sender_del = m.sender_del.unwrap_or(false);
        let recipient_del = m.recipient_del.unwrap_or(false);
        let state = threads.state_mut(thread);
        state.messages.push(Imported {
            id,
            sender,
            recipient,
            read: m.read.unwrap_or(false),
            hidden_for_sender: sender_del || (sender == recipient && recipient_del),
            hidden_for_recipient: recipient_del || (sender == recipient && sender_del),
        });
        accounts.seen(sender, created_at);
        accounts.seen(recipient, created_at);
        plan.messages.push(message::Model {
            id,
            public_id: url,
            thread_id: thread,
            sender_id: sender,
            recipient_id: recipient,
            body: m.body.clone().unwrap_or_default(),
            created_at,
            client_id: None,
            edited_at: None,
            reactions: None,
            removed_at: None,
            reply_to_id: None,
            reply_to: None,
        });
    }

    for state in threads.states.into_values() {
        state.settle(&mut plan);
    }
    plan.threads.sort_by_key(|t| t.id);
    plan.participants.sort_by_key(|p| (p.thread_id, p.user_id));
    plan.placeholders = accounts.placeholders.len();
    plan.rows.extend(
        accounts
            .placeholders
            .iter()
            .map(|&id| rows::of_placeholder(id)),
    );
    plan.users = accounts.finish(now);
    plan
}

/// An imported account: it logs in with its werkzeug hash `legacy`, if any.
pub(super) fn account(
    id: i64,
    username: String,
    legacy: Option<String>,
    websocket_id: String,
    created_at: i64,
) -> user::Model {
    user::Model {
        id,
        username,
        password_hash: None,
        key_hash: None,
        websocket_id,
        is_admin: false,
        created_at,
        legacy_password_hash: legacy,
        log_seq: 0,
        log_gid: 0,
        credential_epoch: 0,
        read_receipts: true,
        email: None,
        email_verified: false,
        totp_secret: None,
        totp_pending: None,
        totp_last_step: 0,
        disabled: false,
        deleted_at: None,
    }
}

/// `u`'s own websocket_id when it is usable and not in `used` (no account has it, nor an
/// earlier row of the source), else a fresh one, noted as a repair.
pub(super) fn websocket_id(
    u: &SourceUser,
    name: &str,
    used: &mut HashSet<String>,
    repairs: &mut Repairs,
) -> String {
    match u.websocket_id.as_deref() {
        Some(w) if !w.is_empty() && w.len() <= 32 && used.insert(w.to_owned()) => w.to_owned(),
        other => {
            let fresh = fresh_websocket_id(used);
            repairs.note(
                "websocket_id NULL, over 32 characters or repeated: a fresh one given",
                format!(
                    "user {} ({name}, {:?} -> {fresh})",
                    u.id,
                    other.unwrap_or("NULL")
                ),
            );
            fresh
        }
    }
}

/// A websocket_id not in `used` (and now in it).
pub(super) fn fresh_websocket_id(used: &mut HashSet<String>) -> String {
    loop {
        let id = ids::hex_id();
        if used.insert(id.clone()) {
            return id;
        }
    }
}

/// The werkzeug hash `u` logs in with, if Missive can check it.
pub(super) fn legacy_hash(u: &SourceUser, name: &str, repairs: &mut Repairs) -> Option<String> {
    match u.password.as_deref() {
        Some(h) if h.starts_with("pbkdf2:sha256:") => Some(h.to_owned()),
        Some(h) => {
            let scheme = h.split(['$', ':']).next().unwrap_or_default();
            repairs.note(
                "password hash not pbkdf2:sha256: cannot log in until `missive user password` sets one",
                format!("user {} ({name}, {scheme})", u.id),
            );
            None
        }
        None => {
            repairs.note(
                "password NULL: cannot log in until `missive user password` sets one",
                format!("user {} ({name})", u.id),
            );
            None
        }
    }
}

/// The subject of a thread that `m` starts.
pub(super) fn subject(m: &SourceMessage, public_id: &str, repairs: &mut Repairs) -> String {
    match m
        .subject
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(s) if s.chars().count() > MAX_SUBJECT => {
            repairs.note(
                "subject over 280 characters: cut",
                format!("thread {public_id} (message {})", m.id),
            );
            s.chars().take(MAX_SUBJECT).collect()
        }
        Some(s) => s.to_owned(),
        None => {
            repairs.note(
                "subject NULL or empty: \"(no subject)\"",
                format!("thread {public_id} (message {})", m.id),
            );
            "(no subject)".to_owned()
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` (naive UTC, as SQLAlchemy stores it; a `T` is accepted too)
/// in Unix microseconds.
pub(super) fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .map(|t| t.and_utc().timestamp_micros())
}

/// The accounts being imported, by lowercased name.
struct Accounts {
    next_id: i64,
    by_name: HashMap<String, usize>,
    rows: Vec<user::Model>,
    websocket_ids: HashSet<String>,
    /// Their ids.
    placeholders: Vec<i64>,
}

impl Accounts {
    fn new(base: i64) -> Accounts {
        Accounts {
            next_id: base,
            by_name: HashMap::new(),
            rows: Vec::new(),
            websocket_ids: HashSet::new(),
            placeholders: Vec::new(),
        }
    }

    /// The account made for `u`, if one was.
    fn add_original(&mut self, u: &SourceUser, repairs: &mut Repairs) -> Option<i64> {
        let Some(name) = u
            .username
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        else {
            repairs.note(
                "user without a username: not imported (no message can name it)",
                format!("user {}", u.id),
            );
            return None;
        };
        let key = name.to_lowercase();
        if let Some(&first) = self.by_name.get(&key) {
            repairs.note(
                "username repeated (case aside): merged into the first account",
                format!("user {} ({name}) into {}", u.id, self.rows[first].username),
            );
            return None;
        }
        if key.chars().count() > MAX_NAME {
            repairs.note(
                "username over 80 characters: imported, but cannot log in",
                format!("user {} ({name})", u.id),
            );
        }
        let legacy = legacy_hash(u, name, repairs);
        let websocket_id = websocket_id(u, name, &mut self.websocket_ids, repairs);
        let index = self.push(key, legacy, websocket_id);
        Some(self.rows[index].id)
    }

    fn fresh_websocket_id(&mut self) -> String {
        fresh_websocket_id(&mut self.websocket_ids)
    }

    fn push(&mut self, username: String, legacy: Option<String>, websocket_id: String) -> usize {
        let index = self.rows.len();
        self.by_name.insert(username.clone(), index);
        self.rows.push(account(
            self.next_id,
            username,
            legacy,
            websocket_id,
            i64::MAX,
        ));
        self.next_id += 1;
        index
    }

    /// The account a message names, made as a placeholder (no way to log in) when no user row
    /// has that name.
    fn named(
        &mut self,
        name: Option<&str>,
        message: i64,
        side: &str,
        repairs: &mut Repairs,
    ) -> i64 {
        let trimmed = name.map(str::trim).filter(|n| !n.is_empty());
        let key = trimmed.unwrap_or(UNKNOWN_USER).to_lowercase();
        if let Some(&i) = self.by_name.get(&key) {
            return self.rows[i].id;
        }
        let websocket_id = self.fresh_websocket_id();
        let i = self.push(key.clone(), None, websocket_id);
        self.placeholders.push(self.rows[i].id);
        match trimmed {
            Some(_) => repairs.note(
                "username with no user row: a placeholder account made (cannot log in)",
                format!("{key} (first named as {side} of message {message})"),
            ),
            None => repairs.note(
                "sender or recipient NULL: a placeholder account made (cannot log in)",
                format!("{UNKNOWN_USER} (first for the {side} of message {message})"),
            ),
        }
        self.rows[i].id
    }

    /// Notes that `user_id` took part in a message at `time` (accounts are dated by their
    /// first message: the original did not keep a creation time).
    fn seen(&mut self, user_id: i64, time: i64) {
        let i = (user_id - self.rows[0].id) as usize;
        let row = &mut self.rows[i];
        row.created_at = row.created_at.min(time);
    }

    fn finish(mut self, now: i64) -> Vec<user::Model> {
        for row in &mut self.rows {
            if row.created_at == i64::MAX {
                row.created_at = now;
            }
        }
        self.rows
    }
}

/// One message, as the read and deletion state of each side needs it.
struct Imported {
    id: i64,
    sender: i64,
    recipient: i64,
    read: bool,
    hidden_for_sender: bool,
    hidden_for_recipient: bool,
}

/// A thread being built.
struct ThreadState {
    row: thread::Model,
    members: Vec<i64>,
    messages: Vec<Imported>,
}

/// Threads by original `thread_id` and pair of participants.
struct Threads {
    next_id: i64,
    by_key: HashMap<(String, [i64; 2]), i64>,
    public_ids: HashSet<String>,
    states: BTreeMap<i64, ThreadState>,
}

impl Threads {
    fn new(base: i64) -> Threads {
        Threads {
            next_id: base,
            by_key: HashMap::new(),
            public_ids: HashSet::new(),
            states: BTreeMap::new(),
        }
    }

    /// The thread `m` belongs to: its original `thread_id` between its two users, or a new
    /// thread when the id is NULL, unusable, or already names a thread of another pair.
    fn thread_of(
        &mut self,
        m: &SourceMessage,
        (sender, recipient): (i64, i64),
        time: i64,
        repairs: &mut Repairs,
    ) -> i64 {
        let pair = [sender.min(recipient), sender.max(recipient)];
        let original = m
            .thread_id
            .as_deref()
            .filter(|t| !t.is_empty() && t.len() <= 32);
        if let Some(t) = original
            && let Some(&id) = self.by_key.get(&(t.to_owned(), pair))
        {
            return id;
        }
        let public_id = match original {
            Some(t) if self.public_ids.insert(t.to_owned()) => t.to_owned(),
            Some(t) => {
                let fresh = self.fresh_public_id();
                repairs.note(
                    "thread_id shared by messages of different users: a thread of their own with a fresh id",
                    format!("message {} ({t} -> {fresh})", m.id),
                );
                fresh
            }
            None => {
                let fresh = self.fresh_public_id();
                repairs.note(
                    "thread_id NULL, empty or over 32 characters: a thread of its own with a fresh id",
                    format!("message {} ({:?} -> {fresh})", m.id, m.thread_id.as_deref().unwrap_or("NULL")),
                );
                fresh
            }
        };
        let subject = subject(m, &public_id, repairs);
        let id = self.next_id;
        self.next_id += 1;
        if let Some(t) = original {
            self.by_key.insert((t.to_owned(), pair), id);
        }
        let mut members = vec![pair[0]];
        if pair[1] != pair[0] {
            members.push(pair[1]);
        }
        self.states.insert(
            id,
            ThreadState {
                row: thread::Model {
                    id,
                    public_id,
                    subject,
                    created_at: time,
                    updated_at: time,
                    last_message_id: None,
                    kind: ThreadKind::DIRECT.to_owned(),
                    created_by: Some(pair[0]),
                    version: 0,
                },
                members,
                messages: Vec::new(),
            },
        );
        id
    }

    fn fresh_public_id(&mut self) -> String {
        loop {
            let id = ids::public_id();
            if self.public_ids.insert(id.clone()) {
                return id;
            }
        }
    }

    fn add_message(&mut self, thread: i64, id: i64, time: i64) {
        let row = &mut self.state_mut(thread).row;
        row.updated_at = row.updated_at.max(time);
        row.last_message_id = Some(id);
    }

    fn state_mut(&mut self, thread: i64) -> &mut ThreadState {
        self.states
            .get_mut(&thread)
            .expect("a thread made by thread_of")
    }
}

impl ThreadState {
    /// Each member's view of the thread, as Missive would hold it had these messages been sent
    /// and read through it: the read mark at the newest message they read, the unread count of
    /// what they received and have not read (nor deleted), a thread they deleted every message
    /// of hidden whole.
    fn settle(self, plan: &mut Plan) {
        let last = self.row.last_message_id.unwrap_or(0);
        for &member in &self.members {
            let hidden = |m: &Imported| {
                (m.sender == member && m.hidden_for_sender)
                    || (m.recipient == member && m.hidden_for_recipient)
            };
            for m in self.messages.iter().filter(|m| hidden(m)) {
                plan.hides.push(message_hide::Model {
                    user_id: member,
                    message_id: m.id,
                });
            }
            let received = |m: &&Imported| m.recipient == member && m.sender != member;
            let mut row = participant::Model {
                thread_id: self.row.id,
                user_id: member,
                last_message_id: last,
                read_up_to: 0,
                hidden_before: 0,
                unread: 0,
                joined_after: 0,
                member_until: None,
                joined_at: self.row.created_at,
                muted_until: None,
            };
            if self.members.len() == 1 {
                row.read_up_to = last;
            } else {
                // The mark at the newest message read; what is unread below it is listed, so
                // that the sender still sees it unread (deleted or not, as in the original).
                row.read_up_to = self
                    .messages
                    .iter()
                    .filter(received)
                    .filter(|m| m.read)
                    .map(|m| m.id)
                    .max()
                    .unwrap_or(0);
                for m in self.messages.iter().filter(received).filter(|m| !m.read) {
                    if m.id < row.read_up_to {
                        plan.unread_below_mark.push(unread_below_mark::Model {
                            user_id: member,
                            thread_id: self.row.id,
                            message_id: m.id,
                        });
                    }
                    row.unread += i32::from(!hidden(m));
                }
            }
            if self.messages.iter().all(hidden) {
                // Out of the inbox until someone writes again, as Missive hides a thread
                // whose every message its reader deleted.
                row.hidden_before = last;
                row.unread = 0;
            }
            plan.participants.push(row);
        }
        plan.threads.push(self.row);
    }
}
