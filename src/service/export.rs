//! Leaving with one's data: the account, its threads and their messages as one JSON document
//! `{user, threads: [{thread, messages}]}`, written as it is read, a thread at a time (never
//! the whole mailbox in memory).

use std::collections::VecDeque;

use futures_util::Stream;
use serde_json::json;

use super::{App, Identity};
use crate::domain::messaging;
use crate::domain::views::{HistoryItem, ThreadView};

/// Threads read per query.
const THREAD_PAGE: u64 = 50;
/// Messages read per query.
const MESSAGE_PAGE: u64 = 100;

struct Export {
    app: App,
    who: Identity,
    started: bool,
    /// Threads read and not written yet.
    pending: VecDeque<ThreadView>,
    /// Where the next page of threads starts; `None` with `more` false once all are read.
    cursor: Option<String>,
    more: bool,
    written: usize,
    finished: bool,
}

impl App {
    /// The caller's data, as a stream of JSON text.
    pub fn export(&self, who: Identity) -> impl Stream<Item = std::io::Result<String>> + use<> {
        let state = Export {
            app: self.clone(),
            who,
            started: false,
            pending: VecDeque::new(),
            cursor: None,
            more: true,
            written: 0,
            finished: false,
        };
        futures_util::stream::unfold(state, |mut st| async move {
            if st.finished {
                return None;
            }
            let chunk = st.next_chunk().await;
            if chunk.is_err() {
                st.finished = true;
            }
            Some((chunk, st))
        })
    }
}

impl Export {
    async fn next_chunk(&mut self) -> std::io::Result<String> {
        if !self.started {
            self.started = true;
            let user = serde_json::to_string(&self.who.account()).map_err(std::io::Error::other)?;
            return Ok(format!("{{\"user\":{user},\"threads\":["));
        }
        if self.pending.is_empty() && self.more {
            let (threads, next) = messaging::list_threads(
                &self.app.db.conn,
                self.who.id(),
                self.cursor.as_deref(),
                THREAD_PAGE,
            )
            .await
            .map_err(std::io::Error::other)?;
            self.pending.extend(threads);
            self.more = next.is_some();
            self.cursor = next;
        }
        let Some(thread) = self.pending.pop_front() else {
            self.finished = true;
            return Ok("]}\n".into());
        };
        let messages = self.messages_of(&thread).await?;
        let entry = json!({ "thread": thread, "messages": messages });
        let sep = if self.written == 0 { "" } else { "," };
        self.written += 1;
        Ok(format!("{sep}{entry}"))
    }

    /// Every message of `thread` the caller sees, oldest first.
    async fn messages_of(&self, thread: &ThreadView) -> std::io::Result<Vec<HistoryItem>> {
        let mut pages = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let (items, more) = messaging::list_messages(
                &self.app.db.conn,
                self.who.id(),
                &thread.thread_id,
                before.as_deref(),
                MESSAGE_PAGE,
            )
            .await
            .map_err(std::io::Error::other)?;
            let oldest = items.iter().find_map(|i| match i {
                HistoryItem::Message(m) => Some(m.url.clone()),
                HistoryItem::Change(_) => None,
            });
            pages.push(items);
            match (more, oldest) {
                (true, Some(url)) => before = Some(url),
                _ => break,
            }
        }
        Ok(pages.into_iter().rev().flatten().collect())
    }
}
