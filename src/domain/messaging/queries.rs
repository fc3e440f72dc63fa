//! Lookups and subqueries shared by the messaging files (and `seed`).

use std::collections::{HashMap, HashSet};

use entity::{message, message_hide, participant, thread, unread_below_mark, user};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, IntoColumnRef, Query, SubQueryStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::domain::views::{Member, MessageView, ThreadContext, UserRef};
use crate::domain::{DomainError, DomainResult, notifications};

/// Checks that `user_id` is a member of `thread_id` (public) and can see it; for
/// `thread:join` (one who left hears nothing of the thread, typing included).
pub async fn ensure_participant(
    db: &impl ConnectionTrait,
    user_id: i64,
    thread_id: &str,
) -> DomainResult<String> {
    match visible_membership(db, user_id, thread_id).await? {
        (thread, me) if me.member_until.is_none() => Ok(thread.public_id),
        _ => Err(DomainError::NotFound),
    }
}

/// The users who share at least one thread with `user_id`, for presence one way or the other:
/// a block hides it from the blocker.
pub async fn correspondents(
    db: &impl ConnectionTrait,
    user_id: i64,
    presence: Seen,
) -> DomainResult<Vec<UserRef>> {
    let users = user::Entity::find()
        .filter(
            user::Column::Id.in_subquery(
                Query::select()
                    .column(participant::Column::UserId)
                    .from(participant::Entity)
                    .and_where(
                        participant::Column::ThreadId.in_subquery(
                            Query::select()
                                .column(participant::Column::ThreadId)
                                .from(participant::Entity)
                                .and_where(participant::Column::UserId.eq(user_id))
                                .to_owned(),
                        ),
                    )
                    .to_owned(),
            ),
        )
        .filter(user::Column::Id.ne(user_id))
        .filter(match presence {
            // Who hears of `user_id`: not those who block them.
            Seen::Of => notifications::not_blocking((user::Entity, user::Column::Id), user_id),
            // Whose presence `user_id` sees: not those they block.
            Seen::By => notifications::not_blocked_by((user::Entity, user::Column::Id), user_id),
        })
        .order_by_asc(user::Column::Id)
        .all(db)
        .await?;
    Ok(users.iter().map(UserRef::from).collect())
}

/// Which way presence goes between `user_id` and their correspondents, blocks taken out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Those who see `user_id`'s presence.
    Of,
    /// Those whose presence `user_id` sees.
    By,
}

