//! Who is online: counts of open sockets per user and per session on this node.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct Presence {
    inner: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    users: HashMap<i64, usize>,
    sessions: HashMap<String, usize>,
}

impl Presence {
    /// Records a new socket; true when it is the user's first (they just came online).
    pub fn connected(&self, user_id: i64, session: Option<&str>) -> bool {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sid) = session {
            *c.sessions.entry(sid.to_owned()).or_default() += 1;
        }
        let n = c.users.entry(user_id).or_default();
        *n += 1;
        *n == 1
    }

    /// Records a closed socket; true when it was the user's last (they just went offline).
    pub fn disconnected(&self, user_id: i64, session: Option<&str>) -> bool {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sid) = session
            && let Some(n) = c.sessions.get_mut(sid)
        {
            *n -= 1;
            if *n == 0 {
                c.sessions.remove(sid);
            }
        }
        match c.users.get_mut(&user_id) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                c.users.remove(&user_id);
                true
            }
            None => false,
        }
    }

    pub async fn is_online(&self, user_id: i64) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .users
            .contains_key(&user_id)
    }

    pub fn local_online_users(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .users
            .len()
    }

    /// Sessions that have at least one socket open here (kept alive while a tab is open).
    pub fn sessions_with_sockets(&self) -> Vec<String> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sessions
            .keys()
            .cloned()
            .collect()
    }
}
