//! Accounts: registration, password checks, lookups.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use entity::user;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::views::Account;
use super::{DomainError, DomainResult, FieldProblem, ResultExt};
use crate::db::Database;
use crate::ids;

/// Lowercases and checks a username: 1..=32 of `[a-z0-9_]`.
pub fn normalize_username(raw: &str) -> Result<String, FieldProblem> {
    let name = raw.trim().to_lowercase();
    let valid = (1..=32).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(name)
    } else {
        Err(FieldProblem {
            field: "username",
            code: "invalid_username",
            message: "username must be 1 to 32 characters of a-z, 0-9 and _".into(),
        })
    }
}

/// Checks a new password's length: 8 to 256 characters.
pub fn check_password(password: &str) -> Result<(), FieldProblem> {
    let len = password.chars().count();
    if (8..=256).contains(&len) {
        Ok(())
    } else {
        Err(FieldProblem {
            field: "password",
            code: "invalid_password",
            message: "password must be 8 to 256 characters".into(),
        })
    }
}

/// Argon2 is CPU- and memory-bound (19 MiB a hash): more hashes at once than cores only
/// queue in memory, so they wait for a permit instead.
static HASHING: LazyLock<tokio::sync::Semaphore> = LazyLock::new(|| {
    tokio::sync::Semaphore::new(
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
    )
});

/// Hashes with argon2id on the blocking pool (it is deliberately slow).
pub async fn hash_password(password: String) -> DomainResult<String> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| DomainError::Internal(format!("hashing failed: {e}")))
    })
    .await
    .map_err(|e| DomainError::Internal(e.to_string()))?
}

/// A hash of a password nobody has, checked for unknown users so that both failures cost the same.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(b"missive-dummy-password", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
});

async fn verify_password(password: String, hash: Option<String>) -> bool {
    let Ok(_permit) = HASHING.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let real = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
        let ok = PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && real
    })
    .await
    .unwrap_or(false)
}

/// Creates a password account.
pub async fn register(db: &Database, username: &str, password: &str) -> DomainResult<Account> {
    let mut problems = Vec::new();
    let name = normalize_username(username)
        .map_err(|p| problems.push(p))
        .ok();
    if let Err(p) = check_password(password) {
        problems.push(p);
    }
    let Some(name) = name.filter(|_| problems.is_empty()) else {
        return Err(DomainError::Invalid(problems));
    };
    let hash = hash_password(password.to_owned()).await?;
    let user = db
        .write(async |txn| insert_user(txn, name, Some(hash), None, false).await)
        .await?;
    Ok(Account::from(&user))
}

/// Inserts a user row; a taken name (even under a concurrent registration) is `UsernameTaken`.
pub async fn insert_user(
    db: &impl ConnectionTrait,
    username: String,
    password_hash: Option<String>,
    key_hash: Option<String>,
    is_admin: bool,
) -> DomainResult<user::Model> {
    user::ActiveModel {
        username: Set(username),
        password_hash: Set(password_hash),
        key_hash: Set(key_hash),
        websocket_id: Set(ids::hex_id()),
        is_admin: Set(is_admin),
        created_at: Set(ids::now_micros()),
        ..Default::default()
    }
    .insert(db)
    .await
    .on_unique_violation(|| DomainError::UsernameTaken)
}

/// Longest username looked up at login: imported accounts keep the names they had (e-mail
/// addresses, accents, long names, up to the original app's 80 characters).
const MAX_LOGIN_NAME: usize = 80;

/// A name as typed at login or as a recipient, ready to look up: trimmed and lowercased, at
/// most 80 characters, or `None`. Wider than [`normalize_username`]: imported accounts keep
/// the names the original app allowed.
pub fn lookup_name(raw: &str) -> Option<String> {
    let name = raw.trim().to_lowercase();
    (1..=MAX_LOGIN_NAME)
        .contains(&name.chars().count())
        .then_some(name)
}

/// The user called `raw` as typed (see [`lookup_name`]), if any.
pub async fn find_named(db: &impl ConnectionTrait, raw: &str) -> DomainResult<Option<user::Model>> {
    match lookup_name(raw) {
        Some(name) => find_by_username(db, &name).await,
        None => Ok(None),
    }
}

