//! Presence announcements: the users who share a thread with someone hear that they came
//! online or went offline. Who is online is the service's to count; this tells it.

use super::events::{Notice, Presence};
use super::outbox::Outbox;
use super::views::UserRef;
use super::{DomainError, DomainResult, accounts, messaging};
use crate::db::Database;

/// Tells the correspondents of the user `user_id` that they came or went.
pub async fn announce_user(
    db: &Database,
    outbox: &Outbox,
    user_id: i64,
    online: bool,
) -> DomainResult<()> {
    let user = accounts::find_by_id(&db.conn, user_id)
        .await?
        .ok_or(DomainError::NotFound)?;
    announce(db, outbox, &UserRef::from(&user), online).await
}

/// Tells the users who share a thread with `user` that they came or went. Not logged:
/// presence is state, and a recovering socket is sent the current one.
pub async fn announce(
    db: &Database,
    outbox: &Outbox,
    user: &UserRef,
    online: bool,
) -> DomainResult<()> {
    let watchers = messaging::correspondents(&db.conn, user.id, messaging::Seen::Of).await?;
    if watchers.is_empty() {
        return Ok(());
    }
    let event = Presence {
        username: user.username.clone(),
        online,
    };
    let notices = watchers
        .iter()
        .map(|w| Notice::new(w, event.clone()))
        .collect();
    outbox.announce(notices).await
}
