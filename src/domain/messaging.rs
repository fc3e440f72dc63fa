//! Private threads: sending, reading, listing and per-user deletion.
//!
//! Every write is one transaction; callers notify only after it commits.

use std::collections::HashMap;

use entity::{message, message_hide, participant, thread, user};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};
use serde::Deserialize;

use super::group_commit::GroupCommit;
use super::views::{MessageView, Rendered, ThreadContext, ThreadView, UnreadCounts, UserRef};
use super::{DomainError, DomainResult, accounts};
use crate::db::Database;
use crate::ids;

/// Longest subject of a new thread, in characters.
pub const MAX_SUBJECT: usize = 70;
/// Longest client-chosen idempotency key.
const MAX_CLIENT_ID: usize = 64;
/// Largest page of threads or messages.
pub const MAX_PAGE: u64 = 100;

/// A new thread (`recipient` + `subject`) or a reply (`thread_id`), as POST /messages and
/// `message:send` take it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    pub recipient: Option<String>,
    pub subject: Option<String>,
    pub thread_id: Option<String>,
    pub body: String,
    pub client_id: Option<String>,
}

/// What a participant needs to hear about a new message.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub user: UserRef,
    /// The thread as the participant sees it, the new message last.
    pub thread: ThreadView<Rendered>,
    /// The participant's unread totals after the commit; `None` for the sender, whose totals
    /// did not change.
    pub unread: Option<UnreadCounts>,
}

/// The result of a send.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    /// Stored now; `participants` are to be notified.
    Created {
        message: MessageView,
        /// `message`, serialised once for every payload that carries it.
        rendered: Rendered,
        participants: Vec<Recipient>,
    },
    /// `client_id` was seen before: the first message, nothing new stored.
    Repeated { message: MessageView },
}

/// After a read.
#[derive(Debug, Clone)]
pub struct ReadOutcome {
    pub reader: UserRef,
    pub thread_id: String,
    pub unread: UnreadCounts,
    pub changed: bool,
}

/// After a message deletion.
#[derive(Debug, Clone)]
pub struct MessageDeleted {
    pub user: UserRef,
    pub url: String,
    pub thread_id: String,
    pub total_messages: u64,
    pub unread: UnreadCounts,
    pub unread_changed: bool,
}

/// After a thread deletion.
#[derive(Debug, Clone)]
pub struct ThreadDeleted {
    pub user: UserRef,
    pub thread_id: String,
    pub total_threads: u64,
    pub unread: UnreadCounts,
    pub unread_changed: bool,
}

struct ValidSend {
    body: String,
    target: Target,
    client_id: Option<String>,
}

enum Target {
    New { recipient: String, subject: String },
    Reply { thread_id: String },
}

fn validate_send(req: SendMessage, max_body: usize) -> DomainResult<ValidSend> {
    let body = req.body.trim().to_owned();
    if body.is_empty() {
        return Err(DomainError::invalid(
            "body",
            "empty_body",
            "message body is empty",
        ));
    }
    if body.chars().count() > max_body {
        return Err(DomainError::invalid(
            "body",
            "message_too_long",
            format!("message body is longer than {max_body} characters"),
        ));
    }
    if let Some(id) = &req.client_id
        && (id.is_empty() || id.chars().count() > MAX_CLIENT_ID)
    {
        return Err(DomainError::invalid(
            "client_id",
            "invalid_payload",
            "client_id must be 1 to 64 characters",
        ));
    }
    let target = match (req.thread_id, req.recipient, req.subject) {
        (Some(thread_id), None, None) => Target::Reply { thread_id },
        (None, Some(recipient), Some(subject)) => {
            let subject = subject.trim().to_owned();
            if subject.is_empty() {
                return Err(DomainError::invalid(
                    "subject",
                    "empty_subject",
                    "subject is empty",
                ));
            }
            if subject.chars().count() > MAX_SUBJECT {
                return Err(DomainError::invalid(
                    "subject",
                    "subject_too_long",
                    format!("subject is longer than {MAX_SUBJECT} characters"),
                ));
            }
            Target::New { recipient, subject }
        }
        (None, Some(_), None) => {
            return Err(DomainError::invalid(
                "subject",
                "invalid_payload",
                "a new thread needs a subject",
            ));
        }
        (None, None, _) => {
            return Err(DomainError::invalid(
                "recipient",
                "invalid_payload",
                "give either thread_id (reply) or recipient and subject (new thread)",
            ));
        }
        (Some(_), _, _) => {
            return Err(DomainError::invalid(
                "thread_id",
                "invalid_payload",
                "a reply takes thread_id and body only; replies keep the thread's subject",
            ));
        }
    };
    Ok(ValidSend {
        body,
        target,
        client_id: req.client_id,
    })
}

/// What never changes about a thread once created: its ids, subject and participants. Cached,
/// so a reply does not read them again (safe across nodes: nothing here is ever updated).
#[derive(Debug, Clone)]
pub struct ThreadMeta {
    pub id: i64,
    pub public_id: String,
    pub subject: String,
    pub created_at: i64,
    pub members: Vec<UserRef>,
}

