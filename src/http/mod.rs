//! HTTP transport (axum): the native JSON API, Piratchat's paths and its `/ws` lobby, service
//! endpoints and the embedded web client. Each resource module owns its routes; they are
//! merged here, with the layers every request goes through.

pub mod access_log;
pub mod account;
pub mod auth;
pub mod error;
pub mod extract;
pub mod lobby;
pub mod messages;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod piratchat;
pub mod search;
pub mod threads;
pub mod users;
pub mod web;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

use crate::service::App;

/// Largest accepted request body.
pub const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// Every documented route (those of `/api/v1`, the others), with the OpenAPI document
/// gathered from them.
fn documented() -> (Router<App>, Router<App>, utoipa::openapi::OpenApi) {
    let (api, api_doc) = OpenApiRouter::new()
        .merge(auth::router())
        .merge(account::router())
        .merge(users::router())
        .merge(threads::router())
        .merge(messages::router())
        .merge(search::router())
        .merge(notifications::router())
        .split_for_parts();
    let (rest, rest_doc) = OpenApiRouter::new()
        .merge(piratchat::router())
        .merge(lobby::router())
        .merge(ops::router())
        .split_for_parts();
    let doc = openapi::ApiDoc::openapi()
        .nest("/api/v1", api_doc)
        .merge_from(rest_doc);
    (api, rest, openapi::with_errors(doc))
}

/// The OpenAPI document of the HTTP API.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    documented().2
}

pub fn router(app: App) -> Router {
    let (api, rest, doc) = documented();
    let doc = Arc::new(doc.to_pretty_json().unwrap_or_default());
    let api_extra = Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        doc.as_str().to_owned(),
                    )
                }
            }),
        )
        .route("/docs", get(web::api_docs))
        .fallback(ops::api_not_found);

    let mut router = Router::new()
        .nest("/api/v1", api.merge(api_extra))
        .merge(rest)
        .route_layer(axum::middleware::from_fn(access_log::record_route))
        .fallback(web::serve)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            extract::origin_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            extract::count_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            extract::body_deadline,
        ))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY));
    let origins = app.origins.configured().to_vec();
    if !origins.is_empty() {
        let list: Vec<_> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(list))
                .allow_credentials(true)
                // Every method of the API: a page of another origin edits (PATCH) and
                // reacts (PUT) as well.
                .allow_methods([
                    axum::http::Method::GET,
                    axum::http::Method::POST,
                    axum::http::Method::PUT,
                    axum::http::Method::PATCH,
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
