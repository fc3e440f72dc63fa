//! Reactions: a member adds or takes back an emoji on a message they can see. The message's
//! row holds them all (at most [`MAX_REACTIONS`] emoji), and every member who sees it hears
//! `message:reactions` with the list after the change. Unread counts do not move.

use entity::message;
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect};

use super::edit::seers;
use super::queries::{seen_by, thread_context};
use crate::db::Database;
use crate::domain::events::MessageReactions;
use crate::domain::outbox::Outbox;
use crate::domain::views::{MessageView, UserRef, stored_reactions};
use crate::domain::{DomainError, DomainResult};

/// Most distinct emoji on one message.
pub const MAX_REACTIONS: usize = 20;
/// Longest emoji, in bytes (the longest sequences Unicode lists are under 40).
const MAX_EMOJI: usize = 64;

/// Whether a reaction is added or taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum React {
    Add,
    Remove,
}

/// `emoji` if it is one emoji that Unicode lists (with its skin tone, if any), as sent; else
/// 422 `invalid_emoji`.
pub fn valid_emoji(emoji: &str) -> DomainResult<&str> {
    if emoji.len() <= MAX_EMOJI && emojis::get(emoji).is_some() {
        Ok(emoji)
    } else {
        Err(DomainError::invalid(
            "emoji",
            "invalid_emoji",
            "a reaction is one emoji (as Unicode lists them)",
        ))
    }
}

/// Adds or takes back `user`'s `emoji` on the message `url`; the message as they see it after.
/// Doing what is already done changes nothing and tells no one.
pub async fn react(
    db: &Database,
    outbox: &Outbox,
    user: &UserRef,
    url: &str,
    emoji: &str,
    how: React,
) -> DomainResult<MessageView> {
    let emoji = valid_emoji(emoji)?;
    let mut write = outbox.begin(db).await?;
    let txn = write.txn();
    let mut query = message::Entity::find().filter(message::Column::PublicId.eq(url));
    if db.backend() == DbBackend::Postgres {
        // Two members reacting at once: the second reads the list the first wrote. (SQLite's
        // writers take turns already.)
        query = query.lock_exclusive();
    }
    let found = query
        .one(txn)
        .await?
        .filter(|m| m.removed_at.is_none())
        .ok_or(DomainError::NotFound)?;
    let hid = seen_by(txn, user.id, &found)
        .await?
        .ok_or(DomainError::NotFound)?;
    let mut reactions = stored_reactions(&found);
    let changed = match how {
        React::Add => {
            let full = reactions.len() >= MAX_REACTIONS;
            match reactions.iter_mut().find(|(e, _)| e == emoji) {
                Some((_, users)) if users.contains(&user.id) => false,
                Some((_, users)) => {
                    users.push(user.id);
                    true
                }
                None if full => {
                    return Err(DomainError::Conflict(
                        "too_many_reactions",
                        format!("a message has at most {MAX_REACTIONS} different reactions"),
                    ));
                }
                None => {
                    reactions.push((emoji.to_owned(), vec![user.id]));
                    true
                }
            }
        }
        React::Remove => match reactions.iter().position(|(e, _)| e == emoji) {
            Some(at) if reactions[at].1.contains(&user.id) => {
                reactions[at].1.retain(|id| *id != user.id);
                // An emoji leaves the list with its last user.
                if reactions[at].1.is_empty() {
                    reactions.remove(at);
                }
                true
            }
            _ => false,
        },
    };
    let ctx = thread_context(txn, found.thread_id).await?;
    if !changed {
        drop(write);
        return Ok(ctx.message_view(&found, user.id));
    }
    let stored = match reactions.is_empty() {
        true => None,
        false => Some(
            serde_json::to_string(&reactions).map_err(|e| DomainError::Internal(e.to_string()))?,
        ),
    };
    message::Entity::update_many()
        .col_expr(message::Column::Reactions, stored.clone().into())
        .filter(message::Column::Id.eq(found.id))
        .exec(txn)
        .await?;
    let updated = message::Model {
        reactions: stored,
        ..found
    };
    let list = ctx.reactions(&updated);
    for member in seers(&ctx, &updated, &hid) {
        write.tell(
            &member.user,
            MessageReactions {
                url: updated.public_id.clone(),
                thread_id: ctx.thread.public_id.clone(),
                reactions: list.clone(),
            },
        );
    }
    write.commit().await?;
    Ok(ctx.message_view(&updated, user.id))
}
