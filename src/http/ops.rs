//! Service endpoints: health, metrics, and the API's 404.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error::ApiError;
use crate::service::App;

pub fn router() -> Router<App> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

/// `{status, database, redis?}`. 200 while the database answers (`status: "degraded"` when
/// Redis does not: this node still serves its own sockets), 503 when it does not, so a load
/// balancer takes a node out only when it cannot store messages.
async fn healthz(State(app): State<App>) -> impl IntoResponse {
    let health = app.health().await;
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let (status, overall) = match (health.database, health.redis) {
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (true, Some(false)) => (StatusCode::OK, "degraded"),
        (true, _) => (StatusCode::OK, "ok"),
    };
    let mut body = serde_json::json!({ "status": overall, "database": word(health.database) });
    if let Some(redis) = health.redis {
        body["redis"] = word(redis).into();
    }
    (status, axum::Json(body))
}

/// The Prometheus exposition; with `--metrics-token`, for that bearer token only.
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
    let body = app.metrics_text().await;
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
