//! Account security over HTTP: sessions and devices, a new password, the e-mail address and
//! password resets, two-factor, the security log, export and deletion (DESIGN.md, "Account
//! security"); the admins' view of accounts.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{clear_cookie, with_cookie};
use super::error::{ApiError, ApiResult};
use super::extract::{ApiJson, ApiQuery, Auth, Client};
use crate::service::account_security::{
    SecurityEventView, SessionView, TwoFactorSetup, UserSummary,
};
use crate::service::auth::SESSION_COOKIE;
use crate::service::{App, DomainError, Identity};

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list_sessions))
        .routes(routes!(end_session))
        .routes(routes!(logout_others))
        .routes(routes!(change_password))
        .routes(routes!(set_email))
        .routes(routes!(verify_email))
        .routes(routes!(request_reset))
        .routes(routes!(confirm_reset))
        .routes(routes!(begin_two_factor, disable_two_factor))
        .routes(routes!(confirm_two_factor))
        .routes(routes!(recovery_codes))
        .routes(routes!(security_events))
        .routes(routes!(export))
        .routes(routes!(list_users))
        .routes(routes!(disable_user))
        .routes(routes!(enable_user))
        .routes(routes!(logout_user))
        .routes(routes!(user_security_events))
}

#[derive(Serialize, ToSchema)]
pub struct Sessions {
    sessions: Vec<SessionView>,
}

/// The caller's live sessions, newest first.
#[utoipa::path(get, path = "/sessions", tag = "account",
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "The sessions", body = Sessions)))]
async fn list_sessions(State(app): State<App>, Auth(who): Auth) -> ApiResult<Json<Sessions>> {
    Ok(Json(Sessions {
        sessions: app.sessions_of(&who).await?,
    }))
}

/// Ends one of the caller's sessions: its sockets hear `session:ended` and are disconnected,
/// its push subscriptions are deleted.
#[utoipa::path(delete, path = "/sessions/{id}", tag = "account",
    params(("id" = String, Path, description = "A session id from GET /sessions")),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "Not one of the caller's sessions", body = super::openapi::ErrorBody),
    ))]
async fn end_session(
    State(app): State<App>,
    client: Client,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.end_session(&who, &client.place, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the caller but this one.
#[utoipa::path(post, path = "/auth/logout-others", tag = "auth",
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 204, description = "The other sessions ended")))]
async fn logout_others(
    State(app): State<App>,
    client: Client,
    Auth(who): Auth,
) -> ApiResult<StatusCode> {
    app.logout_others(&who, &client.place).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current_password: String,
    /// 8 to 256 characters.
    new_password: String,
}

/// A new password: every other session and every Basic connection of the account ends; this
/// session stays.
#[utoipa::path(post, path = "/me/password", tag = "account", request_body = PasswordChange,
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 204, description = "Changed"),
        (status = 401, description = "invalid_credentials: the current password is wrong", body = super::openapi::ErrorBody),
        (status = 409, description = "no_password: a Piratchat key account", body = super::openapi::ErrorBody),
    ))]
async fn change_password(
    State(app): State<App>,
    client: Client,
    Auth(who): Auth,
    ApiJson(req): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    app.change_password(
        &who,
        &client.place,
        client.ip,
        &req.current_password,
        &req.new_password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChange {
    /// The new address; null or empty removes it.
    email: Option<String>,
    password: String,
}

/// Sets the caller's e-mail address (202: a link to verify it was mailed) or removes it (204).
#[utoipa::path(put, path = "/me/email", tag = "account", request_body = EmailChange,
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 202, description = "Set; a verification link is on its way"),
        (status = 204, description = "Removed"),
        (status = 422, description = "invalid_email", body = super::openapi::ErrorBody),
        (status = 503, description = "mail_unavailable", body = super::openapi::ErrorBody),
    ))]
async fn set_email(
    State(app): State<App>,
    client: Client,
    Auth(who): Auth,
    ApiJson(req): ApiJson<EmailChange>,
) -> ApiResult<StatusCode> {
    let mailed = app
        .set_email(
            &who,
            &client.place,
            client.ip,
            req.email.as_deref(),
            &req.password,
        )
        .await?;
    Ok(if mailed {
        StatusCode::ACCEPTED
    } else {
        StatusCode::NO_CONTENT
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    token: String,
}

/// Confirms an e-mail address with the token its link carried (no login needed).
#[utoipa::path(post, path = "/auth/verify-email", tag = "auth", request_body = TokenBody,
    responses(
        (status = 204, description = "Verified"),
        (status = 400, description = "invalid_token: used, expired or unknown", body = super::openapi::ErrorBody),
    ))]
