//! The HTTP error type: one enum, mapped once to status + JSON body.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::service::{DomainError, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    InvalidPayload(String),
    #[error("request body is larger than 1 MiB")]
    PayloadTooLarge,
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("authentication required")]
    Unauthorized { challenge: bool },
    #[error("{0}")]
    Status(StatusCode, &'static str, String),
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::Service(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut fields = BTreeMap::<&str, Vec<String>>::new();
        let (status, code) = match &self {
            ApiError::Service(ServiceError::Unauthorized) => {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            }
            ApiError::Service(ServiceError::ForbiddenOrigin) => {
                (StatusCode::FORBIDDEN, "forbidden_origin")
            }
            ApiError::Service(ServiceError::RateLimited(_)) => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            }
            ApiError::Service(ServiceError::MailUnavailable) => {
                (StatusCode::SERVICE_UNAVAILABLE, "mail_unavailable")
            }
            ApiError::Service(ServiceError::Domain(e)) => match e {
                DomainError::Invalid(problems) => {
                    for p in problems {
                        fields.entry(p.field).or_default().push(p.message.clone());
                    }
                    (StatusCode::UNPROCESSABLE_ENTITY, e.code())
                }
                DomainError::NotFound => (StatusCode::NOT_FOUND, e.code()),
                DomainError::UsernameTaken | DomainError::Conflict(..) => {
                    (StatusCode::CONFLICT, e.code())
                }
                DomainError::NotAllowed(_) => (StatusCode::FORBIDDEN, e.code()),
                DomainError::BadRequest(..) => (StatusCode::BAD_REQUEST, e.code()),
                DomainError::InvalidCredentials | DomainError::Refused(..) => {
                    (StatusCode::UNAUTHORIZED, e.code())
                }
                DomainError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, e.code()),
                DomainError::Db(_) | DomainError::Internal(_) => {
                    tracing::error!(error = %e, "request failed");
                    return error_body(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "internal server error",
                        fields,
                    );
                }
            },
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            ApiError::InvalidPayload(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_payload"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Status(status, code, _) => (*status, *code),
        };
        let mut response = error_body(status, code, &self.to_string(), fields);
        match self {
            ApiError::Service(ServiceError::Domain(DomainError::Unavailable)) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            }
            ApiError::Service(ServiceError::RateLimited(wait)) => {
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            ApiError::Unauthorized { challenge: true } => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"missive\", charset=\"UTF-8\""),
                );
            }
            _ => {}
        }
        response
    }
}

fn error_body(
    status: StatusCode,
    code: &str,
    message: &str,
    fields: BTreeMap<&str, Vec<String>>,
) -> Response {
    let mut error = json!({ "code": code, "message": message });
    if !fields.is_empty() {
        error["fields"] = json!(fields);
    }
    (status, Json(json!({ "error": error }))).into_response()
}

pub type ApiResult<T> = Result<T, ApiError>;
