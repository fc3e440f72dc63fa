//! Registration, login and logout.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiResult;
use super::extract::{ApiJson, Auth, ClientAddr};
use crate::service::App;
use crate::service::auth::SESSION_COOKIE;

pub fn router() -> Router<App> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-all", post(logout_all))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    username: String,
    password: String,
}

async fn register(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    ApiJson(req): ApiJson<Credentials>,
) -> ApiResult<Response> {
    let account = app.register(ip, &req.username, &req.password).await?;
    Ok((StatusCode::CREATED, Json(json!({ "user": account }))).into_response())
}

async fn login(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    ApiJson(req): ApiJson<Credentials>,
) -> ApiResult<Response> {
    let session = app.login(ip, &req.username, &req.password).await?;
    let cookie = session_cookie(&app, &headers, SESSION_COOKIE, &session.token);
    let body = json!({ "user": session.account, "token": session.token });
    Ok(with_cookie(Json(body).into_response(), &cookie))
}

async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    Auth(who): Auth,
) -> ApiResult<Response> {
    app.logout(&who).await?;
    let cookie = clear_cookie(&app, &headers, SESSION_COOKIE);
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

async fn logout_all(
    State(app): State<App>,
    headers: HeaderMap,
    Auth(who): Auth,
) -> ApiResult<Response> {
    app.logout_everywhere(&who).await?;
    let cookie = clear_cookie(&app, &headers, SESSION_COOKIE);
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

/// `Secure` when configured or when a trusted proxy says the client used HTTPS.
fn secure(app: &App, headers: &HeaderMap) -> bool {
    app.config.secure_cookies
        || (app.config.trust_proxy
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