async fn verify_email(
    State(app): State<App>,
    ApiJson(req): ApiJson<TokenBody>,
) -> ApiResult<StatusCode> {
    app.verify_email(&req.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// A username, or a verified e-mail address.
    login: String,
}

/// Asks for a password-reset link. Always 202 (when mail is configured), whether or not the
/// login names an account: a link valid 30 minutes goes to its verified address, if any.
#[utoipa::path(post, path = "/auth/password-reset", tag = "auth", request_body = ResetRequest,
    responses(
        (status = 202, description = "Taken (whether or not it names an account)"),
        (status = 503, description = "mail_unavailable", body = super::openapi::ErrorBody),
    ))]
async fn request_reset(
    State(app): State<App>,
    client: Client,
    ApiJson(req): ApiJson<ResetRequest>,
) -> ApiResult<StatusCode> {
    app.request_reset(client.ip, &req.login).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    token: String,
    new_password: String,
}

/// Sets a new password with a reset link's token: every session of the account ends.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "auth", request_body = ResetConfirm,
    responses(
        (status = 204, description = "The password is set"),
        (status = 400, description = "invalid_token", body = super::openapi::ErrorBody),
        (status = 422, description = "invalid_password", body = super::openapi::ErrorBody),
    ))]
async fn confirm_reset(
    State(app): State<App>,
    client: Client,
    ApiJson(req): ApiJson<ResetConfirm>,
) -> ApiResult<StatusCode> {
    app.confirm_reset(&client.place, &req.token, &req.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    password: String,
}

/// Starts setting up two-factor: a secret and its `otpauth://` URI (for a QR code); a first
/// code confirms it.
#[utoipa::path(post, path = "/me/two-factor", tag = "account", request_body = PasswordBody,
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "The secret", body = TwoFactorSetup),
        (status = 409, description = "two_factor_enabled, no_password", body = super::openapi::ErrorBody),
    ))]
async fn begin_two_factor(
    State(app): State<App>,
    client: Client,
    Auth(who): Auth,
    ApiJson(req): ApiJson<PasswordBody>,
) -> ApiResult<Json<TwoFactorSetup>> {
    let setup = app
        .begin_two_factor(&who, &client.place, client.ip, &req.password)
        .await?;
    Ok(Json(setup))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordAndCode {
    password: String,
    /// A code from the authenticator app, or a recovery code (needed when two-factor is on).
    #[serde(default)]
    code: Option<String>,
}

/// Turns two-factor off.
#[utoipa::path(delete, path = "/me/two-factor", tag = "account", request_body = PasswordAndCode,
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 204, description = "Off")))]
async fn disable_two_factor(
    State(app): State<App>,
    client: Client,
    Auth(who): Auth,
    ApiJson(req): ApiJson<PasswordAndCode>,
) -> ApiResult<StatusCode> {
    app.disable_two_factor(
        &who,
        &client.place,
        client.ip,
        &req.password,
        req.code.as_deref(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten one-time codes, each good for one login without the app. Shown once.
    recovery_codes: Vec<String>,
}

/// Confirms two-factor with a first code: it is on from now, and here are the recovery codes.
#[utoipa::path(post, path = "/me/two-factor/confirm", tag = "account", request_body = CodeBody,
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "On", body = RecoveryCodes),
        (status = 401, description = "invalid_credentials: a wrong code", body = super::openapi::ErrorBody),
    ))]
