//! `import flask-messaging --update`: what the original gained or changed since the last
//! import of it (new users, new messages, `read` and deletion flags set, new password hashes),
//! applied on top of what Missive holds now, as if each change had been made through Missive.
//! A change that conflicts with what Missive itself wrote since is refused and listed; the
//! rest lands in the caller's one transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use entity::{import_row, message, message_hide, participant, thread, unread_below_mark, user};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use super::plan::{self, MAX_NAME, Repairs, UNKNOWN_USER};
use super::rows::{self, MESSAGE, PLACEHOLDER, READ, RECIPIENT_DEL, SENDER_DEL, USER};
use super::source::{SourceMessage, SourceUser};
use super::{CHUNK, ImportError, existing, next_id};
use crate::domain::views::ThreadKind;
use crate::ids;

/// What an update did (or, refused, would not do).
#[derive(Debug, Default)]
pub struct Update {
    pub users: usize,
    pub placeholders: usize,
    pub threads: usize,
    pub messages: usize,
    /// Messages marked read, and hidden for one side, in the original since.
    pub read: usize,
    pub hidden: usize,
    pub passwords: usize,
    /// Changes refused: they conflict with what Missive wrote since, or the original app
    /// could not have made them itself.
    pub refused: Vec<String>,
    /// Rows gone from the original since (left in Missive).
    pub gone: Vec<String>,
    pub repairs: Repairs,
}

impl Update {
    /// Whether the original changed at all since the last import.
    pub fn is_empty(&self) -> bool {
        self.users + self.placeholders + self.messages + self.read + self.hidden + self.passwords
            == 0
            && self.refused.is_empty()
    }
}

/// A Missive account, as an update sees it.
struct Account {
    password_hash: Option<String>,
    legacy: Option<String>,
}

