//! A group's membership and subject: adding, removing (or leaving) and renaming. Each change
//! is one transaction that moves the thread's `version` first (taking its row lock, so that a
//! reply's commit waits for it and then sees that its sender's copy is older), records the
//! change in the thread's history, and tells every member, the one removed included, with a
//! `thread:updated` (logged).

use entity::{message, message_hide, participant, thread, thread_change};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::directory::{Directory, ThreadMeta};
use super::queries::{find_thread, newest_visible, thread_context};
use super::validate::valid_subject;
use crate::db::Database;
use crate::domain::events::ThreadUpdated;
use crate::domain::outbox::{Outbox, Write};
use crate::domain::views::{Change, ChangeKind, ThreadContext, ThreadKind, ThreadView, UserRef};
use crate::domain::{DomainError, DomainResult, accounts, notifications};
use crate::ids;

/// Adds `username` to the group `thread_id` (any member may); a group of `max` members is
/// full. They see the messages from now on; one who was a member before gets their earlier
/// messages back, never those sent while they were away. Adding a member again changes
/// nothing.
pub async fn add_member(
    db: &Database,
    outbox: &Outbox,
    directory: &Directory,
    by: &UserRef,
    thread_id: &str,
    username: &str,
    max: usize,
) -> DomainResult<ThreadView> {
    let mut write = outbox.begin(db).await?;
    let (thread, ctx) = open_group(&write, by, thread_id).await?;
    let added = named_user(&write, username).await?;
    // One who blocks the adder is, to them, no one: blocking is never revealed.
    if notifications::blocks(write.txn(), added.id, by.id).await? {
        return Err(unknown_recipient());
    }
    if ctx.current().any(|m| m.user.id == added.id) {
        return view_for(&write, &ctx, by.id).await;
    }
    if ctx.current().count() >= max {
        return Err(DomainError::Conflict(
            "group_full",
            format!("a group has at most {max} members, its creator included"),
        ));
    }
    let txn = write.txn();
    let now = ids::now_micros();
    let last = thread.last_message_id.unwrap_or(0);
    match ctx.member(added.id) {
        None => {
            participant::ActiveModel::from(participant::Model {
                thread_id: thread.id,
                user_id: added.id,
                last_message_id: last,
                read_up_to: 0,
                hidden_before: 0,
                unread: 0,
                joined_after: last,
                member_until: None,
                joined_at: now,
                muted_until: None,
            })
            .insert(txn)
            .await?;
        }
        Some(before) => {
            // Back after a time away: what was sent meanwhile stays hidden from them.
            let away = before.member_until.unwrap_or(last);
            hide_between(txn, added.id, thread.id, away, last).await?;
            participant::Entity::update_many()
                .col_expr(participant::Column::MemberUntil, Expr::value(None::<i64>))
                .col_expr(participant::Column::JoinedAt, now.into())
                .col_expr(participant::Column::LastMessageId, last.into())
                .filter(participant::Column::ThreadId.eq(thread.id))
                .filter(participant::Column::UserId.eq(added.id))
                .exec(txn)
                .await?;
        }
    }
    let change = Change {
        kind: ChangeKind::Added,
        by: by.username.clone(),
        username: Some(added.username.clone()),
        subject: None,
    };
    record(&write, &thread, by.id, Some(added.id), &change, now).await?;
    let (after, view) = announce(&mut write, thread.id, change, by.id, &[]).await?;
    write.commit().await?;
    directory.put(ThreadMeta::of(&after));
    Ok(view)
}

