//! The caller and other users.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::error::ApiResult;
use super::extract::Auth;
use crate::service::{AccountView, App};

pub fn router() -> Router<App> {
    Router::new()
        .route("/me", get(me))
        .route("/users/{username}", get(show))
}

async fn me(Auth(who): Auth) -> Json<AccountView> {
    Json(who.account())
}

async fn show(
    State(app): State<App>,
    Auth(_): Auth,
    Path(username): Path<String>,
) -> ApiResult<Json<Value>> {
    let (username, online) = app.user_status(&username).await?;
    Ok(Json(json!({ "username": username, "online": online })))
}
