//! Registration, login and logout.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiResult;
use super::extract::{ApiJson, Auth, ClientAddr};
use super::users::UserBody;
use crate::app::App;
use crate::auth::SESSION_COOKIE;
use crate::domain::{DomainError, accounts, sessions};
use crate::metrics::Metrics;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    username: String,
    password: String,
}

pub async fn register(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    ApiJson(req): ApiJson<Credentials>,
) -> ApiResult<Response> {
    app.check_registration_limit(ip)?;
    let user = accounts::register(&app.db, &req.username, &req.password).await?;
    tracing::info!(username = %user.username, "registered");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": UserBody::from(&user) })),
    )
        .into_response())
}

pub async fn login(
    State(app): State<App>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    ApiJson(req): ApiJson<Credentials>,
) -> ApiResult<Response> {
    app.check_login_limits(ip, &req.username)?;
    let user = match accounts::authenticate(&app.db.conn, &req.username, &req.password).await {
        Ok(user) => user,
        Err(DomainError::InvalidCredentials) => {
            app.record_login_failure(&req.username);
            return Err(DomainError::InvalidCredentials.into());
        }
        Err(e) => return Err(e.into()),
    };
    let session = sessions::create(&app.db.conn, user.id, app.config.session_idle).await?;
    let token = app.tokens.issue(&user.username, &session.id);
    Metrics::inc(&app.metrics.logins);
    tracing::info!(username = %user.username, "logged in");
    let cookie = session_cookie(&app, &headers, SESSION_COOKIE, &token);
    Ok(with_cookie(
        Json(json!({ "user": UserBody::from(&user), "token": token })).into_response(),
        &cookie,
    ))
}

pub async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    Auth(who): Auth,
) -> ApiResult<Response> {
    if let Some(sid) = &who.session_id {
        sessions::revoke(&app.db.conn, sid).await?;
        app.disconnect_sessions(std::slice::from_ref(sid)).await;
    }
    let cookie = clear_cookie(&app, &headers, SESSION_COOKIE);
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

pub async fn logout_all(
    State(app): State<App>,
    headers: HeaderMap,
    Auth(who): Auth,
) -> ApiResult<Response> {
    let ended = sessions::revoke_all(&app.db.conn, who.user.id).await?;
    app.disconnect_sessions(&ended).await;
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
