//! Sending and deleting messages.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde_json::json;

use super::error::ApiResult;
use super::extract::{ApiJson, Auth};
use crate::service::{App, SendMessage, SendOutcome};

pub fn router() -> Router<App> {
    Router::new()
        .route("/messages", post(send))
        .route("/messages/{url}", delete(remove))
}

/// 201 with the new message, or 200 with the first one when `client_id` repeats.
async fn send(
    State(app): State<App>,
    Auth(who): Auth,
    ApiJson(req): ApiJson<SendMessage>,
) -> ApiResult<Response> {
    Ok(match app.send_message(&who, req).await? {
        SendOutcome::Created { message, .. } => {
            (StatusCode::CREATED, Json(json!({ "message": message }))).into_response()
        }
        SendOutcome::Repeated { message } => {
            (StatusCode::OK, Json(json!({ "message": message }))).into_response()
        }
    })
}

async fn remove(
    State(app): State<App>,
    Auth(who): Auth,
    Path(url): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_message(&who, &url).await?;
    Ok(StatusCode::NO_CONTENT)
}