/// Applies the changes of `users` and `messages` since the last import of `origin` (at
/// `since`) inside the caller's transaction.
pub(super) async fn update(
    db: &impl ConnectionTrait,
    origin: &str,
    since: i64,
    users: &[SourceUser],
    messages: &[SourceMessage],
    now: i64,
) -> Result<Update, ImportError> {
    let mut out = Update::default();
    let mapped = import_row::Entity::find()
        .filter(import_row::Column::Origin.eq(origin))
        .all(db)
        .await?;
    let mut user_rows = HashMap::new();
    let mut message_rows = HashMap::new();
    let mut placeholders = HashSet::new();
    for row in mapped {
        match row.kind {
            USER => {
                user_rows.insert(row.source_id, row);
            }
            MESSAGE => {
                message_rows.insert(row.source_id, row);
            }
            PLACEHOLDER => {
                placeholders.insert(row.target_id);
            }
            _ => {}
        }
    }
    let imported_accounts: HashSet<i64> = user_rows.values().map(|r| r.target_id).collect();

    let mut people = People::load(db).await?;
    let mut changes = Changes::default();

    // Users: new ones, and new password hashes of those imported before.
    let mut seen_users = HashSet::new();
    for u in users {
        seen_users.insert(u.id);
        let name = u.username.as_deref().unwrap_or_default().trim();
        if let Some(row) = user_rows.get(&u.id) {
            if rows::user_digest(u) != row.digest {
                out.refused.push(format!(
                    "user {} ({name}): renamed, or given another websocket_id, in the original \
                     since the last import (the original app does neither; Missive keeps what \
                     it has)",
                    u.id
                ));
                continue;
            }
            let secret = rows::secret(u.password.as_deref());
            if secret == row.secret {
                continue;
            }
            let Some(account) = people.accounts.get(&row.target_id) else {
                continue;
            };
            if account.password_hash.is_some()
                || rows::secret(account.legacy.as_deref()) != row.secret
            {
                out.refused.push(format!(
                    "user {name}: the password changed in the original since the last import, \
                     and in Missive too (a login there, or `missive user password`): Missive's \
                     stays; `missive user password {name}` sets another"
                ));
                continue;
            }
            let legacy = plan::legacy_hash(u, name, &mut out.repairs);
            changes
                .passwords
                .push((row.target_id, legacy, u.id, secret));
            out.passwords += 1;
            continue;
        }
        if name.is_empty() {
            out.repairs.note(
                "user without a username: not imported (no message can name it)",
                format!("user {}", u.id),
            );
            continue;
        }
        let key = name.to_lowercase();
        match people.by_name.get(&key).copied() {
            Some(id) if placeholders.contains(&id) && !changes.adopted.contains_key(&id) => {
                // A name messages used before its user row existed: the row takes it over.
                let legacy = plan::legacy_hash(u, name, &mut out.repairs);
                changes.adopted.insert(id, (legacy, u.clone()));
                out.users += 1;
            }
            Some(id) if imported_accounts.contains(&id) || changes.is_new_user(id) => {
                out.repairs.note(
                    "username repeated (case aside): merged into the first account",
                    format!("user {} ({name}) into {key}", u.id),
                );
            }
            Some(_) => out.refused.push(format!(
                "user {} ({name}): Missive has an account of that name made since the last \
                 import; its messages are refused too",
                u.id
            )),
            None => {
                if key.chars().count() > MAX_NAME {
                    out.repairs.note(
                        "username over 80 characters: imported, but cannot log in",
                        format!("user {} ({name})", u.id),
                    );
                }
                let legacy = plan::legacy_hash(u, name, &mut out.repairs);
                let websocket_id = people.websocket_id(u, name, &mut out.repairs);
                let id = people.add(db, key, legacy, websocket_id, now).await?;
                changes.new_users.push((id, Some(u.clone())));
                out.users += 1;
            }
        }
    }
    for (source_id, row) in &user_rows {
        if !seen_users.contains(source_id) {
            out.gone.push(format!(
                "user {source_id} (account {}) is gone from the original: kept",
                row.target_id
            ));
        }
    }
    let refused_names: HashSet<String> = users
        .iter()
        .filter_map(|u| u.username.as_deref().map(|n| n.trim().to_lowercase()))
        .filter(|key| {
            people
                .by_name
                .get(key)
                .is_some_and(|id| !people.imported_or_new(*id, &imported_accounts, &placeholders))
        })
        .collect();

    // Messages: flags set on those imported before; new ones, in id order.
    let mut new_messages: Vec<&SourceMessage> = Vec::new();
    let mut seen_messages = HashSet::with_capacity(messages.len());
    for m in messages {
        seen_messages.insert(m.id);
        let Some(row) = message_rows.get(&m.id) else {
            new_messages.push(m);
            continue;
        };
        if rows::message_digest(m) != row.digest {
            out.refused.push(format!(
                "message {}: its url, people, subject, body, time or thread changed in the \
                 original since the last import (the original app changes none of them)",
                m.id
            ));
            continue;
        }
        let flags = rows::flags(m);
        if row.flags & !flags != 0 {
            out.refused.push(format!(
                "message {}: marked unread or undeleted in the original since the last import \
                 (the original app does neither)",
                m.id
            ));
            continue;
        }
        let gained = flags & !row.flags;
        if gained != 0 {
            changes.flags.push((row.target_id, gained, m.id, flags));
        }
    }
    let gone = message_rows
        .keys()
        .filter(|id| !seen_messages.contains(id))
        .count();
    if gone > 0 {
        out.gone
            .push(format!("{gone} messages are gone from the original: kept"));
    }

    // Where the new messages go: the thread of the earlier messages with the same original
    // thread_id between the same two people, or a new one.
    let mut threads = Threads::default();
    let mut last_time = None;
    let mut next_message = next_id(db, message::Entity).await?;
    let urls: Vec<String> = new_messages.iter().filter_map(|m| m.url.clone()).collect();
    let urls_taken: HashSet<String> =
        existing(db, message::Entity, message::Column::PublicId, &urls)
            .await?
            .into_iter()
            .collect();
    let thread_ids: BTreeSet<String> = new_messages
        .iter()
        .filter_map(|m| m.thread_id.clone())
        .collect();
    let thread_ids: Vec<String> = thread_ids.into_iter().collect();
    let thread_ids_taken: HashSet<String> =
        existing(db, thread::Entity, thread::Column::PublicId, &thread_ids)
            .await?
            .into_iter()
            .collect();
    let mut urls_used = HashSet::new();
    let mut wanted: HashMap<(String, [i64; 2]), Option<i64>> = HashMap::new();
    let mut resolved = Vec::with_capacity(new_messages.len());
    for m in &new_messages {
        let key_of = |name: Option<&str>| {
            name.map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_lowercase)
        };
        let (s, r) = (key_of(m.sender.as_deref()), key_of(m.recipient.as_deref()));
        if let Some(name) = [&s, &r]
            .into_iter()
            .flatten()
            .find(|k| refused_names.contains(*k))
        {
            out.refused.push(format!(
                "message {}: names {name}, whose user row was refused above",
                m.id
            ));
            continue;
        }
        let sender = people
            .named(
                db,
                s.as_deref(),
                m.id,
                "sender",
                now,
                &mut out,
                &mut changes,
            )
            .await?;
        let recipient = people
            .named(
                db,
                r.as_deref(),
                m.id,
                "recipient",
                now,
                &mut out,
                &mut changes,
            )
            .await?;
        let pair = [sender.min(recipient), sender.max(recipient)];
        let original = m
            .thread_id
            .as_deref()
            .filter(|t| !t.is_empty() && t.len() <= 32)
            .map(str::to_owned);
        if let Some(t) = &original {
            wanted.insert((t.clone(), pair), None);
        }
        resolved.push((*m, sender, recipient, pair, original));
    }
    // The threads the earlier messages of those keys went to.
    let mut earlier: HashMap<i64, (String, [i64; 2])> = HashMap::new();
    for m in messages {
        let Some(row) = message_rows.get(&m.id) else {
            continue;
        };
        let Some(t) = m.thread_id.as_deref() else {
            continue;
        };
        let (Some(s), Some(r)) = (
            people.find(m.sender.as_deref()),
            people.find(m.recipient.as_deref()),
        ) else {
            continue;
        };
        let key = (t.to_owned(), [s.min(r), s.max(r)]);
        if wanted.get(&key) == Some(&None) {
            earlier.insert(row.target_id, key.clone());
            wanted.insert(key, Some(0));
        }
    }
    let ids: Vec<i64> = earlier.keys().copied().collect();
    for (id, thread_id) in threads_of(db, &ids).await? {
        if let Some(key) = earlier.get(&id) {
            wanted.insert(key.clone(), Some(thread_id));
        }
    }
    // Threads Missive wrote in since the last import: new original messages there would come
    // after Missive's, out of order.
    let existing: Vec<i64> = wanted
        .values()
        .filter_map(|t| t.filter(|&id| id > 0))
        .collect();
    let imported_messages: HashSet<i64> = message_rows.values().map(|r| r.target_id).collect();
    let mut written_since = HashSet::new();
    for chunk in existing.chunks(CHUNK) {
        let rows: Vec<(i64, i64)> = message::Entity::find()
            .select_only()
            .columns([message::Column::Id, message::Column::ThreadId])
            .filter(message::Column::ThreadId.is_in(chunk.to_vec()))
            .filter(message::Column::CreatedAt.gt(since))
            .into_tuple()
            .all(db)
            .await?;
        written_since.extend(
            rows.into_iter()
                .filter(|(id, _)| !imported_messages.contains(id))
                .map(|(_, thread)| thread),
        );
    }

    for (m, sender, recipient, pair, original) in resolved {
        let existing = original
            .as_ref()
            .and_then(|t| wanted.get(&(t.clone(), pair)).copied().flatten())
            .filter(|&id| id > 0);
        let created_at = match m.timestamp.as_deref().and_then(plan::parse_time) {
            Some(t) => t,
            None => {
                out.repairs.note(
                    "timestamp missing or unreadable: the previous message's time taken",
                    format!(
                        "message {} ({:?})",
                        m.id,
                        m.timestamp.as_deref().unwrap_or("NULL")
                    ),
                );
                last_time.unwrap_or(now)
            }
        };
        last_time = Some(created_at);
        let thread = match existing {
            Some(id) if written_since.contains(&id) => {
                out.refused.push(format!(
                    "message {}: its thread got messages in Missive since the last import; \
                     imported now, it would come after them",
                    m.id
                ));
                continue;
            }
            Some(id) => Target::Existing(id),
            None => {
                let key = original.clone().map(|t| (t, pair));
                match key.as_ref().and_then(|k| threads.by_key.get(k)) {
                    Some(&index) => Target::New(index),
                    None => {
                        let public_id = match &original {
                            Some(t)
                                if !thread_ids_taken.contains(t)
                                    && threads.public_ids.insert(t.clone()) =>
                            {
                                t.clone()
                            }
                            Some(t) => {
                                let fresh = threads.fresh_public_id();
                                out.repairs.note(
                                    "thread_id shared by messages of different users: a thread of their own with a fresh id",
                                    format!("message {} ({t} -> {fresh})", m.id),
                                );
                                fresh
                            }
                            None => {
                                let fresh = threads.fresh_public_id();
                                out.repairs.note(
                                    "thread_id NULL, empty or over 32 characters: a thread of its own with a fresh id",
                                    format!("message {} ({:?} -> {fresh})", m.id, m.thread_id.as_deref().unwrap_or("NULL")),
                                );
                                fresh
                            }
                        };
                        let subject = plan::subject(m, &public_id, &mut out.repairs);
                        let index = threads.rows.len();
                        threads.rows.push(NewThread {
                            public_id,
                            subject,
                            created_at,
                            pair,
                        });
                        if let Some(k) = key {
                            threads.by_key.insert(k, index);
                        }
                        Target::New(index)
                    }
                }
            }
        };
        let url = match m.url.as_deref().filter(|u| !u.is_empty() && u.len() <= 32) {
            Some(u) if !urls_taken.contains(u) && urls_used.insert(u.to_owned()) => u.to_owned(),
            original => {
                let fresh = ids::message_url();
                out.repairs.note(
                    match original {
                        None if m.url.is_none() => "url NULL: a fresh id given",
                        None => "url empty or over 32 characters: a fresh id given",
                        Some(_) => "url repeated from an earlier message: a fresh id given",
                    },
                    format!(
                        "message {} ({:?} -> {fresh})",
                        m.id,
                        m.url.as_deref().unwrap_or("NULL")
                    ),
                );
                fresh
            }
        };
        if m.body.is_none() {
            out.repairs
                .note("body NULL: taken as empty", format!("message {}", m.id));
        }
        people.seen(sender, created_at);
        people.seen(recipient, created_at);
        changes.messages.push(NewMessage {
            id: next_message,
            source: m.clone(),
            thread,
            url,
            sender,
            recipient,
            created_at,
        });
        next_message += 1;
    }
    out.threads = threads.rows.len();
    out.messages = changes.messages.len();
    out.read = changes.flags.iter().filter(|f| f.1 & READ != 0).count()
        + changes
            .messages
            .iter()
            .filter(|m| m.source.read == Some(true))
            .count();
    out.hidden = changes
        .flags
        .iter()
        .filter(|f| f.1 & (SENDER_DEL | RECIPIENT_DEL) != 0)
        .count();

    apply(db, origin, &people, &changes, threads).await?;
    Ok(out)
}

