//! What protects an account beyond its password: an e-mail address proven by a mailed link,
//! one-time password-reset links, a second factor (TOTP, RFC 6238, and recovery codes), and
//! what operators and users do to whole accounts (disable, delete).
//!
//! Mailed tokens and recovery codes are stored as their SHA-256 only; using one deletes it.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entity::{account_token, block, push_subscription, recovery_code, thread, user};
use rand::{Rng, RngCore};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use super::events::AccountChanged;
use super::outbox::Outbox;
use super::views::UserRef;
use super::{DomainError, DomainResult, accounts};
use crate::db::Database;
use crate::ids;

/// How long an e-mail verification link works.
pub const VERIFY_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// How long a password-reset link works.
pub const RESET_VALIDITY: Duration = Duration::from_secs(30 * 60);
/// Recovery codes made at a time.
pub const RECOVERY_CODES: usize = 10;

/// What a mailed token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    Reset,
}

impl Purpose {
    fn stored(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::Reset => "reset",
        }
    }

    fn validity(self) -> Duration {
        match self {
            Purpose::VerifyEmail => VERIFY_VALIDITY,
            Purpose::Reset => RESET_VALIDITY,
        }
    }
}

/// SHA-256 (hex) of a token or code: what is stored of it.
fn digest(secret: &str) -> String {
    ids::hex(&Sha256::digest(secret.as_bytes()))
}

fn invalid_token() -> DomainError {
    DomainError::BadRequest(
        "invalid_token",
        "this link is not valid: it was used, it expired, or it never existed".into(),
    )
}

/// The account's password is needed and it has none (made with a Piratchat key).
pub fn no_password() -> DomainError {
    DomainError::Conflict(
        "no_password",
        "this account has no password (it logs in with a key)".into(),
    )
}

/// Makes a one-time token for `user_id` (the previous one of the same purpose stops working);
/// returns it, to be mailed: only its hash is kept.
pub async fn issue_token(
    db: &impl ConnectionTrait,
    user_id: i64,
    purpose: Purpose,
    email: Option<String>,
) -> DomainResult<String> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let now = ids::now_micros();
    // Two at once for one account: the row lock makes one wait, so that one link stays.
    user::Entity::update_many()
        .col_expr(user::Column::Id, Expr::col(user::Column::Id))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    account_token::Entity::delete_many()
        .filter(account_token::Column::UserId.eq(user_id))
        .filter(
            account_token::Column::Purpose
                .eq(purpose.stored())
                .or(account_token::Column::ExpiresAt.lte(now)),
        )
        .exec(db)
        .await?;
    account_token::ActiveModel {
        token_hash: Set(digest(&token)),
        user_id: Set(user_id),
        purpose: Set(purpose.stored().to_owned()),
        email: Set(email),
        expires_at: Set(now + ids::duration_micros(purpose.validity())),
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// Uses up `token`: its row, if it is a live one of `purpose`; else `invalid_token`. Two uses
/// at once: one wins.
async fn take_token(
    db: &impl ConnectionTrait,
    token: &str,
    purpose: Purpose,
) -> DomainResult<account_token::Model> {
    if token.is_empty() || token.len() > 100 {
        return Err(invalid_token());
    }
    let hash = digest(token);
    let row = account_token::Entity::find_by_id(hash.clone())
        .one(db)
        .await?
        .filter(|t| t.purpose == purpose.stored() && t.expires_at > ids::now_micros())
        .ok_or_else(invalid_token)?;
    let taken = account_token::Entity::delete_by_id(hash).exec(db).await?;
    if taken.rows_affected != 1 {
        return Err(invalid_token());
    }
    Ok(row)
}

/// An e-mail address as stored: trimmed, lowercase, `local@domain`, at most 254 characters.
pub fn normalize_email(raw: &str) -> DomainResult<String> {
    let email = raw.trim().to_lowercase();
    let bad = || DomainError::invalid("email", "invalid_email", "that is not an e-mail address");
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let local_ok = (1..=64).contains(&local.len())
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "@<>()[]\\,;:\"".contains(c));
    let domain_ok = (1..=253).contains(&domain.len())
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if email.chars().count() <= 254 && local_ok && domain_ok {
        Ok(email)
    } else {
        Err(bad())
    }
}

