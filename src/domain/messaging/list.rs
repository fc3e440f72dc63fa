//! Reading lists: the inbox, one thread, a thread's history, unread totals.

use std::collections::HashMap;

use entity::{message, participant, thread_change};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::MAX_PAGE;
use super::queries::{
    find_message, message_views, newest_visible, not_hidden_by, thread_context, thread_contexts,
    visible_after, visible_membership, visible_messages, visible_threads, within_membership,
};
use crate::domain::events::ServerEvent;
use crate::domain::outbox::Write;
use crate::domain::views::{
    Change, ChangeKind, ChangeNotice, HistoryItem, MessageView, ThreadContext, ThreadView,
    UnreadCounts, UserRef,
};
use crate::domain::{DomainError, DomainResult};
use crate::ids;

/// A page of `user`'s inbox, newest activity first. `before` is the `next` of the previous page.
pub async fn list_threads(
    db: &impl ConnectionTrait,
    user_id: i64,
    before: Option<&str>,
    limit: u64,
) -> DomainResult<(Vec<ThreadView>, Option<String>)> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut query = visible_threads(user_id);
    if let Some(cursor) = before {
        let m = find_message(db, cursor)
            .await?
            .ok_or_else(|| DomainError::invalid("before", "invalid_cursor", "unknown cursor"))?;
        query = query.filter(participant::Column::LastMessageId.lt(m.id));
    }
    let mut rows = query
        .order_by_desc(participant::Column::LastMessageId)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);

    let thread_ids: Vec<i64> = rows.iter().map(|p| p.thread_id).collect();
    let contexts = thread_contexts(db, &thread_ids).await?;
    // The newest message of each thread, unless the user deleted it (one query: a deleted
    // newest message is missing here, and the newest they still see is looked up instead).
    let last_ids: Vec<i64> = rows.iter().map(|p| p.last_message_id).collect();
    let mut lasts: HashMap<i64, message::Model> = message::Entity::find()
        .filter(message::Column::Id.is_in(last_ids))
        .filter(not_hidden_by(user_id))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    // The cursor of the next page names the last row's newest message, deleted or not.
    let next = match (more, rows.last()) {
        (true, Some(row)) => match lasts.get(&row.last_message_id) {
            Some(m) => Some(m.public_id.clone()),
            None => message::Entity::find_by_id(row.last_message_id)
                .one(db)
                .await?
                .map(|m| m.public_id),
        },
        _ => None,
    };

    let mut shown = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(ctx) = contexts.get(&row.thread_id) else {
            continue;
        };
        let last = match lasts.remove(&row.last_message_id) {
            Some(m) if within_membership(row, m.id) => Some(m),
            _ => newest_visible(db, user_id, row).await?,
        };
        shown.push((ctx, last));
    }
    let mut last_views = message_views(
        db,
        user_id,
        shown
            .iter()
            .filter_map(|(ctx, last)| Some((*ctx, last.as_ref()?))),
    )
    .await?
    .into_iter();
    let views = shown
        .iter()
        .map(|(ctx, last)| {
            let last = last.as_ref().and_then(|_| last_views.next());
            ctx.thread_view_with(user_id, last)
        })
        .collect();
    Ok((views, next))
}

/// One thread as `user` sees it.
pub async fn get_thread(
    db: &impl ConnectionTrait,
    user_id: i64,
    thread_id: &str,
) -> DomainResult<ThreadView> {
    let (thread, me) = visible_membership(db, user_id, thread_id).await?;
    let ctx = thread_context(db, thread.id).await?;
    let last = newest_visible(db, user_id, &me).await?;
    let last = match &last {
        Some(m) => message_views(db, user_id, [(&ctx, m)]).await?.pop(),
        None => None,
    };
    Ok(ctx.thread_view_with(user_id, last))
}

