//! `/admin`: live server figures for admin accounts only. The handshake checks the account
//! (`connect::authenticate_admin`); the figures come from the service every second
//! (`App::stream_admin_stats`) and reach these sockets through the notifier.

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

pub const NAMESPACE: &str = "/admin";
/// Room of the admin sockets connected to this node.
pub const ROOM: &str = "admins";

/// Sets up an admin socket during its handshake: admin sockets only listen.
pub fn admit<A: Adapter>(s: &SocketRef<A>, session_id: Option<&str>) {
    s.join(ROOM);
    // Logout and expiry disconnect this socket like the others of its session.
    if let Some(sid) = session_id {
        s.join(super::notify::session_room(sid));
    }
}
