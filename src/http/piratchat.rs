//! Piratchat's API, at its original paths: key accounts and cookie sessions (its `/ws` lobby
//! is a transport of its own, `crate::lobby`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access_log::Trail;
use super::auth::{clear_cookie, session_cookie, with_cookie};
use super::error::{ApiError, ApiResult};
use super::extract::{Client, ClientAddr};
use crate::service::auth::{self, PIRATCHAT_COOKIE, Presented};
use crate::service::{App, DomainError, Identity, ServiceError};

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(online))
        .routes(routes!(user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = piratchat::Register)]
struct Register {
    /// Letters and digits, 1 to 32 (one namespace with native accounts).
    username: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = piratchat::Login)]
struct Login {
    key: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = piratchat::Key)]
struct Key {
    /// 256 random bits; the account's only credential (stored hashed).
    key: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = piratchat::Username)]
struct Username {
    username: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = piratchat::Status)]
struct Status {
    status: bool,
}

#[derive(Serialize, ToSchema)]
#[schema(as = piratchat::Online)]
struct Online {
    online_clients: Vec<String>,
}

/// Piratchat answers 422 to any body that is not exactly the expected object.
fn exact_body<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    super::extract::parse_json(body).map_err(|e| match e {
        ApiError::MalformedJson(m) => ApiError::InvalidPayload(m),
        other => other,
    })
}

/// Creates a key account (Piratchat).
#[utoipa::path(post, path = "/api/register", tag = "piratchat",
    request_body(content = Register, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = Key),
        (status = 409, description = "username_taken", body = super::openapi::ErrorBody),
    ))]
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
    Ok((StatusCode::CREATED, Json(Key { key })).into_response())
}

/// Starts a session with a key: the `session` cookie (Piratchat).
#[utoipa::path(post, path = "/api/login", tag = "piratchat",
    request_body(content = Login, content_type = "application/json"),
    responses((status = 200, description = "Logged in; `session` cookie set", body = Username)))]
async fn login(
    State(app): State<App>,
    client: Client,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let req: Login = exact_body(&body)?;
    let session = match app.login_with_key(client.ip, &client.place, &req.key).await {
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
        Json(Username {
            username: session.account.username,
        })
        .into_response(),
        &cookie,
    ))
}

/// A GET, as Piratchat has it: refused from another site's page (a link or an image there
/// would log the user out).
#[utoipa::path(get, path = "/api/logout", tag = "piratchat",
    security(("cookie" = [])),
    responses((status = 200, description = "Logged out (also without a session)", body = Status)))]
async fn logout(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    trail: Trail,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if !app.origins.allows_state_changing_get(&headers) {
        return Err(ServiceError::ForbiddenOrigin.into());
    }
    if let Ok(who) = session_user(&app, &headers, ip, &trail).await {
        app.logout(&who).await?;
    }
    let cookie = clear_cookie(&app, &headers, PIRATCHAT_COOKIE);
    Ok(with_cookie(
        Json(Status { status: true }).into_response(),
        &cookie,
    ))
}

/// Who is in the `/ws` lobby now (422 without a session cookie).
#[utoipa::path(get, path = "/api/online", tag = "piratchat",
    security(("cookie" = [])),
    responses((status = 200, description = "Usernames in the lobby", body = Online)))]
async fn online(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    trail: Trail,
    headers: HeaderMap,
) -> ApiResult<Json<Online>> {
    session_user(&app, &headers, ip, &trail).await?;
    Ok(Json(Online {
        online_clients: app.lobby.online(),
    }))
}

/// A user by name, or the caller as `@me` (422 without a session cookie).
#[utoipa::path(get, path = "/api/user/{username}", tag = "piratchat",
    params(("username" = String, Path, description = "A name, or `@me`")),
    security(("cookie" = [])),
    responses((status = 200, description = "The user", body = Username)))]
async fn user(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    trail: Trail,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Username>> {
    let who = session_user(&app, &headers, ip, &trail).await?;
    if name == "@me" {
        return Ok(Json(Username {
            username: who.user.username,
        }));
    }
    let (username, _) = app.user_status(&name).await?;
    Ok(Json(Username { username }))
}

/// The caller by session cookie (Piratchat's or the native one): 422 without one, 401 if dead.
async fn session_user(
    app: &App,
    headers: &HeaderMap,
    client: std::net::IpAddr,
    trail: &Trail,
) -> ApiResult<Identity> {
    let credential = auth::piratchat_session(headers)
        .ok_or_else(|| ApiError::InvalidPayload("session cookie required".into()))?;
    let presented = Presented {
        credential,
        headers,
        client,
        guarded: false,
    };
    let who = app.authenticate(presented).await.map_err(|e| match e {
        ServiceError::Unauthorized => ApiError::Unauthorized { challenge: false },
        other => other.into(),
    })?;
    trail.authenticated(who.id());
    Ok(who)
}
