//! The caller and other users.

use axum::Json;
use axum::extract::{Path, State};
use entity::user;
use serde::Serialize;
use serde_json::{Value, json};

use super::error::ApiResult;
use super::extract::Auth;
use crate::app::App;
use crate::domain::{DomainError, accounts};
use crate::ids;

/// `{username, websocket_id, created_at}`: what a user may know of their own account.
#[derive(Serialize)]
pub struct UserBody {
    username: String,
    websocket_id: String,
    created_at: String,
}

impl From<&user::Model> for UserBody {
    fn from(u: &user::Model) -> Self {
        UserBody {
            username: u.username.clone(),
            websocket_id: u.websocket_id.clone(),
            created_at: ids::rfc3339(u.created_at),
        }
    }
}

pub async fn me(Auth(who): Auth) -> Json<UserBody> {
    Json(UserBody::from(&who.user))
}

pub async fn show(
    State(app): State<App>,
    Auth(_): Auth,
    Path(username): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = accounts::find_by_username(&app.db.conn, &username)
        .await?
        .ok_or(DomainError::NotFound)?;
    let online = app.presence.is_online(user.id).await;
    Ok(Json(json!({ "username": user.username, "online": online })))
}
