//! Messaging use cases: send, read, delete, and the lists. Every change is committed by the
//! domain and announced through the outbox, in commit order, before the caller is answered.

use tokio::sync::mpsc;

use super::{App, Identity, ServiceResult};
use crate::domain::events::{MessageDeleted, Notice, ThreadDeleted, ThreadRead};
use crate::domain::messaging::{
    self, EditLimits, React, Read, SendLimits, SendMessage, SendOutcome,
};
use crate::domain::outbox::Announcement;
use crate::domain::views::{HistoryItem, MessageView, SearchResult, ThreadView, UnreadCounts};
use crate::metrics::Metrics;

/// Announces each commit of the node, in commit order, then answers whoever waits for it: a
/// sender hears back only once the participants have been told. What would be pushed to users
/// with no socket here then goes to the pushes, never waited for.
pub(super) fn start_announcer(mut committed: mpsc::UnboundedReceiver<Announcement>, app: App) {
    tokio::spawn(async move {
        while let Some(announcement) = committed.recv().await {
            app.notifier.announce(&announcement.notices).await;
            let notices = announcement.finish();
            app.pushes.consider(&notices, &app.presence, &app.metrics);
        }
    });
}

impl App {
    /// Sends a message (a new thread or a reply) within the sender's limit; answered once it
    /// is stored and announced.
    pub async fn send_message(
        &self,
        sender: &Identity,
        req: SendMessage,
    ) -> ServiceResult<SendOutcome> {
        self.limits.check_send(sender.id())?;
        // A new group adds each of its members: each spends one of their adds by others.
        if let Some(names) = req.recipients.as_ref().filter(|names| names.len() > 1) {
            for name in names.iter().take(usize::from(self.config.max_participants)) {
                if *name != sender.user.username {
                    self.limits.check_group_add(name)?;
                }
            }
        }
        let limits = SendLimits {
            max_body: self.config.max_body,
            max_participants: usize::from(self.config.max_participants),
        };
        let outcome = messaging::send(
            &self.db,
            &self.outbox,
            &self.threads,
            &self.replies,
            &sender.user,
            req,
            limits,
        )
        .await?;
        if let SendOutcome::Created { .. } = &outcome {
            Metrics::inc(&self.metrics.messages_sent);
        }
        Ok(outcome)
    }

    /// Marks a thread read, up to the message `up_to` or to the end.
    pub async fn read_thread(
        &self,
        reader: &Identity,
        thread_id: &str,
        up_to: Option<&str>,
    ) -> ServiceResult<ThreadRead> {
        match messaging::read(&self.db, &self.outbox, &reader.user, thread_id, up_to).await? {
            Read::Moved(event) => Ok(event),
            // Nothing written, nothing to order: told from here, so that a flood of idle reads
            // never queues ahead of other users' announcements (tests/abuse.rs).
            Read::Unmoved(event) => {
                let notice = [Notice::new(&reader.user, event.clone())];
                self.notifier.announce(&notice).await;
                Ok(event)
            }
        }
    }

    /// Edits the body of one of the caller's messages (within the edit window); spends one of
    /// their sends, as it tells every member.
    pub async fn edit_message(
        &self,
        who: &Identity,
        url: &str,
        body: &str,
    ) -> ServiceResult<MessageView> {
        self.limits.check_send(who.id())?;
        let limits = EditLimits {
            max_body: self.config.max_body,
            window: self.config.edit_window,
        };
        let edited = messaging::edit_message(&self.db, &self.outbox, &who.user, url, body, limits);
        Ok(Box::pin(edited).await?)
    }

    /// Adds `username` to the group `thread_id`; spends one of their adds by others.
    pub async fn add_member(
        &self,
        who: &Identity,
        thread_id: &str,
        username: &str,
    ) -> ServiceResult<ThreadView> {
        self.limits.check_group_add(username)?;
        let max = usize::from(self.config.max_participants);
        let thread = messaging::add_member(
            &self.db,
            &self.outbox,
            &self.threads,
            &who.user,
            thread_id,
            username,
            max,
        );
        Ok(Box::pin(thread).await?)
    }

    /// Removes `username` from the group `thread_id` (or the caller leaves it); the group as
    /// the caller sees it after.
    pub async fn remove_member(
        &self,
        who: &Identity,
        thread_id: &str,
        username: &str,
    ) -> ServiceResult<ThreadView> {
        let removed = messaging::remove_member(
            &self.db,
            &self.outbox,
            &self.threads,
            &who.user,
            thread_id,
            username,
        );
        let (removed, thread) = Box::pin(removed).await?;
        self.notifier.leave_thread(removed.id, thread_id).await;
        Ok(thread)
    }