/// A bounded cache of [`ThreadMeta`] by public id.
#[derive(Default)]
pub struct Directory {
    threads: std::sync::Mutex<HashMap<String, std::sync::Arc<ThreadMeta>>>,
}

const DIRECTORY_CAPACITY: usize = 100_000;

impl Directory {
    fn get(&self, public_id: &str) -> Option<std::sync::Arc<ThreadMeta>> {
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(public_id)
            .cloned()
    }

    fn put(&self, meta: ThreadMeta) -> std::sync::Arc<ThreadMeta> {
        let meta = std::sync::Arc::new(meta);
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        if threads.len() >= DIRECTORY_CAPACITY {
            threads.clear();
        }
        threads.insert(meta.public_id.clone(), meta.clone());
        meta
    }

    async fn load(
        &self,
        db: &impl ConnectionTrait,
        public_id: &str,
    ) -> DomainResult<Option<std::sync::Arc<ThreadMeta>>> {
        if let Some(meta) = self.get(public_id) {
            return Ok(Some(meta));
        }
        // Boxed, like a new thread: a miss is rare and its queries' futures are large.
        Box::pin(self.load_missing(db, public_id)).await
    }

    async fn load_missing(
        &self,
        db: &impl ConnectionTrait,
        public_id: &str,
    ) -> DomainResult<Option<std::sync::Arc<ThreadMeta>>> {
        let Some(thread) = find_thread(db, public_id).await? else {
            return Ok(None);
        };
        let ctx = thread_context(db, thread.id).await?;
        Ok(Some(self.put(ThreadMeta {
            id: thread.id,
            public_id: thread.public_id,
            subject: thread.subject,
            created_at: thread.created_at,
            members: ctx.members.into_iter().map(|(_, u)| u).collect(),
        })))
    }
}

/// Sends a message, announces it to the participants and returns what they were told. A new
/// thread is stored in its own transaction; replies go through the group commit, many to a
/// transaction. Both are announced by the group commit's announcer, in commit order.
pub async fn send(
    db: &Database,
    directory: &Directory,
    replies: &GroupCommit,
    sender: &user::Model,
    req: SendMessage,
    max_body: usize,
) -> DomainResult<SendOutcome> {
    let req = validate_send(req, max_body)?;
    match req.target {
        Target::Reply { thread_id } => {
            let meta = directory
                .load(&db.conn, &thread_id)
                .await?
                .ok_or(DomainError::NotFound)?;
            if !meta.members.iter().any(|m| m.id == sender.id) {
                return Err(DomainError::NotFound);
            }
            let reply = Reply {
                sender: sender.into(),
                meta,
                body: req.body,
                client_id: req.client_id,
            };
            replies.submit(reply).await
        }
        // Boxed: its future is several times the size of a reply's, and every send's future is
        // moved into a task of its own; the common case, a reply, stays small.
        Target::New { recipient, subject } => {
            let first = FirstMessage {
                recipient,
                subject,
                body: req.body,
                client_id: req.client_id,
            };
            match Box::pin(start_thread(db, directory, sender, first)).await? {
                created @ SendOutcome::Created { .. } => replies.announce(created).await,
                repeated => Ok(repeated),
            }
        }
    }
}

/// The first message of a new thread.
struct FirstMessage {
    recipient: String,
    subject: String,
    body: String,
    client_id: Option<String>,
}

/// Stores a new thread with its first message, in one transaction.
async fn start_thread(
    db: &Database,
    directory: &Directory,
    sender: &user::Model,
    first: FirstMessage,
) -> DomainResult<SendOutcome> {
    let FirstMessage {
        recipient,
        subject,
        body,
        client_id,
    } = first;
    let txn = db.begin_write().await?;
    let now = ids::now_micros();
    let recipient = match accounts::normalize_username(&recipient) {
        Ok(name) => accounts::find_by_username(&*txn, &name).await?,
        Err(_) => None,
    }
    .ok_or_else(|| {
        DomainError::invalid(
            "recipient",
            "unknown_recipient",
            "no user has that username",
        )
    })?;
    let mut members = vec![UserRef::from(sender)];
    if recipient.id != sender.id {
        members.push(UserRef::from(&recipient));
    }
    members.sort_by_key(|m| m.id);
    let thread = thread::ActiveModel {
        public_id: Set(ids::public_id()),
        subject: Set(subject),
        created_at: Set(now),
        updated_at: Set(now),
        last_message_id: Set(None),
        ..Default::default()
    }
    .insert(&*txn)
    .await?;
    let inserted = message::ActiveModel {
        public_id: Set(ids::message_url()),
        thread_id: Set(thread.id),
        sender_id: Set(sender.id),
        recipient_id: Set(recipient.id),
        body: Set(body),
        created_at: Set(now),
        client_id: Set(client_id.clone()),
        ..Default::default()
    }
    .insert(&*txn)
    .await;
    let message = match inserted {
        Ok(m) => m,
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            // A retry of a message already stored (same client_id): answer with the first one.
            drop(txn);
            let client_id = client_id.unwrap_or_default();
            let first = find_by_client_id(&db.conn, sender.id, &client_id)
                .await?
                .ok_or(DomainError::Db(e))?;
            return Ok(SendOutcome::Repeated { message: first });
        }
        Err(e) => return Err(e.into()),
    };
    thread::Entity::update_many()
        .col_expr(thread::Column::LastMessageId, message.id.into())
        .filter(thread::Column::Id.eq(thread.id))
        .exec(&*txn)
        .await?;
    let rows: Vec<participant::Model> = members
        .iter()
        .map(|m| participant::Model {
            thread_id: thread.id,
            user_id: m.id,
            last_message_id: message.id,
            read_up_to: 0,
            hidden_before: 0,
            unread: i32::from(m.id == recipient.id && recipient.id != sender.id),
        })
        .collect();
    participant::Entity::insert_many(rows.iter().cloned().map(participant::ActiveModel::from))
        .exec(&*txn)
        .await?;
    let recipient_unread = if recipient.id != sender.id {
        unread_counts(&*txn, recipient.id).await?
    } else {
        UnreadCounts::default()
    };
    txn.commit().await?;

    let meta = directory.put(ThreadMeta {
        id: thread.id,
        public_id: thread.public_id,
        subject: thread.subject,
        created_at: thread.created_at,
        members,
    });
    let unread = HashMap::from([(recipient.id, recipient_unread)]);
    delivered(&meta, &message, rows, &unread)
}

