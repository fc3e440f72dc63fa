//! A member's mute of a thread: no pushes for it, for them, until they unmute it or its time
//! passes. Their own tabs hear it (`thread:muted`); nobody else learns of it.

use entity::participant;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::list::get_thread;
use super::queries::visible_membership;
use crate::db::Database;
use crate::domain::events::ThreadMuted;
use crate::domain::outbox::Outbox;
use crate::domain::views::{Mute, ThreadView, UserRef};
use crate::domain::{DomainError, DomainResult};
use crate::ids;

/// What a mute request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuteRequest {
    /// Muted until unmuted.
    Forever,
    /// Muted until this time (Unix microseconds, in the future).
    Until(i64),
    Unmute,
}

impl MuteRequest {
    /// A mute until `until` (RFC 3339), or without end when it is absent.
    pub fn until(until: Option<&str>) -> DomainResult<MuteRequest> {
        let Some(text) = until else {
            return Ok(MuteRequest::Forever);
        };
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| MuteRequest::Until(t.timestamp_micros()))
            .map_err(|_| {
                DomainError::invalid("until", "invalid_until", "until must be an RFC 3339 time")
            })
    }
}

/// Mutes or unmutes `thread_id` for `user` (a thread in their inbox); returns the thread as
/// they now see it, once their tabs have been told.
pub async fn mute(
    db: &Database,
    outbox: &Outbox,
    user: &UserRef,
    thread_id: &str,
    request: MuteRequest,
) -> DomainResult<ThreadView> {
    let stored = match request {
        MuteRequest::Forever => Some(Mute::FOREVER),
        MuteRequest::Until(until) if until <= ids::now_micros() => {
            return Err(DomainError::invalid(
                "until",
                "invalid_until",
                "until must be a time in the future",
            ));
        }
        MuteRequest::Until(until) => Some(until),
        MuteRequest::Unmute => None,
    };
    let mut write = outbox.begin(db).await?;
    let txn = write.txn();
    let (thread, _) = visible_membership(txn, user.id, thread_id).await?;
    participant::Entity::update_many()
        .col_expr(participant::Column::MutedUntil, stored.into())
        .filter(participant::Column::ThreadId.eq(thread.id))
        .filter(participant::Column::UserId.eq(user.id))
        .exec(txn)
        .await?;
    let view = get_thread(txn, user.id, thread_id).await?;
    write.tell(
        user,
        ThreadMuted {
            thread_id: view.thread_id.clone(),
            muted: view.muted,
            muted_until: view.muted_until.clone(),
        },
    );
    write.commit().await?;
    Ok(view)
}
