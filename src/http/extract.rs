//! Extractors: JSON bodies with our error format, the authenticated caller, the client address.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use serde::de::DeserializeOwned;

use super::access_log::Trail;
use super::error::ApiError;
use crate::metrics::Metrics;
use crate::service::auth::{self, Presented};
use crate::service::{App, Identity, Place, ServiceError};

/// A JSON body. Syntax errors are 400 `malformed_json`; a well-formed body of the wrong shape
/// (missing, unknown or mistyped fields) is 422 `invalid_payload`; over 1 MiB is 413.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<App> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &App) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::MalformedJson(e.body_text())
            }
        })?;
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&bytes).map(ApiJson)
    }
}

/// Whether the request says its body is JSON (`application/json`, any parameters). A form
/// (`text/plain`, `application/x-www-form-urlencoded`) is refused even if its text is JSON: a
/// foreign page can post those without a CORS preflight.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// A JSON object body that may also be empty (then `T::default()`): 415 unless it is JSON.
pub fn optional_json<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if !is_json(headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    parse_json(bytes)
}

/// Parses a JSON object body (serde would also read a struct from an array: refused here).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::InvalidPayload(
            "the body must be a JSON object".into(),
        ));
    }
    serde_json::from_value(value).map_err(|e| ApiError::InvalidPayload(e.to_string()))
}

/// The authenticated caller: any credential, with the login limits on a password and the
/// Origin rule on a state-changing request (CSRF), as [`App::authenticate`] applies them.
pub struct Auth(pub Identity);

impl FromRequestParts<App> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let challenge = wants_basic_challenge(&parts.headers);
        let credential = auth::credential_from_headers(&parts.headers)
            .ok_or(ApiError::Unauthorized { challenge })?;
        let presented = Presented {
            credential,
            headers: &parts.headers,
            client: ClientAddr::of(parts, app),
            guarded: !is_safe(&parts.method),
        };
        match app.authenticate(presented).await {
            Ok(who) => {
                if let Some(trail) = parts.extensions.get::<Trail>() {
                    trail.authenticated(who.id());
                }
                Ok(Auth(who))
            }
            Err(ServiceError::Unauthorized) => Err(ApiError::Unauthorized { challenge }),
            Err(e) => Err(e.into()),
        }
    }
}

/// Browsers show a password dialog on `WWW-Authenticate: Basic`; scripted requests
/// (fetch/XHR, marked by `Sec-Fetch-Mode`) get none so the web client can handle 401 itself.
fn wants_basic_challenge(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-mode").and_then(|v| v.to_str().ok()) {
        Some(mode) => mode == "navigate",
        None => !headers.contains_key("x-requested-with"),
    }
}

pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The client's address: the peer, or the forwarded one behind a trusted proxy.
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client address of any request (HTTP or a websocket handshake).
    pub fn of(parts: &Parts, app: &App) -> IpAddr {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        crate::config::client_addr(&app.config.trusted_proxies, &parts.headers, peer)
    }
}

impl FromRequestParts<App> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        Ok(ClientAddr(ClientAddr::of(parts, app)))
    }
}

/// Where a request comes from, as sessions and the security log keep it: the client's
/// address (coarse) and the device its user agent names.
pub struct Client {
    pub ip: IpAddr,
    pub place: Place,
}

impl FromRequestParts<App> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let ip = ClientAddr::of(parts, app);
        let agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Ok(Client {
            ip,
            place: Place::new(ip, agent),
        })
    }
}

/// Middleware: a request's body must arrive whole within `--body-timeout`, or the request is
/// answered 408 and its connection closed. Hyper times the headers only; without this a
/// client trickling a body a byte at a time held its connection (and a handler) for good.
/// Over the size limit is 413, as the extractors say it.
pub async fn body_deadline(
    axum::extract::State(app): axum::extract::State<App>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let bodiless = req.headers().get(header::CONTENT_LENGTH).is_none()
        && req.headers().get(header::TRANSFER_ENCODING).is_none();
    if bodiless {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, super::MAX_REQUEST_BODY);
    match tokio::time::timeout(app.config.body_timeout, read).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => ApiError::PayloadTooLarge.into_response(),
        Err(_) => {
            let mut res = ApiError::Status(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body did not arrive in time".into(),
            )
            .into_response();
            res.headers_mut()
                .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
            res
        }
    }
}

/// Middleware: a state-changing request from a foreign Origin is refused before any handler
/// runs, unless it carries a bearer token (which no browser attaches by itself): a cookie,
/// Basic credentials the browser cached, or none at all (a login or registration form).
pub async fn origin_guard(
    axum::extract::State(app): axum::extract::State<App>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let bearer = matches!(
        auth::credential_from_headers(req.headers()),
        Some(auth::Credential::Token(_))
    );
    let guarded = !is_safe(req.method()) && !bearer;
    if guarded && !app.origins.allows(req.headers()) {
        return ApiError::from(ServiceError::ForbiddenOrigin).into_response();
    }
    next.run(req).await
}

/// Middleware: counts requests and error answers for /metrics.
pub async fn count_requests(
    axum::extract::State(app): axum::extract::State<App>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    Metrics::inc(&app.metrics.http_requests);
    let response = next.run(req).await;
    if response.status().is_client_error() || response.status().is_server_error() {
        Metrics::inc(&app.metrics.http_errors);
    }
    response
}

/// Query parameters; a bad one is a 400 `invalid_query` in our JSON error format.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<App> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, app)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::Status(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
    }
}