/// One reply waiting for the group commit.
pub struct Reply {
    pub sender: UserRef,
    pub meta: std::sync::Arc<ThreadMeta>,
    pub body: String,
    pub client_id: Option<String>,
}

/// Stores a batch of replies in one transaction with a fixed number of statements, whatever the
/// batch size: stamp (and on PostgreSQL row-lock) the threads, insert the messages, move the
/// threads' and participants' newest message and unread counts, read the recipients' totals.
/// A reply whose `client_id` was already used is not stored again and answers with the first.
pub async fn store_replies(db: &Database, batch: Vec<Reply>) -> DomainResult<Vec<SendOutcome>> {
    let urls: Vec<String> = batch.iter().map(|_| ids::message_url()).collect();
    let mut written = if db.backend() == sea_orm::DbBackend::Sqlite {
        write_batch_sqlite(db, &batch, &urls).await?
    } else {
        write_batch(db, &batch, &urls).await?
    };

    let mut rows_of: HashMap<i64, Vec<participant::Model>> = HashMap::new();
    for p in written.participants {
        rows_of.entry(p.thread_id).or_default().push(p);
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for (reply, url) in batch.into_iter().zip(urls) {
        match written.messages.remove(&url) {
            Some(message) => {
                let rows = rows_of.get(&reply.meta.id).cloned().unwrap_or_default();
                outcomes.push(delivered(&reply.meta, &message, rows, &written.unread)?);
            }
            None => {
                let client_id = reply.client_id.unwrap_or_default();
                let first = find_by_client_id(&db.conn, reply.sender.id, &client_id)
                    .await?
                    .ok_or(DomainError::NotFound)?;
                outcomes.push(SendOutcome::Repeated { message: first });
            }
        }
    }
    Ok(outcomes)
}

/// What one committed batch of replies left in the database.
struct BatchWrite {
    /// The stored messages by url; a reply whose `client_id` was used before is absent.
    messages: HashMap<String, message::Model>,
    /// Every participant row of the batch's threads, after the batch.
    participants: Vec<participant::Model>,
    /// Unread totals of the recipients (users with nothing unread are absent).
    unread: HashMap<i64, UnreadCounts>,
}

/// The row of `reply` stored under `url`; `id` and `created_at` come from the database.
fn message_row(reply: &Reply, url: &str, id: i64, created_at: i64) -> message::Model {
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
fn recipient_of(reply: &Reply) -> i64 {
    reply
        .meta
        .members
        .iter()
        .map(|m| m.id)
        .find(|id| *id != reply.sender.id)
        .unwrap_or(reply.sender.id)
}

/// The batch on SQLite, as one multi-statement query that also begins and commits its
/// transaction: the whole batch goes to the connection's worker thread in one message and its
/// rows come back in one stream, where a statement each cost a round trip that waited for a CPU
/// under load. The rows travel as JSON arrays, so the text never changes and SQLite prepares it
/// once; `jsonb_each` hands each row over as JSONB, which `->>` reads without parsing it again
/// (`json_each` turned every row back into text, parsed anew by each field's `->>`).
async fn write_batch_sqlite(
    db: &Database,
    batch: &[Reply],
    urls: &[String],
) -> DomainResult<BatchWrite> {
    // Every statement reads the rows as `?1`, and those that stamp the time also read `?2`:
    // sqlx binds the parameters of each statement of a multi-statement query in turn, and a
    // statement that skipped a lower number (one that used only `?4`, say) had that parameter
    // left unbound, NULL, without an error. A message is stamped no earlier than its thread's
    // last activity, so that time order and id order agree within a thread, and one UPDATE
    // then moves each thread's time and newest message together.
    const SQL: &str = "\
        BEGIN IMMEDIATE; \
        INSERT INTO messages (public_id, thread_id, sender_id, recipient_id, body, created_at, client_id) \
            SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4, \
                MAX(?2, (SELECT t.updated_at FROM threads t WHERE t.id = r.value ->> 1)), r.value ->> 5 \
            FROM jsonb_each(?1) r WHERE true \
            ON CONFLICT (client_id, sender_id) DO NOTHING \
            RETURNING 'message' AS kind, id, public_id, created_at; \
        UPDATE threads SET updated_at = MAX(updated_at, ?2), last_message_id = \
                (SELECT MAX(m.id) FROM messages m WHERE m.thread_id = threads.id) \
            WHERE id IN (SELECT r.value ->> 1 FROM jsonb_each(?1) r); \
        UPDATE participants SET \
                unread = unread + (SELECT COUNT(*) FROM messages m \
                    WHERE m.thread_id = participants.thread_id \
                    AND m.id > participants.last_message_id AND m.sender_id <> participants.user_id), \
                last_message_id = \
                    (SELECT MAX(m.id) FROM messages m WHERE m.thread_id = participants.thread_id) \
            WHERE thread_id IN (SELECT r.value ->> 1 FROM jsonb_each(?1) r) \
            RETURNING 'participant' AS kind, thread_id, user_id, last_message_id, read_up_to, \
                hidden_before, unread; \
        SELECT 'unread' AS kind, user_id, SUM(unread) AS messages, COUNT(*) AS threads \
            FROM participants WHERE user_id IN \
                (SELECT r.value ->> 3 FROM jsonb_each(?1) r WHERE r.value ->> 2 <> r.value ->> 3) \
            AND unread > 0 GROUP BY user_id; \
        COMMIT";
    let rows: Vec<_> = batch
        .iter()
        .zip(urls)
        .map(|(r, url)| {
            let recipient = recipient_of(r);
            (
                url,
                r.meta.id,
                r.sender.id,
                recipient,
                &r.body,
                &r.client_id,
            )
        })
        .collect();
    let values = vec![json(&rows)?.into(), ids::now_micros().into()];
    let results = db.write_script(SQL, values).await?;

    let by_url: HashMap<&str, &Reply> = urls.iter().map(String::as_str).zip(batch).collect();
    let mut written = BatchWrite {
        messages: HashMap::with_capacity(batch.len()),
        participants: Vec::new(),
        unread: HashMap::new(),
    };
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
    Ok(written)
}

/// `value` as JSON text, for SQLite's `jsonb_each`.
fn json(value: &impl serde::Serialize) -> DomainResult<String> {
    serde_json::to_string(value).map_err(|e| DomainError::Internal(e.to_string()))
}

/// The batch as separate statements (PostgreSQL: one query string holds one statement).
async fn write_batch(db: &Database, batch: &[Reply], urls: &[String]) -> DomainResult<BatchWrite> {
    let mut thread_ids: Vec<i64> = batch.iter().map(|r| r.meta.id).collect();
    thread_ids.sort_unstable();
    thread_ids.dedup();
    let txn = db.begin_write().await?;
    let now = ids::now_micros();
    // Timestamps never go backwards within a thread, so id order and time order agree.
    let stamped: HashMap<i64, i64> = thread::Entity::update_many()
        .col_expr(
            thread::Column::UpdatedAt,
            Expr::cust_with_values("GREATEST(updated_at, $1)", [now]),
        )
        .filter(thread::Column::Id.is_in(thread_ids.clone()))
        .exec_with_returning(&*txn)
        .await?
        .into_iter()
        .map(|t| (t.id, t.updated_at))
        .collect();

    // One multi-row INSERT that hands back only the new ids: every other column is known here,
    // and decoding whole rows back was a good part of the statement's cost.
    let mut rows: Vec<message::Model> = batch
        .iter()
        .zip(urls)
        .map(|(r, url)| message_row(r, url, 0, stamped.get(&r.meta.id).copied().unwrap_or(now)))
        .collect();
    let mut sql = String::from(
        "INSERT INTO messages (public_id, thread_id, sender_id, recipient_id, body, created_at, client_id) VALUES ",
    );
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(rows.len() * 7);
    for (i, m) in rows.iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for k in 0..7 {
            if k > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", values.len() + k + 1));
        }
        sql.push(')');
        values.extend([
            m.public_id.clone().into(),
            m.thread_id.into(),
            m.sender_id.into(),
            m.recipient_id.into(),
            m.body.clone().into(),
            m.created_at.into(),
            m.client_id.clone().into(),
        ]);
    }
    sql.push_str(" ON CONFLICT (client_id, sender_id) DO NOTHING RETURNING id, public_id");
    let ids: HashMap<String, i64> = txn
        .query_all_raw(Statement::from_sql_and_values(db.backend(), sql, values))
        .await?
        .into_iter()
        .map(|row| Ok((row.try_get("", "public_id")?, row.try_get("", "id")?)))
        .collect::<Result<_, DbErr>>()?;
    rows.retain_mut(|m| match ids.get(&m.public_id) {
        Some(id) => {
            m.id = *id;
            true
        }
        None => false,
    });
    let messages: HashMap<String, message::Model> =
        rows.into_iter().map(|m| (m.public_id.clone(), m)).collect();

    let newest_message = "(SELECT MAX(m.id) FROM messages m WHERE m.thread_id = threads.id)";
    thread::Entity::update_many()
        .col_expr(thread::Column::LastMessageId, Expr::cust(newest_message))
        .filter(thread::Column::Id.is_in(thread_ids.clone()))
        .exec(&*txn)
        .await?;
    // SET expressions see the row as it was: `last_message_id` is the newest before this batch.
    let participants = participant::Entity::update_many()
        .col_expr(
            participant::Column::Unread,
            Expr::cust(
                "unread + (SELECT COUNT(*) FROM messages m WHERE m.thread_id = participants.thread_id \
                 AND m.id > participants.last_message_id AND m.sender_id <> participants.user_id)",
            ),
        )
        .col_expr(
            participant::Column::LastMessageId,
            Expr::cust("(SELECT MAX(m.id) FROM messages m WHERE m.thread_id = participants.thread_id)"),
        )
        .filter(participant::Column::ThreadId.is_in(thread_ids))
        .exec_with_returning(&*txn)
        .await?;
    let recipients: Vec<i64> = messages
        .values()
        .filter(|m| m.sender_id != m.recipient_id)
        .map(|m| m.recipient_id)
        .collect();
    let unread = unread_counts_of(&*txn, &recipients).await?;
    txn.commit().await?;
    Ok(BatchWrite {
        messages,
        participants,
        unread,
    })
}

/// The outcome of a stored message, as each participant sees it.
fn delivered(
    meta: &ThreadMeta,
    message: &message::Model,
    rows: Vec<participant::Model>,
    unread: &HashMap<i64, UnreadCounts>,
) -> DomainResult<SendOutcome> {
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
    let participants = ctx
        .members
        .iter()
        .map(|(_, member)| Recipient {
            user: member.clone(),
            thread: ctx.thread_view_with(member.id, Some(rendered.clone())),
            unread: (member.id != message.sender_id)
                .then(|| unread.get(&member.id).copied().unwrap_or_default()),
        })
        .collect();
    Ok(SendOutcome::Created {
        message: view,
        rendered,
        participants,
    })
}

/// Marks `thread_id` read for `reader`, up to the message `up_to` or to the end.
pub async fn read(
    db: &Database,
    reader: &user::Model,
    thread_id: &str,
    up_to: Option<&str>,
) -> DomainResult<ReadOutcome> {
    let txn = db.begin_write().await?;
    let (thread, me) = visible_membership(&*txn, reader.id, thread_id).await?;
    let target = match up_to {
        Some(url) => {
            let m = find_message(&*txn, url)
                .await?
                .filter(|m| m.thread_id == thread.id && m.id > me.hidden_before);
            m.ok_or_else(|| {
                DomainError::invalid(
                    "up_to",
                    "not_found",
                    "up_to is not a message of this thread",
                )
            })?
            .id
        }
        None => thread.last_message_id.unwrap_or(0),
    };
    let before = unread_counts(&*txn, reader.id).await?;
    let read_up_to = std::cmp::max(me.read_up_to, target);
    let remaining = count_unread_after(&*txn, reader.id, &me, thread.id, read_up_to).await?;
    participant::Entity::update_many()
        .col_expr(participant::Column::ReadUpTo, read_up_to.into())
        .col_expr(participant::Column::Unread, remaining.into())
        .filter(participant::Column::ThreadId.eq(thread.id))
        .filter(participant::Column::UserId.eq(reader.id))
        .exec(&*txn)
        .await?;
    let unread = unread_counts(&*txn, reader.id).await?;
    txn.commit().await?;
    Ok(ReadOutcome {
        reader: reader.into(),
        thread_id: thread.public_id,
        unread,
        changed: unread != before,
    })
}

/// Hides one message for `user` only.
pub async fn delete_message(
    db: &Database,
    user: &user::Model,
    url: &str,
) -> DomainResult<MessageDeleted> {
    let txn = db.begin_write().await?;
    let message = find_message(&*txn, url)
        .await?
        .ok_or(DomainError::NotFound)?;
    let thread = thread::Entity::find_by_id(message.thread_id)
        .one(&*txn)
        .await?
        .ok_or(DomainError::NotFound)?;
    let me = membership(&*txn, user.id, thread.id)
        .await?
        .ok_or(DomainError::NotFound)?;
    if message.id <= me.hidden_before || is_hidden(&*txn, user.id, message.id).await? {
        return Err(DomainError::NotFound);
    }
    let before = unread_counts(&*txn, user.id).await?;
    message_hide::ActiveModel {
        user_id: Set(user.id),
        message_id: Set(message.id),
    }
    .insert(&*txn)
    .await?;
    if message.sender_id != user.id && message.id > me.read_up_to && me.unread > 0 {
        participant::Entity::update_many()
            .col_expr(
                participant::Column::Unread,
                Expr::col(participant::Column::Unread).sub(1),
            )
            .filter(participant::Column::ThreadId.eq(thread.id))
            .filter(participant::Column::UserId.eq(user.id))
            .exec(&*txn)
            .await?;
    }
    let total_messages = visible_messages(user.id, &me, thread.id)
        .count(&*txn)
        .await?;
    if total_messages == 0 {
        // Nothing left to show: the thread leaves the inbox as if deleted whole.
        hide_thread_until(&*txn, &me, thread.last_message_id.unwrap_or(0)).await?;
    }
    let unread = unread_counts(&*txn, user.id).await?;
    txn.commit().await?;
    Ok(MessageDeleted {
        user: user.into(),
        url: message.public_id,
        thread_id: thread.public_id,
        total_messages,
        unread,
        unread_changed: unread != before,
    })
}

/// Hides a whole thread for `user` only, until someone writes in it again.
pub async fn delete_thread(
    db: &Database,
    user: &user::Model,
    thread_id: &str,
) -> DomainResult<ThreadDeleted> {
    let txn = db.begin_write().await?;
    let (thread, me) = visible_membership(&*txn, user.id, thread_id).await?;
    let before = unread_counts(&*txn, user.id).await?;
    hide_thread_until(&*txn, &me, thread.last_message_id.unwrap_or(0)).await?;
    let total_threads = visible_threads(user.id).count(&*txn).await?;
    let unread = unread_counts(&*txn, user.id).await?;
    txn.commit().await?;
    Ok(ThreadDeleted {
        user: user.into(),
        thread_id: thread.public_id,
        total_threads,
        unread,
        unread_changed: unread != before,
    })
}

async fn hide_thread_until(
    db: &impl ConnectionTrait,
    me: &participant::Model,
    last: i64,
) -> DomainResult<()> {
    participant::Entity::update_many()
        .col_expr(participant::Column::HiddenBefore, last.into())
        .col_expr(
            participant::Column::ReadUpTo,
            std::cmp::max(me.read_up_to, last).into(),
        )
        .col_expr(participant::Column::Unread, 0.into())
        .filter(participant::Column::ThreadId.eq(me.thread_id))
        .filter(participant::Column::UserId.eq(me.user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// A page of `user`'s inbox, newest activity first. `before` is the `next` of the previous page.
pub async fn list_threads(
    db: &impl ConnectionTrait,
    user: &user::Model,
    before: Option<&str>,
    limit: u64,
) -> DomainResult<(Vec<ThreadView>, Option<String>)> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut query = visible_threads(user.id);
    if let Some(cursor) = before {
        let m = find_message(db, cursor)
            .await?
            .ok_or_else(|| DomainError::invalid("before", "invalid_cursor", "unknown cursor"))?;
        query = query.filter(participant::Column::LastMessageId.lt(m.id));
    }
    let mut rows = query
        .order_by_desc(participant::Column::LastMessageId)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);

    let thread_ids: Vec<i64> = rows.iter().map(|p| p.thread_id).collect();
    let contexts = thread_contexts(db, &thread_ids).await?;
    let last_ids: Vec<i64> = rows.iter().map(|p| p.last_message_id).collect();
    let mut lasts: HashMap<i64, message::Model> = message::Entity::find()
        .filter(message::Column::Id.is_in(last_ids.clone()))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let hidden: Vec<i64> = message_hide::Entity::find()
        .select_only()
        .column(message_hide::Column::MessageId)
        .filter(message_hide::Column::UserId.eq(user.id))
        .filter(message_hide::Column::MessageId.is_in(last_ids))
        .into_tuple()
        .all(db)
        .await?;

    let mut views = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(ctx) = contexts.get(&row.thread_id) else {
            continue;
        };
        let last = if hidden.contains(&row.last_message_id) {
            newest_visible(db, user.id, row).await?
        } else {
            lasts.remove(&row.last_message_id)
        };
        views.push(ctx.thread_view(user.id, last.as_ref()));
    }
    let next = match (more, rows.last()) {
        (true, Some(row)) => message::Entity::find_by_id(row.last_message_id)
            .one(db)
            .await?
            .map(|m| m.public_id),
        _ => None,
    };
    Ok((views, next))
}

/// One thread as `user` sees it.
pub async fn get_thread(
    db: &impl ConnectionTrait,
    user: &user::Model,
    thread_id: &str,
) -> DomainResult<ThreadView> {
    let (thread, me) = visible_membership(db, user.id, thread_id).await?;
    let ctx = thread_context(db, thread.id).await?;
    let last = newest_visible(db, user.id, &me).await?;
    Ok(ctx.thread_view(user.id, last.as_ref()))
}

/// A page of a thread's history, oldest first, ending just before `before` (or at the newest).
pub async fn list_messages(
    db: &impl ConnectionTrait,
    user: &user::Model,
    thread_id: &str,
    before: Option<&str>,
    limit: u64,
) -> DomainResult<(Vec<MessageView>, bool)> {
    let limit = limit.clamp(1, MAX_PAGE);
    let (thread, me) = visible_membership(db, user.id, thread_id).await?;
    let mut query = visible_messages(user.id, &me, thread.id);
    if let Some(url) = before {
        let m = find_message(db, url)
            .await?
            .filter(|m| m.thread_id == thread.id)
            .ok_or_else(|| {
                DomainError::invalid(
                    "before",
                    "invalid_cursor",
                    "before is not a message of this thread",
                )
            })?;
        query = query.filter(message::Column::Id.lt(m.id));
    }
    let mut page = query
        .order_by_desc(message::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = page.len() as u64 > limit;
    page.truncate(limit as usize);
    page.reverse();
    let ctx = thread_context(db, thread.id).await?;
    Ok((page.iter().map(|m| ctx.message_view(m)).collect(), more))
}

/// A user's unread totals.
pub async fn unread_counts(db: &impl ConnectionTrait, user_id: i64) -> DomainResult<UnreadCounts> {
    Ok(unread_counts_of(db, &[user_id])
        .await?
        .remove(&user_id)
        .unwrap_or_default())
}

/// Unread totals of several users in one query (users with nothing unread are absent).
async fn unread_counts_of(
    db: &impl ConnectionTrait,
    user_ids: &[i64],
) -> DomainResult<HashMap<i64, UnreadCounts>> {
    if user_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, Option<i64>, i64)> = participant::Entity::find()
        .select_only()
        .column(participant::Column::UserId)
        .column_as(
            Expr::expr(Func::sum(Expr::col(participant::Column::Unread))).cast_as("BIGINT"),
            "messages",
        )
        .column_as(participant::Column::ThreadId.count(), "threads")
        .filter(participant::Column::UserId.is_in(user_ids.to_vec()))
        .filter(participant::Column::Unread.gt(0))
        .group_by(participant::Column::UserId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(user, messages, threads)| {
            (
                user,
                UnreadCounts {
                    messages: messages.unwrap_or(0),
                    threads,
                },
            )
        })
        .collect())
}

