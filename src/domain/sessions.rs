//! Login sessions: one row each, valid while it exists and is not idle-expired.

use std::time::Duration;

use entity::{session, setting, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
};

use super::DomainResult;
use super::security_log::Place;
use super::views::Account;
use crate::ids;

/// Creates a session for `user_id`, from `place`, that ends after `idle` without activity.
pub async fn create(
    db: &impl ConnectionTrait,
    user_id: i64,
    idle: Duration,
    place: &Place,
) -> DomainResult<session::Model> {
    let now = ids::now_micros();
    Ok(session::ActiveModel {
        id: Set(ids::public_id()),
        user_id: Set(user_id),
        created_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(now + ids::duration_micros(idle)),
        device: Set(place.device.clone()),
        address: Set(place.address.clone()),
    }
    .insert(db)
    .await?)
}

/// A live session, as the layers above the domain see it.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub id: String,
    /// When its activity was last recorded (see [`is_stale`]).
    pub last_seen_at: i64,
}

/// The live session `sid` and its account (read only: see [`is_stale`]).
pub async fn resolve(
    db: &impl ConnectionTrait,
    sid: &str,
) -> DomainResult<Option<(LiveSession, Account)>> {
    let now = ids::now_micros();
    let Some((session, Some(user))) = session::Entity::find_by_id(sid.to_owned())
        .find_also_related(user::Entity)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if session.expires_at <= now || user.disabled || user.deleted_at.is_some() {
        return Ok(None);
    }
    let live = LiveSession {
        id: session.id,
        last_seen_at: session.last_seen_at,
    };
    Ok(Some((live, Account::from(&user))))
}

/// Whether the session's activity should be recorded now ([`touch`]): activity moves the idle
/// deadline, but at most once per `idle / 20` (capped at a minute), so a busy client does not
/// write on every request.
pub fn is_stale(session: &LiveSession, idle: Duration) -> bool {
    let throttle = ids::duration_micros(idle / 20).min(60_000_000);
    ids::now_micros() - session.last_seen_at >= throttle
}

/// Which of `ids` are live sessions.
pub async fn live_among(
    db: &impl ConnectionTrait,
    session_ids: &[String],
) -> DomainResult<Vec<String>> {
    let now = ids::now_micros();
    let mut live = Vec::with_capacity(session_ids.len());
    for chunk in session_ids.chunks(500) {
        let found: Vec<String> = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::Id.is_in(chunk.to_vec()))
            .filter(session::Column::ExpiresAt.gt(now))
            .into_tuple()
            .all(db)
            .await?;
        live.extend(found);
    }
    Ok(live)
}

/// Marks sessions as active now (sessions with open sockets), a few hundred per statement.
pub async fn touch(
    db: &impl ConnectionTrait,
    ids: &[String],
    now: i64,
    idle: Duration,
) -> DomainResult<()> {
    for chunk in ids.chunks(500) {
        session::Entity::update_many()
            .col_expr(session::Column::LastSeenAt, now.into())
            .col_expr(
                session::Column::ExpiresAt,
                (now + ids::duration_micros(idle)).into(),
            )
            .filter(session::Column::Id.is_in(chunk.to_vec()))
            .filter(session::Column::ExpiresAt.gt(now))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Ends one session. Returns whether it existed.
pub async fn revoke(db: &impl ConnectionTrait, sid: &str) -> DomainResult<bool> {
    let res = session::Entity::delete_by_id(sid.to_owned())
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// Ends every session of a user; returns their ids (to disconnect their sockets).
pub async fn revoke_all(db: &impl ConnectionTrait, user_id: i64) -> DomainResult<Vec<String>> {
    revoke_others(db, user_id, None).await
}

/// Ends every session of a user but `keep`; returns their ids.
pub async fn revoke_others(
    db: &impl ConnectionTrait,
    user_id: i64,
    keep: Option<&str>,
) -> DomainResult<Vec<String>> {
    let mut ids: Vec<String> = session::Entity::find()
        .select_only()
        .column(session::Column::Id)
        .filter(session::Column::UserId.eq(user_id))
        .into_tuple()
        .all(db)
        .await?;
    ids.retain(|id| Some(id.as_str()) != keep);
    for chunk in ids.chunks(500) {
        session::Entity::delete_many()
            .filter(session::Column::Id.is_in(chunk.to_vec()))
            .exec(db)
            .await?;
    }
    Ok(ids)
}

/// Ends the session `sid` if it is `user_id`'s. Returns whether it was.
pub async fn revoke_of(db: &impl ConnectionTrait, user_id: i64, sid: &str) -> DomainResult<bool> {
    let res = session::Entity::delete_many()
        .filter(session::Column::Id.eq(sid))
        .filter(session::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// The live sessions of a user, newest first.
pub async fn list_of(db: &impl ConnectionTrait, user_id: i64) -> DomainResult<Vec<session::Model>> {
    use sea_orm::QueryOrder;
    Ok(session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::ExpiresAt.gt(ids::now_micros()))
        .order_by_desc(session::Column::CreatedAt)
        .limit(1000)
        .all(db)
        .await?)
}

/// Deletes idle-expired sessions; returns their ids.
pub async fn sweep_expired(db: &impl ConnectionTrait) -> DomainResult<Vec<String>> {
    let now = ids::now_micros();
    let ids: Vec<String> = session::Entity::find()
        .select_only()
        .column(session::Column::Id)
        .filter(session::Column::ExpiresAt.lte(now))
        .limit(1000)
        .into_tuple()
        .all(db)
        .await?;
    if !ids.is_empty() {
        session::Entity::delete_many()
            .filter(session::Column::Id.is_in(ids.clone()))
            .exec(db)
            .await?;
    }
    Ok(ids)
}

/// Number of live sessions (for /metrics).
pub async fn count_live(db: &impl ConnectionTrait) -> DomainResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(session::Entity::find()
        .filter(session::Column::ExpiresAt.gt(ids::now_micros()))
        .count(db)
        .await?)
}

/// The token signing secret: generated once and kept in the settings table, so restarts keep
/// sessions and every node sharing the database agrees on it (first writer wins).
pub async fn signing_secret(db: &impl ConnectionTrait) -> DomainResult<String> {
    kept_setting(db, "session_secret", ids::random_hex::<32>).await
}

/// The settings row `key`: `generate`d and kept by the first node to ask (the others read the
/// winner's), so that every node sharing the database agrees on it across restarts.
pub async fn kept_setting(
    db: &impl ConnectionTrait,
    key: &str,
    generate: impl FnOnce() -> String,
) -> DomainResult<String> {
    setting::Entity::insert(setting::ActiveModel {
        key: Set(key.into()),
        value: Set(generate()),
    })
    .on_conflict_do_nothing_on([setting::Column::Key])
    .exec(db)
    .await?;
    let row = setting::Entity::find_by_id(key.to_owned()).one(db).await?;
    row.map(|r| r.value)
        .ok_or_else(|| super::DomainError::Internal(format!("setting {key} missing after insert")))
}
