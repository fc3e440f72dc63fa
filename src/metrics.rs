//! Process-wide counters, rendered in the Prometheus text format at /metrics.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters and gauges of this node.
#[derive(Default)]
pub struct Metrics {
    pub http_requests: AtomicU64,
    pub http_errors: AtomicU64,
    pub logins: AtomicU64,
    pub login_failures: AtomicU64,
    pub rate_limited: AtomicU64,
    pub messages_sent: AtomicU64,
    /// Transactions of the group commit; `messages_sent` over this is the mean batch.
    pub reply_commits: AtomicU64,
    pub socket_events: AtomicU64,
    pub sockets_connected: AtomicI64,
    pub sockets_refused: AtomicU64,
    /// TCP connections refused: their address had too many open.
    pub connections_refused: AtomicU64,
    pub lobby_connected: AtomicI64,
    /// Live login sessions, as last counted by the background task (a scrape reads no table).
    pub sessions_live: AtomicI64,
    /// Web Push, by outcome.
    pub pushes: PushCounts,
    /// Mail, by outcome.
    pub mails: MailCounts,
}

/// Mails since the start, by outcome.
#[derive(Default)]
pub struct MailCounts {
    /// Taken by the SMTP server.
    pub sent: AtomicU64,
    /// Tried again after a temporary refusal or no answer.
    pub retried: AtomicU64,
    /// Given up: refused for good, or still failing after the last try.
    pub failed: AtomicU64,
    /// Not attempted: the queue was full, or the address had its share for the hour.
    pub dropped: AtomicU64,
}

/// Pushes since the start, by outcome.
#[derive(Default)]
pub struct PushCounts {
    /// Taken by the push service.
    pub sent: AtomicU64,
    /// The push service said the subscription is gone (404, 410): it was deleted.
    pub gone: AtomicU64,
    /// Tried again after a 429, a 5xx or no answer.
    pub retried: AtomicU64,
    /// Given up: refused for good, or still failing after the last try.
    pub failed: AtomicU64,
    /// Not attempted: a queue was full.
    pub dropped: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition; `online_users`, `adapter_failures` and `bursts_rejected` are read
    /// at scrape time.
    pub fn render(
        &self,
        online_users: usize,
        adapter_failures: u64,
        bursts_rejected: u64,
    ) -> String {
        let mut out = String::with_capacity(1024);
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            "missive_http_requests_total",
            "HTTP requests served.",
            get(&self.http_requests),
        );
        counter(
            "missive_http_errors_total",
            "HTTP responses with a 4xx or 5xx status.",
            get(&self.http_errors),
        );
        counter(
            "missive_logins_total",
            "Successful logins.",
            get(&self.logins),
        );
        counter(
            "missive_login_failures_total",
            "Refused logins.",
            get(&self.login_failures),
        );
        counter(
            "missive_rate_limited_total",
            "Requests refused by a rate limit.",
            get(&self.rate_limited),
        );
        counter(
            "missive_messages_sent_total",
            "Messages stored.",
            get(&self.messages_sent),
        );
        counter(
            "missive_reply_commits_total",
            "Group-commit transactions of replies, each storing a batch of them.",
            get(&self.reply_commits),
        );
        counter(
            "missive_socket_events_total",
            "Socket.IO events received.",
            get(&self.socket_events),
        );
        counter(
            "missive_sockets_refused_total",
            "Socket.IO connections refused.",
            get(&self.sockets_refused),
        );
        counter(
            "missive_adapter_failures_total",
            "Emits and disconnects the Redis adapter could not spread to other nodes (done on this node only).",
            adapter_failures,
        );
        counter(
            "missive_bus_rejected_total",
            "Event bursts from Redis dropped: their MAC failed (not made with the nodes' secret, or altered) or they were more than a minute old.",
            bursts_rejected,
        );
        counter(
            "missive_connections_refused_total",
            "TCP connections refused because their address had too many open.",
            get(&self.connections_refused),
        );
        let pushes = &self.pushes;
        let _ = writeln!(
            out,
            "# HELP missive_pushes_total Web Push messages, by outcome.\n# TYPE missive_pushes_total counter"
        );
        for (outcome, value) in [
            ("sent", &pushes.sent),
            ("gone", &pushes.gone),
            ("retried", &pushes.retried),
            ("failed", &pushes.failed),
            ("dropped", &pushes.dropped),
        ] {
            let _ = writeln!(
                out,
                "missive_pushes_total{{outcome=\"{outcome}\"}} {}",
                get(value)
            );
        }
        let mails = &self.mails;
        let _ = writeln!(
            out,
            "# HELP missive_mails_total Mails to users' addresses, by outcome.\n# TYPE missive_mails_total counter"
        );
        for (outcome, value) in [
            ("sent", &mails.sent),
            ("retried", &mails.retried),
            ("failed", &mails.failed),
            ("dropped", &mails.dropped),
        ] {
            let _ = writeln!(
                out,
                "missive_mails_total{{outcome=\"{outcome}\"}} {}",
                get(value)
            );
        }
        let mut gauge = |name: &str, help: &str, value: i64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            "missive_sockets",
            "Socket.IO sockets connected to this node.",
            self.sockets_connected.load(Ordering::Relaxed),
        );
        gauge(
            "missive_lobby_sockets",
            "Piratchat lobby websockets on this node.",
            self.lobby_connected.load(Ordering::Relaxed),
        );
        gauge(
            "missive_sessions",
            "Live login sessions, counted every few seconds.",
            self.sessions_live.load(Ordering::Relaxed),
        );
        gauge(
            "missive_online_users",
            "Users with at least one socket on this node.",
            online_users as i64,
        );
        out
    }
}