async fn confirm_two_factor(
    State(app): State<App>,
    client: Client,
    Auth(who): Auth,
    ApiJson(req): ApiJson<CodeBody>,
) -> ApiResult<Json<RecoveryCodes>> {
    let recovery_codes = app
        .confirm_two_factor(&who, &client.place, client.ip, &req.code)
        .await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// Ten new recovery codes; the old ones stop working.
#[utoipa::path(post, path = "/me/two-factor/recovery-codes", tag = "account", request_body = PasswordAndCode,
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "The new codes", body = RecoveryCodes)))]
async fn recovery_codes(
    State(app): State<App>,
    client: Client,
    Auth(who): Auth,
    ApiJson(req): ApiJson<PasswordAndCode>,
) -> ApiResult<Json<RecoveryCodes>> {
    let recovery_codes = app
        .new_recovery_codes(
            &who,
            &client.place,
            client.ip,
            &req.password,
            req.code.as_deref(),
        )
        .await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

#[derive(Deserialize, IntoParams)]
pub struct EventsPage {
    /// The `next` of the previous page.
    before: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SecurityEvents {
    /// Newest first.
    events: Vec<SecurityEventView>,
    next: Option<String>,
}

/// Events per page of a security log.
const EVENTS_PAGE: u64 = 50;

/// The caller's security log (90 days): logins, failed logins, password, e-mail and
/// second-factor changes, ended sessions.
#[utoipa::path(get, path = "/me/security-events", tag = "account", params(EventsPage),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "A page of the log", body = SecurityEvents)))]
async fn security_events(
    State(app): State<App>,
    Auth(who): Auth,
    ApiQuery(page): ApiQuery<EventsPage>,
) -> ApiResult<Json<SecurityEvents>> {
    let (events, next) = app
        .security_events(who.id(), page.before.as_deref(), EVENTS_PAGE)
        .await?;
    Ok(Json(SecurityEvents { events, next }))
}

/// The caller's account, threads and messages as one JSON document (streamed, as a download).
#[utoipa::path(post, path = "/me/export", tag = "account", request_body = PasswordBody,
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "`{user, threads: [{thread, messages}]}`", content_type = "application/json")))]
async fn export(
    State(app): State<App>,
    client: Client,
    Auth(who): Auth,
    ApiJson(req): ApiJson<PasswordBody>,
) -> ApiResult<Response> {
    app.confirm_export(&who, &client.place, client.ip, &req.password)
        .await?;
    let filename = format!("missive-{}.json", file_safe(&who.user.username));
    let mut response = Body::from_stream(app.export(who)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// A name as a file name may carry it (imported names may hold anything).
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Deletes the caller's account (DELETE /me, routed with /me in `users`).
pub async fn delete_me(
    app: &App,
    client: &Client,
    headers: &HeaderMap,
    who: &Identity,
    password: &str,
    code: Option<&str>,
) -> ApiResult<Response> {
    app.delete_account(who, &client.place, client.ip, password, code)
        .await?;
    let cookie = clear_cookie(app, headers, SESSION_COOKIE);
    Ok(with_cookie(StatusCode::NO_CONTENT.into_response(), &cookie))
}

// ---- admins

fn admin_only(who: &Identity) -> ApiResult<()> {
    if who.is_admin {
        Ok(())
    } else {
        Err(ApiError::from(DomainError::NotAllowed(
            "only admins may do this".into(),
        )))
    }
}

#[derive(Deserialize, IntoParams)]
pub struct UsersPage {
    /// The `next` of the previous page.
    after: Option<String>,
    /// At most 100 (default 50).
    limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct Users {
    users: Vec<UserSummary>,
    next: Option<String>,
}

/// Accounts by name (admins).
#[utoipa::path(get, path = "/admin/users", tag = "admin", params(UsersPage),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "A page of accounts", body = Users),
        (status = 403, description = "not_allowed: not an admin", body = super::openapi::ErrorBody),
    ))]
async fn list_users(
    State(app): State<App>,
    Auth(who): Auth,
    ApiQuery(page): ApiQuery<UsersPage>,
) -> ApiResult<Json<Users>> {
    admin_only(&who)?;
    let limit = page.limit.unwrap_or(50).clamp(1, 100);
    let (users, next) = app.list_users(page.after.as_deref(), limit).await?;
    Ok(Json(Users { users, next }))
}

/// Disables an account (admins): every session and socket of it ends, and it cannot log in.
#[utoipa::path(post, path = "/admin/users/{username}/disable", tag = "admin",
    params(("username" = String, Path)),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 204, description = "Disabled")))]
async fn disable_user(
    State(app): State<App>,
    Auth(who): Auth,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    admin_only(&who)?;
    app.set_disabled(&username, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enables a disabled account (admins).
#[utoipa::path(post, path = "/admin/users/{username}/enable", tag = "admin",
    params(("username" = String, Path)),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 204, description = "Enabled")))]
async fn enable_user(
    State(app): State<App>,
    Auth(who): Auth,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    admin_only(&who)?;
    app.set_disabled(&username, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of an account (admins).
#[utoipa::path(post, path = "/admin/users/{username}/logout", tag = "admin",
    params(("username" = String, Path)),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 204, description = "Its sessions ended")))]
async fn logout_user(
    State(app): State<App>,
    Auth(who): Auth,
    Path(username): Path<String>,
) -> ApiResult<StatusCode> {
    admin_only(&who)?;
    app.logout_user(&username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Anyone's security log (admins).
#[utoipa::path(get, path = "/admin/users/{username}/security-events", tag = "admin",
    params(("username" = String, Path), EventsPage),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, description = "A page of the log", body = SecurityEvents)))]
async fn user_security_events(
    State(app): State<App>,
    Auth(who): Auth,
    Path(username): Path<String>,
    ApiQuery(page): ApiQuery<EventsPage>,
) -> ApiResult<Json<SecurityEvents>> {
    admin_only(&who)?;
    let user = app.named_account(&username).await?;
    let (events, next) = app
        .security_events(user.id, page.before.as_deref(), EVENTS_PAGE)
        .await?;
    Ok(Json(SecurityEvents { events, next }))
}