/// Where a new message goes.
#[derive(Clone, Copy)]
enum Target {
    Existing(i64),
    /// An index into [`Threads::rows`].
    New(usize),
}

struct NewMessage {
    id: i64,
    source: SourceMessage,
    thread: Target,
    url: String,
    sender: i64,
    recipient: i64,
    created_at: i64,
}

struct NewThread {
    public_id: String,
    subject: String,
    created_at: i64,
    pair: [i64; 2],
}

#[derive(Default)]
struct Threads {
    rows: Vec<NewThread>,
    by_key: HashMap<(String, [i64; 2]), usize>,
    public_ids: HashSet<String>,
}

impl Threads {
    fn fresh_public_id(&mut self) -> String {
        loop {
            let id = ids::public_id();
            if self.public_ids.insert(id.clone()) {
                return id;
            }
        }
    }
}

/// Everything an update writes.
#[derive(Default)]
struct Changes {
    /// (account, its new werkzeug hash, original user id, that hash's secret).
    passwords: Vec<(i64, Option<String>, i64, Option<String>)>,
    /// Placeholders taken over by a user row of their name.
    adopted: HashMap<i64, (Option<String>, SourceUser)>,
    /// New accounts (with their user row; a placeholder without).
    new_users: Vec<(i64, Option<SourceUser>)>,
    /// (message, flags gained, original id, its flags now).
    flags: Vec<(i64, i32, i64, i32)>,
    messages: Vec<NewMessage>,
}

