//! The caller and other users.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::extract::Auth;
use crate::service::{AccountView, App};

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(me))
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
