//! The per-user event log behind connection state recovery and `sync`: every native event
//! sent to a user's rooms has a position (`seq`, 1, 2, 3, ... per user), written in the
//! transaction of the change it reports, so that an acknowledged change can always be sent
//! again to a client that missed it.
//!
//! Positions come from `users.log_seq`: taking the next ones updates (and so locks) the user's
//! row, so they are handed out in commit order on PostgreSQL as on SQLite, and a client that
//! heard position `n` has heard everything before it. Entries older than the recovery window
//! are pruned; `log_seq` still says where the user's log stands.
//!
//! The table is kept in commit order (`gid`), so a commit appends its entries in a few pages
//! however many users it touches. Each entry points to the same user's entry before it
//! (`prev`), and `users.log_gid` to the newest. Every 64th entry of a user is also a mark,
//! found by user and position in a partial index: a walk starts at the first mark at or past
//! the end of what it reads and follows the chain back to the position the client heard, one
//! lookup by key per entry, so a page costs the same however deep in the log it lies.
//!
//! What an entry holds follows from its event's declaration (`domain::events`): an event
//! logged as sent keeps its JSON, one logged as current keeps only what it refers to
//! (`ref_id`), and `messaging::replay` renders it again. This module only stores: it knows
//! nothing of messages.

use std::collections::{BTreeMap, HashMap};

use super::{DomainError, DomainResult};
use entity::{event_log, user};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, Statement,
};

/// An event to write to one user's log.
#[derive(Debug)]
pub struct Entry {
    pub user_id: i64,
    pub event: &'static str,
    /// The message of a `message:new`.
    pub ref_id: Option<i64>,
    /// The event's JSON (`None` for a `message:new`, or an `unread` rendered when replayed).
    pub payload: Option<String>,
}

impl Entry {
    /// `event` with `payload` serialised.
    pub fn json(user_id: i64, event: &'static str, payload: &impl serde::Serialize) -> Entry {
        Entry {
            user_id,
            event,
            ref_id: None,
            payload: serde_json::to_string(payload).ok(),
        }
    }
}

/// Writes `entries` (in the caller's transaction) and returns the position of each, in order.
/// The users' rows are locked in id order.
pub async fn append(
    db: &impl ConnectionTrait,
    entries: &[Entry],
    now: i64,
) -> DomainResult<Vec<i64>> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    // Entries per user, in user id order (the order their rows are locked in).
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for e in entries {
        *counts.entry(e.user_id).or_default() += 1;
    }
    // Each user's next position and newest entry before this write.
    let mut tails: HashMap<i64, (i64, i64)> = HashMap::with_capacity(counts.len());
    for (&user_id, &n) in &counts {
        let statement = Query::update()
            .table(user::Entity)
            .value(user::Column::LogSeq, Expr::col(user::Column::LogSeq).add(n))
            .and_where(user::Column::Id.eq(user_id))
            .returning(Query::returning().columns([user::Column::LogSeq, user::Column::LogGid]))
            .to_owned();
        let row = db
            .query_one(&statement)
            .await?
            .ok_or(DomainError::NotFound)?;
        let last: i64 = row.try_get_by_index(0)?;
        let gid: i64 = row.try_get_by_index(1)?;
        tails.insert(user_id, (last - n + 1, gid));
    }
    // One insert each: an entry's key is given out by the database, and the next entry of
    // the same user points to it.
    let mut seqs = Vec::with_capacity(entries.len());
    for e in entries {
        let (seq, prev) = tails.get_mut(&e.user_id).expect("counted above");
        let row = event_log::ActiveModel {
            gid: sea_orm::NotSet,
            user_id: sea_orm::Set(e.user_id),
            seq: sea_orm::Set(*seq),
            prev: sea_orm::Set((*prev > 0).then_some(*prev)),
            event: sea_orm::Set(e.event.to_owned()),
            ref_id: sea_orm::Set(e.ref_id),
            payload: sea_orm::Set(e.payload.clone()),
            created_at: sea_orm::Set(now),
        };
        let gid = event_log::Entity::insert(row)
            .exec(db)
            .await?
            .last_insert_id;
        seqs.push(*seq);
        *seq += 1;
        *prev = gid;
    }
    for (user_id, (_, gid)) in tails {
        user::Entity::update_many()
            .col_expr(user::Column::LogGid, Expr::value(gid))
            .filter(user::Column::Id.eq(user_id))
            .exec(db)
            .await?;
    }
    Ok(seqs)
}

