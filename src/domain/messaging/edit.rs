//! Editing: a message's sender changes its body within the edit window. Every member who can
//! see it hears `message:edited`, logged as a reference to the message, so that a replay
//! shows it as it is then. The old body is not kept.

use std::time::Duration;

use entity::{message, message_hide};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::queries::{find_message, membership, thread_context, within_membership};
use super::validate::valid_body;
use crate::db::Database;
use crate::domain::events::MessageEdited;
use crate::domain::outbox::Outbox;
use crate::domain::views::{MessageView, Rendered, UserRef};
use crate::domain::{DomainError, DomainResult};
use crate::ids;

/// What an edit may do: the longest body, and how long after sending (zero: editing is off).
#[derive(Debug, Clone, Copy)]
pub struct EditLimits {
    pub max_body: usize,
    pub window: Duration,
}

/// Replaces the body of the message `url`, which `editor` sent and can still see, within the
/// window; returns it as the editor sees it, once every member's tabs have been told.
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
    let found = find_message(txn, url).await?.ok_or(DomainError::NotFound)?;
    let me = membership(txn, editor.id, found.thread_id)
        .await?
        .ok_or(DomainError::NotFound)?;
    // Who deleted it for themselves: they hear nothing of its edits.
    let hid: Vec<i64> = message_hide::Entity::find()
        .filter(message_hide::Column::MessageId.eq(found.id))
        .all(txn)
        .await?
        .into_iter()
        .map(|h| h.user_id)
        .collect();
    // Someone else's message, or one the editor no longer sees: as if it did not exist.
    if found.sender_id != editor.id
        || me.member_until.is_some()
        || !within_membership(&me, found.id)
        || hid.contains(&editor.id)
    {
        return Err(DomainError::NotFound);
    }
    let now = ids::now_micros();
    let age = Duration::from_micros(u64::try_from(now - found.created_at).unwrap_or(0));
    if limits.window.is_zero() || age > limits.window {
        return Err(DomainError::Conflict(
            "edit_window_closed",
            match limits.window.is_zero() {
                true => "editing is turned off on this server".into(),
                false => format!(
                    "a message can be edited for {} s after it is sent",
                    limits.window.as_secs()
                ),
            },
        ));
    }
    message::Entity::update_many()
        .col_expr(message::Column::Body, body.clone().into())
        .col_expr(message::Column::EditedAt, Some(now).into())
        .filter(message::Column::Id.eq(found.id))
        .exec(txn)
        .await?;
    let edited = message::Model {
        body,
        edited_at: Some(now),
        ..found
    };
    let ctx = thread_context(txn, edited.thread_id).await?;
    let mut mine = None;
    for member in ctx.current() {
        if !within_membership(&member.row, edited.id) || hid.contains(&member.user.id) {
            continue;
        }
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