/// One message `user` can see (a member of its thread when it was sent, not hidden by them),
/// as its thread's history shows it.
pub async fn get_message(
    db: &impl ConnectionTrait,
    user_id: i64,
    url: &str,
) -> DomainResult<MessageView> {
    let m = find_message(db, url).await?.ok_or(DomainError::NotFound)?;
    let ctx = thread_context(db, m.thread_id).await?;
    let me = visible_membership(db, user_id, &ctx.thread.public_id)
        .await?
        .1;
    visible_messages(user_id, &me, m.thread_id)
        .filter(message::Column::Id.eq(m.id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound)?;
    let mut views = message_views(db, user_id, [(&ctx, &m)]).await?;
    views.pop().ok_or(DomainError::NotFound)
}

/// A page of a thread's history, oldest first, ending just before `before` (or at the newest),
/// with the group's changes in place among its messages.
pub async fn list_messages(
    db: &impl ConnectionTrait,
    user_id: i64,
    thread_id: &str,
    before: Option<&str>,
    limit: u64,
) -> DomainResult<(Vec<HistoryItem>, bool)> {
    let limit = limit.clamp(1, MAX_PAGE);
    let (thread, me) = visible_membership(db, user_id, thread_id).await?;
    let mut query = visible_messages(user_id, &me, thread.id);
    let mut upper = None;
    if let Some(url) = before {
        let m = find_message(db, url)
            .await?
            .filter(|m| m.thread_id == thread.id)
            .ok_or_else(|| {
                DomainError::invalid(
                    "before",
                    "invalid_cursor",
                    "before is not a message of this thread",
                )
            })?;
        query = query.filter(message::Column::Id.lt(m.id));
        upper = Some(m.id);
    }
    let mut page = query
        .order_by_desc(message::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let more = page.len() as u64 > limit;
    page.truncate(limit as usize);
    page.reverse();
    let ctx = thread_context(db, thread.id).await?;
    // The changes between this page's first message (the history's start on the last page)
    // and the next page's first.
    let lower = match (more, page.first()) {
        (true, Some(first)) => Some(first.id),
        _ => None,
    };
    let changes = changes_between(db, &me, lower, upper).await?;
    let messages = message_views(db, user_id, page.iter().map(|m| (&ctx, m))).await?;
    let mut history = Vec::with_capacity(messages.len() + changes.len());
    let mut changes = changes.into_iter().peekable();
    for (row, view) in page.iter().zip(messages) {
        while let Some(change) = changes.next_if(|c| c.after_message_id < row.id) {
            history.extend(change_notice(&ctx, &change));
        }
        history.push(HistoryItem::Message(view));
    }
    history.extend(changes.filter_map(|c| change_notice(&ctx, &c)));
    Ok((history, more))
}

/// The changes of `me`'s thread placed after a message in `lower..upper` (either end open)
/// that happened while they were a member, oldest first.
async fn changes_between(
    db: &impl ConnectionTrait,
    me: &participant::Model,
    lower: Option<i64>,
    upper: Option<i64>,
) -> DomainResult<Vec<thread_change::Model>> {
    let mut query = thread_change::Entity::find()
        .filter(thread_change::Column::ThreadId.eq(me.thread_id))
        .filter(thread_change::Column::AfterMessageId.gte(visible_after(me)));
    if let Some(until) = me.member_until {
        query = query.filter(thread_change::Column::AfterMessageId.lte(until));
    }
    if let Some(lower) = lower {
        query = query.filter(thread_change::Column::AfterMessageId.gte(lower));
    }
    if let Some(upper) = upper {
        query = query.filter(thread_change::Column::AfterMessageId.lt(upper));
    }
    Ok(query
        .order_by_asc(thread_change::Column::Id)
        .limit(MAX_PAGE * 4)
        .all(db)
        .await?)
}

/// A stored change as the history shows it.
pub(super) fn change_notice(ctx: &ThreadContext, c: &thread_change::Model) -> Option<HistoryItem> {
    Some(HistoryItem::Change(ChangeNotice {
        kind: "change",
        change: Change {
            kind: ChangeKind::of(&c.kind)?,
            by: ctx.username(c.by_id),
            username: c.user_id.map(|id| ctx.username(id)),
            subject: c.subject.clone(),
        },
        at: ids::rfc3339(c.created_at),
    }))
}

/// A user's unread totals.
pub async fn unread_counts(db: &impl ConnectionTrait, user_id: i64) -> DomainResult<UnreadCounts> {
    Ok(unread_counts_of(db, &[user_id])
        .await?
        .remove(&user_id)
        .unwrap_or_default())
}

/// Unread totals of several users in one query (users with nothing unread are absent).
pub(super) async fn unread_counts_of(
    db: &impl ConnectionTrait,
    user_ids: &[i64],
) -> DomainResult<HashMap<i64, UnreadCounts>> {
    if user_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(i64, Option<i64>, i64)> = participant::Entity::find()
        .select_only()
        .column(participant::Column::UserId)
        .column_as(
            Expr::expr(Func::sum(Expr::col(participant::Column::Unread))).cast_as("BIGINT"),
            "messages",
        )
        .column_as(participant::Column::ThreadId.count(), "threads")
        .filter(participant::Column::UserId.is_in(user_ids.to_vec()))
        .filter(participant::Column::Unread.gt(0))
        .group_by(participant::Column::UserId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(user, messages, threads)| {
            (
                user,
                UnreadCounts {
                    messages: messages.unwrap_or(0),
                    threads,
                },
            )
        })
        .collect())
}

/// Tells `user` the event `make` builds from their unread totals after this write (and whether
/// they moved from `before`), then the totals themselves if they moved; returns the event.
pub(super) async fn tell_with_totals<E: ServerEvent + Clone>(
    write: &mut Write<'_>,
    user: &UserRef,
    before: UnreadCounts,
    make: impl FnOnce(UnreadCounts, bool) -> E,
) -> DomainResult<E> {
    let after = unread_counts(write.txn(), user.id).await?;
    let changed = after != before;
    let event = make(after, changed);
    write.tell(user, event.clone());
    if changed {
        write.tell(user, after);
    }
    Ok(event)
}