pub(super) async fn find_by_client_id(
    db: &impl ConnectionTrait,
    sender_id: i64,
    client_id: &str,
) -> DomainResult<Option<MessageView>> {
    let Some(m) = message::Entity::find()
        .filter(message::Column::SenderId.eq(sender_id))
        .filter(message::Column::ClientId.eq(client_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let ctx = thread_context(db, m.thread_id).await?;
    Ok(Some(ctx.message_view(&m, sender_id)))
}

pub(super) async fn find_thread(
    db: &impl ConnectionTrait,
    public_id: &str,
) -> DomainResult<Option<thread::Model>> {
    Ok(thread::Entity::find()
        .filter(thread::Column::PublicId.eq(public_id))
        .one(db)
        .await?)
}

pub(super) async fn find_message(
    db: &impl ConnectionTrait,
    url: &str,
) -> DomainResult<Option<message::Model>> {
    Ok(message::Entity::find()
        .filter(message::Column::PublicId.eq(url))
        .one(db)
        .await?)
}

pub(super) async fn membership(
    db: &impl ConnectionTrait,
    user_id: i64,
    thread_id: i64,
) -> DomainResult<Option<participant::Model>> {
    Ok(participant::Entity::find_by_id((thread_id, user_id))
        .one(db)
        .await?)
}

/// The thread and the caller's participation, or `NotFound` when they are not in it or
/// deleted it (a stranger cannot tell a thread that exists from one that does not).
pub(super) async fn visible_membership(
    db: &impl ConnectionTrait,
    user_id: i64,
    public_id: &str,
) -> DomainResult<(thread::Model, participant::Model)> {
    let thread = find_thread(db, public_id)
        .await?
        .ok_or(DomainError::NotFound)?;
    let me = membership(db, user_id, thread.id)
        .await?
        .ok_or(DomainError::NotFound)?;
    if me.last_message_id <= me.hidden_before {
        return Err(DomainError::NotFound);
    }
    Ok((thread, me))
}

/// The threads in `user_id`'s inbox (not deleted by them since their last message).
pub(super) fn visible_threads(user_id: i64) -> sea_orm::Select<participant::Entity> {
    participant::Entity::find()
        .filter(participant::Column::UserId.eq(user_id))
        .filter(
            Expr::col(participant::Column::LastMessageId)
                .gt(Expr::col(participant::Column::HiddenBefore)),
        )
}

/// The messages of a thread that `user_id` has not deleted, sent while they were a member
/// (a period between two memberships is hidden message by message when they come back).
pub(super) fn visible_messages(
    user_id: i64,
    me: &participant::Model,
    thread_id: i64,
) -> sea_orm::Select<message::Entity> {
    let mut query = message::Entity::find()
        .filter(message::Column::ThreadId.eq(thread_id))
        .filter(message::Column::Id.gt(visible_after(me)))
        .filter(not_hidden_by(user_id));
    if let Some(until) = me.member_until {
        query = query.filter(message::Column::Id.lte(until));
    }
    query
}

/// The position in their thread after which `me` sees it: the later of their joining and the
/// thread's deletion by them.
pub(super) fn visible_after(me: &participant::Model) -> i64 {
    std::cmp::max(me.hidden_before, me.joined_after)
}

/// Whether `me` may see message `id` of their thread (by its position alone: one they
/// deleted by itself is checked apart).
pub(super) fn within_membership(me: &participant::Model, id: i64) -> bool {
    id > visible_after(me) && me.member_until.is_none_or(|until| id <= until)
}

/// Who deleted message `id` for themselves (they hear nothing more of it).
pub(super) async fn hidden_by(db: &impl ConnectionTrait, id: i64) -> DomainResult<Vec<i64>> {
    Ok(message_hide::Entity::find()
        .filter(message_hide::Column::MessageId.eq(id))
        .all(db)
        .await?
        .into_iter()
        .map(|h| h.user_id)
        .collect())
}

/// Who deleted `m` for themselves, once `user_id` is a current member of its thread who sees
/// it (within their membership, not deleted by them); `None` when they do not.
pub(super) async fn seen_by(
    db: &impl ConnectionTrait,
    user_id: i64,
    m: &message::Model,
) -> DomainResult<Option<Vec<i64>>> {
    let Some(me) = membership(db, user_id, m.thread_id).await? else {
        return Ok(None);
    };
    if me.member_until.is_some() || !within_membership(&me, m.id) {
        return Ok(None);
    }
    let hid = hidden_by(db, m.id).await?;
    Ok((!hid.contains(&user_id)).then_some(hid))
}

/// Messages (of an outer `messages` query) that `user_id` has not deleted one by one.
pub(super) fn not_hidden_by(user_id: i64) -> Condition {
    Condition::all().add(Expr::not_exists(
        Query::select()
            .expr(Expr::val(1))
            .from(message_hide::Entity)
            .and_where(message_hide::Column::UserId.eq(user_id))
            .and_where(
                Expr::col((message_hide::Entity, message_hide::Column::MessageId))
                    .equals((message::Entity, message::Column::Id)),
            )
            .to_owned(),
    ))
}

pub(super) async fn newest_visible(
    db: &impl ConnectionTrait,
    user_id: i64,
    me: &participant::Model,
) -> DomainResult<Option<message::Model>> {
    Ok(visible_messages(user_id, me, me.thread_id)
        .order_by_desc(message::Column::Id)
        .one(db)
        .await?)
}

pub(super) async fn thread_context(
    db: &impl ConnectionTrait,
    thread_id: i64,
) -> DomainResult<ThreadContext> {
    thread_contexts(db, &[thread_id])
        .await?
        .remove(&thread_id)
        .ok_or(DomainError::NotFound)
}

/// Threads with their participants, in four queries whatever their number.
pub(super) async fn thread_contexts(
    db: &impl ConnectionTrait,
    thread_ids: &[i64],
) -> DomainResult<HashMap<i64, ThreadContext>> {
    if thread_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let threads = thread::Entity::find()
        .filter(thread::Column::Id.is_in(thread_ids.to_vec()))
        .all(db)
        .await?;
    let members = participant::Entity::find()
        .filter(participant::Column::ThreadId.is_in(thread_ids.to_vec()))
        .find_also_related(user::Entity)
        .all(db)
        .await?;
    // The urls of the members' read marks, for `read_by`.
    let mut marks: Vec<i64> = members
        .iter()
        .map(|(p, _)| p.read_up_to)
        .filter(|id| *id > 0)
        .collect();
    marks.sort_unstable();
    marks.dedup();
    let urls: HashMap<i64, String> = if marks.is_empty() {
        HashMap::new()
    } else {
        message::Entity::find()
            .select_only()
            .column(message::Column::Id)
            .column(message::Column::PublicId)
            .filter(message::Column::Id.is_in(marks))
            .into_tuple::<(i64, String)>()
            .all(db)
            .await?
            .into_iter()
            .collect()
    };
    let mut out: HashMap<i64, ThreadContext> = threads
        .into_iter()
        .map(|t| {
            (
                t.id,
                ThreadContext {
                    thread: t,
                    members: Vec::new(),
                },
            )
        })
        .collect();
    for (p, u) in members {
        if let (Some(ctx), Some(u)) = (out.get_mut(&p.thread_id), u) {
            ctx.members.push(Member {
                read_url: urls.get(&p.read_up_to).cloned(),
                row: p,
                user: UserRef::from(&u),
                receipts: u.read_receipts,
            });
        }
    }
    for ctx in out.values_mut() {
        ctx.members.sort_by_key(|m| m.user.id);
    }
    Ok(out)
}

/// Views of `messages` (each with its thread) as `viewer` sees them, read as their recipient
/// left them: a message below the recipient's read mark is read, unless an import listed it
/// in `unread_below_mark` (imported threads are all direct).
pub(super) async fn message_views<'a>(
    db: &impl ConnectionTrait,
    viewer: i64,
    messages: impl IntoIterator<Item = (&'a ThreadContext, &'a message::Model)>,
) -> DomainResult<Vec<MessageView>> {
    let messages: Vec<_> = messages.into_iter().collect();
    // (recipient, thread, message) of each message below its recipient's read mark.
    let suspects: Vec<(i64, i64, i64)> = messages
        .iter()
        .filter(|(ctx, m)| {
            ctx.same_for_all()
                && m.sender_id != m.recipient_id
                && ctx
                    .member(m.recipient_id)
                    .is_some_and(|p| p.read_up_to >= m.id)
        })
        .map(|(_, m)| (m.recipient_id, m.thread_id, m.id))
        .collect();
    let unread: HashSet<i64> = if suspects.is_empty() {
        HashSet::new()
    } else {
        let of = |f: fn(&(i64, i64, i64)) -> i64| -> Vec<i64> {
            let mut v: Vec<i64> = suspects.iter().map(f).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        // Within the key's (user, thread) prefix: the table may hold an import's many rows.
        unread_below_mark::Entity::find()
            .select_only()
            .column(unread_below_mark::Column::MessageId)
            .filter(unread_below_mark::Column::UserId.is_in(of(|s| s.0)))
            .filter(unread_below_mark::Column::ThreadId.is_in(of(|s| s.1)))
            .filter(unread_below_mark::Column::MessageId.is_in(of(|s| s.2)))
            .into_tuple::<i64>()
            .all(db)
            .await?
            .into_iter()
            .collect()
    };
    Ok(messages
        .into_iter()
        .map(|(ctx, m)| {
            let mut view = ctx.message_view(m, viewer);
            view.read &= !unread.contains(&m.id);
            view
        })
        .collect())
}

/// The threads of `messages`, and the view of each message as `viewer` sees it (in order; one
/// whose thread is gone is left out): what the replay and the search render.
pub(super) async fn views_in_context<'a>(
    db: &impl ConnectionTrait,
    viewer: i64,
    messages: &'a [message::Model],
) -> DomainResult<(
    HashMap<i64, ThreadContext>,
    Vec<(&'a message::Model, MessageView)>,
)> {
    let mut thread_ids: Vec<i64> = messages.iter().map(|m| m.thread_id).collect();
    thread_ids.sort_unstable();
    thread_ids.dedup();
    let contexts = thread_contexts(db, &thread_ids).await?;
    let with_context: Vec<_> = messages
        .iter()
        .filter_map(|m| Some((contexts.get(&m.thread_id)?, m)))
        .collect();
    let views = message_views(db, viewer, with_context.iter().copied()).await?;
    let views = with_context
        .into_iter()
        .map(|(_, m)| m)
        .zip(views)
        .collect();
    Ok((contexts, views))
}

/// The rows of `unread_below_mark` of one participant.
pub(super) fn below_mark_of(me: &participant::Model) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(unread_below_mark::Column::UserId.eq(me.user_id))
        .add(unread_below_mark::Column::ThreadId.eq(me.thread_id))
}

/// The alias of `messages` in the subqueries below.
fn m() -> Alias {
    Alias::new("m")
}

/// `(SELECT MAX(m.<column>) FROM messages m WHERE m.thread_id = <thread>)`: the newest
/// message's id (or time) in the thread of each row of the outer statement.
pub(crate) fn newest_in_thread(column: message::Column, thread: impl IntoColumnRef) -> Expr {
    let newest = Query::select()
        .expr(Func::max(Expr::col((m(), column))))
        .from_as(message::Entity, m())
        .and_where(Expr::col((m(), message::Column::ThreadId)).equals(thread))
        .to_owned();
    Expr::SubQuery(None, Box::new(SubQueryStatement::SelectStatement(newest)))
}

/// `(SELECT COUNT(*) FROM messages m WHERE m.thread_id = participants.thread_id AND
/// m.id > participants.<after> AND m.sender_id <> participants.user_id)`: the messages that the
/// participant of each outer row received after `after`.
pub(crate) fn received_after(after: participant::Column) -> Expr {
    let received = Query::select()
        .expr(Func::count(Expr::col((m(), message::Column::Id))))
        .from_as(message::Entity, m())
        .and_where(
            Expr::col((m(), message::Column::ThreadId))
                .equals((participant::Entity, participant::Column::ThreadId)),
        )
        .and_where(
            Expr::col((m(), message::Column::Id)).gt(Expr::col((participant::Entity, after))),
        )
        .and_where(Expr::col((m(), message::Column::SenderId)).ne(Expr::col((
            participant::Entity,
            participant::Column::UserId,
        ))))
        .to_owned();
    Expr::SubQuery(None, Box::new(SubQueryStatement::SelectStatement(received)))
}
