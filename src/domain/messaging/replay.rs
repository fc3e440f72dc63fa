//! Replaying a user's event log (`domain::event_log`): its entries made ready to send again.

use std::collections::HashMap;

use entity::{event_log, message};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::value::RawValue;

use super::{queries, unread_counts};
use crate::domain::views::{Rendered, ThreadView, UnreadCounts};
use crate::domain::{DomainError, DomainResult};

/// An entry made ready to send again.
pub struct Replayed {
    pub seq: i64,
    pub event: String,
    pub payload: ReplayedPayload,
}

/// What a replayed event carries.
pub enum ReplayedPayload {
    /// `message:new`: the message, and its thread as the user sees it now.
    NewMessage {
        message: Rendered,
        thread: ThreadView<Rendered>,
    },
    /// `unread`: the user's totals now.
    Unread(UnreadCounts),
    /// Any other event, as it was sent.
    Json(Box<RawValue>),
}

/// Renders `entries` of `user_id` for sending again. A `message:new` whose message no longer
/// exists is skipped.
pub async fn render(
    db: &impl ConnectionTrait,
    user_id: i64,
    entries: Vec<event_log::Model>,
) -> DomainResult<Vec<Replayed>> {
    let ids: Vec<i64> = entries.iter().filter_map(|e| e.ref_id).collect();
    let messages: HashMap<i64, message::Model> = if ids.is_empty() {
        HashMap::new()
    } else {
        message::Entity::find()
            .filter(message::Column::Id.is_in(ids))
            .all(db)
            .await?
            .into_iter()
            .map(|m| (m.id, m))
            .collect()
    };
    let mut thread_ids: Vec<i64> = messages.values().map(|m| m.thread_id).collect();
    thread_ids.sort_unstable();
    thread_ids.dedup();
    let contexts = queries::thread_contexts(db, &thread_ids).await?;
    let mut ordered: Vec<&message::Model> = messages.values().collect();
    ordered.sort_unstable_by_key(|m| m.id);
    let views = queries::message_views(
        db,
        ordered
            .iter()
            .filter_map(|m| Some((contexts.get(&m.thread_id)?, *m))),
    )
    .await?;
    let mut rendered: HashMap<i64, Rendered> = HashMap::with_capacity(views.len());
    let with_context = ordered
        .iter()
        .filter(|m| contexts.contains_key(&m.thread_id));
    for (m, view) in with_context.zip(&views) {
        let r = Rendered::of(view).map_err(|e| DomainError::Internal(e.to_string()))?;
        rendered.insert(m.id, r);
    }
    let mut unread = None;
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let payload = match (e.ref_id, e.payload) {
            (Some(id), _) => {
                let (Some(m), Some(r)) = (messages.get(&id), rendered.get(&id)) else {
                    continue;
                };
                let Some(ctx) = contexts.get(&m.thread_id) else {
                    continue;
                };
                ReplayedPayload::NewMessage {
                    message: r.clone(),
                    thread: ctx.thread_view_with(user_id, Some(r.clone())),
                }
            }
            (None, Some(json)) => match RawValue::from_string(json) {
                Ok(raw) => ReplayedPayload::Json(raw),
                Err(_) => continue,
            },
            (None, None) => {
                if unread.is_none() {
                    unread = Some(unread_counts(db, user_id).await?);
                }
                ReplayedPayload::Unread(unread.unwrap_or_default())
            }
        };
        out.push(Replayed {
            seq: e.seq,
            event: e.event,
            payload,
        });
    }
    Ok(out)
}
