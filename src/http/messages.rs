//! Sending and deleting messages.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiResult;
use super::extract::{ApiJson, Auth};
use crate::app::App;
use crate::domain::messaging::{SendMessage, SendOutcome};

/// 201 with the new message, or 200 with the first one when `client_id` repeats.
pub async fn send(
    State(app): State<App>,
    Auth(who): Auth,
    ApiJson(req): ApiJson<SendMessage>,
) -> ApiResult<Response> {
    Ok(match app.send_message(&who.user, req).await? {
        SendOutcome::Created { message, .. } => {
            (StatusCode::CREATED, Json(json!({ "message": message }))).into_response()
        }
        SendOutcome::Repeated { message } => {
            (StatusCode::OK, Json(json!({ "message": message }))).into_response()
        }
    })
}

pub async fn delete(
    State(app): State<App>,
    Auth(who): Auth,
    Path(url): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_message(&who.user, &url).await?;
    Ok(StatusCode::NO_CONTENT)
}
