//! Threads: inbox, one thread, its history, reading and deleting.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiResult;
use super::extract::{ApiQuery, Auth};
use crate::app::App;
use crate::domain::messaging;
use crate::domain::views::UnreadCounts;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    before: Option<String>,
    limit: Option<u64>,
}

pub async fn unread(State(app): State<App>, Auth(who): Auth) -> ApiResult<Json<UnreadCounts>> {
    Ok(Json(
        messaging::unread_counts(&app.db.conn, who.user.id).await?,
    ))
}

pub async fn list(
    State(app): State<App>,
    Auth(who): Auth,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let (threads, next) = messaging::list_threads(
        &app.db.conn,
        &who.user,
        page.before.as_deref(),
        page.limit.unwrap_or(20),
    )
    .await?;
    Ok(Json(json!({ "threads": threads, "next": next })))
}

pub async fn show(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let thread = messaging::get_thread(&app.db.conn, &who.user, &thread_id).await?;
    Ok(Json(json!({ "thread": thread })))
}

pub async fn messages(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let (messages, has_more) = messaging::list_messages(
        &app.db.conn,
        &who.user,
        &thread_id,
        page.before.as_deref(),
        page.limit.unwrap_or(50),
    )
    .await?;
    Ok(Json(json!({ "messages": messages, "has_more": has_more })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    up_to: Option<String>,
}

pub async fn read(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    // The body is optional: an empty POST reads to the end.
    let req: ReadRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReadRequest::default()
    } else {
        super::extract::parse_json(&body)?
    };
    let outcome = app
        .read_thread(&who.user, &thread_id, req.up_to.as_deref())
        .await?;
    Ok(Json(json!({ "unread": outcome.unread })))
}

pub async fn delete(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_thread(&who.user, &thread_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
