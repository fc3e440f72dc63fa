//! Piratchat accounts: a username and a 256-bit key, stored hashed.

use entity::user;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};

use super::views::Account;
use super::{DomainError, DomainResult, accounts};
use crate::ids;

/// Piratchat names: 1..=32 ASCII letters or digits (stored lowercase, one namespace with native names).
pub fn normalize_name(raw: &str) -> DomainResult<String> {
    let valid = (1..=32).contains(&raw.len()) && raw.chars().all(|c| c.is_ascii_alphanumeric());
    if valid {
        Ok(raw.to_ascii_lowercase())
    } else {
        Err(DomainError::invalid(
            "username",
            "invalid_username",
            "username must be 1 to 32 letters or digits",
        ))
    }
}

fn key_hash(key: &str) -> String {
    ids::hex(&Sha256::digest(key.as_bytes()))
}

/// Creates a key account; returns the user and the key (shown once, never stored in clear).
pub async fn register(
    db: &impl ConnectionTrait,
    username: &str,
) -> DomainResult<(Account, String)> {
    let name = normalize_name(username)?;
    let key = ids::random_hex::<32>();
    let user = accounts::insert_user(db, name, None, Some(key_hash(&key)), false).await?;
    Ok((Account::from(&user), key))
}

/// The account holding `key`. A SHA-256 lookup suits a 256-bit random key: there is nothing to
/// guess offline that would be cheaper than guessing the key itself.
pub async fn find_by_key(db: &impl ConnectionTrait, key: &str) -> DomainResult<Option<Account>> {
    if key.is_empty() || key.len() > 256 {
        return Ok(None);
    }
    let user = user::Entity::find()
        .filter(user::Column::KeyHash.eq(key_hash(key)))
        .one(db)
        .await?;
    Ok(user.as_ref().map(Account::from))
}
