//! Mutes and blocks: who hears what of whom. (Push subscriptions are in `push.rs`.)

use super::{App, Identity, ServiceResult};
use crate::domain::messaging::{self, MuteRequest};
use crate::domain::notifications;
use crate::domain::views::ThreadView;

impl App {
    /// Mutes or unmutes a thread for the caller; their tabs hear `thread:muted`.
    pub async fn mute_thread(
        &self,
        who: &Identity,
        thread_id: &str,
        request: MuteRequest,
    ) -> ServiceResult<ThreadView> {
        self.limits.check_user_event(who.id())?;
        Ok(messaging::mute(&self.db, &self.outbox, &who.user, thread_id, request).await?)
    }

    /// The caller blocks `username`.
    pub async fn block(&self, who: &Identity, username: &str) -> ServiceResult<()> {
        self.limits.check_user_event(who.id())?;
        let me = who.id();
        self.db
            .write(async |txn| notifications::block(txn, me, username).await)
            .await?;
        Ok(())
    }

    /// The caller no longer blocks `username`.
    pub async fn unblock(&self, who: &Identity, username: &str) -> ServiceResult<()> {
        self.limits.check_user_event(who.id())?;
        let me = who.id();
        self.db
            .write(async |txn| notifications::unblock(txn, me, username).await)
            .await?;
        Ok(())
    }

    /// The names the caller blocks.
    pub async fn blocked(&self, who: &Identity) -> ServiceResult<Vec<String>> {
        Ok(notifications::blocked_by(&self.db.conn, who.id()).await?)
    }

    /// The users who must not see the caller typing (they block them).
    pub async fn typing_hidden_from(&self, who: &Identity) -> ServiceResult<Vec<i64>> {
        Ok(notifications::blockers_of(&self.db.conn, who.id()).await?)
    }
}
