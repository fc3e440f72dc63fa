//! Threads: inbox, one thread, its history, reading and deleting.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiResult;
use super::extract::{ApiQuery, Auth};
use crate::service::{App, UnreadCounts};

pub fn router() -> Router<App> {
    Router::new()
        .route("/unread", get(unread))
        .route("/threads", get(list))
        .route("/threads/{thread_id}", get(show).delete(delete))
        .route("/threads/{thread_id}/messages", get(messages))
        .route("/threads/{thread_id}/read", post(read))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    before: Option<String>,
    limit: Option<u64>,
}

async fn unread(State(app): State<App>, Auth(who): Auth) -> ApiResult<Json<UnreadCounts>> {
    Ok(Json(app.unread(&who).await?))
}

async fn list(
    State(app): State<App>,
    Auth(who): Auth,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let (threads, next) = app
        .list_threads(&who, page.before.as_deref(), page.limit.unwrap_or(20))
        .await?;
    Ok(Json(json!({ "threads": threads, "next": next })))
}

async fn show(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let thread = app.get_thread(&who, &thread_id).await?;
    Ok(Json(json!({ "thread": thread })))
}

async fn messages(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<Json<Value>> {
    let (messages, has_more) = app
        .list_messages(
            &who,
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

async fn read(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    // The body is optional: an empty POST reads to the end.
    let req: ReadRequest = super::extract::optional_json(&headers, &body)?;
    let outcome = app
        .read_thread(&who, &thread_id, req.up_to.as_deref())
        .await?;
    Ok(Json(json!({ "unread": outcome.unread })))
}

async fn delete(
    State(app): State<App>,
    Auth(who): Auth,
    Path(thread_id): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_thread(&who, &thread_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