/// Removes `username` from the group `thread_id`: the creator may remove anyone, anyone may
/// remove themself (leave). They keep what they had, read-only. When the creator leaves, the
/// longest-standing member takes over the right to remove. Returns who was removed, and the
/// group as `by` sees it after.
pub async fn remove_member(
    db: &Database,
    outbox: &Outbox,
    directory: &Directory,
    by: &UserRef,
    thread_id: &str,
    username: &str,
) -> DomainResult<(UserRef, ThreadView)> {
    let mut write = outbox.begin(db).await?;
    let (thread, ctx) = open_group(&write, by, thread_id).await?;
    let removed = named_user(&write, username).await?;
    if !ctx.current().any(|m| m.user.id == removed.id) {
        return Err(DomainError::NotFound);
    }
    let leaving = removed.id == by.id;
    if !leaving && thread.created_by != Some(by.id) {
        return Err(DomainError::NotAllowed(
            "only the group's creator removes others; anyone may leave".into(),
        ));
    }
    let txn = write.txn();
    let now = ids::now_micros();
    let last = thread.last_message_id.unwrap_or(0);
    participant::Entity::update_many()
        .col_expr(participant::Column::MemberUntil, Expr::value(Some(last)))
        .filter(participant::Column::ThreadId.eq(thread.id))
        .filter(participant::Column::UserId.eq(removed.id))
        .exec(txn)
        .await?;
    if thread.created_by == Some(removed.id) {
        let heir = ctx
            .current()
            .filter(|m| m.user.id != removed.id)
            .min_by_key(|m| (m.row.joined_at, m.user.id))
            .map(|m| m.user.id);
        thread::Entity::update_many()
            .col_expr(thread::Column::CreatedBy, Expr::value(heir))
            .filter(thread::Column::Id.eq(thread.id))
            .exec(txn)
            .await?;
    }
    let change = Change {
        kind: match leaving {
            true => ChangeKind::Left,
            false => ChangeKind::Removed,
        },
        by: by.username.clone(),
        username: Some(removed.username.clone()),
        subject: None,
    };
    record(&write, &thread, by.id, Some(removed.id), &change, now).await?;
    let (after, view) = announce(&mut write, thread.id, change, by.id, &[removed.id]).await?;
    write.commit().await?;
    directory.put(ThreadMeta::of(&after));
    Ok((removed, view))
}

/// Gives the group `thread_id` a new subject (any member may).
pub async fn rename(
    db: &Database,
    outbox: &Outbox,
    directory: &Directory,
    by: &UserRef,
    thread_id: &str,
    subject: &str,
) -> DomainResult<ThreadView> {
    let subject = valid_subject(subject)?;
    let mut write = outbox.begin(db).await?;
    let (thread, _) = open_group(&write, by, thread_id).await?;
    let now = ids::now_micros();
    thread::Entity::update_many()
        .col_expr(thread::Column::Subject, subject.clone().into())
        .filter(thread::Column::Id.eq(thread.id))
        .exec(write.txn())
        .await?;
    let change = Change {
        kind: ChangeKind::Renamed,
        by: by.username.clone(),
        username: None,
        subject: Some(subject),
    };
    record(&write, &thread, by.id, None, &change, now).await?;
    let (after, view) = announce(&mut write, thread.id, change, by.id, &[]).await?;
    write.commit().await?;
    directory.put(ThreadMeta::of(&after));
    Ok(view)
}

/// The group `thread_id` with its members, once `by` is found to be one of them, its version
/// moved and its row locked for the rest of the write. A stranger, or one who left, gets
/// `NotFound`; a direct thread, `direct_thread`.
async fn open_group(
    write: &Write<'_>,
    by: &UserRef,
    thread_id: &str,
) -> DomainResult<(thread::Model, ThreadContext)> {
    let txn = write.txn();
    let found = find_thread(txn, thread_id)
        .await?
        .ok_or(DomainError::NotFound)?;
    // First the lock: what follows reads the thread as the last change left it.
    thread::Entity::update_many()
        .col_expr(
            thread::Column::Version,
            Expr::col(thread::Column::Version).add(1),
        )
        .filter(thread::Column::Id.eq(found.id))
        .exec(txn)
        .await?;
    let ctx = thread_context(txn, found.id).await?;
    let me = ctx
        .members
        .iter()
        .find(|m| m.user.id == by.id && m.current())
        .ok_or(DomainError::NotFound)?;
    if me.row.last_message_id <= me.row.hidden_before {
        return Err(DomainError::NotFound);
    }
    if ctx.kind() == ThreadKind::Direct {
        return Err(DomainError::Conflict(
            "direct_thread",
            "a direct thread's members and subject never change; start a group instead".into(),
        ));
    }
    Ok((ctx.thread.clone(), ctx))
}

