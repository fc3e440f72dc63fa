//! One batch of replies on PostgreSQL: separate statements in one transaction (a query string
//! holds one statement there), each built with sea-query.

use std::collections::HashMap;

use entity::{message, participant, thread};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::list::unread_counts_of;
use super::queries::{newest_in_thread, received_after};
use super::send::{BatchWrite, Reply, message_row};
use crate::db::Database;
use crate::domain::{DomainError, DomainResult};
use crate::ids;

/// Stamps and row-locks the batch's threads, inserts the messages, moves the threads' and the
/// participants' newest message and unread counts, and reads the recipients' totals.
pub(super) async fn write(
    db: &Database,
    batch: &[Reply],
    urls: &[String],
) -> DomainResult<BatchWrite> {
    let mut thread_ids: Vec<i64> = batch.iter().map(|r| r.meta.id).collect();
    thread_ids.sort_unstable();
    thread_ids.dedup();
    let txn = db.begin_write().await?;
    let now = ids::now_micros();
    // Timestamps never go backwards within a thread, so id order and time order agree.
    let stamped: HashMap<i64, i64> = thread::Entity::update_many()
        .col_expr(
            thread::Column::UpdatedAt,
            Func::greatest([Expr::col(thread::Column::UpdatedAt), Expr::val(now)]).into(),
        )
        .filter(thread::Column::Id.is_in(thread_ids.clone()))
        .exec_with_returning(&*txn)
        .await?
        .into_iter()
        .map(|t| (t.id, t.updated_at))
        .collect();

    // One multi-row INSERT that hands back only the new ids: every other column is known here,
    // and decoding whole rows back was a good part of the statement's cost.
    let mut rows: Vec<message::Model> = batch
        .iter()
        .zip(urls)
        .map(|(r, url)| message_row(r, url, 0, stamped.get(&r.meta.id).copied().unwrap_or(now)))
        .collect();
    let mut insert = Query::insert();
    insert.into_table(message::Entity).columns([
        message::Column::PublicId,
        message::Column::ThreadId,
        message::Column::SenderId,
        message::Column::RecipientId,
        message::Column::Body,
        message::Column::CreatedAt,
        message::Column::ClientId,
    ]);
    for m in &rows {
        insert
            .values([
                m.public_id.clone().into(),
                m.thread_id.into(),
                m.sender_id.into(),
                m.recipient_id.into(),
                m.body.clone().into(),
                m.created_at.into(),
                m.client_id.clone().into(),
            ])
            .map_err(|e| DomainError::Internal(e.to_string()))?;
    }
    insert
        .on_conflict(
            OnConflict::columns([message::Column::ClientId, message::Column::SenderId])
                .do_nothing()
                .to_owned(),
        )
        .returning(Query::returning().columns([message::Column::Id, message::Column::PublicId]));
    let ids: HashMap<String, i64> = txn
        .query_all(&insert)
        .await?
        .into_iter()
        .map(|row| Ok((row.try_get("", "public_id")?, row.try_get("", "id")?)))
        .collect::<Result<_, DbErr>>()?;
    rows.retain_mut(|m| match ids.get(&m.public_id) {
        Some(id) => {
            m.id = *id;
            true
        }
        None => false,
    });
    let messages: HashMap<String, message::Model> =
        rows.into_iter().map(|m| (m.public_id.clone(), m)).collect();

    thread::Entity::update_many()
        .col_expr(
            thread::Column::LastMessageId,
            newest_in_thread(message::Column::Id, (thread::Entity, thread::Column::Id)),
        )
        .filter(thread::Column::Id.is_in(thread_ids.clone()))
        .exec(&*txn)
        .await?;
    // SET expressions see the row as it was: `last_message_id` is the newest before this batch.
    let participants = participant::Entity::update_many()
        .col_expr(
            participant::Column::Unread,
            Expr::col(participant::Column::Unread)
                .add(received_after(participant::Column::LastMessageId)),
        )
        .col_expr(
            participant::Column::LastMessageId,
            newest_in_thread(
                message::Column::Id,
                (participant::Entity, participant::Column::ThreadId),
            ),
        )
        .filter(participant::Column::ThreadId.is_in(thread_ids))
        .exec_with_returning(&*txn)
        .await?;
    let recipients: Vec<i64> = messages
        .values()
        .filter(|m| m.sender_id != m.recipient_id)
        .map(|m| m.recipient_id)
        .collect();
    let unread = unread_counts_of(&*txn, &recipients).await?;
    txn.commit().await?;
    Ok(BatchWrite {
        messages,
        participants,
        unread,
    })
}
