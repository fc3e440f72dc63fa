//! The service's error: what the domain refused, or what the service itself refused (who is
//! asking, from where, how often). Each transport maps it once.

use std::time::Duration;

use crate::domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// No credential, or one that did not check out.
    #[error("authentication required")]
    Unauthorized,
    /// A credential the browser attaches by itself, from a page of a foreign Origin.
    #[error("credentials are not accepted from this Origin")]
    ForbiddenOrigin,
    /// A limit was reached; retry after the wait.
    #[error("too many requests, slow down")]
    RateLimited(Duration),
    /// Mail is not configured: nothing can be mailed.
    #[error("this server sends no mail; ask its operator (`missive user password`)")]
    MailUnavailable,
}

impl ServiceError {
    /// The stable machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Domain(e) => e.code(),
            ServiceError::Unauthorized => "unauthorized",
            ServiceError::ForbiddenOrigin => "forbidden_origin",
            ServiceError::RateLimited(_) => "rate_limited",
            ServiceError::MailUnavailable => "mail_unavailable",
        }
    }
}

impl From<sea_orm::DbErr> for ServiceError {
    fn from(e: sea_orm::DbErr) -> Self {
        ServiceError::Domain(e.into())
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