impl Changes {
    fn is_new_user(&self, id: i64) -> bool {
        self.new_users.iter().any(|(u, _)| *u == id)
    }
}

/// id, username, websocket_id, password_hash, legacy_password_hash.
type AccountRow = (i64, String, String, Option<String>, Option<String>);

/// Missive's accounts by name, and those this update makes.
struct People {
    by_name: HashMap<String, i64>,
    accounts: HashMap<i64, Account>,
    websocket_ids: HashSet<String>,
    next_id: Option<i64>,
    made: Vec<user::Model>,
}

impl People {
    async fn load(db: &impl ConnectionTrait) -> Result<People, DbErr> {
        let rows: Vec<AccountRow> = user::Entity::find()
            .select_only()
            .columns([
                user::Column::Id,
                user::Column::Username,
                user::Column::WebsocketId,
                user::Column::PasswordHash,
                user::Column::LegacyPasswordHash,
            ])
            .into_tuple()
            .all(db)
            .await?;
        let mut people = People {
            by_name: HashMap::with_capacity(rows.len()),
            accounts: HashMap::with_capacity(rows.len()),
            websocket_ids: HashSet::with_capacity(rows.len()),
            next_id: None,
            made: Vec::new(),
        };
        for (id, name, websocket_id, password_hash, legacy) in rows {
            people.by_name.insert(name.to_lowercase(), id);
            people.websocket_ids.insert(websocket_id);
            people.accounts.insert(
                id,
                Account {
                    password_hash,
                    legacy,
                },
            );
        }
        Ok(people)
    }

