//! What a batch of replies carries and hands back, on either backend, and the events of a
//! stored message: the toolkit of the batch writers (`sqlite_batch`, `postgres_batch`), the
//! group commit and a new thread's first message.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use entity::{message, participant, thread};
use sea_orm::DbBackend;

use super::SendOutcome;
use super::directory::ThreadMeta;
use crate::domain::events::{NewMessage, Notice, ServerEvent};
use crate::domain::views::{
    EXCERPT_CHARS, Member, Rendered, ThreadContext, ThreadKind, UnreadCounts, UserRef,
};
use crate::domain::{DomainError, DomainResult};

/// Positions in the event log of a write's entries, by user and message: a `message:new`
/// under `(user, Some(message))`, an `unread` under `(user, None)`.
pub(super) type Offsets = HashMap<(i64, Option<i64>), i64>;

/// One reply waiting for the group commit.
pub struct Reply {
    pub sender: UserRef,
    pub meta: Arc<ThreadMeta>,
    pub body: String,
    pub client_id: Option<String>,
    /// The message it answers (of the same thread, seen by the sender).
    pub reply_to_id: Option<i64>,
    /// Its body's search terms (`search::terms`), cut before it joins a batch.
    pub terms: String,
}

/// A member's participant row as a batch hands it back, with what views need of them.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub row: participant::Model,
    /// Whether they send and see read receipts.
    pub receipts: bool,
    /// The url of their last read message.
    pub read_url: Option<String>,
}

/// What one committed batch of replies left in the database.
pub(super) struct BatchWrite {
    /// The stored messages by url; a reply whose `client_id` was used before, or whose thread
    /// changed since its sender's copy, is absent.
    pub messages: HashMap<String, message::Model>,
    /// Each thread of the batch's version at its commit.
    pub versions: HashMap<i64, i64>,
    /// The current members' rows of the threads that got a message, after the batch.
    pub participants: Vec<MemberRow>,
    /// Unread totals of the recipients (users with nothing unread are absent).
    pub unread: HashMap<i64, UnreadCounts>,
    /// Positions of the batch's event log entries.
    pub offsets: Offsets,
    /// The members who hear nothing of a stored message, as `(user, message)`: they block its
    /// sender. It is hidden for them (`message_hides`), for good.
    pub hidden: Hidden,
}

/// Members who do not hear of a message, as `(user, message)` (they block its sender).
pub type Hidden = HashSet<(i64, i64)>;

/// What a batch's statements hand back, on SQLite and PostgreSQL alike: rows whose `kind` says
/// each is a stored message (`id`, `public_id`, `created_at`), a thread's version
/// (`thread_id`, `version`), a member's participant row after the batch (with `receipts` and
/// `read_url`), a user's new event log head (`user_id`, `seq`), a message hidden from a member
/// who blocks its sender (`user_id`, `id`) or a recipient's unread totals (`user_id`,
/// `messages`, `threads`).
pub(super) fn read_batch(
    results: Vec<sea_orm::QueryResult>,
    batch: &[Reply],
    urls: &[String],
) -> DomainResult<BatchWrite> {
    use sea_orm::FromQueryResult;
    let by_url: HashMap<&str, &Reply> = urls.iter().map(String::as_str).zip(batch).collect();
    let mut written = BatchWrite {
        messages: HashMap::with_capacity(batch.len()),
        versions: HashMap::new(),
        participants: Vec::new(),
        unread: HashMap::new(),
        offsets: Offsets::new(),
        hidden: Hidden::new(),
    };
    let mut heads: HashMap<i64, i64> = HashMap::new();
    for row in results {
        let kind: String = row.try_get("", "kind")?;
        match kind.as_str() {
            "message" => {
                let url: String = row.try_get("", "public_id")?;
                let reply = by_url.get(url.as_str()).ok_or_else(|| {
                    DomainError::Internal(format!("the batch stored an unknown message {url}"))
                })?;
                let stored = message_row(
                    reply,
                    &url,
                    row.try_get("", "id")?,
                    row.try_get("", "created_at")?,
                    row.try_get("", "reply_to")?,
                );
                written.messages.insert(url, stored);
            }
            "thread" => {
                written
                    .versions
                    .insert(row.try_get("", "thread_id")?, row.try_get("", "version")?);
            }
            "participant" => written.participants.push(MemberRow {
                row: participant::Model::from_query_result(&row, "")?,
                receipts: row.try_get("", "receipts")?,
                read_url: row.try_get("", "read_url")?,
            }),
            "hidden" => {
                written
                    .hidden
                    .insert((row.try_get("", "user_id")?, row.try_get("", "id")?));
            }
            "head" => {
                heads.insert(row.try_get("", "user_id")?, row.try_get("", "seq")?);
            }
            _ => {
                written.unread.insert(
                    row.try_get("", "user_id")?,
                    UnreadCounts {
                        messages: row.try_get("", "messages")?,
                        threads: row.try_get("", "threads")?,
                    },
                );
            }
        }
    }
    written.offsets = numbered(&written, &heads);
    Ok(written)
}

