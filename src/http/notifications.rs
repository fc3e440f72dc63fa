//! Notifications: the VAPID key and push subscriptions, and blocks. (A thread's mute is under
//! `threads.rs`.)

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::extract::{ApiJson, Auth};
use crate::service::App;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(push_key))
        .routes(routes!(subscribe, unsubscribe))
        .routes(routes!(blocks))
        .routes(routes!(block, unblock))
}

#[derive(Serialize, ToSchema)]
pub struct PushKey {
    /// The server's VAPID public key (P-256, uncompressed point, base64url): a browser's
    /// `applicationServerKey`.
    public_key: String,
}

/// The key browsers subscribe to this server's pushes with.
#[utoipa::path(get, path = "/push/key", tag = "notifications",
    responses((status = 200, description = "The VAPID public key", body = PushKey)))]
async fn push_key(State(app): State<App>) -> ApiResult<Json<PushKey>> {
    Ok(Json(PushKey {
        public_key: app.push_key()?,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct PushKeys {
    /// The browser's P-256 public key (uncompressed point, base64url).
    p256dh: String,
    /// The browser's authentication secret (16 bytes, base64url).
    auth: String,
}

/// A browser's `PushSubscription.toJSON()` (`expirationTime` and any other field ignored).
#[derive(Deserialize, ToSchema)]
pub struct NewSubscription {
    /// The push service's URL: `https://`, resolving to public addresses only.
    endpoint: String,
    keys: PushKeys,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    endpoint: String,
}

/// Pushes to this browser, while the caller's session lasts (logout or its end removes it).
#[utoipa::path(post, path = "/push/subscriptions", tag = "notifications",
    request_body = NewSubscription,
    security(("cookie" = []), ("bearer" = [])),
    responses(
        (status = 201, description = "Subscribed"),
        (status = 403, description = "`not_allowed`: HTTP Basic has no session", body = super::openapi::ErrorBody),
        (status = 409, description = "`too_many_subscriptions` (10 per user)", body = super::openapi::ErrorBody),
        (status = 422, description = "`invalid_endpoint` or `invalid_keys`", body = super::openapi::ErrorBody),
    ))]
async fn subscribe(
    State(app): State<App>,
    Auth(who): Auth,
    ApiJson(req): ApiJson<NewSubscription>,
) -> ApiResult<StatusCode> {
    app.limits.check_user_event(who.id())?;
    app.subscribe_push(&who, &req.endpoint, &req.keys.p256dh, &req.keys.auth)
        .await?;
    Ok(StatusCode::CREATED)
}

/// No more pushes to this browser (answered alike whether the caller held it or not).
#[utoipa::path(delete, path = "/push/subscriptions", tag = "notifications",
    request_body = EndpointBody,
    security(("cookie" = []), ("bearer" = [])),
    responses((status = 204, description = "Unsubscribed")))]
async fn unsubscribe(
    State(app): State<App>,
    Auth(who): Auth,
    ApiJson(req): ApiJson<EndpointBody>,
) -> ApiResult<StatusCode> {
    app.unsubscribe_push(&who, &req.endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct BlockList {
    /// The users the caller blocks, alphabetically.
    blocks: Vec<String>,
}

/// The users the caller blocks.
#[utoipa::path(get, path = "/blocks", tag = "notifications",
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "Blocked users", body = BlockList)))]
async fn blocks(State(app): State<App>, Auth(who): Auth) -> ApiResult<Json<BlockList>> {
    Ok(Json(BlockList {
        blocks: app.blocked(&who).await?,
    }))
}

/// Blocks a user: they cannot start a thread with the caller or add them to a group (they are
/// told no such user exists), and in shared threads the caller hears nothing of their new
/// messages, presence or typing. Nothing tells them.
#[utoipa::path(put, path = "/blocks/{username}", tag = "notifications",
    params(("username" = String, Path)),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 204, description = "Blocked"),
        (status = 404, description = "No such user", body = super::openapi::ErrorBody),
        (status = 409, description = "`too_many_blocks` (1000)", body = super::openapi::ErrorBody),
        (status = 422, description = "`cannot_block_self`", body = super::openapi::ErrorBody),
    ))]
async fn block(
    State(app): State<App>,
    Auth(who): Auth,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    app.block(&who, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unblocks a user (what they sent meanwhile stays hidden).
#[utoipa::path(delete, path = "/blocks/{username}", tag = "notifications",
    params(("username" = String, Path)),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 204, description = "Unblocked"),
        (status = 404, description = "No such user", body = super::openapi::ErrorBody),
    ))]
async fn unblock(
    State(app): State<App>,
    Auth(who): Auth,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    app.unblock(&who, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}
