//! Service endpoints: health, metrics, and the API's 404.

use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::error::ApiError;
use crate::app::App;
use crate::domain::sessions;

/// 200 when the database answers within two seconds, else 503.
pub async fn healthz(State(app): State<App>) -> impl IntoResponse {
    match tokio::time::timeout(Duration::from_secs(2), app.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n"),
    }
}

pub async fn metrics(State(app): State<App>) -> impl IntoResponse {
    let sessions = sessions::count_live(&app.db.conn).await.unwrap_or(0);
    let body = app
        .metrics
        .render(sessions, app.presence.local_online_users());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

pub async fn api_not_found() -> ApiError {
    ApiError::Status(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such API endpoint".into(),
    )
}
