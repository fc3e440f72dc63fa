//! Who is asking: built once per request or socket by [`App::authenticate`](super::App),
//! used by every use case above the domain (entity rows stay below it).

use crate::domain::views::{Account, AccountView, UserRef};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Id, username and `websocket_id`.
    pub user: UserRef,
    pub is_admin: bool,
    /// The session behind a token or cookie; `None` for Basic, which has none.
    pub session_id: Option<String>,
    /// When the account was created (`/me`).
    pub created_at: i64,
    /// Where the user's event log stood when they were authenticated.
    pub log_seq: i64,
}

impl Identity {
    /// The caller behind `session_id` (`None` for Basic).
    pub(super) fn of(account: Account, session_id: Option<String>) -> Identity {
        Identity {
            user: account.user,
            is_admin: account.is_admin,
            session_id,
            created_at: account.created_at,
            log_seq: account.log_seq,
        }
    }

    pub fn id(&self) -> i64 {
        self.user.id
    }

    /// What the caller may know of their own account.
    pub fn account(&self) -> AccountView {
        AccountView {
            username: self.user.username.clone(),
            websocket_id: self.user.websocket_id.clone(),
            created_at: crate::ids::rfc3339(self.created_at),
        }
    }
}
