//! Reading a thread: the read mark moves forward, and the unread totals with it.

use entity::{message, participant, thread, unread_below_mark};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use super::list::{tell_with_totals, unread_counts};
use super::queries::{
    below_mark_of, find_message, thread_context, visible_membership, visible_messages,
    within_membership,
};
use crate::db::Database;
use crate::domain::events::{Receipt, ThreadRead};
use crate::domain::outbox::{Outbox, Write};
use crate::domain::views::UserRef;
use crate::domain::{DomainError, DomainResult};
use crate::ids;

/// A read, and whether it moved anything.
pub enum Read {
    /// The read mark or the imported unread messages moved: written, logged and announced.
    Moved(ThreadRead),
    /// Nothing to write: the reader's tabs are still to be told (no position, no order to
    /// keep), by the caller.
    Unmoved(ThreadRead),
}

/// Marks `thread_id` read for `reader`, up to the message `up_to` or to the end; a read that
/// moves something returns once the reader's tabs have been told.
pub async fn read(
    db: &Database,
    outbox: &Outbox,
    reader: &UserRef,
    thread_id: &str,
    up_to: Option<&str>,
) -> DomainResult<Read> {
    // A read that moves nothing writes nothing: it is found out on the readers' pool, without
    // the write gate, so that a flood of them cannot queue ahead of other users' writes. The
    // mark only moves forward, so a stale look here never skips a write that was needed.
    let (thread, me) = visible_membership(&db.conn, reader.id, thread_id).await?;
    let target = read_target(&db.conn, &thread, &me, up_to).await?;
    if target <= me.read_up_to && !unread_below(&db.conn, &me, target).await? {
        return Ok(Read::Unmoved(ThreadRead {
            thread_id: thread.public_id,
            unread: unread_counts(&db.conn, reader.id).await?,
            totals_changed: false,
        }));
    }
    let mut write = outbox.begin(db).await?;
    let txn = write.txn();
    let (thread, me) = visible_membership(txn, reader.id, thread_id).await?;
    let target = read_target(txn, &thread, &me, up_to).await?;
    let before = unread_counts(txn, reader.id).await?;
    let read_up_to = std::cmp::max(me.read_up_to, target);
    let mut remaining = count_unread_after(txn, reader.id, &me, thread.id, read_up_to).await?;
    if me.unread > 0 {
        // Imported messages the original app still had unread below the mark (none otherwise).
        unread_below_mark::Entity::delete_many()
            .filter(below_mark_of(&me))
            .filter(unread_below_mark::Column::MessageId.lte(target))
            .exec(txn)
            .await?;
        let left = visible_messages(reader.id, &me, thread.id)
            .filter(
                message::Column::Id.in_subquery(
                    Query::select()
                        .column(unread_below_mark::Column::MessageId)
                        .from(unread_below_mark::Entity)
                        .cond_where(below_mark_of(&me))
                        .to_owned(),
                ),
            )
            .count(txn)
            .await?;
        remaining = remaining.saturating_add(i32::try_from(left).unwrap_or(i32::MAX));
    }
    participant::Entity::update_many()
        .col_expr(participant::Column::ReadUpTo, read_up_to.into())
        .col_expr(participant::Column::Unread, remaining.into())
        .filter(participant::Column::ThreadId.eq(thread.id))
        .filter(participant::Column::UserId.eq(reader.id))
        .exec(txn)
        .await?;
    if read_up_to > me.read_up_to && me.member_until.is_none() {
        tell_receipts(&mut write, thread.id, reader).await?;
    }
    let event = tell_with_totals(&mut write, reader, before, |unread, totals_changed| {
        ThreadRead {
            thread_id: thread.public_id,
            unread,
            totals_changed,
        }
    })
    .await?;
    write.commit().await?;
    Ok(Read::Moved(event))
}

/// Tells the other current members with receipts on that `reader` read up to their new mark
/// (moved in this write), unless the reader has receipts off: receipts are reciprocal.
async fn tell_receipts(
    write: &mut Write<'_>,
    thread_id: i64,
    reader: &UserRef,
) -> DomainResult<()> {
    let ctx = thread_context(write.txn(), thread_id).await?;
    let Some(me) = ctx.members.iter().find(|m| m.user.id == reader.id) else {
        return Ok(());
    };
    let (true, Some(up_to)) = (me.receipts, me.read_url.clone()) else {
        return Ok(());
    };
    let at = ids::rfc3339(ids::now_micros());
    for other in ctx
        .current()
        .filter(|m| m.user.id != reader.id && m.receipts)
    {
        write.tell(
            &other.user,
            Receipt {
                thread_id: ctx.thread.public_id.clone(),
                username: reader.username.clone(),
                up_to: up_to.clone(),
                at: at.clone(),
            },
        );
    }
    Ok(())
}

/// The id of the message a read goes up to: `up_to`, which must be a message of the thread
/// the reader can see, or the newest they can (the thread's, for a member).
async fn read_target(
    db: &impl ConnectionTrait,
    thread: &thread::Model,
    me: &participant::Model,
    up_to: Option<&str>,
) -> DomainResult<i64> {
    let Some(url) = up_to else {
        let newest = thread.last_message_id.unwrap_or(0);
        return Ok(me.member_until.map_or(newest, |until| until.min(newest)));
    };
    find_message(db, url)
        .await?
        .filter(|m| m.thread_id == thread.id && within_membership(me, m.id))
        .map(|m| m.id)
        .ok_or_else(|| {
            DomainError::invalid(
                "up_to",
                "not_found",
                "up_to is not a message of this thread",
            )
        })
}

/// Whether `me` has an imported message up to `up_to` still unread below their read mark.
/// Such messages count in `unread`, so a participant with nothing unread has none.
async fn unread_below(
    db: &impl ConnectionTrait,
    me: &participant::Model,
    up_to: i64,
) -> DomainResult<bool> {
    if me.unread == 0 {
        return Ok(false);
    }
    let n = unread_below_mark::Entity::find()
        .filter(below_mark_of(me))
        .filter(unread_below_mark::Column::MessageId.lte(up_to))
        .count(db)
        .await?;
    Ok(n > 0)
}

/// Unread messages left for `user_id` after reading up to `read_up_to`.
async fn count_unread_after(
    db: &impl ConnectionTrait,
    user_id: i64,
    me: &participant::Model,
    thread_id: i64,
    read_up_to: i64,
) -> DomainResult<i32> {
    let n = visible_messages(user_id, me, thread_id)
        .filter(message::Column::Id.gt(read_up_to))
        .filter(message::Column::SenderId.ne(user_id))
        .count(db)
        .await?;
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}
