//! Sending: a new thread with its first message, in a transaction of its own; a reply through
//! the group commit.

use entity::{message, participant, thread, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, SqlErr,
};

use super::batch::{Hidden, MemberRow, Offsets, Reply, delivered};
use super::directory::{Directory, ThreadMeta};
use super::group_commit::GroupCommit;
use super::list::unread_counts_of;
use super::queries::{find_by_client_id, find_message, seen_by};
use super::validate::{Target, validate_send};
use super::{SendMessage, SendOutcome};
use crate::db::Database;
use crate::domain::notifications;
use crate::domain::outbox::Outbox;
use crate::domain::views::{ThreadKind, UserRef};
use crate::domain::{DomainError, DomainResult, accounts, search};
use crate::ids;

/// What a send may do: the longest body, the largest group.
#[derive(Debug, Clone, Copy)]
pub struct SendLimits {
    pub max_body: usize,
    /// Most members of a group, its creator included.
    pub max_participants: usize,
}

impl SendLimits {
    /// The limits of the unit tests: short bodies, groups of up to 32.
    #[cfg(test)]
    pub const TEST: SendLimits = SendLimits {
        max_body: 100,
        max_participants: 32,
    };
}

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
    limits: SendLimits,
) -> DomainResult<SendOutcome> {
    let req = validate_send(req, limits.max_body)?;
    match req.target {
        Target::Reply { thread_id } => {
            let mut meta = directory
                .load(&db.conn, &thread_id)
                .await?
                .ok_or(DomainError::NotFound)?;
            if !meta.is_member(sender.id) {
                // The copy may predate their joining: the commit checks against the thread
                // as it is, but a refusal is only given on a fresh read.
                meta = directory
                    .load_missing(&db.conn, &thread_id)
                    .await?
                    .filter(|m| m.is_member(sender.id))
                    .ok_or(DomainError::NotFound)?;
            }
            let reply_to_id = match &req.reply_to {
                Some(url) => Some(reply_target(&db.conn, sender.id, meta.id, url).await?),
                None => None,
            };
            let reply = Reply {
                sender: sender.clone(),
                meta,
                terms: search::terms(&req.body),
                body: req.body,
                client_id: req.client_id,
                reply_to_id,
            };
            replies.submit(reply).await
        }
        // Boxed: its future is several times the size of a reply's, and every send's future is
        // moved into a task of its own; the common case, a reply, stays small.
        Target::New {
            recipients,
            subject,
        } => {
            let first = FirstMessage {
                recipients,
                subject,
                body: req.body,
                client_id: req.client_id,
            };
            let _pending = replies.pending();
            Box::pin(start_thread(
                db,
                outbox,
                directory,
                sender,
                first,
                limits.max_participants,
            ))
            .await
        }
    }
}

/// The id of the message `url` that a reply to thread `thread_id` answers: one of that thread
/// that the sender can see, not removed.
async fn reply_target(
    db: &impl ConnectionTrait,
    sender_id: i64,
    thread_id: i64,
    url: &str,
) -> DomainResult<i64> {
    let refused = || {
        DomainError::invalid(
            "reply_to",
            "invalid_reply_to",
            "reply_to names no message of this thread that you can see",
        )
    };
    let target = find_message(db, url)
        .await?
        .filter(|m| m.thread_id == thread_id && m.removed_at.is_none())
        .ok_or_else(refused)?;
    seen_by(db, sender_id, &target).await?.ok_or_else(refused)?;
    Ok(target.id)
}

/// The first message of a new thread.
struct FirstMessage {
    recipients: Vec<String>,
    subject: String,
    body: String,
    client_id: Option<String>,
}

