//! The directory: a thread's ids, subject and members, cached so that a reply reads nothing
//! before the group commit.
//!
//! A group's members and subject change, on any node. The cache is only a guess: the commit
//! checks the sender's membership itself and delivers to the members its own statement
//! found, and hands back the thread's `version`; a reply whose copy is older is rendered from
//! the thread read again (`refresh`). A change made on this node replaces its copy at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sea_orm::ConnectionTrait;

use super::queries::{find_thread, thread_context};
use crate::domain::DomainResult;
use crate::domain::views::{ThreadContext, ThreadKind, UserRef};

/// A thread as a reply needs it: ids, kind, subject and participants (current and former)
/// as of `version`.
#[derive(Debug, Clone)]
pub struct ThreadMeta {
    pub id: i64,
    pub public_id: String,
    pub kind: ThreadKind,
    pub subject: String,
    pub created_at: i64,
    pub created_by: Option<i64>,
    pub version: i64,
    /// Every participant, current or former, by id.
    pub members: Vec<UserRef>,
    /// The ids of the current members.
    pub current: Vec<i64>,
}

impl ThreadMeta {
    /// Whether `user_id` is a member now (as of this copy).
    pub fn is_member(&self, user_id: i64) -> bool {
        self.current.contains(&user_id)
    }

    /// The copy of `ctx`.
    pub(super) fn of(ctx: &ThreadContext) -> ThreadMeta {
        ThreadMeta {
            id: ctx.thread.id,
            public_id: ctx.thread.public_id.clone(),
            kind: ctx.kind(),
            subject: ctx.thread.subject.clone(),
            created_at: ctx.thread.created_at,
            created_by: ctx.thread.created_by,
            version: ctx.thread.version,
            members: ctx.members.iter().map(|m| m.user.clone()).collect(),
            current: ctx.current().map(|m| m.user.id).collect(),
        }
    }
}

/// A bounded cache of [`ThreadMeta`] by public id.
#[derive(Default)]
pub struct Directory {
    threads: Mutex<HashMap<String, Arc<ThreadMeta>>>,
}

const DIRECTORY_CAPACITY: usize = 100_000;

impl Directory {
    pub(super) fn get(&self, public_id: &str) -> Option<Arc<ThreadMeta>> {
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(public_id)
            .cloned()
    }

    /// Drops the copies of the threads `user_id` was in (their account was deleted: their name
    /// shows differently now). Other nodes find their copies older than the thread's version.
    pub fn forget_member(&self, user_id: i64) {
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, meta| !meta.members.iter().any(|m| m.id == user_id));
    }

    pub(super) fn put(&self, meta: ThreadMeta) -> Arc<ThreadMeta> {
        let meta = std::sync::Arc::new(meta);
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        if threads.len() >= DIRECTORY_CAPACITY {
            threads.clear();
        }
        threads.insert(meta.public_id.clone(), meta.clone());
        meta
    }

    pub(super) async fn load(
        &self,
        db: &impl ConnectionTrait,
        public_id: &str,
    ) -> DomainResult<Option<Arc<ThreadMeta>>> {
        if let Some(meta) = self.get(public_id) {
            return Ok(Some(meta));
        }
        // Boxed, like a new thread: a miss is rare and its queries' futures are large.
        Box::pin(self.load_missing(db, public_id)).await
    }

    /// The thread read from the database, whatever the cache holds.
    pub(super) async fn load_missing(
        &self,
        db: &impl ConnectionTrait,
        public_id: &str,
    ) -> DomainResult<Option<Arc<ThreadMeta>>> {
        let Some(thread) = find_thread(db, public_id).await? else {
            return Ok(None);
        };
        let ctx = thread_context(db, thread.id).await?;
        Ok(Some(self.put(ThreadMeta::of(&ctx))))
    }
}