/// Sets (or, with `None`, removes) the account's address, unverified until its link is
/// used; the user's tabs hear `account:changed`. Returns the verification token to mail.
pub async fn set_email(
    db: &Database,
    outbox: &Outbox,
    user: &UserRef,
    email: Option<String>,
) -> DomainResult<Option<String>> {
    let mut write = outbox.begin(db).await?;
    let txn = write.txn();
    user::Entity::update_many()
        .col_expr(user::Column::Email, email.clone().into())
        .col_expr(user::Column::EmailVerified, false.into())
        .filter(user::Column::Id.eq(user.id))
        .exec(txn)
        .await?;
    let token = match &email {
        Some(email) => {
            Some(issue_token(txn, user.id, Purpose::VerifyEmail, Some(email.clone())).await?)
        }
        None => {
            account_token::Entity::delete_many()
                .filter(account_token::Column::UserId.eq(user.id))
                .exec(txn)
                .await?;
            None
        }
    };
    write.tell(user, AccountChanged::EMAIL);
    write.commit().await?;
    Ok(token)
}

/// Uses a verification link: the address it was mailed to is the account's, verified (it
/// stops being any other account's). Returns the account.
pub async fn verify_email(
    db: &Database,
    outbox: &Outbox,
    token: &str,
) -> DomainResult<user::Model> {
    let mut write = outbox.begin(db).await?;
    let txn = write.txn();
    let row = take_token(txn, token, Purpose::VerifyEmail).await?;
    let account = accounts::find_by_id(txn, row.user_id)
        .await?
        .filter(|u| u.deleted_at.is_none() && u.email.is_some() && u.email == row.email)
        .ok_or_else(invalid_token)?;
    // The mailbox's owner proved it now: an older account's claim on it ends.
    user::Entity::update_many()
        .col_expr(user::Column::EmailVerified, false.into())
        .filter(user::Column::Email.eq(row.email.clone()))
        .filter(user::Column::Id.ne(account.id))
        .exec(txn)
        .await?;
    let mut active: user::ActiveModel = account.into();
    active.email_verified = Set(true);
    let account = active.update(txn).await?;
    write.tell(&UserRef::from(&account), AccountChanged::EMAIL);
    write.commit().await?;
    Ok(account)
}

/// Who a password reset for `login` (a username, or a verified address) would be mailed to:
/// an account with a verified address, neither disabled nor deleted.
pub async fn reset_candidate(
    db: &impl ConnectionTrait,
    login: &str,
) -> DomainResult<Option<user::Model>> {
    let found = if login.contains('@') {
        match normalize_email(login) {
            Ok(email) => {
                user::Entity::find()
                    .filter(user::Column::Email.eq(email))
                    .filter(user::Column::EmailVerified.eq(true))
                    .one(db)
                    .await?
            }
            Err(_) => None,
        }
    } else {
        accounts::find_named(db, login).await?
    };
    Ok(found
        .filter(|u| u.email_verified && u.email.is_some() && !u.disabled && u.deleted_at.is_none()))
}

/// Uses a reset link: the new password replaces the old and every session and Basic
/// connection of the account ends. Returns the account and its ended sessions.
pub async fn reset_password(
    db: &Database,
    token: &str,
    new_password: &str,
) -> DomainResult<(user::Model, Vec<String>)> {
    accounts::check_password(new_password).map_err(|mut p| {
        p.field = "new_password";
        DomainError::Invalid(vec![p])
    })?;
    let hash = accounts::hash_password(new_password.to_owned()).await?;
    db.write(async |txn| {
        let row = take_token(txn, token, Purpose::Reset).await?;
        let account = accounts::find_by_id(txn, row.user_id)
            .await?
            .filter(|u| u.deleted_at.is_none() && !u.disabled)
            .ok_or_else(invalid_token)?;
        account_token::Entity::delete_many()
            .filter(account_token::Column::UserId.eq(account.id))
            .filter(account_token::Column::Purpose.eq(Purpose::Reset.stored()))
            .exec(txn)
            .await?;
        let mut active: user::ActiveModel = account.into();
        active.password_hash = Set(Some(hash));
        active.legacy_password_hash = Set(None);
        let account = active.update(txn).await?;
        let ended = accounts::end_credentials(txn, account.id).await?;
        Ok::<_, DomainError>((account, ended))
    })
    .await
}

