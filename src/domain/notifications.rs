//! Reaching people with no tab open, and not hearing from some: Web Push subscriptions (each
//! bound to the login session that made it), the server's VAPID key, and blocks. (A thread's
//! mute is a member's, in `messaging::mute`.)

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entity::{block, participant, push_subscription, thread, user};
use sea_orm::sea_query::{Expr, ExprTrait, IntoColumnRef, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, JoinType, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait,
};

use super::views::Mute;
use super::{DomainError, DomainResult, accounts, sessions};
use crate::ids;

/// Subscriptions one user may hold at once (their browsers and devices).
pub const MAX_SUBSCRIPTIONS: u64 = 10;
/// Users one user may block.
pub const MAX_BLOCKS: u64 = 1000;
/// The longest endpoint accepted (push services' are about 200 bytes).
pub const MAX_ENDPOINT: usize = 1024;

/// A subscription to push to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: i64,
    pub user_id: i64,
    pub endpoint: String,
    /// The browser's P-256 public key (65 bytes, uncompressed).
    pub p256dh: Vec<u8>,
    /// The browser's authentication secret (16 bytes).
    pub auth: Vec<u8>,
}

impl Subscription {
    fn of(row: push_subscription::Model) -> Option<Subscription> {
        Some(Subscription {
            id: row.id,
            user_id: row.user_id,
            p256dh: URL_SAFE_NO_PAD.decode(row.p256dh).ok()?,
            auth: URL_SAFE_NO_PAD.decode(row.auth).ok()?,
            endpoint: row.endpoint,
        })
    }
}

/// The server's VAPID private key (base64url, the 32-byte P-256 scalar): `generate`d once and
/// kept in the settings table, so that every node sharing the database signs with it.
pub async fn vapid_key(
    db: &impl ConnectionTrait,
    generate: impl FnOnce() -> String,
) -> DomainResult<String> {
    sessions::kept_setting(db, "vapid_private_key", generate).await
}