/// The people a new thread goes to, besides the sender: each name must be a user's; the
/// sender and repeats count once. Two or more others make a group, of at most `max` members
/// with the sender.
async fn find_recipients(
    db: &impl ConnectionTrait,
    sender: &UserRef,
    names: &[String],
    max: usize,
) -> DomainResult<Vec<user::Model>> {
    let full = || {
        DomainError::Conflict(
            "group_full",
            format!("a group has at most {max} members, its creator included"),
        )
    };
    // Names beyond what a group holds are refused before any is looked up.
    if names.len() > max {
        return Err(full());
    }
    let mut others: Vec<user::Model> = Vec::with_capacity(names.len());
    for name in names {
        let found = accounts::find_named(db, name).await?;
        // One who blocks the sender is, to them, no one: blocking is never revealed.
        let found = match found {
            Some(u) if notifications::blocks(db, u.id, sender.id).await? => None,
            found => found,
        }
        .ok_or_else(|| {
            DomainError::invalid(
                "recipients",
                "unknown_recipient",
                format!("no user has the username {name:?}"),
            )
        })?;
        if !others.iter().any(|o| o.id == found.id) {
            others.push(found);
        }
    }
    let alone = others.len() == 1 && others[0].id == sender.id;
    if !alone {
        others.retain(|o| o.id != sender.id);
    }
    if others.len() + 1 > max {
        return Err(full());
    }
    Ok(others)
}

/// Stores a new thread with its first message, in one transaction, and tells its members.
async fn start_thread(
    db: &Database,
    outbox: &Outbox,
    directory: &Directory,
    sender: &UserRef,
    first: FirstMessage,
    max_participants: usize,
) -> DomainResult<SendOutcome> {
    let FirstMessage {
        recipients,
        subject,
        body,
        client_id,
    } = first;
    let mut write = outbox.begin(db).await?;
    let txn = write.txn();
    let now = ids::now_micros();
    let others = find_recipients(txn, sender, &recipients, max_participants).await?;
    let kind = match others.len() {
        0 | 1 => ThreadKind::Direct,
        _ => ThreadKind::Group,
    };
    // A direct thread's recipient is the other person (oneself, alone); a group has none.
    let recipient_id = match kind {
        ThreadKind::Direct => others[0].id,
        ThreadKind::Group => sender.id,
    };
    let mut members: Vec<(UserRef, bool)> = vec![(sender.clone(), true)];
    for o in others.iter().filter(|o| o.id != sender.id) {
        members.push((UserRef::from(o), o.read_receipts));
    }
    members.sort_by_key(|(m, _)| m.id);
    let thread = thread::ActiveModel {
        public_id: Set(ids::public_id()),
        subject: Set(subject),
        created_at: Set(now),
        updated_at: Set(now),
        last_message_id: Set(None),
        kind: Set(kind.stored().to_owned()),
        created_by: Set(Some(sender.id)),
        version: Set(0),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let inserted = message::ActiveModel {
        public_id: Set(ids::message_url()),
        thread_id: Set(thread.id),
        sender_id: Set(sender.id),
        recipient_id: Set(recipient_id),
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
    search::index(txn, [(message.id, message.body.as_str())]).await?;
    thread::Entity::update_many()
        .col_expr(thread::Column::LastMessageId, message.id.into())
        .filter(thread::Column::Id.eq(thread.id))
        .exec(txn)
        .await?;
    let rows: Vec<MemberRow> = members
        .iter()
        .map(|(m, receipts)| MemberRow {
            row: participant::Model {
                thread_id: thread.id,
                user_id: m.id,
                last_message_id: message.id,
                read_up_to: 0,
                hidden_before: 0,
                unread: i32::from(m.id != sender.id),
                joined_after: 0,
                member_until: None,
                joined_at: now,
                muted_until: None,
            },
            receipts: *receipts,
            read_url: None,
        })
        .collect();
    participant::Entity::insert_many(
        rows.iter()
            .map(|r| participant::ActiveModel::from(r.row.clone())),
    )
    .exec(txn)
    .await?;
    let receivers: Vec<i64> = members
        .iter()
        .map(|(m, _)| m.id)
        .filter(|id| *id != sender.id)
        .collect();
    let unread = unread_counts_of(txn, &receivers).await?;
    let meta = ThreadMeta {
        id: thread.id,
        public_id: thread.public_id,
        kind,
        subject: thread.subject,
        created_at: thread.created_at,
        created_by: Some(sender.id),
        version: 0,
        members: members.iter().map(|(m, _)| m.clone()).collect(),
        current: members.iter().map(|(m, _)| m.id).collect(),
    };
    // A new thread's members were refused if they block its creator: none is hidden.
    let delivered = delivered(
        &meta,
        &message,
        rows,
        &unread,
        &Offsets::new(),
        &Hidden::new(),
    )?;
    write.extend(delivered.news.into_iter().chain(delivered.totals));
    write.commit().await?;
    directory.put(meta);
    Ok(delivered.outcome)
}
