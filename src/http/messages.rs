//! Sending and deleting messages.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::extract::{ApiJson, Auth};
use crate::service::{App, MessageView, SendMessage, SendOutcome};

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(send))
        .routes(routes!(remove, edit))
}

#[derive(Serialize, ToSchema)]
pub struct MessageBody {
    message: MessageView,
}

/// Sends a message: a new thread (`recipient`, or `recipients` for a group, and `subject`) or
/// a reply (`thread_id`).
#[utoipa::path(post, path = "/messages", tag = "messages", request_body = SendMessage,
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 201, description = "Sent", body = MessageBody),
        (status = 200, description = "`client_id` repeated: the message it sent first", body = MessageBody),
        (status = 409, description = "`group_full`: more people than a group holds", body = super::openapi::ErrorBody),
    ))]
async fn send(
    State(app): State<App>,
    Auth(who): Auth,
    ApiJson(req): ApiJson<SendMessage>,
) -> ApiResult<Response> {
    Ok(match app.send_message(&who, req).await? {
        SendOutcome::Created { message, .. } => {
            (StatusCode::CREATED, Json(MessageBody { message })).into_response()
        }
        SendOutcome::Repeated { message } => {
            (StatusCode::OK, Json(MessageBody { message })).into_response()
        }
    })
}

/// Hides a message for the caller only.
#[utoipa::path(delete, path = "/messages/{url}", tag = "messages",
    params(("url" = String, Path)),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 204, description = "Deleted for the caller")))]
async fn remove(
    State(app): State<App>,
    Auth(who): Auth,
    Path(url): Path<String>,
) -> ApiResult<StatusCode> {
    app.delete_message(&who, &url).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditBody {
    /// The new body: 1 to MISSIVE_MAX_BODY characters after trimming.
    body: String,
}

/// Edits one of the caller's messages, within `MISSIVE_EDIT_WINDOW` of sending it.
#[utoipa::path(patch, path = "/messages/{url}", tag = "messages", request_body = EditBody,
    params(("url" = String, Path)),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The message as edited", body = MessageBody),
        (status = 409, description = "`edit_window_closed` (or editing is off)", body = super::openapi::ErrorBody),
    ))]
async fn edit(
    State(app): State<App>,
    Auth(who): Auth,
    Path(url): Path<String>,
    ApiJson(req): ApiJson<EditBody>,
) -> ApiResult<Json<MessageBody>> {
    let message = app.edit_message(&who, &url, &req.body).await?;
    Ok(Json(MessageBody { message }))
}