    fn find(&self, name: Option<&str>) -> Option<i64> {
        let key = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(UNKNOWN_USER)
            .to_lowercase();
        self.by_name.get(&key).copied()
    }

    fn imported_or_new(
        &self,
        id: i64,
        imported: &HashSet<i64>,
        placeholders: &HashSet<i64>,
    ) -> bool {
        imported.contains(&id) || placeholders.contains(&id) || self.made.iter().any(|u| u.id == id)
    }

    /// `u`'s own websocket_id when no account has it, else a fresh one.
    fn websocket_id(&mut self, u: &SourceUser, name: &str, repairs: &mut Repairs) -> String {
        plan::websocket_id(u, name, &mut self.websocket_ids, repairs)
    }

    fn fresh_websocket_id(&mut self) -> String {
        plan::fresh_websocket_id(&mut self.websocket_ids)
    }

    async fn add(
        &mut self,
        db: &impl ConnectionTrait,
        key: String,
        legacy: Option<String>,
        websocket_id: String,
        now: i64,
    ) -> Result<i64, DbErr> {
        let id = match self.next_id {
            Some(id) => id,
            None => next_id(db, user::Entity).await?,
        };
        self.next_id = Some(id + 1);
        self.by_name.insert(key.clone(), id);
        self.made
            .push(plan::account(id, key, legacy, websocket_id, now));
        Ok(id)
    }

    /// The account `key` names, a placeholder made when there is none.
    #[allow(clippy::too_many_arguments)]
    async fn named(
        &mut self,
        db: &impl ConnectionTrait,
        key: Option<&str>,
        message: i64,
        side: &str,
        now: i64,
        out: &mut Update,
        changes: &mut Changes,
    ) -> Result<i64, DbErr> {
        let name = key.unwrap_or(UNKNOWN_USER).to_lowercase();
        if let Some(&id) = self.by_name.get(&name) {
            return Ok(id);
        }
        let websocket_id = self.fresh_websocket_id();
        let id = self.add(db, name.clone(), None, websocket_id, now).await?;
        changes.new_users.push((id, None));
        out.placeholders += 1;
        match key {
            Some(_) => out.repairs.note(
                "username with no user row: a placeholder account made (cannot log in)",
                format!("{name} (first named as {side} of message {message})"),
            ),
            None => out.repairs.note(
                "sender or recipient NULL: a placeholder account made (cannot log in)",
                format!("{UNKNOWN_USER} (first for the {side} of message {message})"),
            ),
        }
        Ok(id)
    }

    /// New accounts are dated by their first message.
    fn seen(&mut self, id: i64, time: i64) {
        if let Some(u) = self.made.iter_mut().find(|u| u.id == id) {
            u.created_at = u.created_at.min(time);
        }
    }
}

/// The thread of each of the messages `ids`.
async fn threads_of(db: &impl ConnectionTrait, ids: &[i64]) -> Result<HashMap<i64, i64>, DbErr> {
    let mut threads = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let rows: Vec<(i64, i64)> = message::Entity::find()
            .select_only()
            .columns([message::Column::Id, message::Column::ThreadId])
            .filter(message::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        threads.extend(rows);
    }
    Ok(threads)
}

/// One member's view of a thread while the changes are applied to it.
struct Member {
    row: participant::Model,
    below_mark: BTreeSet<i64>,
    hidden: HashSet<i64>,
    new_hides: Vec<i64>,
}

/// A thread while the changes are applied to it: its messages (sender, recipient) by id.
struct Settling {
    row: thread::Model,
    known: bool,
    messages: BTreeMap<i64, (i64, i64)>,
    members: Vec<Member>,
    /// Whether it gained messages.
    grew: bool,
}

impl Settling {
    fn received(&self, member: i64, id: i64) -> bool {
        self.messages
            .get(&id)
            .is_some_and(|&(s, r)| r == member && s != member)
    }

    fn member(&mut self, user: i64) -> Option<usize> {
        self.members.iter().position(|m| m.row.user_id == user)
    }

    fn is_read(m: &Member, id: i64) -> bool {
        id <= m.row.read_up_to && !m.below_mark.contains(&id)
    }

    fn is_hidden(m: &Member, id: i64) -> bool {
        id <= m.row.hidden_before || m.hidden.contains(&id)
    }

