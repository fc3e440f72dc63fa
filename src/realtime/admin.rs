//! `/admin`: live server figures for admin accounts only. The handshake checks the account
//! (`connect::authenticate_admin`); the figures come from the service every second
//! (`App::stream_admin_stats`) and reach these sockets through the notifier.

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

pub const NAMESPACE: &str = "/admin";
/// Room of the admin sockets connected to this node.
pub const ROOM: &str = "admins";

/// Room of one user's admin sockets on this node.
pub fn admin_room(user_id: i64) -> String {
    format!("admin:{user_id}")
}

/// Sets up an admin socket during its handshake: admin sockets only listen.
pub fn admit<A: Adapter>(s: &SocketRef<A>, user_id: i64, session_id: Option<&str>) {
    s.join(ROOM);
    // Demotion closes this socket.
    s.join(admin_room(user_id));
    // Logout and expiry disconnect this socket like the others of its session.
    if let Some(sid) = session_id {
        s.join(super::notify::session_room(sid));
    }
}