/// Whether the events of `user_id` after position `after`, up to its log's `head`, can all be
/// sent again: none of them pruned or written before `window_start`, no more than `max` of
/// them, and `after` not beyond the log.
pub async fn recoverable(
    db: &impl ConnectionTrait,
    user_id: i64,
    after: i64,
    head: i64,
    window_start: i64,
    max: u64,
) -> DomainResult<bool> {
    if after < 0 || after > head {
        return Ok(false);
    }
    if after == head {
        return Ok(true);
    }
    if (head - after) as u64 > max {
        return Ok(false);
    }
    // The chain's oldest entry after `after` must be the next one: a pruned entry ends it.
    // Entries after it are newer, so pruned no sooner: the walk only reaches the first mark.
    let select = "MIN(e.seq), MIN(e.created_at)";
    let walk = Walk {
        user_id,
        after,
        until: after + 1,
    };
    let statement = walk.statement(db.get_database_backend(), select, "", None);
    let oldest = db.query_one_raw(statement).await?;
    let first: Option<(Option<i64>, Option<i64>)> = match oldest {
        Some(row) => Some((row.try_get_by_index(0)?, row.try_get_by_index(1)?)),
        None => None,
    };
    Ok(matches!(first, Some((Some(seq), Some(at))) if seq == after + 1 && at >= window_start))
}

/// The newest position of `user_id`'s log (0 before any event).
pub async fn head(db: &impl ConnectionTrait, user_id: i64) -> DomainResult<i64> {
    let head: Option<i64> = user::Entity::find_by_id(user_id)
        .select_only()
        .column(user::Column::LogSeq)
        .into_tuple()
        .one(db)
        .await?;
    head.ok_or(DomainError::NotFound)
}

/// Where the logs of `user_ids` stand (users that exist).
pub async fn heads(db: &impl ConnectionTrait, user_ids: &[i64]) -> DomainResult<Vec<(i64, i64)>> {
    let mut heads = Vec::with_capacity(user_ids.len());
    for chunk in user_ids.chunks(500) {
        let rows: Vec<(i64, i64)> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::LogSeq)
            .filter(user::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        heads.extend(rows);
    }
    Ok(heads)
}

/// Up to `limit` entries of `user_id` after position `after`, oldest first.
pub async fn entries_after(
    db: &impl ConnectionTrait,
    user_id: i64,
    after: i64,
    limit: u64,
) -> DomainResult<Vec<event_log::Model>> {
    let select = "e.gid, e.user_id, e.seq, e.prev, e.event, e.ref_id, e.payload, e.created_at";
    let walk = Walk {
        user_id,
        after,
        until: after.saturating_add(limit as i64),
    };
    let statement = walk.statement(
        db.get_database_backend(),
        select,
        "ORDER BY e.seq",
        Some(limit),
    );
    Ok(event_log::Model::find_by_statement(statement)
        .all(db)
        .await?)
}

/// Every `MARK_EVERY`th position of a user is a mark (`seq % 64 = 0`, the partial index
/// `event_log_marks` of migration 9; its predicate and the queries' must read alike).
pub const MARK_EVERY: i64 = 64;

/// A walk along one user's chain, over the positions after `after`.
struct Walk {
    user_id: i64,
    after: i64,
    /// The walk starts at the first mark at or past this position (the newest entry if there
    /// is none), and so reads at most `MARK_EVERY - 1` entries past it.
    until: i64,
}

impl Walk {
    /// Each step reads the entry that `prev` names, down to the position after `after`. Each
    /// step must go back in the user's positions, so a `prev` that names a pruned entry ends
    /// the walk whatever holds that key now.
    fn statement(
        &self,
        backend: DbBackend,
        select: &str,
        order: &str,
        limit: Option<u64>,
    ) -> Statement {
        let limit = limit.map(|n| format!("LIMIT {n}")).unwrap_or_default();
        let sql = format!(
            "WITH RECURSIVE chain (gid, seq, prev) AS ( \
                SELECT l.gid, l.seq, l.prev FROM event_log l \
                WHERE l.gid = COALESCE( \
                        (SELECT m.gid FROM event_log m WHERE m.user_id = $1 \
                            AND m.seq % {MARK_EVERY} = 0 AND m.seq >= $3 ORDER BY m.seq LIMIT 1), \
                        (SELECT log_gid FROM users WHERE id = $1)) \
                    AND l.user_id = $1 AND l.seq > $2 \
                UNION ALL \
                SELECT l.gid, l.seq, l.prev FROM chain c JOIN event_log l ON l.gid = c.prev \
                WHERE l.user_id = $1 AND l.seq > $2 AND l.seq < c.seq \
            ) \
            SELECT {select} FROM chain c JOIN event_log e ON e.gid = c.gid {order} {limit}"
        );
        let sql = match backend {
            // SQLite reads `?NNN` as the NNNth parameter.
            DbBackend::Sqlite => sql.replace('$', "?"),
            _ => sql,
        };
        let values = [self.user_id.into(), self.after.into(), self.until.into()];
        Statement::from_sql_and_values(backend, sql, values)
    }
}

/// Deletes the entries written before `before` (microseconds); returns how many.
pub async fn prune(db: &impl ConnectionTrait, before: i64) -> DomainResult<u64> {
    let done = event_log::Entity::delete_many()
        .filter(event_log::Column::CreatedAt.lt(before))
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}
