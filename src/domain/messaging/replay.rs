//! Replaying a user's event log (`domain::event_log`): its entries made ready to send again,
//! each as its declaration says (`domain::events`): as it was sent, or as what it refers to
//! is now.

use std::collections::HashMap;

use entity::{event_log, message};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::value::RawValue;

use super::{queries, unread_counts};
use crate::domain::events::{self, Declared, Logged, Now, Refers};
use crate::domain::views::Rendered;
use crate::domain::{DomainError, DomainResult};

/// An entry made ready to send again: `[event, payload, offset]`.
pub struct Replayed {
    pub seq: i64,
    pub event: &'static str,
    pub payload: Box<RawValue>,
}

/// Renders `entries` of `user_id` for sending again. An entry of an event no longer declared,
/// or whose message no longer exists, is skipped.
pub async fn render(
    db: &impl ConnectionTrait,
    user_id: i64,
    entries: Vec<event_log::Model>,
) -> DomainResult<Vec<Replayed>> {
    render_with(events::SERVER_EVENTS, db, user_id, entries).await
}

/// [`render`] with the declarations of `declared`.
pub async fn render_with(
    declared: &'static [Declared],
    db: &impl ConnectionTrait,
    user_id: i64,
    entries: Vec<event_log::Model>,
) -> DomainResult<Vec<Replayed>> {
    let of = |e: &event_log::Model| events::find(declared, &e.event);
    let refers = |e: &event_log::Model, kind: Refers| {
        of(e).is_some_and(|d| d.logged == Logged::Current(kind))
    };
    let messages: Vec<i64> = entries
        .iter()
        .filter(|e| refers(e, Refers::Message))
        .filter_map(|e| e.ref_id)
        .collect();
    let mut now = Now {
        messages: messages_now(db, user_id, messages).await?,
        totals: None,
    };
    if entries.iter().any(|e| refers(e, Refers::Totals)) {
        now.totals = Some(unread_counts(db, user_id).await?);
    }
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let Some(declared) = of(&e) else { continue };
        let payload = match (declared.logged, e.payload) {
            (Logged::Current(_), _) => declared.replay_current(&now, e.ref_id),
            (_, Some(json)) => RawValue::from_string(json).ok(),
            (_, None) => None,
        };
        if let Some(payload) = payload {
            out.push(Replayed {
                seq: e.seq,
                event: declared.name,
                payload,
            });
        }
    }
    Ok(out)
}

/// The messages `ids`, rendered for `user_id`, each with its thread as the user sees it now.
async fn messages_now(
    db: &impl ConnectionTrait,
    user_id: i64,
    ids: Vec<i64>,
) -> DomainResult<HashMap<i64, (Rendered, crate::domain::views::ThreadView<Rendered>)>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut messages = message::Entity::find()
        .filter(message::Column::Id.is_in(ids))
        .all(db)
        .await?;
    messages.sort_unstable_by_key(|m| m.id);
    let mut thread_ids: Vec<i64> = messages.iter().map(|m| m.thread_id).collect();
    thread_ids.sort_unstable();
    thread_ids.dedup();
    let contexts = queries::thread_contexts(db, &thread_ids).await?;
    let with_context: Vec<_> = messages
        .iter()
        .filter_map(|m| Some((contexts.get(&m.thread_id)?, m)))
        .collect();
    let views = queries::message_views(db, with_context.iter().copied()).await?;
    let mut out = HashMap::with_capacity(views.len());
    for ((ctx, m), view) in with_context.into_iter().zip(&views) {
        let r = Rendered::of(view).map_err(|e| DomainError::Internal(e.to_string()))?;
        out.insert(m.id, (r.clone(), ctx.thread_view_with(user_id, Some(r))));
    }
    Ok(out)
}
