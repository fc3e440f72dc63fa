//! Who is asking: built once per request or socket by [`App::authenticate`](super::App),
//! used by every use case above the domain (entity rows stay below it).

use crate::domain::views::{Account, AccountView, Security, UserRef};

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
    /// The epoch of the account's credentials when they were checked.
    pub credential_epoch: i64,
    /// Whether they send and see read receipts.
    pub read_receipts: bool,
    /// Their address, second factor, password.
    pub security: Security,
}

/// The grant of a Basic connection: the account's credentials at one epoch.
const BASIC_GRANT: &str = "basic:";

impl Identity {
    /// The caller behind `session_id` (`None` for Basic).
    pub(super) fn of(account: Account, session_id: Option<String>) -> Identity {
        Identity {
            user: account.user,
            is_admin: account.is_admin,
            session_id,
            created_at: account.created_at,
            log_seq: account.log_seq,
            credential_epoch: account.credential_epoch,
            read_receipts: account.read_receipts,
            security: account.security,
        }
    }

    pub fn id(&self) -> i64 {
        self.user.id
    }

    /// What a connection of this caller holds good while it lasts: its login session, or for
    /// Basic, which has none, the account's credentials at the epoch they were checked
    /// (`basic:<user>:<epoch>`). Connections are counted, kept alive, revalidated and closed
    /// by grant: ending a session or the account's credentials closes them the same way.
    pub fn grant(&self) -> String {
        match &self.session_id {
            Some(sid) => sid.clone(),
            None => format!("{BASIC_GRANT}{}:{}", self.user.id, self.credential_epoch),
        }
    }

    /// What the caller may know of their own account.
    pub fn account(&self) -> AccountView {
        AccountView {
            username: self.user.username.clone(),
            websocket_id: self.user.websocket_id.clone(),
            created_at: crate::ids::rfc3339(self.created_at),
            read_receipts: self.read_receipts,
            email: self.security.email.clone(),
            email_verified: self.security.email_verified,
            two_factor: self.security.two_factor,
            has_password: self.security.has_password,
        }
    }
}

/// The user and credential epoch of a Basic grant; `None` for a session's.
pub fn basic_grant(grant: &str) -> Option<(i64, i64)> {
    let (user, epoch) = grant.strip_prefix(BASIC_GRANT)?.split_once(':')?;
    Some((user.parse().ok()?, epoch.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn basic_grants_name_their_user_and_epoch() {
        assert_eq!(super::basic_grant("basic:42:3"), Some((42, 3)));
        assert_eq!(super::basic_grant("3f9a0c"), None);
        assert_eq!(super::basic_grant("basic:x:3"), None);
    }
}