/// Checks a username (any case) and password; unknown users and wrong passwords fail alike,
/// in alike time. An account imported from Flask-Messaging is checked against its werkzeug
/// hash once, and that login replaces it with an argon2id hash.
pub async fn authenticate(db: &Database, username: &str, password: &str) -> DomainResult<Account> {
    let found = find_named(&db.conn, username).await?;
    let legacy = found
        .as_ref()
        .filter(|u| u.password_hash.is_none())
        .and_then(|u| u.legacy_password_hash.clone());
    if let (Some(user), Some(legacy)) = (&found, legacy) {
        if !verify_werkzeug(password.to_owned(), legacy).await {
            // Refused at the cost of the others too: an argon2 check (below, the same work
            // for unknown names and native accounts).
            verify_password(password.to_owned(), None).await;
            return Err(DomainError::InvalidCredentials);
        }
        let upgraded = upgrade_legacy_hash(db, user, password).await?;
        return Ok(Account::from(&upgraded));
    }
    let hash = found.as_ref().and_then(|u| u.password_hash.clone());
    if verify_password(password.to_owned(), hash).await {
        found
            .as_ref()
            .map(Account::from)
            .ok_or(DomainError::InvalidCredentials)
    } else {
        // ... and a werkzeug check of the imported accounts' cost: whether a name is unknown,
        // native or imported, its refusal takes the same time (an imported one took ~250 ms
        // against ~30 ms, which told that the name exists).
        let rounds = LEGACY_ROUNDS.load(Ordering::Relaxed);
        if rounds > 0 {
            verify_werkzeug(
                password.to_owned(),
                format!("pbkdf2:sha256:{rounds}$missive-dummy${}", "0".repeat(64)),
            )
            .await;
        }
        Err(DomainError::InvalidCredentials)
    }
}

/// PBKDF2 rounds of the imported (werkzeug) hashes; 0 while none is known. A refusal of an
/// unknown name or a native account spends this much PBKDF2 work too.
static LEGACY_ROUNDS: AtomicU32 = AtomicU32::new(0);

/// Learns the rounds of the imported hashes still in the database (at start-up).
pub async fn learn_legacy_rounds(db: &impl ConnectionTrait) -> DomainResult<()> {
    use sea_orm::QuerySelect;
    let hash: Option<Option<String>> = user::Entity::find()
        .select_only()
        .column(user::Column::LegacyPasswordHash)
        .filter(user::Column::LegacyPasswordHash.is_not_null())
        .into_tuple()
        .one(db)
        .await?;
    if let Some(Some(hash)) = hash {
        note_legacy_rounds(&hash);
    }
    Ok(())
}

fn note_legacy_rounds(hash: &str) {
    let rounds = hash
        .strip_prefix("pbkdf2:sha256:")
        .and_then(|rest| rest.split('$').next())
        .and_then(|r| r.parse::<u32>().ok())
        .filter(|r| (1..=2_000_000).contains(r));
    if let Some(rounds) = rounds {
        LEGACY_ROUNDS.fetch_max(rounds, Ordering::Relaxed);
    }
}

/// Replaces an imported account's werkzeug hash by an argon2id hash of the same password.
async fn upgrade_legacy_hash(
    db: &Database,
    user: &user::Model,
    password: &str,
) -> DomainResult<user::Model> {
    let hash = hash_password(password.to_owned()).await?;
    let mut active: user::ActiveModel = user.clone().into();
    active.password_hash = Set(Some(hash));
    active.legacy_password_hash = Set(None);
    let upgraded = db
        .write(async |txn| Ok::<_, DomainError>(active.update(txn).await?))
        .await?;
    tracing::info!(username = %upgraded.username, "upgraded an imported password hash");
    Ok(upgraded)
}

/// Checks `password` against a werkzeug `pbkdf2:sha256:<rounds>$<salt>$<hex digest>` string
/// (digest = PBKDF2-HMAC-SHA256 of the password, the salt's text as salt), on the blocking
/// pool like argon2. Anything else is refused.
async fn verify_werkzeug(password: String, hash: String) -> bool {
    note_legacy_rounds(&hash);
    let Ok(_permit) = HASHING.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || werkzeug_matches(&password, &hash))
        .await
        .unwrap_or(false)
}

fn werkzeug_matches(password: &str, hash: &str) -> bool {
    let Some(rest) = hash.strip_prefix("pbkdf2:sha256:") else {
        return false;
    };
    let mut parts = rest.splitn(3, '$');
    let (Some(rounds), Some(salt), Some(digest)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    // Rounds beyond any werkzeug release's would only let a crafted row burn the CPU.
    let Ok(rounds) = rounds.parse::<u32>() else {
        return false;
    };
    if !(1..=2_000_000).contains(&rounds) || digest.len() != 64 {
        return false;
    }
    let mut derived = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), rounds, &mut derived);
    let derived = ids::hex(&derived);
    derived.len() == digest.len()
        && derived
            .bytes()
            .zip(digest.to_ascii_lowercase().bytes())
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0
}

pub async fn find_by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> DomainResult<Option<user::Model>> {
    // A deleted account is no one: its name is only reserved.
    Ok(user::Entity::find()
        .filter(user::Column::Username.eq(username.to_lowercase()))
        .filter(user::Column::DeletedAt.is_null())
        .one(db)
        .await?)
}

/// The account named `username` (any case).
pub async fn find_account(
    db: &impl ConnectionTrait,
    username: &str,
) -> DomainResult<Option<Account>> {
    Ok(find_by_username(db, username)
        .await?
        .as_ref()
        .map(Account::from))
}

pub async fn find_by_id(db: &impl ConnectionTrait, id: i64) -> DomainResult<Option<user::Model>> {
    Ok(user::Entity::find_by_id(id).one(db).await?)
}