/// Checks that `user_id` takes part in `thread_id` (public) and can see it; for `thread:join`.
pub async fn ensure_participant(
    db: &impl ConnectionTrait,
    user_id: i64,
    thread_id: &str,
) -> DomainResult<String> {
    visible_membership(db, user_id, thread_id)
        .await
        .map(|(t, _)| t.public_id)
}

/// Ids of the users who share at least one thread with `user_id` (for presence).
pub async fn correspondents(db: &impl ConnectionTrait, user_id: i64) -> DomainResult<Vec<i64>> {
    Ok(participant::Entity::find()
        .select_only()
        .column(participant::Column::UserId)
        .distinct()
        .filter(
            participant::Column::ThreadId.in_subquery(
                Query::select()
                    .column(participant::Column::ThreadId)
                    .from(participant::Entity)
                    .and_where(participant::Column::UserId.eq(user_id))
                    .to_owned(),
            ),
        )
        .filter(participant::Column::UserId.ne(user_id))
        .into_tuple()
        .all(db)
        .await?)
}

async fn find_by_client_id(
    db: &impl ConnectionTrait,
    sender_id: i64,
    client_id: &str,
) -> DomainResult<Option<MessageView>> {
    let Some(m) = message::Entity::find()
        .filter(message::Column::SenderId.eq(sender_id))
        .filter(message::Column::ClientId.eq(client_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let ctx = thread_context(db, m.thread_id).await?;
    Ok(Some(ctx.message_view(&m)))
}

async fn find_thread(
    db: &impl ConnectionTrait,
    public_id: &str,
) -> DomainResult<Option<thread::Model>> {
    Ok(thread::Entity::find()
        .filter(thread::Column::PublicId.eq(public_id))
        .one(db)
        .await?)
}

async fn find_message(
    db: &impl ConnectionTrait,
    url: &str,
) -> DomainResult<Option<message::Model>> {
    Ok(message::Entity::find()
        .filter(message::Column::PublicId.eq(url))
        .one(db)
        .await?)
}

async fn membership(
    db: &impl ConnectionTrait,
    user_id: i64,
    thread_id: i64,
) -> DomainResult<Option<participant::Model>> {
    Ok(participant::Entity::find_by_id((thread_id, user_id))
        .one(db)
        .await?)
}

/// The thread and the caller's participation, or `NotFound` when they are not in it or
/// deleted it (a stranger cannot tell a thread that exists from one that does not).
async fn visible_membership(
    db: &impl ConnectionTrait,
    user_id: i64,
    public_id: &str,
) -> DomainResult<(thread::Model, participant::Model)> {
    let thread = find_thread(db, public_id)
        .await?
        .ok_or(DomainError::NotFound)?;
    let me = membership(db, user_id, thread.id)
        .await?
        .ok_or(DomainError::NotFound)?;
    if me.last_message_id <= me.hidden_before {
        return Err(DomainError::NotFound);
    }
    Ok((thread, me))
}

async fn is_hidden(db: &impl ConnectionTrait, user_id: i64, message_id: i64) -> DomainResult<bool> {
    Ok(message_hide::Entity::find_by_id((user_id, message_id))
        .one(db)
        .await?
        .is_some())
}

/// The threads in `user_id`'s inbox (not deleted by them since their last message).
fn visible_threads(user_id: i64) -> sea_orm::Select<participant::Entity> {
    participant::Entity::find()
        .filter(participant::Column::UserId.eq(user_id))
        .filter(
            Expr::col(participant::Column::LastMessageId)
                .gt(Expr::col(participant::Column::HiddenBefore)),
        )
}

/// The messages of a thread that `user_id` has not deleted.
fn visible_messages(
    user_id: i64,
    me: &participant::Model,
    thread_id: i64,
) -> sea_orm::Select<message::Entity> {
    message::Entity::find()
        .filter(message::Column::ThreadId.eq(thread_id))
        .filter(message::Column::Id.gt(me.hidden_before))
        .filter(
            Condition::all().add(Expr::not_exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(message_hide::Entity)
                    .and_where(message_hide::Column::UserId.eq(user_id))
                    .and_where(
                        Expr::col((message_hide::Entity, message_hide::Column::MessageId))
                            .equals((message::Entity, message::Column::Id)),
                    )
                    .to_owned(),
            )),
        )
}

async fn newest_visible(
    db: &impl ConnectionTrait,
    user_id: i64,
    me: &participant::Model,
) -> DomainResult<Option<message::Model>> {
    Ok(visible_messages(user_id, me, me.thread_id)
        .order_by_desc(message::Column::Id)
        .one(db)
        .await?)
}

/// Unread messages left for `user_id` after reading up to `read_up_to`.
async fn count_unread_after(
    db: &impl ConnectionTrait,
    user_id: i64,
    me: &participant::Model,
    thread_id: i64,
    read_up_to: i64,
) -> DomainResult<i32> {
    let n = visible_messages(user_id, me, thread_id)
        .filter(message::Column::Id.gt(read_up_to))
        .filter(message::Column::SenderId.ne(user_id))
        .count(db)
        .await?;
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}

async fn thread_context(db: &impl ConnectionTrait, thread_id: i64) -> DomainResult<ThreadContext> {
    thread_contexts(db, &[thread_id])
        .await?
        .remove(&thread_id)
        .ok_or(DomainError::NotFound)
}

/// Threads with their participants, in three queries whatever their number.
async fn thread_contexts(
    db: &impl ConnectionTrait,
    thread_ids: &[i64],
) -> DomainResult<HashMap<i64, ThreadContext>> {
    if thread_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let threads = thread::Entity::find()
        .filter(thread::Column::Id.is_in(thread_ids.to_vec()))
        .all(db)
        .await?;
    let members = participant::Entity::find()
        .filter(participant::Column::ThreadId.is_in(thread_ids.to_vec()))
        .find_also_related(user::Entity)
        .all(db)
        .await?;
    let mut out: HashMap<i64, ThreadContext> = threads
        .into_iter()
        .map(|t| {
            (
                t.id,
                ThreadContext {
                    thread: t,
                    members: Vec::new(),
                },
            )
        })
        .collect();
    for (p, u) in members {
        if let (Some(ctx), Some(u)) = (out.get_mut(&p.thread_id), u) {
            ctx.members.push((p, UserRef::from(&u)));
        }
    }
    for ctx in out.values_mut() {
        ctx.members.sort_by_key(|(p, _)| p.user_id);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::future::BoxFuture;

    use super::*;
    use crate::domain::accounts;
    use crate::domain::group_commit::{Announce, GroupCommit};

    struct Nobody;

    impl Announce for Nobody {
        fn announce<'a>(&'a self, _: &'a [SendOutcome]) -> BoxFuture<'a, ()> {
            Box::pin(async {})
        }
    }

    /// Two replies with one `client_id` in the same batch: the first is stored, the second
    /// answered with it, and so is a later one (concurrent HTTP retries rarely share a batch).
    #[tokio::test]
    async fn a_client_id_repeated_within_one_batch_is_stored_once() {
        let (_dir, db) = crate::db::fresh_sqlite().await;
        db.migrate().await.unwrap();
        let user = |name: &str| accounts::insert_user(&db.conn, name.into(), None, None, false);
        let (alice, _bob) = (user("alice").await.unwrap(), user("bob").await.unwrap());
        let directory = Directory::default();
        let replies = GroupCommit::start(db.clone(), Arc::new(Nobody), Arc::default());
        let first = SendMessage {
            recipient: Some("bob".into()),
            subject: Some("s".into()),
            thread_id: None,
            body: "first".into(),
            client_id: None,
        };
        let SendOutcome::Created { message, .. } =
            send(&db, &directory, &replies, &alice, first, 100)
                .await
                .unwrap()
        else {
            panic!("a new thread's first message is created");
        };
        let meta = directory
            .load(&db.conn, &message.thread_id)
            .await
            .unwrap()
            .unwrap();
        let reply = |body: &str| Reply {
            sender: (&alice).into(),
            meta: meta.clone(),
            body: body.into(),
            client_id: Some("again".into()),
        };
        let outcomes = store_replies(&db, vec![reply("one"), reply("two")])
            .await
            .unwrap();
        let (
            SendOutcome::Created {
                message: stored, ..
            },
            SendOutcome::Repeated { message: repeated },
        ) = (&outcomes[0], &outcomes[1])
        else {
            panic!("created, then repeated: {outcomes:?}");
        };
        assert_eq!((stored.body.as_str(), &stored.url), ("one", &repeated.url));
        let later = store_replies(&db, vec![reply("three")]).await.unwrap();
        assert!(
            matches!(&later[0], SendOutcome::Repeated { message } if message.url == stored.url)
        );
        let count = message::Entity::find().count(&db.conn).await.unwrap();
        assert_eq!(count, 2);
    }
}
