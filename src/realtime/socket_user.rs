//! Who a socket is: set by its handshake, read by every event it sends.

use std::sync::Arc;

use crate::service::Identity;
use crate::service::limits::Budget;

/// The authenticated user of a socket, stored in its extensions by the handshake (in an
/// [`Arc`], since every event takes a copy of it).
#[derive(Clone)]
pub struct SocketUser {
    pub who: Identity,
    /// Whether the socket hears the legacy Flask-Messaging events too (the default).
    pub legacy: bool,
    /// Whether logged events carry their offset as a last argument (the default; `false`
    /// for clients that never recover, whose handlers take the payload alone).
    pub offsets: bool,
    /// What the socket may still emit.
    pub budget: Arc<Budget>,
}
