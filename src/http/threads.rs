//! Threads: inbox, one thread, its history, reading and deleting.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::extract::{ApiJson, ApiQuery, Auth};
use crate::service::{App, HistoryItem, MuteRequest, ThreadView, UnreadCounts};

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(unread))
        .routes(routes!(list))
        .routes(routes!(show, delete, rename))
        .routes(routes!(add_member))
        .routes(routes!(remove_member))
        .routes(routes!(messages))
        .routes(routes!(read))
        .routes(routes!(mute, unmute))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// The cursor: `next` of the previous page of threads, or the `url` of the oldest message
    /// of the previous page of history.
    before: Option<String>,
    /// At most 100 (threads: 20 by default; messages: 50).
    limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct ThreadPage {
    /// Newest activity first.
    threads: Vec<ThreadView>,
    /// The `before` of the next page; null on the last.
    next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ThreadBody {
    thread: ThreadView,
}

#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    /// Oldest first, ending just before `before` (or at the newest); a group's changes of
    /// membership and subject in place among them (`{kind: "change", change, at}`).
    messages: Vec<HistoryItem>,
    has_more: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ReadBody {
    unread: UnreadCounts,
}

/// The caller's unread totals.
#[utoipa::path(get, path = "/unread", tag = "threads",
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "Unread messages and threads", body = UnreadCounts)))]
async fn unread(State(app): State<App>, Auth(who): Auth) -> ApiResult<Json<UnreadCounts>> {
    Ok(Json(app.unread(&who).await?))
}

/// A page of the caller's inbox.
#[utoipa::path(get, path = "/threads", tag = "threads", params(Page),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "A page of threads", body = ThreadPage)))]
async fn list(
    State(app): State<App>,
    Auth(who): Auth,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<ThreadPage>> {
    let (threads, next) = app
        .list_threads(&who, page.before.as_deref(), page.limit.unwrap_or(20))
        .await?;
    Ok(Json(ThreadPage { threads, next }))
}

/// One thread, as the caller sees it.
#[utoipa::path(get, path = "/threads/{thread_id}", tag = "threads",
    params(("thread_id" = String, Path)),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "The thread", body = ThreadBody)))]
async fn show(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
) -> ApiResult<Json<ThreadBody>> {
    let thread = app.get_thread(&who, &thread_id).await?;
    Ok(Json(ThreadBody { thread }))
}

/// A page of a thread's history.
#[utoipa::path(get, path = "/threads/{thread_id}/messages", tag = "threads",
    params(("thread_id" = String, Path), Page),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "A page of messages", body = MessagePage)))]
async fn messages(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<MessagePage>> {
    let (messages, has_more) = app
        .list_messages(
            &who,
            &thread_id,
            page.before.as_deref(),
            page.limit.unwrap_or(50),
        )
        .await?;
    Ok(Json(MessagePage { messages, has_more }))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    /// A message of the thread (`url`); without it, the thread is read to its end.
    up_to: Option<String>,
}

/// Marks the thread read, to `up_to` or to the end (the body is optional).
#[utoipa::path(post, path = "/threads/{thread_id}/read", tag = "threads",
    params(("thread_id" = String, Path)),
    request_body(content = Option<ReadRequest>, content_type = "application/json"),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "The caller's unread totals after", body = ReadBody)))]
async fn read(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<ReadBody>> {
    // The body is optional: an empty POST reads to the end.
    let req: ReadRequest = super::extract::optional_json(&headers, &body)?;
    let outcome = app
        .read_thread(&who, &thread_id, req.up_to.as_deref())
        .await?;
    Ok(Json(ReadBody {
        unread: outcome.unread,
    }))
}

/// Hides the thread for the caller only (until someone writes in it again).
#[utoipa::path(delete, path = "/threads/{thread_id}", tag = "threads",
    params(("thread_id" = String, Path)),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 204, description = "Deleted for the caller")))]
async fn delete(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_thread(&who, &thread_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// Who to add (any case).
    username: String,
}

/// Adds someone to a group (any member may): they see its messages from now on.
#[utoipa::path(post, path = "/threads/{thread_id}/participants", tag = "threads",
    params(("thread_id" = String, Path)), request_body = NewMember,
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 201, description = "The group after", body = ThreadBody),
        (status = 409, description = "`direct_thread` or `group_full`", body = super::openapi::ErrorBody),
        (status = 422, description = "`unknown_recipient`", body = super::openapi::ErrorBody),
    ))]
async fn add_member(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
    ApiJson(req): ApiJson<NewMember>,
) -> ApiResult<(StatusCode, Json<ThreadBody>)> {
    app.limits.check_user_event(who.id())?;
    let thread = app.add_member(&who, &thread_id, &req.username).await?;
    Ok((StatusCode::CREATED, Json(ThreadBody { thread })))
}

/// Removes someone from a group (its creator may remove anyone; anyone may remove themself,
/// which is leaving). They keep what they had, read-only.
#[utoipa::path(delete, path = "/threads/{thread_id}/participants/{username}", tag = "threads",
    params(("thread_id" = String, Path), ("username" = String, Path)),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`not_allowed`: only the creator removes others", body = super::openapi::ErrorBody),
        (status = 409, description = "`direct_thread`", body = super::openapi::ErrorBody),
    ))]
async fn remove_member(
    State(app): State<App>,
    Auth(who): Auth,
    Path((thread_id, username)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.limits.check_user_event(who.id())?;
    app.remove_member(&who, &thread_id, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// 1 to 70 characters.
    subject: String,
}

/// Renames a group (any member may).
#[utoipa::path(patch, path = "/threads/{thread_id}", tag = "threads",
    params(("thread_id" = String, Path)), request_body = Rename,
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The group after", body = ThreadBody),
        (status = 409, description = "`direct_thread`", body = super::openapi::ErrorBody),
    ))]
async fn rename(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
    ApiJson(req): ApiJson<Rename>,
) -> ApiResult<Json<ThreadBody>> {
    app.limits.check_user_event(who.id())?;
    let thread = app.rename_thread(&who, &thread_id, &req.subject).await?;
    Ok(Json(ThreadBody { thread }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteBody {
    /// Until when (RFC 3339, in the future); absent: until unmuted.
    until: Option<String>,
}

/// Mutes a thread for the caller: no pushes for it. Their tabs hear `thread:muted`.
#[utoipa::path(put, path = "/threads/{thread_id}/mute", tag = "threads",
    params(("thread_id" = String, Path)), request_body = MuteBody,
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The thread after", body = ThreadBody),
        (status = 422, description = "`invalid_until`", body = super::openapi::ErrorBody),
    ))]
async fn mute(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
    ApiJson(req): ApiJson<MuteBody>,
) -> ApiResult<Json<ThreadBody>> {
    let request = MuteRequest::until(req.until.as_deref())?;
    let thread = app.mute_thread(&who, &thread_id, request).await?;
    Ok(Json(ThreadBody { thread }))
}

/// Unmutes a thread for the caller.
#[utoipa::path(delete, path = "/threads/{thread_id}/mute", tag = "threads",
    params(("thread_id" = String, Path)),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "The thread after", body = ThreadBody)))]
async fn unmute(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
) -> ApiResult<Json<ThreadBody>> {
    let thread = app
        .mute_thread(&who, &thread_id, MuteRequest::Unmute)
        .await?;
    Ok(Json(ThreadBody { thread }))
}
