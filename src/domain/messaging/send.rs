//! Sending: a new thread with its first message, in a transaction of its own; a reply through
//! the group commit.

use std::collections::HashMap;

use entity::{message, participant, thread};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, SqlErr};

use super::batch::{Offsets, Reply, delivered};
use super::directory::{Directory, ThreadMeta};
use super::group_commit::GroupCommit;
use super::list::unread_counts;
use super::queries::find_by_client_id;
use super::validate::{Target, validate_send};
use super::{SendMessage, SendOutcome};
use crate::db::Database;
use crate::domain::outbox::Outbox;
use crate::domain::views::{UnreadCounts, UserRef};
use crate::domain::{DomainError, DomainResult, accounts};
use crate::ids;

/// Stores a message and returns once its participants have been told. A new thread is stored
/// in its own transaction; replies go through the group commit, many to a transaction. Both
/// are announced through the outbox, in commit order.
pub async fn send(
    db: &Database,
    outbox: &Outbox,
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
            let _pending = replies.pending();
            Box::pin(start_thread(db, outbox, directory, sender, first)).await
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

/// Stores a new thread with its first message, in one transaction, and tells both
/// participants.
async fn start_thread(
    db: &Database,
    outbox: &Outbox,
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
    let mut write = outbox.begin(db).await?;
    let txn = write.txn();
    let now = ids::now_micros();
    let recipient = match accounts::lookup_name(&recipient) {
        Some(name) => accounts::find_by_username(txn, &name).await?,
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
    .insert(txn)
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
    .insert(txn)
    .await;
    let message = match inserted {
        Ok(m) => m,
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            // A retry of a message already stored (same client_id): answer with the first one.
            drop(write);
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
        .exec(txn)
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
        .exec(txn)
        .await?;
    let recipient_unread = if recipient.id != sender.id {
        unread_counts(txn, recipient.id).await?
    } else {
        UnreadCounts::default()
    };
    let meta = ThreadMeta {
        id: thread.id,
        public_id: thread.public_id,
        subject: thread.subject,
        created_at: thread.created_at,
        members,
    };
    let unread = HashMap::from([(recipient.id, recipient_unread)]);
    let delivered = delivered(&meta, &message, rows, &unread, &Offsets::new())?;
    write.extend(delivered.news.into_iter().chain(delivered.totals));
    write.commit().await?;
    directory.put(meta);
    Ok(delivered.outcome)
}
