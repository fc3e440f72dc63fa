//! HTTP transport (axum): the native JSON API, service endpoints and the embedded web client.

pub mod auth;
pub mod error;
pub mod extract;
pub mod messages;
pub mod piratchat;
pub mod service;
pub mod threads;
pub mod users;
pub mod web;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::app::App;

/// Largest accepted request body.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;

pub fn router(app: App) -> Router {
    let api = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/logout-all", post(auth::logout_all))
        .route("/me", get(users::me))
        .route("/users/{username}", get(users::show))
        .route("/unread", get(threads::unread))
        .route("/threads", get(threads::list))
        .route(
            "/threads/{thread_id}",
            get(threads::show).delete(threads::delete),
        )
        .route("/threads/{thread_id}/messages", get(threads::messages))
        .route("/threads/{thread_id}/read", post(threads::read))
        .route("/messages", post(messages::send))
        .route("/messages/{url}", delete(messages::delete))
        .fallback(service::api_not_found);

    let mut router = Router::new()
        .nest("/api/v1", api)
        .route("/api/register", post(piratchat::register))
        .route("/api/login", post(piratchat::login))
        .route("/api/logout", get(piratchat::logout))
        .route("/api/online", get(piratchat::online))
        .route("/api/user/{username}", get(piratchat::user))
        .route("/ws", get(piratchat::lobby))
        .route("/healthz", get(service::healthz))
        .route("/metrics", get(service::metrics))
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
