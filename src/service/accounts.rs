//! Accounts and sessions: registration, login and logout, for password accounts and
//! Piratchat's key accounts alike.

use crate::domain::views::Account;
use std::net::IpAddr;

use super::identity::basic_grant;
use super::{App, Identity, ServiceError, ServiceResult};
use crate::domain::events::{EndReason, SessionEnded};
use crate::domain::security_log::{Kind, Place};
use crate::domain::views::AccountView;
use crate::domain::{DomainError, accounts, piratchat, sessions};
use crate::metrics::Metrics;

/// A new session: the account and its token.
pub struct LoggedIn {
    pub account: AccountView,
    pub token: String,
}

impl App {
    /// Creates a password account.
    pub async fn register(
        &self,
        client: IpAddr,
        username: &str,
        password: &str,
    ) -> ServiceResult<AccountView> {
        self.limits.check_registration(client)?;
        let user = accounts::register(&self.db, username, password).await?;
        tracing::info!(username = %user.user.username, "registered");
        Ok(AccountView::from(&user))
    }

    /// Checks a password (and with two-factor on, a code) within the login limits and opens
    /// a session; each attempt on an account goes to its security log.
    pub async fn login(
        &self,
        client: IpAddr,
        place: &Place,
        username: &str,
        password: &str,
        code: Option<&str>,
    ) -> ServiceResult<LoggedIn> {
        let user = match self.check_password(client, username, password).await {
            Ok(user) => user,
            Err(e) => {
                if matches!(e, ServiceError::Domain(DomainError::InvalidCredentials)) {
                    self.log_failed_login(username, place);
                }
                return Err(e);
            }
        };
        refuse_disabled(&user)?;
        if user.security.two_factor {
            let code = code
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(super::account_security::code_required)?;
            self.confirm_code(user.user.id, &user.user.username, client, place, code)
                .await?;
        }
        let token = self.open_session(&user, place).await?;
        self.log_security(user.user.id, Kind::Login, place).await;
        tracing::info!(username = %user.user.username, "logged in");
        Ok(LoggedIn {
            account: AccountView::from(&user),
            token,
        })
    }

    /// A wrong password for `username`: its account's log says so, written after the answer
    /// (the refusal of an unknown name and of a known one take the same time).
    fn log_failed_login(&self, username: &str, place: &Place) {
        let (app, username, place) = (self.clone(), username.to_owned(), place.clone());
        tokio::spawn(async move {
            if let Ok(Some(user)) = accounts::find_named(&app.db.conn, &username).await {
                app.log_security(user.id, Kind::LoginFailed, &place).await;
            }
        });
    }

    /// Creates a Piratchat key account; returns its key (shown once, stored hashed).
    pub async fn register_key_account(
        &self,
        client: IpAddr,
        username: &str,
    ) -> ServiceResult<String> {
        self.limits.check_registration(client)?;
        let (user, key) = self
            .db
            .write(async |txn| piratchat::register(txn, username).await)
            .await?;
        tracing::info!(username = %user.user.username, "registered a key account");
        Ok(key)
    }

    /// Opens a session for the account holding `key`; an unknown key is `InvalidCredentials`.
    pub async fn login_with_key(
        &self,
        client: IpAddr,
        place: &Place,
        key: &str,
    ) -> ServiceResult<LoggedIn> {
        self.limits.check_address(client, "login")?;
        let Some(user) = piratchat::find_by_key(&self.db.conn, key).await? else {
            Metrics::inc(&self.metrics.login_failures);
            return Err(DomainError::InvalidCredentials.into());
        };
        refuse_disabled(&user)?;
        let token = self.open_session(&user, place).await?;
        self.log_security(user.user.id, Kind::Login, place).await;
        Ok(LoggedIn {
            account: AccountView::from(&user),
            token,
        })
    }

    async fn open_session(&self, account: &Account, place: &Place) -> ServiceResult<String> {
        let idle = self.config.session_idle;
        let user = &account.user;
        let session = self
            .db
            .write(async |txn| sessions::create(txn, user.id, idle, place).await)
            .await?;
        Metrics::inc(&self.metrics.logins);
        Ok(self.tokens.issue(&user.username, &session.id))
    }

    /// Ends the caller's session and disconnects its sockets (nothing to end for Basic).
    pub async fn logout(&self, who: &Identity) -> ServiceResult<()> {
        if let Some(sid) = &who.session_id {
            self.db
                .write(async |txn| sessions::revoke(txn, sid).await)
                .await?;
            self.disconnect_sessions(std::slice::from_ref(sid), Some(EndReason::Logout))
                .await;
        }
        Ok(())
    }

