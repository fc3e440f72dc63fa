//! Per-user deletion: a message or a whole thread disappears for the caller only.

use entity::{message_hide, participant, thread, unread_below_mark};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};

use super::list::{tell_with_totals, unread_counts};
use super::queries::{
    below_mark_of, find_message, membership, visible_membership, visible_messages, visible_threads,
    within_membership,
};
use crate::db::Database;
use crate::domain::events::{MessageDeleted, ThreadDeleted};
use crate::domain::outbox::Outbox;
use crate::domain::views::UserRef;
use crate::domain::{DomainError, DomainResult};

/// Hides one message for `user` only; returns once the user's tabs have been told.
pub async fn delete_message(
    db: &Database,
    outbox: &Outbox,
    user: &UserRef,
    url: &str,
) -> DomainResult<MessageDeleted> {
    let mut write = outbox.begin(db).await?;
    let txn = write.txn();
    let message = find_message(txn, url).await?.ok_or(DomainError::NotFound)?;
    let thread = thread::Entity::find_by_id(message.thread_id)
        .one(txn)
        .await?
        .ok_or(DomainError::NotFound)?;
    let me = membership(txn, user.id, thread.id)
        .await?
        .ok_or(DomainError::NotFound)?;
    if !within_membership(&me, message.id) || is_hidden(txn, user.id, message.id).await? {
        return Err(DomainError::NotFound);
    }
    let before = unread_counts(txn, user.id).await?;
    message_hide::ActiveModel {
        user_id: Set(user.id),
        message_id: Set(message.id),
    }
    .insert(txn)
    .await?;
    // Unread, it counted in the reader's unread messages: above the read mark, or listed
    // below it by an import (where the row stays: the sender still sees it unread).
    let counted_unread = message.sender_id != user.id
        && me.unread > 0
        && (message.id > me.read_up_to
            || unread_below_mark::Entity::find()
                .filter(below_mark_of(&me))
                .filter(unread_below_mark::Column::MessageId.eq(message.id))
                .one(txn)
                .await?
                .is_some());
    if counted_unread {
        participant::Entity::update_many()
            .col_expr(
                participant::Column::Unread,
                Expr::col(participant::Column::Unread).sub(1),
            )
            .filter(participant::Column::ThreadId.eq(thread.id))
            .filter(participant::Column::UserId.eq(user.id))
            .exec(txn)
            .await?;
    }
    let total_messages = visible_messages(user.id, &me, thread.id).count(txn).await?;
    if total_messages == 0 {
        // Nothing left to show: the thread leaves the inbox as if deleted whole.
        hide_thread_until(txn, &me, thread.last_message_id.unwrap_or(0)).await?;
    }
    let event = tell_with_totals(&mut write, user, before, |_, _| MessageDeleted {
        url: message.public_id,
        thread_id: thread.public_id,
        total_messages,
    })
    .await?;
    write.commit().await?;
    Ok(event)
}

/// Hides a whole thread for `user` only, until someone writes in it again; returns once the
/// user's tabs have been told.
pub async fn delete_thread(
    db: &Database,
    outbox: &Outbox,
    user: &UserRef,
    thread_id: &str,
) -> DomainResult<ThreadDeleted> {
    let mut write = outbox.begin(db).await?;
    let txn = write.txn();
    let (thread, me) = visible_membership(txn, user.id, thread_id).await?;
    let before = unread_counts(txn, user.id).await?;
    hide_thread_until(txn, &me, thread.last_message_id.unwrap_or(0)).await?;
    let total_threads = visible_threads(user.id).count(txn).await?;
    let event = tell_with_totals(&mut write, user, before, |_, _| ThreadDeleted {
        thread_id: thread.public_id,
        total_threads,
    })
    .await?;
    write.commit().await?;
    Ok(event)
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
    if me.unread > 0 {
        unread_below_mark::Entity::delete_many()
            .filter(below_mark_of(me))
            .exec(db)
            .await?;
    }
    Ok(())
}

async fn is_hidden(db: &impl ConnectionTrait, user_id: i64, message_id: i64) -> DomainResult<bool> {
    Ok(message_hide::Entity::find_by_id((user_id, message_id))
        .one(db)
        .await?
        .is_some())
}
