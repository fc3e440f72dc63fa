//! What an import remembers of each original row (`import_rows`): a digest of the fields
//! the original app never changes, the flags it does change, and a user's password hash
//! (hashed again), so that an update can tell what changed on either side since.

use entity::import_row;
use sha2::{Digest, Sha256};

use super::source::{SourceMessage, SourceUser};
use crate::ids;

pub const USER: i16 = 0;
pub const MESSAGE: i16 = 1;
pub const PLACEHOLDER: i16 = 2;

/// A message's `read`, `sender_del` and `recipient_del` (NULL: false).
pub const READ: i32 = 1;
pub const SENDER_DEL: i32 = 2;
pub const RECIPIENT_DEL: i32 = 4;

fn digest<'a>(fields: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut hash = Sha256::new();
    for field in fields {
        match field {
            None => hash.update([0u8]),
            Some(v) => {
                hash.update([1u8]);
                hash.update((v.len() as u64).to_le_bytes());
                hash.update(v.as_bytes());
            }
        }
    }
    ids::hex(&hash.finalize()[..16])
}

pub fn user_digest(u: &SourceUser) -> String {
    digest([u.username.as_deref(), u.websocket_id.as_deref()])
}

/// SHA-256 of a password hash: whether it changed, without a second copy of it.
pub fn secret(password_hash: Option<&str>) -> Option<String> {
    password_hash.map(|h| ids::hex(&Sha256::digest(h.as_bytes())))
}

pub fn message_digest(m: &SourceMessage) -> String {
    digest([
        m.url.as_deref(),
        m.sender.as_deref(),
        m.recipient.as_deref(),
        m.subject.as_deref(),
        m.body.as_deref(),
        m.timestamp.as_deref(),
        m.thread_id.as_deref(),
    ])
}

pub fn flags(m: &SourceMessage) -> i32 {
    let set = |flag: Option<bool>, bit: i32| if flag.unwrap_or(false) { bit } else { 0 };
    set(m.read, READ) | set(m.sender_del, SENDER_DEL) | set(m.recipient_del, RECIPIENT_DEL)
}

/// The row of an original user that became account `target`.
pub fn of_user(u: &SourceUser, target: i64) -> import_row::Model {
    import_row::Model {
        origin: String::new(),
        kind: USER,
        source_id: u.id,
        target_id: target,
        digest: user_digest(u),
        flags: 0,
        secret: secret(u.password.as_deref()),
    }
}

/// The row of an original message that became message `target`.
pub fn of_message(m: &SourceMessage, target: i64) -> import_row::Model {
    import_row::Model {
        origin: String::new(),
        kind: MESSAGE,
        source_id: m.id,
        target_id: target,
        digest: message_digest(m),
        flags: flags(m),
        secret: None,
    }
}

/// A placeholder account (made for a name no user row had), which a later user row of that
/// name takes over.
pub fn of_placeholder(target: i64) -> import_row::Model {
    import_row::Model {
        origin: String::new(),
        kind: PLACEHOLDER,
        source_id: target,
        target_id: target,
        digest: String::new(),
        flags: 0,
        secret: None,
    }
}
