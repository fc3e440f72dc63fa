//! Account security, as users and operators ask for it: sessions and devices, a new password,
//! an e-mail address and password resets, two-factor, the security log, leaving with one's
//! data, and disabled accounts. What a stolen session must not do on its own needs the
//! password again; each change is written to the account's security log, told to the user's
//! tabs (`account:changed`), and ends the sessions it should (`session:ended`).

use std::net::IpAddr;

use serde::Serialize;

use super::mail::Mail;
use super::{App, Identity, ServiceResult};
use crate::domain::account_security::{self as security, no_password};
use crate::domain::events::EndReason;
use crate::domain::security_log::{self, Kind, Place};
use crate::domain::views::{Account, UserRef};
use crate::domain::{DomainError, accounts, sessions};
use crate::ids;

/// One of the caller's sessions.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: String,
    /// The session asking.
    pub current: bool,
    pub created_at: String,
    pub last_seen_at: String,
    /// The device its user agent named at login ("Firefox on Linux").
    pub device: String,
    /// The network it logged in from (/24, /48).
    pub address: String,
}

/// One entry of a security log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SecurityEventView {
    /// `login`, `login_failed`, `password_changed`, `password_reset`, `session_ended`,
    /// `email_changed`, `two_factor_on`, `two_factor_off`.
    pub kind: String,
    pub at: String,
    pub address: String,
    pub device: String,
}

/// A new second factor: its secret, and the URI an authenticator app scans.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TwoFactorSetup {
    pub secret: String,
    pub otpauth_uri: String,
}

/// An account as operators list it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserSummary {
    pub username: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub two_factor: bool,
    pub created_at: String,
}