/// Keeps `endpoint` (already checked to be a public https URL) for `user_id`'s session
/// `session_id`: a browser subscribing again, under this session or another, replaces its
/// keys and owner. A user holds at most [`MAX_SUBSCRIPTIONS`].
pub async fn subscribe(
    db: &impl ConnectionTrait,
    user_id: i64,
    session_id: &str,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
) -> DomainResult<()> {
    let valid_key = URL_SAFE_NO_PAD
        .decode(p256dh.trim_end_matches('='))
        .ok()
        .filter(|k| p256::PublicKey::from_sec1_bytes(k).is_ok() && k.len() == 65);
    let valid_auth = URL_SAFE_NO_PAD
        .decode(auth.trim_end_matches('='))
        .ok()
        .filter(|a| a.len() == 16);
    let (Some(key), Some(secret)) = (valid_key, valid_auth) else {
        return Err(DomainError::invalid(
            "keys",
            "invalid_keys",
            "keys.p256dh must be an uncompressed P-256 point and keys.auth 16 bytes, base64url",
        ));
    };
    let held = push_subscription::Entity::find()
        .filter(push_subscription::Column::UserId.eq(user_id))
        .filter(push_subscription::Column::Endpoint.ne(endpoint))
        .count(db)
        .await?;
    if held >= MAX_SUBSCRIPTIONS {
        return Err(DomainError::Conflict(
            "too_many_subscriptions",
            format!("a user holds at most {MAX_SUBSCRIPTIONS} push subscriptions"),
        ));
    }
    push_subscription::Entity::insert(push_subscription::ActiveModel {
        user_id: Set(user_id),
        session_id: Set(session_id.to_owned()),
        endpoint: Set(endpoint.to_owned()),
        p256dh: Set(URL_SAFE_NO_PAD.encode(key)),
        auth: Set(URL_SAFE_NO_PAD.encode(secret)),
        created_at: Set(ids::now_micros()),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(push_subscription::Column::Endpoint)
            .update_columns([
                push_subscription::Column::UserId,
                push_subscription::Column::SessionId,
                push_subscription::Column::P256dh,
                push_subscription::Column::Auth,
                push_subscription::Column::CreatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Drops `user_id`'s subscription at `endpoint`, if they hold one there (another user's is
/// left alone).
pub async fn unsubscribe(
    db: &impl ConnectionTrait,
    user_id: i64,
    endpoint: &str,
) -> DomainResult<()> {
    push_subscription::Entity::delete_many()
        .filter(push_subscription::Column::UserId.eq(user_id))
        .filter(push_subscription::Column::Endpoint.eq(endpoint))
        .exec(db)
        .await?;
    Ok(())
}

/// Drops a subscription its push service says is gone (404, 410).
pub async fn forget(db: &impl ConnectionTrait, id: i64) -> DomainResult<()> {
    push_subscription::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// The subscriptions of `user_ids`.
pub async fn subscriptions_of(
    db: &impl ConnectionTrait,
    user_ids: &[i64],
) -> DomainResult<Vec<Subscription>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = push_subscription::Entity::find()
        .filter(push_subscription::Column::UserId.is_in(user_ids.iter().copied()))
        .order_by_asc(push_subscription::Column::Id)
        .all(db)
        .await?;
    Ok(rows.into_iter().filter_map(Subscription::of).collect())
}

/// The subscription `id`, if it still is (a retry checks before trying again).
pub async fn subscription(
    db: &impl ConnectionTrait,
    id: i64,
) -> DomainResult<Option<Subscription>> {
    let row = push_subscription::Entity::find_by_id(id).one(db).await?;
    Ok(row.and_then(Subscription::of))
}

/// Which of `(user, thread public id)` are muted now.
pub async fn muted_among(
    db: &impl ConnectionTrait,
    pairs: &[(i64, String)],
) -> DomainResult<HashSet<(i64, String)>> {
    if pairs.is_empty() {
        return Ok(HashSet::new());
    }
    let users: HashSet<i64> = pairs.iter().map(|(u, _)| *u).collect();
    let threads: HashSet<&str> = pairs.iter().map(|(_, t)| t.as_str()).collect();
    let rows: Vec<(i64, String, Option<i64>)> = participant::Entity::find()
        .select_only()
        .column(participant::Column::UserId)
        .column(thread::Column::PublicId)
        .column(participant::Column::MutedUntil)
        .join(JoinType::InnerJoin, participant::Relation::Thread.def())
        .filter(participant::Column::UserId.is_in(users))
        .filter(thread::Column::PublicId.is_in(threads))
        .filter(participant::Column::MutedUntil.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    let now = ids::now_micros();
    Ok(rows
        .into_iter()
        .filter(|(_, _, until)| Mute::of(*until, now).is_some())
        .map(|(u, t, _)| (u, t))
        .collect())
}

/// `blocker_id` blocks the user called `username`: they hear nothing of them from now on.
/// Blocking again changes nothing; an unknown name is `NotFound`, oneself is refused, and one
/// blocks at most [`MAX_BLOCKS`] users.
pub async fn block(db: &impl ConnectionTrait, blocker_id: i64, username: &str) -> DomainResult<()> {
    let blocked = named(db, username).await?;
    if blocked == blocker_id {
        return Err(DomainError::invalid(
            "username",
            "cannot_block_self",
            "you cannot block yourself",
        ));
    }
    let held = block::Entity::find()
        .filter(block::Column::BlockerId.eq(blocker_id))
        .count(db)
        .await?;
    if held >= MAX_BLOCKS && !blocks(db, blocker_id, blocked).await? {
        return Err(DomainError::Conflict(
            "too_many_blocks",
            format!("a user blocks at most {MAX_BLOCKS} others"),
        ));
    }
    block::Entity::insert(block::ActiveModel {
        blocker_id: Set(blocker_id),
        blocked_id: Set(blocked),
        created_at: Set(ids::now_micros()),
    })
    .on_conflict_do_nothing_on([block::Column::BlockerId, block::Column::BlockedId])
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// `blocker_id` no longer blocks `username` (what was sent meanwhile stays hidden).
pub async fn unblock(
    db: &impl ConnectionTrait,
    blocker_id: i64,
    username: &str,
) -> DomainResult<()> {
    let blocked = named(db, username).await?;
    block::Entity::delete_by_id((blocker_id, blocked))
        .exec(db)
        .await?;
    Ok(())
}

/// The names `blocker_id` blocks, alphabetically.
pub async fn blocked_by(db: &impl ConnectionTrait, blocker_id: i64) -> DomainResult<Vec<String>> {
    Ok(block::Entity::find()
        .select_only()
        .column(user::Column::Username)
        .join(
            JoinType::InnerJoin,
            block::Entity::belongs_to(user::Entity)
                .from(block::Column::BlockedId)
                .to(user::Column::Id)
                .into(),
        )
        .filter(block::Column::BlockerId.eq(blocker_id))
        .order_by_asc(user::Column::Username)
        .into_tuple()
        .all(db)
        .await?)
}

/// Whether `blocker_id` blocks `blocked_id`.
pub async fn blocks(
    db: &impl ConnectionTrait,
    blocker_id: i64,
    blocked_id: i64,
) -> DomainResult<bool> {
    Ok(block::Entity::find_by_id((blocker_id, blocked_id))
        .one(db)
        .await?
        .is_some())
}

/// The users who block `blocked_id`.
pub async fn blockers_of(db: &impl ConnectionTrait, blocked_id: i64) -> DomainResult<Vec<i64>> {
    Ok(block::Entity::find()
        .select_only()
        .column(block::Column::BlockerId)
        .filter(block::Column::BlockedId.eq(blocked_id))
        .into_tuple()
        .all(db)
        .await?)
}

/// The condition "the user in `user_column` does not block `blocked_id`", for a query's filter.
pub fn not_blocking(user_column: impl IntoColumnRef, blocked_id: i64) -> Expr {
    Expr::col(user_column).not_in_subquery(
        Query::select()
            .column(block::Column::BlockerId)
            .from(block::Entity)
            .and_where(block::Column::BlockedId.eq(blocked_id))
            .to_owned(),
    )
}

/// The condition "the user in `user_column` is not blocked by `blocker_id`".
pub fn not_blocked_by(user_column: impl IntoColumnRef, blocker_id: i64) -> Expr {
    Expr::col(user_column).not_in_subquery(
        Query::select()
            .column(block::Column::BlockedId)
            .from(block::Entity)
            .and_where(block::Column::BlockerId.eq(blocker_id))
            .to_owned(),
    )
}

async fn named(db: &impl ConnectionTrait, username: &str) -> DomainResult<i64> {
    let found = accounts::find_named(db, username).await?;
    found.map(|u| u.id).ok_or(DomainError::NotFound)
}
