//! Accounts: registration, password checks, lookups.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use entity::user;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

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

fn check_password(password: &str) -> Result<(), FieldProblem> {
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
pub async fn register(db: &Database, username: &str, password: &str) -> DomainResult<user::Model> {
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
    db.write(async |txn| insert_user(txn, name, Some(hash), None, false).await)
        .await
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

/// Checks a username and password; unknown users and wrong passwords fail alike, in alike time.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    username: &str,
    password: &str,
) -> DomainResult<user::Model> {
    let name = username.trim().to_lowercase();
    let found = if normalize_username(&name).is_ok() {
        find_by_username(db, &name).await?
    } else {
        None
    };
    let hash = found.as_ref().and_then(|u| u.password_hash.clone());
    if verify_password(password.to_owned(), hash).await {
        found.ok_or(DomainError::InvalidCredentials)
    } else {
        Err(DomainError::InvalidCredentials)
    }
}

pub async fn find_by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> DomainResult<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Username.eq(username.to_lowercase()))
        .one(db)
        .await?)
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