    fn add(&mut self, message: &NewMessage) {
        self.messages
            .insert(message.id, (message.sender, message.recipient));
        self.grew = true;
        self.row.last_message_id = Some(message.id);
        self.row.updated_at = self.row.updated_at.max(message.created_at);
        let alone = self.members.len() == 1;
        for m in &mut self.members {
            m.row.last_message_id = message.id;
            if alone {
                m.row.read_up_to = message.id;
            } else if m.row.user_id == message.recipient && message.sender != message.recipient {
                m.row.unread += 1;
            }
        }
        let s = &message.source;
        if s.read == Some(true) {
            self.read(message.recipient, message.id);
        }
        let note = message.sender == message.recipient;
        if s.sender_del == Some(true) || (note && s.recipient_del == Some(true)) {
            self.hide(message.sender, message.id);
        }
        if s.recipient_del == Some(true) || (note && s.sender_del == Some(true)) {
            self.hide(message.recipient, message.id);
        }
    }

    /// `reader` read message `id` (as the original's `read` flag says).
    fn read(&mut self, reader: i64, id: i64) {
        if !self.received(reader, id) {
            return;
        }
        let between: Vec<i64> = {
            let Some(i) = self.member(reader) else { return };
            let m = &self.members[i];
            if Self::is_read(m, id) {
                return;
            }
            let above = m.row.read_up_to.saturating_add(1);
            self.messages
                .range(above.min(id)..id)
                .filter(|&(_, &(s, r))| r == reader && s != reader)
                .map(|(&k, _)| k)
                .collect()
        };
        let Some(i) = self.member(reader) else { return };
        let m = &mut self.members[i];
        let counted = !Self::is_hidden(m, id);
        if id > m.row.read_up_to {
            m.below_mark.extend(between);
            m.row.read_up_to = id;
        } else {
            m.below_mark.remove(&id);
        }
        if counted {
            m.row.unread = (m.row.unread - 1).max(0);
        }
    }

    /// `user` deleted message `id` for themselves.
    fn hide(&mut self, user: i64, id: i64) {
        let received = self.received(user, id);
        let last = self.row.last_message_id.unwrap_or(0);
        let Some(i) = self.member(user) else { return };
        let m = &mut self.members[i];
        if Self::is_hidden(m, id) {
            return;
        }
        if received && !Self::is_read(m, id) {
            m.row.unread = (m.row.unread - 1).max(0);
        }
        m.hidden.insert(id);
        m.new_hides.push(id);
        let after = m.row.hidden_before.max(m.row.joined_after);
        let everything_hidden = self
            .messages
            .range(after + 1..)
            .all(|(k, _)| m.hidden.contains(k));
        if everything_hidden {
            // Nothing left to show: out of the inbox, as Missive hides such a thread.
            m.row.hidden_before = last;
            m.row.read_up_to = m.row.read_up_to.max(last);
            m.row.unread = 0;
            m.below_mark.clear();
        }
    }
}

