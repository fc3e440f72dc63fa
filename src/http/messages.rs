//! Sending and deleting messages.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use utoipa::IntoParams;

use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, Auth};
use crate::service::{App, MessageView, React, SendMessage, SendOutcome};

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(send))
        .routes(routes!(get, remove, edit))
        .routes(routes!(add_reaction, remove_reaction))
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

/// One message the caller can see (a page that learned only its url from `W_newmsg`).
#[utoipa::path(get, path = "/messages/{url}", tag = "messages",
    params(("url" = String, Path)),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The message, with its thread's id", body = MessageBody),
        (status = 404, description = "`not_found`: no such message, or not one the caller can see", body = super::openapi::ErrorBody),
    ))]
async fn get(
    State(app): State<App>,
    Auth(who): Auth,
    Path(url): Path<String>,
) -> ApiResult<Json<MessageBody>> {
    let message = app.get_message(&who, &url).await?;
    Ok(Json(MessageBody { message }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Removal {
    /// `everyone`: the sender erases it for every member, within the edit window. Without
    /// it, the message is hidden for the caller only.
    #[serde(rename = "for")]
    #[param(rename = "for")]
    whom: Option<String>,
}

/// Hides a message for the caller only, or (`?for=everyone`, its sender, within the edit
/// window) removes it for every member.
#[utoipa::path(delete, path = "/messages/{url}", tag = "messages",
    params(("url" = String, Path), Removal),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 204, description = "Deleted for the caller, or removed for everyone"),
        (status = 409, description = "`edit_window_closed` (removal for everyone)", body = super::openapi::ErrorBody),
    ))]
async fn remove(
    State(app): State<App>,
    Auth(who): Auth,
    Path(url): Path<String>,
    ApiQuery(removal): ApiQuery<Removal>,
) -> ApiResult<StatusCode> {
    match removal.whom.as_deref() {
        None => {
            app.delete_message(&who, &url).await?;
        }
        Some("everyone") => app.remove_for_everyone(&who, &url).await?,
        Some(_) => {
            return Err(ApiError::InvalidPayload(
                "for takes one value: everyone".into(),
            ));
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Adds the caller's reaction to a message (a second time changes nothing).
#[utoipa::path(put, path = "/messages/{url}/reactions/{emoji}", tag = "messages",
    params(("url" = String, Path), ("emoji" = String, Path, description = "One emoji, percent-encoded")),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The message, with its reactions", body = MessageBody),
        (status = 409, description = "`too_many_reactions`: 20 different ones already", body = super::openapi::ErrorBody),
    ))]
async fn add_reaction(
    State(app): State<App>,
    Auth(who): Auth,
    Path((url, emoji)): Path<(String, String)>,
) -> ApiResult<Json<MessageBody>> {
    let message = app.react(&who, &url, &emoji, React::Add).await?;
    Ok(Json(MessageBody { message }))
}

/// Takes back the caller's reaction to a message.
#[utoipa::path(delete, path = "/messages/{url}/reactions/{emoji}", tag = "messages",
    params(("url" = String, Path), ("emoji" = String, Path, description = "One emoji, percent-encoded")),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "The message, with its reactions", body = MessageBody)))]
async fn remove_reaction(
    State(app): State<App>,
    Auth(who): Auth,
    Path((url, emoji)): Path<(String, String)>,
) -> ApiResult<Json<MessageBody>> {
    let message = app.react(&who, &url, &emoji, React::Remove).await?;
    Ok(Json(MessageBody { message }))
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