/// The positions of a batch's event log entries, numbered as its statement did, back from
/// each user's new head: a `message:new` for each stored message of the user's threads, in id
/// order (but those hidden from them), then an `unread` if the user received one.
fn numbered(written: &BatchWrite, heads: &HashMap<i64, i64>) -> Offsets {
    let mut offsets = Offsets::new();
    if heads.is_empty() {
        return offsets;
    }
    let mut members: HashMap<i64, Vec<i64>> = HashMap::new();
    for p in &written.participants {
        members
            .entry(p.row.thread_id)
            .or_default()
            .push(p.row.user_id);
    }
    let mut stored: Vec<&message::Model> = written.messages.values().collect();
    stored.sort_unstable_by_key(|m| m.id);
    let mut entries: HashMap<i64, Vec<Option<i64>>> = HashMap::new();
    let mut recipients: Vec<i64> = Vec::new();
    for m in &stored {
        for &member in members
            .get(&m.thread_id)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if written.hidden.contains(&(member, m.id)) {
                continue;
            }
            entries.entry(member).or_default().push(Some(m.id));
            if member != m.sender_id {
                recipients.push(member);
            }
        }
    }
    recipients.sort_unstable();
    recipients.dedup();
    for r in recipients {
        entries.entry(r).or_default().push(None);
    }
    for (user, list) in entries {
        let Some(head) = heads.get(&user) else {
            continue;
        };
        let first = head - list.len() as i64 + 1;
        for (i, entry) in list.into_iter().enumerate() {
            offsets.insert((user, entry), first + i as i64);
        }
    }
    offsets
}

/// What a reply shows of the message `id` (an SQL expression) that it answers: `views::ReplyTo`
/// as JSON text, its excerpt the body's first [`EXCERPT_CHARS`] characters, null once removed;
/// null when there is no such message. The batch writers store it with a reply, and an edit or
/// a removal writes it again into the replies.
pub(super) fn quote(backend: DbBackend, id: &str) -> String {
    use crate::domain::views::DELETED_USER;
    let (object, cut) = match backend {
        DbBackend::Postgres => (
            "json_build_object",
            format!("left(a.body, {EXCERPT_CHARS})"),
        ),
        _ => ("json_object", format!("substr(a.body, 1, {EXCERPT_CHARS})")),
    };
    let text = if backend == DbBackend::Postgres {
        "::text"
    } else {
        ""
    };
    format!(
        "(SELECT {object}('url', a.public_id, 'sender', \
         CASE WHEN u.deleted_at IS NULL THEN u.username ELSE '{DELETED_USER}' END, 'excerpt', \
         CASE WHEN a.removed_at IS NULL THEN {cut} END){text} \
         FROM messages a JOIN users u ON u.id = a.sender_id WHERE a.id = {id})"
    )
}

/// The row of `reply` stored under `url`; `id`, `created_at` and what it shows of the message
/// it answers come from the database.
pub(super) fn message_row(
    reply: &Reply,
    url: &str,
    id: i64,
    created_at: i64,
    reply_to: Option<String>,
) -> message::Model {
    message::Model {
        id,
        public_id: url.to_owned(),
        thread_id: reply.meta.id,
        sender_id: reply.sender.id,
        recipient_id: recipient_of(reply),
        body: reply.body.clone(),
        created_at,
        client_id: reply.client_id.clone(),
        edited_at: None,
        reactions: None,
        removed_at: None,
        reply_to_id: reply.reply_to_id,
        reply_to,
    }
}