/// Sets a new password for a signed-in user who gave the current one: every other session and
/// every Basic connection ends, `keep` stays. Returns the ended sessions.
pub async fn change_password(
    db: &Database,
    outbox: &Outbox,
    user: &UserRef,
    new_password: &str,
    keep: Option<&str>,
) -> DomainResult<Vec<String>> {
    accounts::check_password(new_password).map_err(|mut p| {
        p.field = "new_password";
        DomainError::Invalid(vec![p])
    })?;
    let hash = accounts::hash_password(new_password.to_owned()).await?;
    let mut write = outbox.begin(db).await?;
    let txn = write.txn();
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Some(hash).into())
        .col_expr(
            user::Column::LegacyPasswordHash,
            Option::<String>::None.into(),
        )
        .filter(user::Column::Id.eq(user.id))
        .exec(txn)
        .await?;
    let ended = accounts::end_credentials_but(txn, user.id, keep).await?;
    write.tell(user, AccountChanged::PASSWORD);
    write.commit().await?;
    Ok(ended)
}

// ---- two-factor

/// TOTP as authenticator apps do it by default: SHA-1, 6 digits, 30 s steps; the steps
/// before and after count too (clocks drift).
fn totp(secret: &str) -> DomainResult<totp_rs::Totp> {
    let secret = totp_rs::Secret::try_from_base32(secret)
        .map_err(|e| DomainError::Internal(format!("stored TOTP secret: {e}")))?;
    Ok(totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .build_noncompliant())
}

/// The time step of `code` for `secret` now, if it is right.
fn totp_step(secret: &str, code: &str) -> DomainResult<Option<i64>> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    Ok(totp(secret)?.check(code, now).map(|s| s as i64))
}

/// A new secret: 160 random bits, base32 without padding.
fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    totp_rs::Secret::from(bytes).to_base32()
}

/// The `otpauth://` URI authenticator apps scan (Key Uri Format).
pub fn otpauth_uri(secret: &str, username: &str) -> String {
    let label: String = url::form_urlencoded::byte_serialize(username.as_bytes()).collect();
    format!(
        "otpauth://totp/Missive:{label}?secret={secret}&issuer=Missive&algorithm=SHA1&digits=6&period=30"
    )
}

/// Starts setting up two-factor: a new secret, pending until [`confirm_two_factor`].
pub async fn begin_two_factor(db: &impl ConnectionTrait, user_id: i64) -> DomainResult<String> {
    let account = accounts::find_by_id(db, user_id)
        .await?
        .ok_or(DomainError::NotFound)?;
    if account.totp_secret.is_some() {
        return Err(DomainError::Conflict(
            "two_factor_enabled",
            "two-factor is already on; turn it off first".into(),
        ));
    }
    let secret = new_secret();
    user::Entity::update_many()
        .col_expr(user::Column::TotpPending, Some(secret.clone()).into())
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(secret)
}

/// Turns two-factor on with the pending secret, once `code` shows the app has it; returns the
/// recovery codes (shown once).
pub async fn confirm_two_factor(
    db: &Database,
    outbox: &Outbox,
    user: &UserRef,
    code: &str,
) -> DomainResult<Vec<String>> {
    let mut write = outbox.begin(db).await?;
    let txn = write.txn();
    let account = accounts::find_by_id(txn, user.id)
        .await?
        .ok_or(DomainError::NotFound)?;
    let Some(pending) = account.totp_pending.clone() else {
        return Err(DomainError::Conflict(
            "no_two_factor_setup",
            "start setting up two-factor first".into(),
        ));
    };
    let step = totp_step(&pending, code.trim())?.ok_or(DomainError::InvalidCredentials)?;
    let mut active: user::ActiveModel = account.into();
    active.totp_secret = Set(Some(pending));
    active.totp_pending = Set(None);
    active.totp_last_step = Set(step);
    active.update(txn).await?;
    let codes = replace_recovery_codes(txn, user.id).await?;
    write.tell(user, AccountChanged::TWO_FACTOR);
    write.commit().await?;
    Ok(codes)
}

/// Whether `code` is the account's TOTP code now (each works once) or one of its unused
/// recovery codes (used up here).
pub async fn use_code(
    db: &impl ConnectionTrait,
    account: &user::Model,
    code: &str,
) -> DomainResult<bool> {
    let Some(secret) = &account.totp_secret else {
        return Ok(false);
    };
    let code = code.trim().to_lowercase();
    if let Some(step) = totp_step(secret, &code)? {
        // Only a step later than the last one used: the same code twice fails.
        let res = user::Entity::update_many()
            .col_expr(user::Column::TotpLastStep, step.into())
            .filter(user::Column::Id.eq(account.id))
            .filter(user::Column::TotpLastStep.lt(step))
            .exec(db)
            .await?;
        return Ok(res.rows_affected == 1);
    }
    if code.is_empty() || code.len() > 32 {
        return Ok(false);
    }
    let res = recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(account.id))
        .filter(recovery_code::Column::CodeHash.eq(digest(&code)))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Ten new recovery codes (`xxxxx-xxxxx`), replacing the old.