/// Which of `user_ids` are admins now.
pub async fn admins_among(db: &impl ConnectionTrait, user_ids: &[i64]) -> DomainResult<Vec<i64>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    use sea_orm::QuerySelect;
    Ok(user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::Id.is_in(user_ids.to_vec()))
        .filter(user::Column::IsAdmin.eq(true))
        .into_tuple()
        .all(db)
        .await?)
}

/// Sets a new password (the operator's `missive user password`): replaces any imported hash
/// and ends every session of the account. Returns the account's name.
pub async fn set_password(db: &Database, username: &str, password: &str) -> DomainResult<String> {
    check_password(password).map_err(|p| DomainError::Invalid(vec![p]))?;
    let name = lookup_name(username).ok_or(DomainError::NotFound)?;
    let user = find_by_username(&db.conn, &name)
        .await?
        .ok_or(DomainError::NotFound)?;
    let hash = hash_password(password.to_owned()).await?;
    let mut active: user::ActiveModel = user.into();
    active.password_hash = Set(Some(hash));
    active.legacy_password_hash = Set(None);
    db.write(async |txn| {
        let user = active.update(txn).await?;
        end_credentials(txn, user.id).await?;
        Ok::<_, DomainError>(user.username)
    })
    .await
}

/// Ends everything the account's credentials granted, in the caller's transaction: every
/// session, and every connection that authenticated with Basic (their epoch moves; each node
/// closes its connections of an older one when it revalidates). A new password calls this; so
/// will a disabled account or a reset. Returns the ended sessions' ids, to close their
/// connections at once.
pub async fn end_credentials(db: &impl ConnectionTrait, user_id: i64) -> DomainResult<Vec<String>> {
    end_credentials_but(db, user_id, None).await
}

/// [`end_credentials`], but the session `keep` (the one asking, after a password change) stays.
pub async fn end_credentials_but(
    db: &impl ConnectionTrait,
    user_id: i64,
    keep: Option<&str>,
) -> DomainResult<Vec<String>> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    user::Entity::update_many()
        .col_expr(
            user::Column::CredentialEpoch,
            Expr::col(user::Column::CredentialEpoch).add(1),
        )
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    super::sessions::revoke_others(db, user_id, keep).await
}

/// The credential epoch of each of `user_ids` that exists.
pub async fn credential_epochs(
    db: &impl ConnectionTrait,
    user_ids: &[i64],
) -> DomainResult<std::collections::HashMap<i64, i64>> {
    use sea_orm::QuerySelect;
    let mut epochs = std::collections::HashMap::with_capacity(user_ids.len());
    for chunk in user_ids.chunks(500) {
        let rows: Vec<(i64, i64)> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::CredentialEpoch)
            .filter(user::Column::Id.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        epochs.extend(rows);
    }
    Ok(epochs)
}

/// Accounts by name (deleted ones left out), after `after`, at most `limit`; and the name the
/// next page starts after.
pub async fn list(
    db: &impl ConnectionTrait,
    after: Option<&str>,
    limit: u64,
) -> DomainResult<(Vec<user::Model>, Option<String>)> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = user::Entity::find().filter(user::Column::DeletedAt.is_null());
    if let Some(after) = after {
        query = query.filter(user::Column::Username.gt(after.to_lowercase()));
    }
    let mut rows = query
        .order_by_asc(user::Column::Username)
        .limit(limit + 1)
        .all(db)
        .await?;
    let next = if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|u| u.username.clone())
    } else {
        None
    };
    Ok((rows, next))
}

/// Grants or removes the admin role.
pub async fn set_admin(
    db: &impl ConnectionTrait,
    username: &str,
    admin: bool,
) -> DomainResult<user::Model> {
    let user = find_by_username(db, username)
        .await?
        .ok_or(DomainError::NotFound)?;
    let mut active: user::ActiveModel = user.into();
    active.is_admin = Set(admin);
    Ok(active.update(db).await?)
}

/// Turns the user's read receipts on or off (off: their reads send none, and they see none).
pub async fn set_read_receipts(
    db: &impl ConnectionTrait,
    user_id: i64,
    on: bool,
) -> DomainResult<()> {
    user::Entity::update_many()
        .col_expr(user::Column::ReadReceipts, on.into())
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with Python's `hashlib.pbkdf2_hmac`, as werkzeug does.
    const JOSE: &str = "pbkdf2:sha256:150000$s4ltS4lt$84fbb972ca6e1b9eeb964646afe8d0c61374b64021fc579d1d9d87b2c394c280";

    #[test]
    fn werkzeug_hashes_are_checked_as_werkzeug_made_them() {
        assert!(werkzeug_matches("password-jos\u{e9}7", JOSE));
        assert!(!werkzeug_matches("password-jose7", JOSE));
        assert!(!werkzeug_matches(
            "password-jos\u{e9}7",
            &JOSE.replace("150000", "150001")
        ));
        assert!(!werkzeug_matches("x", "pbkdf2:sha1:1000$a$b"));
        assert!(!werkzeug_matches("x", "pbkdf2:sha256:99999999$a$00"));
        assert!(!werkzeug_matches(
            "x",
            "$argon2id$v=19$m=19456,t=2,p=1$abc$def"
        ));
    }
}
