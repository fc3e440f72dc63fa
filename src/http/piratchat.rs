//! Piratchat's API, at its original paths: key accounts and cookie sessions (its `/ws` lobby
//! is a transport of its own, `crate::lobby`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::auth::{clear_cookie, session_cookie, with_cookie};
use super::error::{ApiError, ApiResult};
use super::extract::ClientAddr;
use crate::service::auth::{self, PIRATCHAT_COOKIE, Presented};
use crate::service::{App, DomainError, Identity, ServiceError};

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/register", post(register))
        .route("/api/login", post(login))
        .route("/api/logout", get(logout))
        .route("/api/online", get(online))
        .route("/api/user/{username}", get(user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    username: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    key: String,
}

/// Piratchat answers 422 to any body that is not exactly the expected object.
fn exact_body<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    super::extract::parse_json(body).map_err(|e| match e {
        ApiError::MalformedJson(m) => ApiError::InvalidPayload(m),
        other => other,
    })
}

async fn register(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    body: Bytes,
) -> ApiResult<Response> {
    let req: Register = exact_body(&body)?;
    let key = match app.register_key_account(ip, &req.username).await {
        Err(ServiceError::Domain(DomainError::Invalid(p))) => {
            let message = p.first().map(|p| p.message.clone()).unwrap_or_default();
            return Err(ApiError::Status(
                StatusCode::BAD_REQUEST,
                "invalid_username",
                message,
            ));
        }
        other => other?,
    };
    Ok((StatusCode::CREATED, Json(json!({ "key": key }))).into_response())
}

async fn login(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let req: Login = exact_body(&body)?;
    let session = match app.login_with_key(ip, &req.key).await {
        Err(ServiceError::Domain(DomainError::InvalidCredentials)) => {
            return Err(ApiError::Status(
                StatusCode::UNAUTHORIZED,
                "invalid_key",
                "unknown key".into(),
            ));
        }
        other => other?,
    };
    let cookie = session_cookie(&app, &headers, PIRATCHAT_COOKIE, &session.token);
    Ok(with_cookie(
        Json(json!({ "username": session.account.username })).into_response(),
        &cookie,
    ))
}

/// A GET, as Piratchat has it: refused from another site's page (a link or an image there
/// would log the user out).
async fn logout(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if !app.origins.allows_state_changing_get(&headers) {
        return Err(ServiceError::ForbiddenOrigin.into());
    }
    if let Ok(who) = session_user(&app, &headers, ip).await {
        app.logout(&who).await?;
    }
    let cookie = clear_cookie(&app, &headers, PIRATCHAT_COOKIE);
    Ok(with_cookie(
        Json(json!({ "status": true })).into_response(),
        &cookie,
    ))
}

async fn online(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    session_user(&app, &headers, ip).await?;
    Ok(Json(json!({ "online_clients": app.lobby.online() })))
}

async fn user(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let who = session_user(&app, &headers, ip).await?;
    if name == "@me" {
        return Ok(Json(json!({ "username": who.user.username })));
    }
    let (username, _) = app.user_status(&name).await?;
    Ok(Json(json!({ "username": username })))
}

/// The caller by session cookie (Piratchat's or the native one): 422 without one, 401 if dead.
async fn session_user(
    app: &App,
    headers: &HeaderMap,
    client: std::net::IpAddr,
) -> ApiResult<Identity> {
    let credential = auth::piratchat_session(headers)
        .ok_or_else(|| ApiError::InvalidPayload("session cookie required".into()))?;
    let presented = Presented {
        credential,
        headers,
        client,
        guarded: false,
    };
    app.authenticate(presented).await.map_err(|e| match e {
        ServiceError::Unauthorized => ApiError::Unauthorized { challenge: false },
        other => other.into(),
    })
}
