//! Searching the caller's messages.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::extract::{ApiQuery, Auth};
use crate::service::{App, SearchResult};

pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(search))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The words: every one must match a word of the body or of the thread's subject, the
    /// last as a prefix; case and accents ignored. 1 to 200 characters.
    q: String,
    /// Only this thread.
    thread_id: Option<String>,
    /// The cursor: `next` of the previous page.
    before: Option<String>,
    /// At most 100 (20 by default).
    limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchPage {
    /// Newest first.
    results: Vec<SearchResult>,
    /// The cursor of the next page (`before`); null on the last.
    next: Option<String>,
}

/// The caller's messages that match `q`, among those they can see, newest first.
#[utoipa::path(get, path = "/search", tag = "messages", params(SearchParams),
    security(("cookie" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "A page of results", body = SearchPage),
        (status = 400, description = "`invalid_query`: empty, over 200 characters, no word, or over 10 words", body = super::openapi::ErrorBody),
    ))]
async fn search(
    State(app): State<App>,
    Auth(who): Auth,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> ApiResult<Json<SearchPage>> {
    let (results, next) = app
        .search(
            &who,
            &params.q,
            params.thread_id.as_deref(),
            params.before.as_deref(),
            params.limit.unwrap_or(20),
        )
        .await?;
    Ok(Json(SearchPage { results, next }))
}
