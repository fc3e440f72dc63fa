//! What a batch of replies carries and hands back, on either backend, and the events of a
//! stored message: the toolkit of the batch writers (`sqlite_batch`, `postgres_batch`), the
//! group commit and a new thread's first message.

use std::collections::HashMap;
use std::sync::Arc;

use entity::{message, participant, thread};

use super::SendOutcome;
use super::directory::ThreadMeta;
use crate::domain::events::{NewMessage, Notice, ServerEvent};
use crate::domain::views::{Rendered, ThreadContext, UnreadCounts, UserRef};
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
}

/// What one committed batch of replies left in the database.
pub(super) struct BatchWrite {
    /// The stored messages by url; a reply whose `client_id` was used before is absent.
    pub messages: HashMap<String, message::Model>,
    /// Every participant row of the batch's threads, after the batch.
    pub participants: Vec<participant::Model>,
    /// Unread totals of the recipients (users with nothing unread are absent).
    pub unread: HashMap<i64, UnreadCounts>,
    /// Positions of the batch's event log entries.
    pub offsets: Offsets,
}

/// What a batch's statements hand back, on SQLite and PostgreSQL alike: rows whose `kind` says
/// each is a stored message (`id`, `public_id`, `created_at`), a participant row after the
/// batch, a user's new event log head (`user_id`, `seq`) or a recipient's unread totals
/// (`user_id`, `messages`, `threads`).
pub(super) fn read_batch(
    results: Vec<sea_orm::QueryResult>,
    batch: &[Reply],
    urls: &[String],
) -> DomainResult<BatchWrite> {
    use sea_orm::FromQueryResult;
    let by_url: HashMap<&str, &Reply> = urls.iter().map(String::as_str).zip(batch).collect();
    let mut written = BatchWrite {
        messages: HashMap::with_capacity(batch.len()),
        participants: Vec::new(),
        unread: HashMap::new(),
        offsets: Offsets::new(),
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
                );
                written.messages.insert(url, stored);
            }
            "participant" => written
                .participants
                .push(participant::Model::from_query_result(&row, "")?),
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
    written.offsets = numbered(&written, batch, &heads);
    Ok(written)
}

/// The positions of a batch's event log entries, numbered as its statement did, back from
/// each user's new head: a `message:new` for each stored message of the user's threads, in id
/// order, then an `unread` if the user received one.
fn numbered(written: &BatchWrite, batch: &[Reply], heads: &HashMap<i64, i64>) -> Offsets {
    let mut offsets = Offsets::new();
    if heads.is_empty() {
        return offsets;
    }
    let members: HashMap<i64, &[UserRef]> = batch
        .iter()
        .map(|r| (r.meta.id, r.meta.members.as_slice()))
        .collect();
    let mut stored: Vec<&message::Model> = written.messages.values().collect();
    stored.sort_unstable_by_key(|m| m.id);
    let mut entries: HashMap<i64, Vec<Option<i64>>> = HashMap::new();
    for m in &stored {
        for member in members.get(&m.thread_id).copied().unwrap_or_default() {
            entries.entry(member.id).or_default().push(Some(m.id));
        }
    }
    let mut recipients: Vec<i64> = stored
        .iter()
        .filter(|m| m.sender_id != m.recipient_id)
        .map(|m| m.recipient_id)
        .collect();
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

/// The row of `reply` stored under `url`; `id` and `created_at` come from the database.
pub(super) fn message_row(reply: &Reply, url: &str, id: i64, created_at: i64) -> message::Model {
    message::Model {
        id,
        public_id: url.to_owned(),
        thread_id: reply.meta.id,
        sender_id: reply.sender.id,
        recipient_id: recipient_of(reply),
        body: reply.body.clone(),
        created_at,
        client_id: reply.client_id.clone(),
    }
}

/// The other member of the reply's thread (the sender, in a thread with oneself).
pub(super) fn recipient_of(reply: &Reply) -> i64 {
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

/// The outcome of a stored message, and its events as each participant sees them.
pub(super) fn delivered(
    meta: &ThreadMeta,
    message: &message::Model,
    rows: Vec<participant::Model>,
    unread: &HashMap<i64, UnreadCounts>,
    offsets: &Offsets,
) -> DomainResult<Delivered> {
    let ctx = ThreadContext {
        thread: thread::Model {
            id: meta.id,
            public_id: meta.public_id.clone(),
            subject: meta.subject.clone(),
            created_at: meta.created_at,
            updated_at: message.created_at,
            last_message_id: Some(message.id),
        },
        members: rows
            .into_iter()
            .filter_map(|p| {
                meta.members
                    .iter()
                    .find(|m| m.id == p.user_id)
                    .map(|m| (p, m.clone()))
            })
            .collect(),
    };
    let view = ctx.message_view(message);
    let rendered = Rendered::of(&view).map_err(|e| DomainError::Internal(e.to_string()))?;
    let mut news = Vec::with_capacity(ctx.members.len());
    let mut totals = Vec::new();
    for (_, member) in &ctx.members {
        let event = NewMessage {
            message: rendered.clone(),
            thread: ctx.thread_view_with(member.id, Some(rendered.clone())),
            message_id: message.id,
            url: message.public_id.clone(),
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
