//! The rooms events go to. Nothing is ever emitted to a whole namespace.

/// Room of every socket of one user.
pub fn user_room(user_id: i64) -> String {
    format!("user:{user_id}")
}

/// The user of a [`user_room`].
pub fn user_of_room(room: &str) -> Option<i64> {
    room.strip_prefix("user:")?.parse().ok()
}

/// Room of the sockets of one user that asked for no offsets (`{offsets: false}` in their
/// CONNECT payload): they hear what [`user_room`] hears, without the position argument.
pub fn plain_room(user_id: i64) -> String {
    format!("plain:{user_id}")
}

/// The [`plain_room`]s of the user rooms among `rooms`.
pub fn plain_twins(rooms: &[String]) -> Vec<String> {
    rooms
        .iter()
        .filter_map(|r| r.strip_prefix("user:"))
        .map(|id| format!("plain:{id}"))
        .collect()
}

/// Room of the sockets of one user that hear the legacy Flask-Messaging events: every socket
/// but those of native clients, which say `legacy: false` in their CONNECT payload.
pub fn legacy_room(user_id: i64) -> String {
    format!("legacy:{user_id}")
}

/// Room of every socket of one login session.
pub fn session_room(session_id: &str) -> String {
    format!("session:{session_id}")
}

/// Room of sockets viewing one thread (joined after a participant check).
pub fn thread_room(thread_id: &str) -> String {
    format!("thread:{thread_id}")
}

/// Room of the admin sockets (`/admin`) connected to this node.
pub const ADMINS: &str = "admins";

/// Room of one user's admin sockets on this node.
pub fn admin_room(user_id: i64) -> String {
    format!("admin:{user_id}")
}
