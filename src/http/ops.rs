//! Service endpoints: health, metrics, and the API's 404.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use crate::service::App;

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `degraded` (Redis does not answer) or `unavailable` (the database does not).
    status: &'static str,
    /// `ok` or `unavailable`.
    database: &'static str,
    /// `ok` or `unavailable`; absent without Redis.
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<&'static str>,
}

/// `{status, database, redis?}`. 200 while the database answers (`status: "degraded"` when
/// Redis does not: this node still serves its own sockets), 503 when it does not, so a load
/// balancer takes a node out only when it cannot store messages.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses(
        (status = 200, description = "Serving (perhaps degraded)", body = Health),
        (status = 503, description = "The database does not answer", body = Health),
    ))]
async fn healthz(State(app): State<App>) -> impl IntoResponse {
    let health = app.health().await;
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let (status, overall) = match (health.database, health.redis) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, Some(false)) => (StatusCode::OK, "degraded"),
        (true, _) => (StatusCode::OK, "ok"),
    };
    let body = Health {
        status: overall,
        database: word(health.database),
        redis: health.redis.map(word),
    };
    (status, axum::Json(body))
}

/// The Prometheus exposition; with `--metrics-token`, for that bearer token only.
#[utoipa::path(get, path = "/metrics", tag = "service",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
    ))]
async fn metrics(State(app): State<App>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = app.config.metrics_token.as_deref() {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !presented.is_some_and(|p| constant_time_eq(p.trim().as_bytes(), token.as_bytes())) {
            return Err(ApiError::Unauthorized { challenge: false });
        }
    }
    let body = app.metrics_text();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

/// Compares without stopping at the first difference, so timing tells nothing of the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

pub async fn api_not_found() -> ApiError {
    ApiError::Status(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such API endpoint".into(),
    )
}
