//! The directory: what never changes about a thread, cached so that a reply reads nothing
//! before the group commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sea_orm::ConnectionTrait;

use super::queries::{find_thread, thread_context};
use crate::domain::DomainResult;
use crate::domain::views::UserRef;

/// What never changes about a thread once created: its ids, subject and participants. Cached,
/// so a reply does not read them again (safe across nodes: nothing here is ever updated).
#[derive(Debug, Clone)]
pub struct ThreadMeta {
    pub id: i64,
    pub public_id: String,
    pub subject: String,
    pub created_at: i64,
    pub members: Vec<UserRef>,
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

    async fn load_missing(
        &self,
        db: &impl ConnectionTrait,
        public_id: &str,
    ) -> DomainResult<Option<Arc<ThreadMeta>>> {
        let Some(thread) = find_thread(db, public_id).await? else {
            return Ok(None);
        };
        let ctx = thread_context(db, thread.id).await?;
        Ok(Some(self.put(ThreadMeta {
            id: thread.id,
            public_id: thread.public_id,
            subject: thread.subject,
            created_at: thread.created_at,
            members: ctx.members.into_iter().map(|(_, u)| u).collect(),
        })))
    }
}