impl App {
    /// Writes `kind` to `user_id`'s security log; a failure is logged, not returned (the
    /// change it records is done).
    pub(super) async fn log_security(&self, user_id: i64, kind: Kind, place: &Place) {
        let written = self
            .db
            .write(async |txn| security_log::record(txn, user_id, kind, place).await)
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, kind = kind.as_str(), "security log write failed");
        }
    }

    /// The caller's password again, within the login limits (wrong: `invalid_credentials`);
    /// `no_password` for accounts that have none.
    async fn confirm_password(
        &self,
        who: &Identity,
        place: &Place,
        client: IpAddr,
        password: &str,
    ) -> ServiceResult<Account> {
        if !who.security.has_password {
            return Err(no_password().into());
        }
        let checked = self
            .check_password(client, &who.user.username, password)
            .await;
        if matches!(
            checked,
            Err(super::ServiceError::Domain(DomainError::InvalidCredentials))
        ) {
            self.log_security(who.id(), Kind::LoginFailed, place).await;
        }
        checked
    }

    /// A second-factor code of `username`'s account (TOTP, or a recovery code, used up), within
    /// the login limits like a password.
    pub(super) async fn confirm_code(
        &self,
        user_id: i64,
        username: &str,
        client: IpAddr,
        place: &Place,
        code: &str,
    ) -> ServiceResult<()> {
        self.limits.check_login(client, username)?;
        let account = accounts::find_by_id(&self.db.conn, user_id)
            .await?
            .ok_or(DomainError::NotFound)?;
        let used = self
            .db
            .write(async |txn| security::use_code(txn, &account, code).await)
            .await?;
        if used {
            self.limits.record_login_success(username);
            Ok(())
        } else {
            self.limits.record_login_failure();
            self.log_security(user_id, Kind::LoginFailed, place).await;
            Err(DomainError::InvalidCredentials.into())
        }
    }

    // ---- sessions

    /// The caller's live sessions, newest first.
    pub async fn sessions_of(&self, who: &Identity) -> ServiceResult<Vec<SessionView>> {
        let rows = sessions::list_of(&self.db.conn, who.id()).await?;
        Ok(rows
            .into_iter()
            .map(|s| SessionView {
                current: who.session_id.as_deref() == Some(s.id.as_str()),
                created_at: ids::rfc3339(s.created_at),
                last_seen_at: ids::rfc3339(s.last_seen_at),
                device: s.device,
                address: s.address,
                id: s.id,
            })
            .collect())
    }

    /// Ends one of the caller's sessions (404 for anyone else's).
    pub async fn end_session(&self, who: &Identity, place: &Place, sid: &str) -> ServiceResult<()> {
        let user = who.id();
        let ended = self
            .db
            .write(async |txn| sessions::revoke_of(txn, user, sid).await)
            .await?;
        if !ended {
            return Err(DomainError::NotFound.into());
        }
        let reason = if who.session_id.as_deref() == Some(sid) {
            EndReason::Logout
        } else {
            EndReason::EndedElsewhere
        };
        self.disconnect_sessions(&[sid.to_owned()], Some(reason))
            .await;
        self.log_security(user, Kind::SessionEnded, place).await;
        Ok(())
    }

    /// Ends every session of the caller but this one.
    pub async fn logout_others(&self, who: &Identity, place: &Place) -> ServiceResult<()> {
        let (user, keep) = (who.id(), who.session_id.as_deref());
        let ended = self
            .db
            .write(async |txn| sessions::revoke_others(txn, user, keep).await)
            .await?;
        self.disconnect_sessions(&ended, Some(EndReason::EndedElsewhere))
            .await;
        if !ended.is_empty() {
            self.log_security(user, Kind::SessionEnded, place).await;
        }
        Ok(())
    }

    // ---- password

    /// A new password, given the current one: every other session and Basic connection ends,
    /// this session stays; the verified address is told.
    pub async fn change_password(
        &self,
        who: &Identity,
        place: &Place,
        client: IpAddr,
        current: &str,
        new: &str,
    ) -> ServiceResult<()> {
        self.confirm_password(who, place, client, current).await?;
        let ended = security::change_password(
            &self.db,
            &self.outbox,
            &who.user,
            new,
            who.session_id.as_deref(),
        )
        .await?;
        self.disconnect_sessions(&ended, Some(EndReason::PasswordChanged))
            .await;
        self.log_security(who.id(), Kind::PasswordChanged, place)
            .await;
        self.tell_by_mail(
            who,
            "Your Missive password was changed",
            "The password of your Missive account {name} was just changed, and its other \
             sessions were signed out.\n\nIf this was not you, reset your password at once: \
             {url}/#/forgot\n",
        );
        tracing::info!(username = %who.user.username, "password changed");
        Ok(())
    }

    /// A short notice to the caller's verified address, if any.
    fn tell_by_mail(&self, who: &Identity, subject: &str, text: &str) {
        let Some(to) = who
            .security
            .email
            .clone()
            .filter(|_| who.security.email_verified)
        else {
            return;
        };
        if !self.mails.configured() {
            return;
        }
        self.mail(Mail {
            to,
            subject: subject.into(),
            text: text
                .replace("{name}", &who.user.username)
                .replace("{url}", &self.config.public_url()),
        });
    }

    // ---- e-mail

    /// Sets the caller's address (a link to verify it is mailed: `true`), or removes it.
    pub async fn set_email(
        &self,
        who: &Identity,
        place: &Place,
        client: IpAddr,
        email: Option<&str>,
        password: &str,
    ) -> ServiceResult<bool> {
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        let email = match email {
            Some(raw) => {
                self.mail_configured()?;
                Some(security::normalize_email(raw)?)
            }
            None => None,
        };
        self.confirm_password(who, place, client, password).await?;
        if let Some(to) = &email {
            self.limits.check_mail(to)?;
        }
        let token = security::set_email(&self.db, &self.outbox, &who.user, email.clone()).await?;
        self.log_security(who.id(), Kind::EmailChanged, place).await;
        let (Some(to), Some(token)) = (email, token) else {
            return Ok(false);
        };
        let link = format!("{}/#/verify-email?token={token}", self.config.public_url());
        self.mails.queue_mail(
            Mail {
                to,
                subject: "Confirm your e-mail address for Missive".into(),
                text: format!(
                    "To use this address with the Missive account {name} (for password resets), \
                 open this link within 24 hours:\n\n{link}\n\nIf you did not ask for this, \
                 ignore this mail.\n",
                    name = who.user.username,
                ),
            },
            &self.metrics,
        );
        Ok(true)
    }

    /// Uses an e-mail verification link.
    pub async fn verify_email(&self, token: &str) -> ServiceResult<()> {
        let account = security::verify_email(&self.db, &self.outbox, token).await?;
        tracing::info!(username = %account.username, "e-mail address verified");
        Ok(())
    }

    /// Asks for a reset link for `login` (a username or a verified address). The answer is
    /// the same whether it names an account or not: the lookup happens after it.
    pub async fn request_reset(&self, client: IpAddr, login: &str) -> ServiceResult<()> {
        self.mail_configured()?;
        self.limits.check_address(client, "reset")?;
        self.queue_reset(login);
        Ok(())
    }

    /// Uses a reset link: the new password, and every session of the account ends.
    pub async fn confirm_reset(&self, place: &Place, token: &str, new: &str) -> ServiceResult<()> {
        let (account, ended) = security::reset_password(&self.db, token, new).await?;
        self.disconnect_sessions(&ended, Some(EndReason::PasswordChanged))
            .await;
        self.log_security(account.id, Kind::PasswordReset, place)
            .await;
        tracing::info!(username = %account.username, "password reset");
        Ok(())
    }

    // ---- two-factor

    /// Starts setting up two-factor, given the password.
    pub async fn begin_two_factor(
        &self,
        who: &Identity,
        place: &Place,
        client: IpAddr,
        password: &str,
    ) -> ServiceResult<TwoFactorSetup> {
        self.confirm_password(who, place, client, password).await?;
        let user = who.id();
        let secret = self
            .db
            .write(async |txn| security::begin_two_factor(txn, user).await)
            .await?;
        Ok(TwoFactorSetup {
            otpauth_uri: security::otpauth_uri(&secret, &who.user.username),
            secret,
        })
    }

    /// Turns two-factor on with a first code; returns the recovery codes.
    pub async fn confirm_two_factor(
        &self,
        who: &Identity,
        place: &Place,
        client: IpAddr,
        code: &str,
    ) -> ServiceResult<Vec<String>> {
        self.limits.check_login(client, &who.user.username)?;
        let confirmed = security::confirm_two_factor(&self.db, &self.outbox, &who.user, code).await;
        match &confirmed {
            Ok(_) => self.limits.record_login_success(&who.user.username),
            Err(DomainError::InvalidCredentials) => self.limits.record_login_failure(),
            Err(_) => self.limits.record_login_success(&who.user.username),
        }
        let codes = confirmed?;
        self.log_security(who.id(), Kind::TwoFactorOn, place).await;
        self.tell_by_mail(
            who,
            "Two-factor authentication is on",
            "Logging in to your Missive account {name} now needs a code from your \
             authenticator app.\n\nIf this was not you, reset your password: {url}/#/forgot\n",
        );
        Ok(codes)
    }

    /// The password and a code, for what turns the second factor off or replaces it.
    async fn confirm_both(
        &self,
        who: &Identity,
        place: &Place,
        client: IpAddr,
        password: &str,
        code: Option<&str>,
    ) -> ServiceResult<()> {
        self.confirm_password(who, place, client, password).await?;
        if who.security.two_factor {
            let code = code
                .filter(|c| !c.trim().is_empty())
                .ok_or_else(code_required)?;
            self.confirm_code(who.id(), &who.user.username, client, place, code)
                .await?;
        }
        Ok(())
    }

    /// Turns two-factor off, given the password and a code.
    pub async fn disable_two_factor(
        &self,
        who: &Identity,
        place: &Place,
        client: IpAddr,
        password: &str,
        code: Option<&str>,
    ) -> ServiceResult<()> {
        self.confirm_both(who, place, client, password, code)
            .await?;
        security::disable_two_factor(&self.db, &self.outbox, &who.user).await?;
        self.log_security(who.id(), Kind::TwoFactorOff, place).await;
        self.tell_by_mail(
            who,
            "Two-factor authentication is off",
            "Logging in to your Missive account {name} no longer needs a code.\n\nIf this was \
             not you, reset your password: {url}/#/forgot\n",
        );
        Ok(())
    }

    /// Ten new recovery codes (the old ones stop working), given the password and a code.
    pub async fn new_recovery_codes(
        &self,
        who: &Identity,
        place: &Place,
        client: IpAddr,
        password: &str,
        code: Option<&str>,
    ) -> ServiceResult<Vec<String>> {
        if !who.security.two_factor {
            return Err(DomainError::Conflict(
                "two_factor_off",
                "two-factor is off: there are no recovery codes".into(),
            )
            .into());
        }
        self.confirm_both(who, place, client, password, code)
            .await?;
        Ok(security::new_recovery_codes(&self.db, who.id()).await?)
    }

    // ---- the security log

    /// A page of `username`'s security log (the caller's own, or anyone's for an admin).
    pub async fn security_events(
        &self,
        user_id: i64,
        before: Option<&str>,
        limit: u64,
    ) -> ServiceResult<(Vec<SecurityEventView>, Option<String>)> {
        let before = match before {
            Some(c) => Some(c.parse::<i64>().map_err(|_| {
                DomainError::BadRequest("invalid_cursor", "that cursor is not one of ours".into())
            })?),
            None => None,
        };
        let (rows, next) = security_log::page(&self.db.conn, user_id, before, limit).await?;
        let events = rows
            .into_iter()
            .map(|e| SecurityEventView {
                kind: e.kind,
                at: ids::rfc3339(e.at),
                address: e.address,
                device: e.device,
            })
            .collect();
        Ok((events, next.map(|n| n.to_string())))
    }

    /// The account called `username` (for admins), or 404.
    pub async fn named_account(&self, username: &str) -> ServiceResult<UserRef> {
        let found = accounts::find_named(&self.db.conn, username)
            .await?
            .ok_or(DomainError::NotFound)?;
        Ok(UserRef::from(&found))
    }

    // ---- leaving

    /// Checks what an export needs (the password).
    pub async fn confirm_export(
        &self,
        who: &Identity,
        place: &Place,
        client: IpAddr,
        password: &str,
    ) -> ServiceResult<()> {
        self.confirm_password(who, place, client, password).await?;
        Ok(())
    }

    /// Deletes the caller's account, given the password (and a code, with two-factor on).
    pub async fn delete_account(
        &self,
        who: &Identity,
        place: &Place,
        client: IpAddr,
        password: &str,
        code: Option<&str>,
    ) -> ServiceResult<()> {
        self.confirm_both(who, place, client, password, code)
            .await?;
        let user = who.id();
        let ended = self
            .db
            .write(async |txn| security::delete_account(txn, user).await)
            .await?;
        self.threads.forget_member(user);
        self.disconnect_sessions(&ended, Some(EndReason::Deleted))
            .await;
        tracing::info!(username = %who.user.username, "account deleted");
        Ok(())
    }

    // ---- operators

    /// Accounts by name, after `after`, at most `limit`; and the next page's start.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> ServiceResult<(Vec<UserSummary>, Option<String>)> {
        let (rows, next) = accounts::list(&self.db.conn, after, limit).await?;
        let users = rows
            .into_iter()
            .map(|u| UserSummary {
                is_admin: u.is_admin,
                disabled: u.disabled,
                two_factor: u.totp_secret.is_some(),
                created_at: ids::rfc3339(u.created_at),
                username: u.username,
            })
            .collect();
        Ok((users, next))
    }

    /// Disables or enables `username`'s account; disabling ends every session and socket of it.
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> ServiceResult<()> {
        let user = self.named_account(username).await?;
        let ended = self
            .db
            .write(async |txn| security::set_disabled(txn, user.id, disabled).await)
            .await?;
        self.disconnect_sessions(&ended, Some(EndReason::Disabled))
            .await;
        if disabled {
            self.log_security(user.id, Kind::SessionEnded, &Place::operator())
                .await;
        }
        tracing::info!(username = %user.username, disabled, "account disabled or enabled");
        Ok(())
    }

    /// Ends every session of `username` (an operator's "log out").
    pub async fn logout_user(&self, username: &str) -> ServiceResult<()> {
        let user = self.named_account(username).await?;
        let id = user.id;
        let ended = self
            .db
            .write(async |txn| sessions::revoke_all(txn, id).await)
            .await?;
        self.disconnect_sessions(&ended, Some(EndReason::EndedElsewhere))
            .await;
        if !ended.is_empty() {
            self.log_security(id, Kind::SessionEnded, &Place::operator())
                .await;
        }
        Ok(())
    }

    /// Deletes security log entries older than 90 days.
    pub async fn sweep_security_log(&self) {
        match self
            .db
            .write(async |txn| security_log::sweep(txn).await)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "old security log entries deleted"),
            Err(e) => tracing::warn!(error = %e, "security log sweep failed"),
        }
    }
}

/// A code is needed and none was given.
pub fn code_required() -> DomainError {
    DomainError::Refused(
        "code_required",
        "this account has two-factor on: give a code from the authenticator app or a recovery \
         code"
            .into(),
    )
}