/// Writes `changes`: accounts, threads, messages, then each affected member's read mark,
/// unread count and deletions, and what the rows are now.
async fn apply(
    db: &impl ConnectionTrait,
    origin: &str,
    people: &People,
    changes: &Changes,
    threads: Threads,
) -> Result<(), DbErr> {
    // Accounts.
    let mut made = people.made.clone();
    for u in &mut made {
        if u.created_at == i64::MAX {
            u.created_at = ids::now_micros();
        }
    }
    use user::Column as U;
    super::insert_users(db, made.iter()).await?;
    let mut new_rows = Vec::new();
    for (id, source) in &changes.new_users {
        new_rows.push(match source {
            Some(u) => rows::of_user(u, *id),
            None => rows::of_placeholder(*id),
        });
    }
    for (&id, (legacy, u)) in &changes.adopted {
        user::Entity::update_many()
            .col_expr(U::LegacyPasswordHash, Expr::value(legacy.clone()))
            .filter(U::Id.eq(id))
            .exec(db)
            .await?;
        import_row::Entity::delete_many()
            .filter(import_row::Column::Origin.eq(origin))
            .filter(import_row::Column::Kind.eq(PLACEHOLDER))
            .filter(import_row::Column::SourceId.eq(id))
            .exec(db)
            .await?;
        new_rows.push(rows::of_user(u, id));
    }
    for (id, legacy, source_id, secret) in &changes.passwords {
        user::Entity::update_many()
            .col_expr(U::LegacyPasswordHash, Expr::value(legacy.clone()))
            .filter(U::Id.eq(*id))
            .exec(db)
            .await?;
        row_of(origin, USER, *source_id)
            .col_expr(import_row::Column::Secret, Expr::value(secret.clone()))
            .exec(db)
            .await?;
    }

    // The threads concerned, with their messages and members.
    let mut old_threads: BTreeSet<i64> = changes
        .messages
        .iter()
        .filter_map(|m| match m.thread {
            Target::Existing(id) => Some(id),
            Target::New(_) => None,
        })
        .collect();
    let flagged: Vec<i64> = changes.flags.iter().map(|f| f.0).collect();
    let flagged_threads = threads_of(db, &flagged).await?;
    old_threads.extend(flagged_threads.values().copied());
    let mut settling: BTreeMap<i64, Settling> = BTreeMap::new();
    let old: Vec<i64> = old_threads.into_iter().collect();
    for chunk in old.chunks(CHUNK / 4) {
        for row in thread::Entity::find()
            .filter(thread::Column::Id.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            settling.insert(
                row.id,
                Settling {
                    row,
                    known: true,
                    messages: BTreeMap::new(),
                    members: Vec::new(),
                    grew: false,
                },
            );
        }
        let messages: Vec<(i64, i64, i64, i64)> = message::Entity::find()
            .select_only()
            .columns([
                message::Column::Id,
                message::Column::ThreadId,
                message::Column::SenderId,
                message::Column::RecipientId,
            ])
            .filter(message::Column::ThreadId.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        for (id, thread, sender, recipient) in messages {
            if let Some(t) = settling.get_mut(&thread) {
                t.messages.insert(id, (sender, recipient));
            }
        }
        // Each member's unread-below-mark and hidden messages, a few queries per chunk.
        let mut below_mark: HashMap<(i64, i64), BTreeSet<i64>> = HashMap::new();
        let rows: Vec<(i64, i64, i64)> = unread_below_mark::Entity::find()
            .select_only()
            .columns([
                unread_below_mark::Column::ThreadId,
                unread_below_mark::Column::UserId,
                unread_below_mark::Column::MessageId,
            ])
            .filter(unread_below_mark::Column::ThreadId.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        for (thread, user, message) in rows {
            below_mark
                .entry((thread, user))
                .or_default()
                .insert(message);
        }
        let ids: Vec<i64> = chunk
            .iter()
            .filter_map(|t| settling.get(t))
            .flat_map(|t| t.messages.keys().copied())
            .collect();
        let mut hidden: HashMap<i64, HashSet<i64>> = HashMap::new();
        for ids in ids.chunks(CHUNK) {
            let rows: Vec<(i64, i64)> = message_hide::Entity::find()
                .select_only()
                .columns([
                    message_hide::Column::UserId,
                    message_hide::Column::MessageId,
                ])
                .filter(message_hide::Column::MessageId.is_in(ids.to_vec()))
                .into_tuple()
                .all(db)
                .await?;
            for (user, message) in rows {
                hidden.entry(user).or_default().insert(message);
            }
        }
        for row in participant::Entity::find()
            .filter(participant::Column::ThreadId.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            let thread = row.thread_id;
            let user = row.user_id;
            let Some(t) = settling.get_mut(&thread) else {
                continue;
            };
            let hidden = hidden
                .get(&user)
                .map(|h| {
                    h.iter()
                        .copied()
                        .filter(|id| t.messages.contains_key(id))
                        .collect()
                })
                .unwrap_or_default();
            t.members.push(Member {
                row,
                below_mark: below_mark.remove(&(thread, user)).unwrap_or_default(),
                hidden,
                new_hides: Vec::new(),
            });
        }
    }
    let first_new = settling
        .keys()
        .next_back()
        .copied()
        .unwrap_or(0)
        .max(next_id(db, thread::Entity).await? - 1)
        + 1;
    let mut new_ids = Vec::with_capacity(threads.rows.len());
    for (k, t) in threads.rows.into_iter().enumerate() {
        let id = first_new + k as i64;
        new_ids.push(id);
        let member = |user_id: i64| Member {
            row: participant::Model {
                thread_id: id,
                user_id,
                last_message_id: 0,
                read_up_to: 0,
                hidden_before: 0,
                unread: 0,
                joined_after: 0,
                member_until: None,
                joined_at: t.created_at,
                muted_until: None,
            },
            below_mark: BTreeSet::new(),
            hidden: HashSet::new(),
            new_hides: Vec::new(),
        };
        let mut members = vec![member(t.pair[0])];
        if t.pair[1] != t.pair[0] {
            members.push(member(t.pair[1]));
        }
        settling.insert(
            id,
            Settling {
                row: thread::Model {
                    id,
                    public_id: t.public_id,
                    subject: t.subject,
                    created_at: t.created_at,
                    updated_at: t.created_at,
                    last_message_id: None,
                    kind: ThreadKind::DIRECT.to_owned(),
                    created_by: Some(t.pair[0]),
                    version: 0,
                },
                known: false,
                messages: BTreeMap::new(),
                members,
                grew: false,
            },
        );
    }

    // The changes, in the original's order: flags on earlier messages first (they were set
    // on messages older than every new one), then the new messages.
    let mut flags: Vec<&(i64, i32, i64, i32)> = changes.flags.iter().collect();
    flags.sort_by_key(|f| f.0);
    for &&(id, gained, source_id, now_flags) in &flags {
        let Some(t) = flagged_threads.get(&id).and_then(|t| settling.get_mut(t)) else {
            continue;
        };
        let (sender, recipient) = t.messages.get(&id).copied().unwrap_or_default();
        let note = sender == recipient;
        if gained & READ != 0 {
            t.read(recipient, id);
        }
        if gained & SENDER_DEL != 0 || (note && gained & RECIPIENT_DEL != 0) {
            t.hide(sender, id);
        }
        if gained & RECIPIENT_DEL != 0 || (note && gained & SENDER_DEL != 0) {
            t.hide(recipient, id);
        }
        row_of(origin, MESSAGE, source_id)
            .col_expr(import_row::Column::Flags, Expr::value(now_flags))
            .exec(db)
            .await?;
    }
    let thread_of = |target: Target| match target {
        Target::Existing(id) => id,
        Target::New(k) => new_ids[k],
    };
    for m in &changes.messages {
        if let Some(t) = settling.get_mut(&thread_of(m.thread)) {
            t.add(m);
        }
        new_rows.push(rows::of_message(&m.source, m.id));
    }

    // Threads, messages, members.
    let new_threads: Vec<&thread::Model> = settling
        .values()
        .filter(|t| !t.known)
        .map(|t| &t.row)
        .collect();
    super::insert_threads(db, new_threads.into_iter()).await?;
    for t in settling.values().filter(|t| t.known && t.grew) {
        thread::Entity::update_many()
            .col_expr(
                thread::Column::LastMessageId,
                Expr::value(t.row.last_message_id),
            )
            .col_expr(thread::Column::UpdatedAt, Expr::value(t.row.updated_at))
            .filter(thread::Column::Id.eq(t.row.id))
            .exec(db)
            .await?;
    }
    let messages: Vec<message::Model> = changes
        .messages
        .iter()
        .map(|m| message::Model {
            id: m.id,
            public_id: m.url.clone(),
            thread_id: thread_of(m.thread),
            sender_id: m.sender,
            recipient_id: m.recipient,
            body: m.source.body.clone().unwrap_or_default(),
            created_at: m.created_at,
            client_id: None,
            edited_at: None,
            reactions: None,
            removed_at: None,
            reply_to_id: None,
            reply_to: None,
        })
        .collect();
    super::insert_messages(db, &messages, &|_| {}).await?;
    crate::domain::search::index(db, messages.iter().map(|m| (m.id, m.body.as_str()))).await?;
    // Every member's row, new or changed, written by multi-row upserts; the unread-below-mark
    // rows of the threads concerned written anew below.
    let known: Vec<i64> = settling
        .values()
        .filter(|t| t.known)
        .map(|t| t.row.id)
        .collect();
    for chunk in known.chunks(CHUNK) {
        unread_below_mark::Entity::delete_many()
            .filter(unread_below_mark::Column::ThreadId.is_in(chunk.to_vec()))
            .exec(db)
            .await?;
    }
    let members: Vec<participant::Model> = settling
        .values()
        .flat_map(|t| t.members.iter().map(|m| m.row.clone()))
        .collect();
    super::upsert_participants(db, members.iter()).await?;
    let hides: Vec<message_hide::Model> = settling
        .values()
        .flat_map(|t| t.members.iter())
        .flat_map(|m| {
            m.new_hides
                .iter()
                .filter(|&&id| id > m.row.hidden_before || m.hidden.contains(&id))
                .map(|&id| message_hide::Model {
                    user_id: m.row.user_id,
                    message_id: id,
                })
        })
        .collect();
    super::insert_hides(db, hides.iter()).await?;
    let below: Vec<unread_below_mark::Model> = settling
        .values()
        .flat_map(|t| t.members.iter())
        .flat_map(|m| {
            m.below_mark.iter().map(|&id| unread_below_mark::Model {
                user_id: m.row.user_id,
                thread_id: m.row.thread_id,
                message_id: id,
            })
        })
        .collect();
    super::insert_below_mark(db, below.iter()).await?;
    super::insert_rows(db, origin, new_rows.iter()).await
}

/// The `import_rows` row of an original row, to update.
fn row_of(origin: &str, kind: i16, source_id: i64) -> sea_orm::UpdateMany<import_row::Entity> {
    import_row::Entity::update_many()
        .filter(import_row::Column::Origin.eq(origin))
        .filter(import_row::Column::Kind.eq(kind))
        .filter(import_row::Column::SourceId.eq(source_id))
}
