//! The embedded web client (web/dist): assets by path, index.html for everything else, with
//! headers that keep other sites from framing it and scripts from anywhere but its own origin.

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

/// The client's scripts, styles and connections are its own origin's (built by Vite: no inline
/// script or style); no site may frame it (clickjacking).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// Headers of every page and asset of the web client.
fn protected(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[derive(RustEmbed)]
#[folder = "web/dist"]
#[allow_missing = true]
struct Assets;

pub async fn serve(method: Method, uri: Uri) -> Response {
    protected(asset(method, uri))
}

/// `/api/v1/docs`: the page that renders `/api/v1/openapi.json` (web/docs.html).
pub async fn api_docs() -> Response {
    protected(page("docs.html"))
}

fn asset(method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = uri.path().trim_start_matches('/');
    if let Some(file) = Assets::get(path).filter(|_| !path.is_empty()) {
        let mime = file.metadata.mimetype().to_owned();
        // Vite names assets by content hash, so they never change under the same name.
        let cache = if path.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, cache.to_owned()),
            ],
            Body::from(file.data.into_owned()),
        )
            .into_response();
    }
    if path.starts_with("assets/") || path.contains('.') {
        return StatusCode::NOT_FOUND.into_response();
    }
    page("index.html")
}

/// One of the client's HTML pages, never cached.
fn page(name: &str) -> Response {
    match Assets::get(name) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
                (header::CACHE_CONTROL, "no-cache".to_owned()),
            ],
            Body::from(file.data.into_owned()),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "web client not built: run `npm ci && npm run build` in web/\n",
        )
            .into_response(),
    }
}
