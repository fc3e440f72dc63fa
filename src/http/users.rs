//! The caller and other users.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::extract::{ApiJson, Auth, Client};
use crate::service::{AccountView, App};
use axum::http::HeaderMap;
use axum::response::Response;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(me, settings, delete_me))
        .routes(routes!(show))
}

#[derive(Serialize, ToSchema)]
pub struct UserStatus {
    username: String,
    online: bool,
}

/// The caller's account.
#[utoipa::path(get, path = "/me", tag = "users",
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "The caller", body = AccountView)))]
async fn me(Auth(who): Auth) -> Json<AccountView> {
    Json(who.account())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Off: the caller's reads send no receipts, and they see none of others'.
    read_receipts: Option<bool>,
}

/// Changes the caller's settings.
#[utoipa::path(patch, path = "/me", tag = "users", request_body = Settings,
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "The caller after", body = MeBody)))]
async fn settings(
    State(app): State<App>,
    Auth(who): Auth,
    ApiJson(req): ApiJson<Settings>,
) -> ApiResult<Json<MeBody>> {
    let user = match req.read_receipts {
        Some(on) => app.set_read_receipts(&who, on).await?,
        None => who.account(),
    };
    Ok(Json(MeBody { user }))
}

#[derive(Serialize, ToSchema)]
pub struct MeBody {
    user: AccountView,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deletion {
    password: String,
    /// With two-factor on: a code from the app or a recovery code.
    #[serde(default)]
    code: Option<String>,
}

/// Deletes the caller's account: sessions, sockets, subscriptions, address and second factor
/// go; the messages it sent stay in the others' threads, from "deleted user"; its name stays
/// reserved.
#[utoipa::path(delete, path = "/me", tag = "account", request_body = Deletion,
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "invalid_credentials, code_required", body = super::openapi::ErrorBody),
    ))]
async fn delete_me(
    State(app): State<App>,
    client: Client,
    headers: HeaderMap,
    Auth(who): Auth,
    ApiJson(req): ApiJson<Deletion>,
) -> ApiResult<Response> {
    super::account::delete_me(
        &app,
        &client,
        &headers,
        &who,
        &req.password,
        req.code.as_deref(),
    )
    .await
}

/// Whether a user exists and is online.
#[utoipa::path(get, path = "/users/{username}", tag = "users",
    params(("username" = String, Path, description = "Any case")),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "The user", body = UserStatus)))]
async fn show(
    State(app): State<App>,
    Auth(_): Auth,
    Path(username): Path<String>,
) -> ApiResult<Json<UserStatus>> {
    let (username, online) = app.user_status(&username).await?;
    Ok(Json(UserStatus { username, online }))
}
