//! Service endpoints: health, metrics, and the API's 404.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::error::ApiError;
use crate::service::App;

pub fn router() -> Router<App> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

/// 200 when the database answers within two seconds, else 503.
async fn healthz(State(app): State<App>) -> impl IntoResponse {
    if app.database_answers().await {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
    }
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    let body = app.metrics_text().await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

pub async fn api_not_found() -> ApiError {
    ApiError::Status(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such API endpoint".into(),
    )
}
