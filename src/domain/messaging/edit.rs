//! Editing and removing for everyone: a message's sender changes its body, or erases it,
//! within the edit window. Every member who can see it hears `message:edited` (logged as a
//! reference to the message, so that a replay shows it as it is then) or `message:removed`.
//! The old body is not kept.

use std::time::Duration;

use entity::message;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement};

use super::batch::quote;
use super::queries::{find_message, seen_by, thread_context, within_membership};
use super::validate::valid_body;
use crate::db::Database;
use crate::domain::events::{MessageEdited, MessageRemoved};
use crate::domain::outbox::Outbox;
use crate::domain::views::{Member, MessageView, Rendered, ThreadContext, UserRef};
use crate::domain::{DomainError, DomainResult, search};
use crate::ids;

/// What an edit may do: the longest body, and how long after sending (zero: editing is off).
#[derive(Debug, Clone, Copy)]
pub struct EditLimits {
    pub max_body: usize,
    pub window: Duration,
}

/// Replaces the body of the message `url`, which `editor` sent and can still see, within the
/// window; returns it as the editor sees it, once every member's tabs have been told. The
/// index and the replies that quote it follow.
pub async fn edit_message(
    db: &Database,
    outbox: &Outbox,
    editor: &UserRef,
    url: &str,
    body: &str,
    limits: EditLimits,
) -> DomainResult<MessageView> {
    let body = valid_body(body, limits.max_body)?;
    let mut write = outbox.begin(db).await?;
    let txn = write.txn();
    let (found, hid) = own_message(txn, editor, url, limits.window).await?;
    let now = ids::now_micros();
    message::Entity::update_many()
        .col_expr(message::Column::Body, body.clone().into())
        .col_expr(message::Column::EditedAt, Some(now).into())
        .filter(message::Column::Id.eq(found.id))
        .exec(txn)
        .await?;
    search::reindex(txn, found.id, &found.body, &body).await?;
    requote(txn, found.id).await?;
    let edited = message::Model {
        body,
        edited_at: Some(now),
        ..found
    };
    let ctx = thread_context(txn, edited.thread_id).await?;
    let mut mine = None;
    for member in seers(&ctx, &edited, &hid) {
        let view = ctx.message_view(&edited, member.user.id);
        let message = Rendered::of(&view).map_err(|e| DomainError::Internal(e.to_string()))?;
        if member.user.id == editor.id {
            mine = Some(view);
        }
        write.tell(
            &member.user,
            MessageEdited {
                message,
                message_id: edited.id,
            },
        );
    }
    write.commit().await?;
    mine.ok_or(DomainError::NotFound)
}

/// Removes the message `url`, which `sender` sent and can still see, for everyone, within the
/// window: its body is erased (and leaves the index and the replies that quote it), the
/// message stays in the history as removed, and every member who sees it is told.
pub async fn remove_for_everyone(
    db: &Database,
    outbox: &Outbox,
    sender: &UserRef,
    url: &str,
    window: Duration,
) -> DomainResult<()> {
    let mut write = outbox.begin(db).await?;
    let txn = write.txn();
    let (found, hid) = own_message(txn, sender, url, window).await?;
    message::Entity::update_many()
        .col_expr(message::Column::Body, String::new().into())
        .col_expr(message::Column::RemovedAt, Some(ids::now_micros()).into())
        .col_expr(message::Column::Reactions, Option::<String>::None.into())
        .filter(message::Column::Id.eq(found.id))
        .exec(txn)
        .await?;
    search::unindex(txn, found.id, &found.body).await?;
    requote(txn, found.id).await?;
    let ctx = thread_context(txn, found.thread_id).await?;
    for member in seers(&ctx, &found, &hid) {
        write.tell(
            &member.user,
            MessageRemoved {
                url: found.public_id.clone(),
                thread_id: ctx.thread.public_id.clone(),
            },
        );
    }
    write.commit().await
}

/// The message `url` as its sender may change it: theirs, not removed, seen by them (a current
/// member who did not delete it), within the window; with who deleted it for themselves.
async fn own_message(
    txn: &impl ConnectionTrait,
    sender: &UserRef,
    url: &str,
    window: Duration,
) -> DomainResult<(message::Model, Vec<i64>)> {
    let found = find_message(txn, url)
        .await?
        .filter(|m| m.removed_at.is_none())
        .ok_or(DomainError::NotFound)?;
    // Someone else's message, or one the sender no longer sees: as if it did not exist.
    if found.sender_id != sender.id {
        return Err(DomainError::NotFound);
    }
    let hid = seen_by(txn, sender.id, &found)
        .await?
        .ok_or(DomainError::NotFound)?;
    let age =
        Duration::from_micros(u64::try_from(ids::now_micros() - found.created_at).unwrap_or(0));
    if window.is_zero() || age > window {
        return Err(DomainError::Conflict(
            "edit_window_closed",
            match window.is_zero() {
                true => "editing is turned off on this server".into(),
                false => format!(
                    "a message can be changed for {} s after it is sent",
                    window.as_secs()
                ),
            },
        ));
    }
    Ok((found, hid))
}

/// The current members who see `m`: it is within their membership and they did not delete it.
pub(super) fn seers<'a>(
    ctx: &'a ThreadContext,
    m: &'a message::Model,
    hid: &'a [i64],
) -> impl Iterator<Item = &'a Member> {
    ctx.current().filter(move |member| {
        within_membership(&member.row, m.id) && !hid.contains(&member.user.id)
    })
}

/// Renews what the replies to message `id` show of it (after an edit or a removal).
async fn requote(txn: &impl ConnectionTrait, id: i64) -> DomainResult<()> {
    let backend = txn.get_database_backend();
    let id_param = match backend {
        DbBackend::Postgres => "$1",
        _ => "?1",
    };
    let sql = format!(
        "UPDATE messages SET reply_to = {} WHERE reply_to_id = {id_param}",
        quote(backend, id_param)
    );
    txn.execute_raw(Statement::from_sql_and_values(backend, sql, [id.into()]))
        .await?;
    Ok(())
}