    /// Renames the group `thread_id`.
    pub async fn rename_thread(
        &self,
        who: &Identity,
        thread_id: &str,
        subject: &str,
    ) -> ServiceResult<ThreadView> {
        let renamed = messaging::rename(
            &self.db,
            &self.outbox,
            &self.threads,
            &who.user,
            thread_id,
            subject,
        );
        Ok(Box::pin(renamed).await?)
    }

    /// Hides one message for the caller only.
    pub async fn delete_message(&self, who: &Identity, url: &str) -> ServiceResult<MessageDeleted> {
        Ok(messaging::delete_message(&self.db, &self.outbox, &who.user, url).await?)
    }

    /// Removes one of the caller's messages for everyone (within the edit window); spends one
    /// of their sends, as it tells every member.
    pub async fn remove_for_everyone(&self, who: &Identity, url: &str) -> ServiceResult<()> {
        self.limits.check_send(who.id())?;
        let removed = messaging::remove_for_everyone(
            &self.db,
            &self.outbox,
            &who.user,
            url,
            self.config.edit_window,
        );
        Ok(Box::pin(removed).await?)
    }

    /// Adds or takes back the caller's reaction to a message; spends one of their sends, as
    /// it tells every member.
    pub async fn react(
        &self,
        who: &Identity,
        url: &str,
        emoji: &str,
        how: React,
    ) -> ServiceResult<MessageView> {
        self.limits.check_send(who.id())?;
        let reacted = messaging::react(&self.db, &self.outbox, &who.user, url, emoji, how);
        Ok(Box::pin(reacted).await?)
    }

    /// A page of the caller's messages that match `q`, and the cursor of the next; spends one
    /// of their events.
    pub async fn search(
        &self,
        who: &Identity,
        q: &str,
        thread_id: Option<&str>,
        before: Option<&str>,
        limit: u64,
    ) -> ServiceResult<(Vec<SearchResult>, Option<String>)> {
        self.limits.check_user_event(who.id())?;
        let found = messaging::search(&self.db.conn, who.id(), q, thread_id, before, limit);
        Ok(Box::pin(found).await?)
    }

    /// Hides a whole thread for the caller only.
    pub async fn delete_thread(
        &self,
        who: &Identity,
        thread_id: &str,
    ) -> ServiceResult<ThreadDeleted> {
        Ok(messaging::delete_thread(&self.db, &self.outbox, &who.user, thread_id).await?)
    }

    /// A page of the caller's inbox and the cursor of the next one.
    pub async fn list_threads(
        &self,
        who: &Identity,
        before: Option<&str>,
        limit: u64,
    ) -> ServiceResult<(Vec<ThreadView>, Option<String>)> {
        Ok(messaging::list_threads(&self.db.conn, who.id(), before, limit).await?)
    }

    /// One thread as the caller sees it.
    pub async fn get_thread(&self, who: &Identity, thread_id: &str) -> ServiceResult<ThreadView> {
        Ok(messaging::get_thread(&self.db.conn, who.id(), thread_id).await?)
    }

    /// One message the caller can see, by its url.
    pub async fn get_message(&self, who: &Identity, url: &str) -> ServiceResult<MessageView> {
        Ok(messaging::get_message(&self.db.conn, who.id(), url).await?)
    }

    /// A page of a thread's history, oldest first, and whether older messages remain.
    pub async fn list_messages(
        &self,
        who: &Identity,
        thread_id: &str,
        before: Option<&str>,
        limit: u64,
    ) -> ServiceResult<(Vec<HistoryItem>, bool)> {
        Ok(messaging::list_messages(&self.db.conn, who.id(), thread_id, before, limit).await?)
    }

    /// The caller's unread totals.
    pub async fn unread(&self, who: &Identity) -> ServiceResult<UnreadCounts> {
        Ok(messaging::unread_counts(&self.db.conn, who.id()).await?)
    }

    /// The thread's public id, when the caller takes part in it and can see it (to join its
    /// room).
    pub async fn join_thread(&self, who: &Identity, thread_id: &str) -> ServiceResult<String> {
        Ok(messaging::ensure_participant(&self.db.conn, who.id(), thread_id).await?)
    }
}
