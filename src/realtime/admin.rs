//! `/admin`: live server figures for admin accounts only. The handshake checks the account
//! (`connect::authenticate_admin`); the figures come from the service every second
//! (`App::stream_admin_stats`) and reach these sockets through the notifier.

use std::sync::Arc;

use serde_json::value::RawValue;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use super::rooms::{ADMINS, admin_room, session_room};
use super::socket_user::SocketUser;

pub const NAMESPACE: &str = "/admin";

/// Sets up an admin socket during its handshake: admin sockets only listen.
pub fn admit<A: Adapter>(s: &SocketRef<A>, user_id: i64, grant: &str) {
    s.join(ADMINS);
    // Demotion closes this socket.
    s.join(admin_room(user_id));
    // Logout, expiry and ended credentials disconnect this socket like the others of its grant.
    s.join(session_room(grant));
}

/// `event` to the admin sockets of this node (each node reports its own figures).
pub async fn emit<A: Adapter>(io: &SocketIo<A>, event: &str, payload: &RawValue) {
    if let Some(op) = io.of(NAMESPACE) {
        let _ = op.local().to(ADMINS).emit(event, payload).await;
    }
}

/// The users of the admin sockets connected to this node.
pub fn users<A: Adapter>(io: &SocketIo<A>) -> Vec<i64> {
    let Some(op) = io.of(NAMESPACE) else {
        return Vec::new();
    };
    let mut users: Vec<i64> = op
        .local()
        .to(ADMINS)
        .sockets()
        .iter()
        .filter_map(|s| s.extensions.get::<Arc<SocketUser>>())
        .map(|me| me.who.id())
        .collect();
    users.sort_unstable();
    users.dedup();
    users
}

/// Whether an admin socket is connected to this node.
pub fn any<A: Adapter>(io: &SocketIo<A>) -> bool {
    io.of(NAMESPACE)
        .is_some_and(|op| !op.local().to(ADMINS).sockets().is_empty())
}

/// Closes the admin sockets of `user_id` on this node.
pub async fn revoke<A: Adapter>(io: &SocketIo<A>, user_id: i64) {
    if let Some(op) = io.of(NAMESPACE)
        && let Err(e) = op.local().to(admin_room(user_id)).disconnect().await
    {
        tracing::warn!(error = %e, "closing a demoted admin's sockets failed");
    }
}
