//! The domain: rules and queries, one transaction per operation. The service layer calls
//! these; nothing here knows a transport or emits an event.

pub mod account_security;
pub mod accounts;
pub mod event_log;
pub mod events;
pub mod import;
pub mod messaging;
pub mod notifications;
pub mod outbox;
pub mod piratchat;
pub mod presence;
pub mod search;
pub mod security_log;
pub mod seed;
pub mod sessions;
pub mod views;

use sea_orm::{DbErr, SqlErr};

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

/// What a domain operation can refuse, independent of the transport that asked.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{}", .0.first().map(|p| p.message.as_str()).unwrap_or("invalid input"))]
    Invalid(Vec<FieldProblem>),
    #[error("not found")]
    NotFound,
    #[error("that username is already taken")]
    UsernameTaken,
    #[error("invalid username or password")]
    InvalidCredentials,
    /// Credentials that are right but not enough, or for an account that may not use them
    /// (`code_required`, `account_disabled`): 401.
    #[error("{1}")]
    Refused(&'static str, String),
    /// The request conflicts with what the thing is (`direct_thread`, `group_full`, ...).
    #[error("{1}")]
    Conflict(&'static str, String),
    /// A request that cannot be carried out as asked (`invalid_query`): 400.
    #[error("{1}")]
    BadRequest(&'static str, String),
    /// A member asked for what only another may do (removing someone, for one who is not the
    /// group's creator).
    #[error("{0}")]
    NotAllowed(String),
    /// The database cannot be reached (down, restarting, connections cut): nothing was
    /// written, and the same request succeeds once it is back.
    #[error("the database is unavailable, retry shortly")]
    Unavailable,
    #[error("database error: {0}")]
    Db(DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// A single-field validation failure.
    pub fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        DomainError::Invalid(vec![FieldProblem {
            field,
            code,
            message: message.into(),
        }])
    }

    /// The stable machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Invalid(problems) => problems
                .first()
                .map(|p| p.code)
                .unwrap_or("invalid_payload"),
            DomainError::NotFound => "not_found",
            DomainError::UsernameTaken => "username_taken",
            DomainError::InvalidCredentials => "invalid_credentials",
            DomainError::Conflict(code, _)
            | DomainError::BadRequest(code, _)
            | DomainError::Refused(code, _) => code,
            DomainError::NotAllowed(_) => "not_allowed",
            DomainError::Unavailable => "unavailable",
            DomainError::Db(_) | DomainError::Internal(_) => "internal",
        }
    }
}

pub type DomainResult<T> = Result<T, DomainError>;

impl From<DbErr> for DomainError {
    fn from(e: DbErr) -> Self {
        if is_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable");
            DomainError::Unavailable
        } else {
            DomainError::Db(e)
        }
    }
}

/// Whether `e` says the database could not be reached, rather than that a statement failed:
/// no connection to be had, a connection lost or cut by the server, PostgreSQL shutting down
/// or starting.
fn is_unavailable(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    let runtime = match e {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(r) | DbErr::Exec(r) | DbErr::Query(r) => r,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return matches!(e, DbErr::Conn(_));
    };
    match sqlx.as_ref() {
        Sqlx::Io(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed
        | Sqlx::Protocol(_) => true,
        // Connection exceptions (class 08) and the server shutting down or starting (57P0x).
        Sqlx::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
        _ => matches!(e, DbErr::Conn(_)),
    }
}

/// Turns a unique-index violation into a domain error instead of matching on message strings.
pub trait ResultExt<T> {
    fn on_unique_violation(self, error: impl FnOnce() -> DomainError) -> DomainResult<T>;
}

impl<T> ResultExt<T> for Result<T, DbErr> {
    fn on_unique_violation(self, error: impl FnOnce() -> DomainError) -> DomainResult<T> {
        self.map_err(|e| match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => error(),
            _ => DomainError::Db(e),
        })
    }
}
