//! Registration, login and logout.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::extract::{ApiJson, Auth, Client, ClientAddr};
use crate::service::auth::SESSION_COOKIE;
use crate::service::{AccountView, App};

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The name in any case (imported accounts keep theirs, up to 80 characters).
    username: String,
    password: String,
    /// With two-factor on: a code from the authenticator app, or an unused recovery code.
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Registration: 1 to 32 of a-z, 0-9 and _ (any case, stored lowercase). Login: the name
    /// in any case (imported accounts keep theirs, up to 80 characters).
    username: String,
    /// 8 to 256 characters.
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserBody {
    user: AccountView,
}

#[derive(Serialize, ToSchema)]
pub struct LoginBody {
    user: AccountView,
    /// The session token, also set as the `missive_session` cookie.
    token: String,
}

/// Creates an account.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = Credentials,
    responses(
        (status = 201, description = "Created", body = UserBody),
        (status = 409, description = "username_taken", body = super::openapi::ErrorBody),
    ))]
async fn register(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    ApiJson(req): ApiJson<Credentials>,
) -> ApiResult<Response> {
    let account = app.register(ip, &req.username, &req.password).await?;
    Ok((StatusCode::CREATED, Json(UserBody { user: account })).into_response())
}

/// Starts a session: the token in the body and in the `missive_session` cookie. With
/// two-factor on, `code` is needed too (401 `code_required` without it); a disabled account
/// is refused (401 `account_disabled`) once its password is right.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = LoginBody),
        (status = 401, description = "invalid_credentials, code_required, account_disabled", body = super::openapi::ErrorBody),
    ))]
async fn login(
    State(app): State<App>,
    client: Client,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let session = app
        .login(
            client.ip,
            &client.place,
            &req.username,
            &req.password,
            req.code.as_deref(),
        )
        .await?;
    let cookie = session_cookie(&app, &headers, SESSION_COOKIE, &session.token);
    let body = LoginBody {
        user: session.account,
        token: session.token,
    };
    Ok(with_cookie(Json(body).into_response(), &cookie))
}

/// Ends this session (its sockets are disconnected).
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 204, description = "Logged out")))]
async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    Auth(who): Auth,
) -> ApiResult<Response> {
    app.logout(&who).await?;
    let cookie = clear_cookie(&app, &headers, SESSION_COOKIE);
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

/// Ends every session of the user.
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth",
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 204, description = "Every session ended")))]
async fn logout_all(
    State(app): State<App>,
    headers: HeaderMap,
    Auth(who): Auth,
) -> ApiResult<Response> {
    app.logout_everywhere(&who).await?;
    let cookie = clear_cookie(&app, &headers, SESSION_COOKIE);
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

/// `Secure` when configured or when a proxy says the client used HTTPS (a client that
/// claims it itself only makes its own cookie stricter).
fn secure(app: &App, headers: &HeaderMap) -> bool {
    app.config.secure_cookies
        || (!app.config.trusted_proxies.is_empty()
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                == Some("https"))
}

/// A session cookie: HttpOnly, SameSite=Lax, Path=/.
pub fn session_cookie(app: &App, headers: &HeaderMap, name: &str, token: &str) -> String {
    let mut c = cookie::Cookie::build((name, token))
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .path("/")
        .max_age(cookie::time::Duration::days(30));
    if secure(app, headers) {
        c = c.secure(true);
    }
    c.build().to_string()
}

pub fn clear_cookie(app: &App, headers: &HeaderMap, name: &str) -> String {
    let mut c = cookie::Cookie::build((name, ""))
        .http_only(true)
        .same_site(cookie::SameSite::Lax)
        .path("/")
        .max_age(cookie::time::Duration::ZERO);
    if secure(app, headers) {
        c = c.secure(true);
    }
    c.build().to_string()
}

pub fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