/// The user called `username`, or `unknown_recipient`.
async fn named_user(write: &Write<'_>, username: &str) -> DomainResult<UserRef> {
    let found = accounts::find_named(write.txn(), username).await?;
    found
        .map(|u| UserRef::from(&u))
        .ok_or_else(unknown_recipient)
}

fn unknown_recipient() -> DomainError {
    DomainError::invalid("username", "unknown_recipient", "no user has that username")
}

/// Hides from `user_id` the messages of `thread_id` after `after` up to `until`: those sent
/// while they were away from the group.
async fn hide_between(
    txn: &impl ConnectionTrait,
    user_id: i64,
    thread_id: i64,
    after: i64,
    until: i64,
) -> DomainResult<()> {
    if until <= after {
        return Ok(());
    }
    let missed = Query::select()
        .expr(Expr::val(user_id))
        .column(message::Column::Id)
        .from(message::Entity)
        .and_where(message::Column::ThreadId.eq(thread_id))
        .and_where(message::Column::Id.gt(after))
        .and_where(message::Column::Id.lte(until))
        .to_owned();
    let insert = Query::insert()
        .into_table(message_hide::Entity)
        .columns([
            message_hide::Column::UserId,
            message_hide::Column::MessageId,
        ])
        .select_from(missed)
        .map_err(|e| DomainError::Internal(e.to_string()))?
        .on_conflict(
            OnConflict::columns([
                message_hide::Column::UserId,
                message_hide::Column::MessageId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .to_owned();
    txn.execute(&insert).await?;
    Ok(())
}

/// Stores the change in the thread's history, after its newest message.
async fn record(
    write: &Write<'_>,
    thread: &thread::Model,
    by: i64,
    user_id: Option<i64>,
    change: &Change,
    at: i64,
) -> DomainResult<()> {
    thread_change::ActiveModel {
        thread_id: Set(thread.id),
        after_message_id: Set(thread.last_message_id.unwrap_or(0)),
        kind: Set(change.kind.stored().to_owned()),
        by_id: Set(by),
        user_id: Set(user_id),
        subject: Set(change.subject.clone()),
        created_at: Set(at),
        ..Default::default()
    }
    .insert(write.txn())
    .await?;
    Ok(())
}

/// Tells every current member, and `also` (the one removed), the change with the thread as
/// each sees it after it; returns the thread after it, and as `by` (one of those told) sees it.
async fn announce(
    write: &mut Write<'_>,
    thread_id: i64,
    change: Change,
    by: i64,
    also: &[i64],
) -> DomainResult<(ThreadContext, ThreadView)> {
    let after = thread_context(write.txn(), thread_id).await?;
    let told: Vec<UserRef> = after
        .members
        .iter()
        .filter(|m| m.current() || also.contains(&m.user.id))
        .map(|m| m.user.clone())
        .collect();
    let mut theirs = None;
    for user in told {
        let thread = view_for(write, &after, user.id).await?;
        if user.id == by {
            theirs = Some(thread.clone());
        }
        write.tell(
            &user,
            ThreadUpdated {
                thread,
                change: change.clone(),
            },
        );
    }
    let theirs = theirs.ok_or(DomainError::NotFound)?;
    Ok((after, theirs))
}

/// The thread as `viewer` sees it, with the newest message visible to them.
async fn view_for(write: &Write<'_>, ctx: &ThreadContext, viewer: i64) -> DomainResult<ThreadView> {
    let last = match ctx.member(viewer) {
        Some(me) => newest_visible(write.txn(), viewer, me).await?,
        None => None,
    };
    let last: Option<message::Model> = last;
    Ok(ctx.thread_view(viewer, last.as_ref()))
}