/// What a reply stores as its recipient: the other member of a direct thread (the sender, in
/// a thread with oneself); the sender in a group, which has no single recipient (the column
/// predates groups; views show none).
pub(super) fn recipient_of(reply: &Reply) -> i64 {
    if reply.meta.kind == ThreadKind::Group {
        return reply.sender.id;
    }
    reply
        .meta
        .members
        .iter()
        .map(|m| m.id)
        .find(|id| *id != reply.sender.id)
        .unwrap_or(reply.sender.id)
}

/// A stored message: the sender's outcome, and what its participants hear.
pub struct Delivered {
    pub outcome: SendOutcome,
    /// `message:new` to every participant.
    pub news: Vec<Notice>,
    /// The recipient's new unread totals (the same totals for each message of a commit: the
    /// commit sends them once per user).
    pub totals: Vec<Notice>,
}

impl Delivered {
    /// A repeated `client_id`: the first message, and nothing to hear.
    pub fn repeated(message: crate::domain::views::MessageView) -> Delivered {
        Delivered {
            outcome: SendOutcome::Repeated { message },
            news: Vec::new(),
            totals: Vec::new(),
        }
    }
}

/// The outcome of a stored message, and its events as each member (`rows`, the members the
/// commit found) sees them; a member it is `hidden` from hears nothing.
pub(super) fn delivered(
    meta: &ThreadMeta,
    message: &message::Model,
    rows: Vec<MemberRow>,
    unread: &HashMap<i64, UnreadCounts>,
    offsets: &Offsets,
    hidden: &Hidden,
) -> DomainResult<Delivered> {
    let ctx = ThreadContext {
        thread: thread::Model {
            id: meta.id,
            public_id: meta.public_id.clone(),
            subject: meta.subject.clone(),
            created_at: meta.created_at,
            updated_at: message.created_at,
            last_message_id: Some(message.id),
            kind: meta.kind.stored().to_owned(),
            created_by: meta.created_by,
            version: meta.version,
        },
        members: rows
            .into_iter()
            .filter_map(|p| {
                let user = meta.members.iter().find(|m| m.id == p.row.user_id)?.clone();
                Some(Member {
                    row: p.row,
                    user,
                    receipts: p.receipts,
                    read_url: p.read_url,
                })
            })
            .collect(),
    };
    let render = |viewer: i64| {
        let view = ctx.message_view(message, viewer);
        let rendered = Rendered::of(&view).map_err(|e| DomainError::Internal(e.to_string()))?;
        Ok::<_, DomainError>((view, rendered))
    };
    // The sender's view; in a group each other member's says unread (read is the viewer's).
    let (view, rendered) = render(message.sender_id)?;
    let others = match ctx.same_for_all() {
        true => rendered.clone(),
        false => render(-1)?.1,
    };
    let mut news = Vec::with_capacity(ctx.members.len());
    let mut totals = Vec::new();
    for member in &ctx.members {
        let member = &member.user;
        if hidden.contains(&(member.id, message.id)) {
            continue;
        }
        let seen = match member.id == message.sender_id {
            true => &rendered,
            false => &others,
        };
        let event = NewMessage {
            message: seen.clone(),
            thread: ctx.thread_view_with(member.id, Some(seen.clone())),
            message_id: message.id,
            url: message.public_id.clone(),
            sender_id: message.sender_id,
        };
        news.push(Notice {
            to: member.clone(),
            offset: offsets.get(&(member.id, Some(message.id))).copied(),
            event: Box::new(event),
        });
        if member.id != message.sender_id {
            totals.push(Notice {
                to: member.clone(),
                offset: offsets.get(&(member.id, None)).copied(),
                event: Box::new(unread.get(&member.id).copied().unwrap_or_default()),
            });
        }
    }
    Ok(Delivered {
        outcome: SendOutcome::Created {
            message: view,
            rendered,
        },
        news,
        totals,
    })
}

/// A batch statement with the names of the events it logs put in (`{NEW}`, `{UNREAD}`).
pub(super) fn with_event_names(sql: &str) -> String {
    sql.replace("{NEW}", NewMessage::NAME)
        .replace("{UNREAD}", <UnreadCounts as ServerEvent>::NAME)
}