async fn replace_recovery_codes(
    db: &impl ConnectionTrait,
    user_id: i64,
) -> DomainResult<Vec<String>> {
    let codes = fresh_codes();
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    recovery_code::Entity::insert_many(codes.iter().map(|c| recovery_code::ActiveModel {
        user_id: Set(user_id),
        code_hash: Set(digest(c)),
    }))
    .exec(db)
    .await?;
    Ok(codes)
}

/// [`RECOVERY_CODES`] random codes `xxxxx-xxxxx` (31 letters and digits, none alike: 49 bits).
fn fresh_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    while codes.len() < RECOVERY_CODES {
        let mut code = String::with_capacity(11);
        for i in 0..10 {
            if i == 5 {
                code.push('-');
            }
            code.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
        }
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

/// New recovery codes for an account with two-factor on.
pub async fn new_recovery_codes(db: &Database, user_id: i64) -> DomainResult<Vec<String>> {
    db.write(async |txn| replace_recovery_codes(txn, user_id).await)
        .await
}

/// Turns two-factor off: the secret and the recovery codes are gone.
pub async fn disable_two_factor(
    db: &Database,
    outbox: &Outbox,
    user: &UserRef,
) -> DomainResult<()> {
    let mut write = outbox.begin(db).await?;
    remove_two_factor(write.txn(), user.id).await?;
    write.tell(user, AccountChanged::TWO_FACTOR);
    write.commit().await
}

/// The second factor's secret and recovery codes, gone (also an operator's
/// `missive user two-factor-off`, for a user who lost both).
pub async fn remove_two_factor(db: &impl ConnectionTrait, user_id: i64) -> DomainResult<()> {
    user::Entity::update_many()
        .col_expr(user::Column::TotpSecret, Option::<String>::None.into())
        .col_expr(user::Column::TotpPending, Option::<String>::None.into())
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

// ---- whole accounts

/// Disables or enables an account; disabling ends its sessions and Basic connections
/// (returned, to close them).
pub async fn set_disabled(
    db: &impl ConnectionTrait,
    user_id: i64,
    disabled: bool,
) -> DomainResult<Vec<String>> {
    user::Entity::update_many()
        .col_expr(user::Column::Disabled, disabled.into())
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    if disabled {
        accounts::end_credentials(db, user_id).await
    } else {
        Ok(Vec::new())
    }
}

/// Deletes an account: its credentials, sessions, subscriptions, address, second factor and
/// blocks go; the row stays, so that its name stays reserved and the messages it sent stay in
/// the others' threads (shown from a deleted user). Returns the ended sessions.
pub async fn delete_account(db: &impl ConnectionTrait, user_id: i64) -> DomainResult<Vec<String>> {
    let ended = accounts::end_credentials(db, user_id).await?;
    user::Entity::update_many()
        .col_expr(user::Column::DeletedAt, Some(ids::now_micros()).into())
        .col_expr(user::Column::PasswordHash, Option::<String>::None.into())
        .col_expr(
            user::Column::LegacyPasswordHash,
            Option::<String>::None.into(),
        )
        .col_expr(user::Column::KeyHash, Option::<String>::None.into())
        .col_expr(user::Column::Email, Option::<String>::None.into())
        .col_expr(user::Column::EmailVerified, false.into())
        .col_expr(user::Column::TotpSecret, Option::<String>::None.into())
        .col_expr(user::Column::TotpPending, Option::<String>::None.into())
        .col_expr(user::Column::IsAdmin, false.into())
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    account_token::Entity::delete_many()
        .filter(account_token::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    push_subscription::Entity::delete_many()
        .filter(push_subscription::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    block::Entity::delete_many()
        .filter(
            block::Column::BlockerId
                .eq(user_id)
                .or(block::Column::BlockedId.eq(user_id)),
        )
        .exec(db)
        .await?;
    // Every node's copy of a thread they were in names them as they were: a newer version
    // makes the next reply read the thread again.
    thread::Entity::update_many()
        .col_expr(
            thread::Column::Version,
            Expr::col(thread::Column::Version).add(1),
        )
        .filter(
            thread::Column::Id.in_subquery(
                Query::select()
                    .column(entity::participant::Column::ThreadId)
                    .from(entity::participant::Entity)
                    .and_where(Expr::col(entity::participant::Column::UserId).eq(user_id))
                    .to_owned(),
            ),
        )
        .exec(db)
        .await?;
    Ok(ended)
}
