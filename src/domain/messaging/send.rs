//! Sending: a new thread with its first message, in a transaction of its own, and replies in
//! batches (the group commit's writer calls [`store_replies`]).

use std::collections::HashMap;
use std::sync::Arc;

use entity::{message, participant, thread};
use sea_orm::{ActiveModelTrait, ColumnTrait, DbBackend, EntityTrait, QueryFilter, Set, SqlErr};

use super::directory::{Directory, ThreadMeta};
use super::group_commit::GroupCommit;
use super::list::unread_counts;
use super::queries::find_by_client_id;
use super::validate::{Target, validate_send};
use super::{Recipient, SendMessage, SendOutcome, postgres_batch, sqlite_batch};
use crate::db::Database;
use crate::domain::event_log::{self, Entry};
use crate::domain::views::{Rendered, ThreadContext, UnreadCounts, UserRef};
use crate::domain::{DomainError, DomainResult, accounts};
use crate::ids;

/// Stores a message and returns, once it is announced, what the participants were told. A
/// new thread is stored in its own transaction; replies go through the group commit, many to a
/// transaction. Both reach the service's announcer through the group commit, in commit order.
pub async fn send(
    db: &Database,
    directory: &Directory,
    replies: &GroupCommit,
    sender: &UserRef,
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
                sender: sender.clone(),
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
    sender: &UserRef,
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
    let recipient = match accounts::lookup_name(&recipient) {
        Some(name) => accounts::find_by_username(&*txn, &name).await?,
        None => None,
    }
    .ok_or_else(|| {
        DomainError::invalid(
            "recipient",
            "unknown_recipient",
            "no user has that username",
        )
    })?;
    let mut members = vec![sender.clone()];
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
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
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
    let mut offsets = Offsets::new();
    if db.log_events {
        let mut entries: Vec<Entry> = members
            .iter()
            .map(|m| Entry {
                user_id: m.id,
                event: event_log::MESSAGE_NEW,
                ref_id: Some(message.id),
                payload: None,
            })
            .collect();
        if recipient.id != sender.id {
            entries.push(Entry::json(
                recipient.id,
                event_log::UNREAD,
                &recipient_unread,
            ));
        }
        let seqs = event_log::append(&*txn, &entries, now).await?;
        for (e, seq) in entries.iter().zip(seqs) {
            offsets.insert((e.user_id, e.ref_id), seq);
        }
    }
    txn.commit().await?;

    let meta = directory.put(ThreadMeta {
        id: thread.id,
        public_id: thread.public_id,
        subject: thread.subject,
        created_at: thread.created_at,
        members,
    });
    let unread = HashMap::from([(recipient.id, recipient_unread)]);
    delivered(&meta, &message, rows, &unread, &offsets)
}

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

/// Stores a batch of replies in one transaction with a fixed number of statements, whatever the
/// batch size: stamp (and on PostgreSQL row-lock) the threads, insert the messages, move the
/// threads' and participants' newest message and unread counts, read the recipients' totals.
/// A reply whose `client_id` was already used is not stored again and answers with the first.
///
/// The outer error means nothing was committed. Once the batch is committed, each reply gets
/// an outcome of its own: a stored message is never reported as failed because a later
/// look-up (the first copy of another reply's repeated `client_id`) failed.
pub async fn store_replies(
    db: &Database,
    batch: Vec<Reply>,
) -> DomainResult<Vec<DomainResult<SendOutcome>>> {
    let urls: Vec<String> = batch.iter().map(|_| ids::message_url()).collect();
    let mut written = if db.backend() == DbBackend::Sqlite {
        sqlite_batch::write(db, &batch, &urls).await?
    } else {
        postgres_batch::write(db, &batch, &urls).await?
    };

    let mut rows_of: HashMap<i64, Vec<participant::Model>> = HashMap::new();
    for p in written.participants {
        rows_of.entry(p.thread_id).or_default().push(p);
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for (reply, url) in batch.into_iter().zip(urls) {
        outcomes.push(match written.messages.remove(&url) {
            Some(message) => {
                let rows = rows_of.get(&reply.meta.id).cloned().unwrap_or_default();
                delivered(
                    &reply.meta,
                    &message,
                    rows,
                    &written.unread,
                    &written.offsets,
                )
            }
            None => {
                let client_id = reply.client_id.unwrap_or_default();
                find_by_client_id(&db.conn, reply.sender.id, &client_id)
                    .await
                    .and_then(|first| first.ok_or(DomainError::NotFound))
                    .map(|message| SendOutcome::Repeated { message })
            }
        });
    }
    Ok(outcomes)
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

/// The outcome of a stored message, as each participant sees it.
fn delivered(
    meta: &ThreadMeta,
    message: &message::Model,
    rows: Vec<participant::Model>,
    unread: &HashMap<i64, UnreadCounts>,
    offsets: &Offsets,
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
            offset: offsets.get(&(member.id, Some(message.id))).copied(),
            unread_offset: offsets.get(&(member.id, None)).copied(),
        })
        .collect();
    Ok(SendOutcome::Created {
        message: view,
        rendered,
        participants,
    })
}

#[cfg(test)]
mod tests {
    use sea_orm::PaginatorTrait;

    use super::*;

    /// Two replies with one `client_id` in the same batch: the first is stored, the second
    /// answered with it, and so is a later one (concurrent HTTP retries rarely share a batch).
    #[tokio::test]
    async fn a_client_id_repeated_within_one_batch_is_stored_once() {
        let (_dir, db) = crate::db::fresh_sqlite().await;
        db.migrate().await.unwrap();
        let user = |name: &str| accounts::insert_user(&db.conn, name.into(), None, None, false);
        let (alice, _bob) = (user("alice").await.unwrap(), user("bob").await.unwrap());
        let alice = UserRef::from(&alice);
        let directory = Directory::default();
        let (replies, mut committed) = GroupCommit::start(db.clone(), Arc::default());
        // Nobody to tell: each commit is answered at once.
        tokio::spawn(async move {
            while let Some(commit) = committed.recv().await {
                commit.answer();
            }
        });
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
            sender: alice.clone(),
            meta: meta.clone(),
            body: body.into(),
            client_id: Some("again".into()),
        };
        let outcomes: Vec<SendOutcome> = store_replies(&db, vec![reply("one"), reply("two")])
            .await
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
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
            matches!(&later[0], Ok(SendOutcome::Repeated { message }) if message.url == stored.url)
        );
        let count = message::Entity::find().count(&db.conn).await.unwrap();
        assert_eq!(count, 2);
    }
}