    /// Ends every session of the caller, on every device.
    pub async fn logout_everywhere(&self, who: &Identity) -> ServiceResult<()> {
        let ended = self
            .db
            .write(async |txn| sessions::revoke_all(txn, who.id()).await)
            .await?;
        self.disconnect_sessions(&ended, Some(EndReason::Logout))
            .await;
        Ok(())
    }

    /// Disconnects the sockets and lobby connections of ended grants (sessions, Basic
    /// credentials of an old epoch), on every node; with a `reason`, their sockets hear
    /// `session:ended` first.
    pub async fn disconnect_sessions(&self, session_ids: &[String], reason: Option<EndReason>) {
        let ended = reason.map(|reason| SessionEnded { reason });
        for sid in session_ids {
            self.notifier.disconnect_session(sid, ended.as_ref()).await;
            self.lobby.close_session(sid);
        }
    }

    /// Deletes idle-expired sessions and disconnects what they had open.
    pub async fn sweep_sessions(&self) {
        match self
            .db
            .write(async |txn| sessions::sweep_expired(txn).await)
            .await
        {
            Ok(expired) if !expired.is_empty() => {
                tracing::info!(count = expired.len(), "expired idle sessions");
                self.disconnect_sessions(&expired, None).await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "session sweep failed"),
        }
    }

    /// Keeps alive the sessions that have a socket or lobby connection open on this node: an
    /// open tab is activity.
    pub async fn keep_sessions_alive(&self) {
        let now = crate::ids::now_micros();
        let mut open = self.presence.sessions_with_sockets();
        open.extend(self.lobby.sessions());
        open.retain(|grant| basic_grant(grant).is_none());
        open.sort();
        open.dedup();
        let idle = self.config.session_idle;
        let touched = self
            .db
            .write(async |txn| sessions::touch(txn, &open, now, idle).await)
            .await;
        if let Err(e) = touched {
            tracing::warn!(error = %e, "session keep-alive failed");
        }
    }

    /// Closes the sockets and lobby connections of this node whose grant ended: a session
    /// ended (logout on another node whose disconnect message was lost, a row deleted by hand,
    /// expiry), or the account's credentials did (`missive user password`, run in another
    /// process, for a Basic connection). Each node checks its own every few seconds, whatever
    /// reached it or not: the one mechanism by which ended credentials close connections.
    pub async fn revalidate_sessions(&self) {
        let mut open = self.presence.sessions_with_sockets();
        open.extend(self.lobby.sessions());
        open.sort();
        open.dedup();
        if open.is_empty() {
            return;
        }
        let (basic, sessions): (Vec<String>, Vec<String>) =
            open.into_iter().partition(|g| basic_grant(g).is_some());
        let mut ended = Vec::new();
        if !sessions.is_empty() {
            match sessions::live_among(&self.db.conn, &sessions).await {
                Ok(live) => {
                    let live: std::collections::HashSet<String> = live.into_iter().collect();
                    ended.extend(sessions.into_iter().filter(|s| !live.contains(s)));
                }
                Err(e) => tracing::warn!(error = %e, "session revalidation failed"),
            }
        }
        if !basic.is_empty() {
            let users: Vec<i64> = basic
                .iter()
                .filter_map(|g| basic_grant(g))
                .map(|(u, _)| u)
                .collect();
            match accounts::credential_epochs(&self.db.conn, &users).await {
                Ok(epochs) => ended.extend(basic.into_iter().filter(|g| {
                    basic_grant(g).is_some_and(|(user, epoch)| epochs.get(&user) != Some(&epoch))
                })),
                Err(e) => tracing::warn!(error = %e, "credential revalidation failed"),
            }
        }
        if !ended.is_empty() {
            tracing::info!(count = ended.len(), "closing connections whose grant ended");
            self.disconnect_sessions(&ended, None).await;
        }
    }

    /// Turns the caller's read receipts on or off; their account as it is after.
    pub async fn set_read_receipts(&self, who: &Identity, on: bool) -> ServiceResult<AccountView> {
        self.db
            .write(async |txn| accounts::set_read_receipts(txn, who.id(), on).await)
            .await?;
        let mut view = who.account();
        view.read_receipts = on;
        Ok(view)
    }

    /// A user's name as stored, and whether they are online anywhere.
    pub async fn user_status(&self, username: &str) -> ServiceResult<(String, bool)> {
        let account = accounts::find_account(&self.db.conn, username)
            .await?
            .ok_or(DomainError::NotFound)?;
        // What the correspondents were told (a user within the grace period is still online).
        let online = self.presence.shown_among(&[account.user.id]).await[0];
        Ok((account.user.username, online))
    }
}

/// A disabled account may not log in: said only after its credentials were right.
pub(super) fn refuse_disabled(account: &Account) -> ServiceResult<()> {
    if account.security.disabled {
        return Err(DomainError::Refused(
            "account_disabled",
            "this account is disabled; ask the server's operator".into(),
        )
        .into());
    }
    Ok(())
}
