//! One `info` line per HTTP request: method, route template, status, milliseconds and the
//! authenticated user. Never the raw path, a query, a header or a body: those may carry
//! tokens, passwords and keys.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// What the request's handling learned for its log line: the route it matched and who it
/// authenticated. Put in the request's extensions by [`log_requests`].
#[derive(Clone, Default)]
pub struct Trail(Arc<TrailInner>);

#[derive(Default)]
struct TrailInner {
    route: OnceLock<MatchedPath>,
    /// 0 until a credential is accepted.
    user: AtomicI64,
}

impl Trail {
    /// Notes the user a credential authenticated.
    pub fn authenticated(&self, user_id: i64) {
        self.0.user.store(user_id, Ordering::Relaxed);
    }
}

/// The request's trail, as a handler's argument (an empty one outside [`log_requests`]).
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Trail {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Trail>().cloned().unwrap_or_default())
    }
}

/// Outermost layer, in front of the Socket.IO engine as well (its polling requests and
/// websocket upgrades are logged as route `/socket.io/`).
pub async fn log_requests(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let engine = req.uri().path().starts_with("/socket.io/");
    let trail = Trail::default();
    req.extensions_mut().insert(trail.clone());
    let response = next.run(req).await;
    let route = match trail.0.route.get() {
        Some(matched) => matched.as_str(),
        None if engine => "/socket.io/",
        // The web client's files, and paths that match nothing.
        None => "*",
    };
    let user = Some(trail.0.user.load(Ordering::Relaxed)).filter(|&id| id != 0);
    let ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    tracing::info!(
        target: "missive::http",
        %method,
        route,
        status = response.status().as_u16(),
        ms,
        user,
        "request"
    );
    response
}

/// A route layer: notes the template of the route the request matched.
pub async fn record_route(req: Request, next: Next) -> Response {
    if let (Some(trail), Some(matched)) = (
        req.extensions().get::<Trail>(),
        req.extensions().get::<MatchedPath>(),
    ) {
        let _ = trail.0.route.set(matched.clone());
    }
    next.run(req).await
}
