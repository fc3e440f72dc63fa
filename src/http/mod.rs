//! HTTP transport (axum): the native JSON API, Piratchat's paths and its `/ws` lobby, service
//! endpoints and the embedded web client. Each resource module owns its routes; they are
//! merged here, with the layers every request goes through.

pub mod auth;
pub mod error;
pub mod extract;
pub mod lobby;
pub mod messages;
pub mod ops;
pub mod piratchat;
pub mod threads;
pub mod users;
pub mod web;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::service::App;

/// Largest accepted request body.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;

pub fn router(app: App) -> Router {
    let api = Router::new()
        .merge(auth::router())
        .merge(users::router())
        .merge(threads::router())
        .merge(messages::router())
        .fallback(ops::api_not_found);

    let mut router = Router::new()
        .nest("/api/v1", api)
        .merge(piratchat::router())
        .merge(lobby::router())
        .merge(ops::router())
        .fallback(web::serve)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            extract::origin_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            extract::count_requests,
        ))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                // Path only: query strings may carry cursors, never credentials, but keep logs lean.
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
            }),
        );
    let origins = app.origins.configured().to_vec();
    if !origins.is_empty() {
        let list: Vec<_> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(list))
                .allow_credentials(true)
                .allow_methods([
                    axum::http::Method::GET,
                    axum::http::Method::POST,
                    axum::http::Method::DELETE,
                ])
                .allow_headers([
                    axum::http::header::CONTENT_TYPE,
                    axum::http::header::AUTHORIZATION,
                ]),
        );
    }
    router.with_state(app)
}
