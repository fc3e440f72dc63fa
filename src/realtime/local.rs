//! The sockets of this node, counted by namespace and by whether they hear legacy events:
//! an emit serialises its packet before it looks for listeners, so the notifier skips the
//! namespaces, and the legacy forms, that nobody on this node would hear.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::MESSAGING_NAMESPACES;

#[derive(Default)]
pub struct LocalSockets {
    /// Sockets on each of [`MESSAGING_NAMESPACES`].
    by_namespace: [AtomicUsize; MESSAGING_NAMESPACES.len()],
    /// Sockets that hear the legacy events.
    legacy: AtomicUsize,
    /// Sockets that asked for no offsets (they are in the plain rooms).
    plain: AtomicUsize,
}

impl LocalSockets {
    fn counter(&self, ns: &str) -> Option<&AtomicUsize> {
        MESSAGING_NAMESPACES
            .iter()
            .position(|n| *n == ns)
            .map(|i| &self.by_namespace[i])
    }

    /// A socket joined messaging namespace `ns`.
    pub fn opened(&self, ns: &str, legacy: bool, plain: bool) {
        if let Some(c) = self.counter(ns) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        if legacy {
            self.legacy.fetch_add(1, Ordering::Relaxed);
        }
        if plain {
            self.plain.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A socket left messaging namespace `ns`.
    pub fn closed(&self, ns: &str, legacy: bool, plain: bool) {
        if let Some(c) = self.counter(ns) {
            c.fetch_sub(1, Ordering::Relaxed);
        }
        if legacy {
            self.legacy.fetch_sub(1, Ordering::Relaxed);
        }
        if plain {
            self.plain.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether a socket of this node asked for no offsets.
    pub fn any_plain(&self) -> bool {
        self.plain.load(Ordering::Relaxed) > 0
    }

    /// Whether a socket of this node hears the legacy events.
    pub fn any_legacy(&self) -> bool {
        self.legacy.load(Ordering::Relaxed) > 0
    }

    /// The namespaces with sockets.
    pub fn namespaces(&self) -> Vec<&'static str> {
        MESSAGING_NAMESPACES
            .iter()
            .zip(&self.by_namespace)
            .filter(|(_, n)| n.load(Ordering::Relaxed) > 0)
            .map(|(ns, _)| *ns)
            .collect()
    }
}
