//! Settings: every one is a command-line flag with a `MISSIVE_*` environment fallback.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Args;
use http::HeaderMap;
pub use ipnet::IpNet;

/// Server settings (`missive --help` lists them).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Database URL: `sqlite://file.db?mode=rwc` (embedded) or `postgres://user@host/db`.
    #[arg(
        long,
        env = "MISSIVE_DATABASE_URL",
        default_value = "sqlite://missive.db?mode=rwc"
    )]
    pub database_url: String,

    /// PostgreSQL schema to use (search_path); lets several deployments or test runs share a database.
    #[arg(long, env = "MISSIVE_DATABASE_SCHEMA")]
    pub database_schema: Option<String>,

    /// SQLite durability: `full` syncs the write-ahead log at every commit (nothing
    /// acknowledged is lost to a power cut or an OS crash); `normal` syncs at checkpoints only
    /// (faster; a power cut may lose the last commits, a crash of Missive alone loses nothing).
    #[arg(long, env = "MISSIVE_SQLITE_SYNCHRONOUS", value_enum, default_value_t = Synchronous::Full)]
    pub sqlite_synchronous: Synchronous,

    /// Maximum database connections in the pool.
    #[arg(long, env = "MISSIVE_DB_POOL", default_value_t = 16)]
    pub db_pool: u32,

    /// Address to listen on.
    #[arg(long, env = "MISSIVE_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// Signing key for session tokens. Unset: generated once and kept in the database.
    #[arg(long, env = "MISSIVE_SECRET", hide_env_values = true)]
    pub secret: Option<String>,

    /// Redis URL; when set, Socket.IO rooms span every node through Redis. `rediss://` for
    /// TLS (the server's certificate is checked against the system's roots, or `--redis-ca`).
    #[arg(long, env = "MISSIVE_REDIS_URL")]
    pub redis_url: Option<String>,

    /// PEM file of the authority that signed the Redis server's certificate (`rediss://`),
    /// trusted for Redis instead of the system's roots: for a Redis with a private CA.
    #[arg(long, env = "MISSIVE_REDIS_CA")]
    pub redis_ca: Option<std::path::PathBuf>,

    /// Prefix of the Redis channels, so several deployments can share one Redis.
    #[arg(long, env = "MISSIVE_REDIS_PREFIX", default_value = "missive")]
    pub redis_prefix: String,

    /// Origins allowed to use cookie auth (comma separated). Default: the server's own origin.
    #[arg(long, env = "MISSIVE_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Sessions end after this much inactivity (e.g. `1h`, `30m`, `90s`).
    #[arg(long, env = "MISSIVE_SESSION_IDLE", default_value = "1h", value_parser = parse_duration)]
    pub session_idle: Duration,

    /// Maximum message body, in characters.
    #[arg(long, env = "MISSIVE_MAX_BODY", default_value_t = 5000)]
    pub max_body: usize,

    /// Most members of a group, its creator included.
    #[arg(long, env = "MISSIVE_MAX_PARTICIPANTS", default_value_t = 32, value_parser = clap::value_parser!(u16).range(3..))]
    pub max_participants: u16,

    /// How long after sending its sender may edit a message (e.g. `24h`, `15m`); `0` turns
    /// editing off.
    #[arg(long, env = "MISSIVE_EDIT_WINDOW", default_value = "24h", value_parser = parse_duration_or_zero)]
    pub edit_window: Duration,

    /// Groups a user may be added to by others per minute (creating a group with them adds
    /// them too); 0 turns the limit off.
    #[arg(long, env = "MISSIVE_GROUP_ADDS", default_value_t = 10)]
    pub group_adds: u32,

    /// Login and registration attempts allowed per client address per minute.
    #[arg(long, env = "MISSIVE_LOGIN_RATE", default_value_t = 20)]
    pub login_rate: u32,

    /// Failed logins allowed per username per 15 minutes.
    #[arg(long, env = "MISSIVE_LOGIN_FAILURES", default_value_t = 10)]
    pub login_failures: u32,

    /// Messages a user may send per second (bursts of twice that); 0 turns the limit off.
    #[arg(long, env = "MISSIVE_SEND_RATE", default_value_t = 20)]
    pub send_rate: u32,

    /// Websocket read buffer per connection, in bytes (memory per idle socket vs. syscalls per frame).
    #[arg(long, env = "MISSIVE_WS_READ_BUFFER", default_value_t = 512)]
    pub ws_read_buffer: usize,

    /// Packets that may wait to be written to one socket; past that, the socket is closed (it
    /// reconnects). A burst of group-committed messages reaches a tab as one wave of events,
    /// so this is generous (the queue grows only while a socket is behind).
    #[arg(long, env = "MISSIVE_SOCKET_BUFFER", default_value_t = 1024)]
    pub socket_buffer: usize,

    /// Bytes of packets that may wait to be written to one socket; past that, the socket is
    /// disconnected (a client that stopped reading cannot grow the server's memory).
    #[arg(long, env = "MISSIVE_SOCKET_BUFFER_BYTES", default_value_t = 1024 * 1024)]
    pub socket_buffer_bytes: usize,

    /// Client events (every kind) a socket may emit per second, bursts of twice that; 0: off.
    #[arg(long, env = "MISSIVE_EVENT_RATE", default_value_t = 50)]
    pub event_rate: u32,

    /// Client events a user may emit per second over all their sockets (and lobby
    /// connections), bursts of twice that; 0: off.
    #[arg(long, env = "MISSIVE_USER_EVENT_RATE", default_value_t = 100)]
    pub user_event_rate: u32,

    /// Events of one socket being handled at once; past that, new ones are refused at once.
    #[arg(long, env = "MISSIVE_EVENTS_IN_FLIGHT", default_value_t = 32)]
    pub events_in_flight: usize,

    /// Sockets (Socket.IO and lobby) one user may hold open on a node; 0: no cap.
    #[arg(long, env = "MISSIVE_SOCKETS_PER_USER", default_value_t = 64)]
    pub sockets_per_user: usize,

    /// TCP connections one client address may hold open; 0: no cap. Not applied to the
    /// trusted proxies, each connection of which carries many clients (cap them there).
    #[arg(long, env = "MISSIVE_CONNECTIONS_PER_ADDRESS", default_value_t = 512)]
    pub connections_per_address: usize,

    /// How often the server pings an idle socket (Socket.IO and the `/ws` lobby).
    #[arg(long, env = "MISSIVE_PING_INTERVAL", default_value = "25s", value_parser = parse_duration)]
    pub ping_interval: Duration,

    /// A socket that does not answer a ping within this long is closed (a half-open
    /// connection must not keep its session alive).
    #[arg(long, env = "MISSIVE_PING_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub ping_timeout: Duration,

    /// A client must send a request's headers within this long, and an idle keep-alive
    /// connection is closed after it (slowloris).
    #[arg(long, env = "MISSIVE_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Keys each rate-limit table holds at most (addresses, usernames, users); the least
    /// recently used are forgotten past it.
    #[arg(long, env = "MISSIVE_LIMITER_CAPACITY", default_value_t = 100_000)]
    pub limiter_capacity: usize,

    /// When set, `/metrics` answers only `Authorization: Bearer <this token>`.
    #[arg(long, env = "MISSIVE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Reverse proxies whose `X-Forwarded-For` is believed (comma-separated addresses or
    /// CIDRs, e.g. `10.0.0.0/8,::1`): from a peer in the list, the client address is the
    /// right-most entry that is not itself one of them. Any other peer is its own client
    /// address, whatever it writes in the header.
    #[arg(long, env = "MISSIVE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<IpNet>,

    /// Replaced by `MISSIVE_TRUSTED_PROXIES`; set, it stops the server with a message saying so
    /// (it trusted every peer's header).
    #[arg(long, env = "MISSIVE_TRUST_PROXY", hide = true)]
    pub trust_proxy: Option<String>,

    /// A request body must arrive whole within this long, or the request is answered 408 and
    /// its connection closed (a client that trickles a body cannot hold a connection).
    #[arg(long, env = "MISSIVE_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// Mark the session cookie `Secure` (set it when clients reach Missive over HTTPS).
    #[arg(long, env = "MISSIVE_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// How long the events sent to each user are kept so that a client that reconnects is
    /// sent what it missed (connection state recovery, `sync`); `0` turns the log off.
    #[arg(long, env = "MISSIVE_RECOVERY_WINDOW", default_value = "24h", value_parser = parse_duration_or_zero)]
    pub recovery_window: Duration,

    /// Events replayed per user per second, over recovering connects and `sync` (bursts of
    /// twice that): past it a replay slows down and `sync` answers `rate_limited`; 0: off.
    #[arg(long, env = "MISSIVE_REPLAY_RATE", default_value_t = 5000)]
    pub replay_rate: u32,

    /// A user is shown offline only after this long without any socket (a reload, a flaky
    /// network or a client that opens and closes sockets tells the others nothing); `0`: at
    /// once.
    #[arg(long, env = "MISSIVE_PRESENCE_GRACE", default_value = "5s", value_parser = parse_duration_or_zero)]
    pub presence_grace: Duration,

    /// Most missed events replayed to a reconnecting socket, or paged by `sync`; a longer gap
    /// is reported as not recovered (the client reloads).
    #[arg(long, env = "MISSIVE_RECOVERY_MAX", default_value_t = 10_000)]
    pub recovery_max: u64,

    /// Who runs this server, for the push services (RFC 8292's `sub`): `mailto:you@example.org`
    /// or an `https://` URL. They write there when a server's pushes misbehave.
    #[arg(
        long,
        env = "MISSIVE_PUSH_CONTACT",
        default_value = "mailto:postmaster@localhost"
    )]
    pub push_contact: String,

    /// The VAPID private key (base64url, the 32-byte P-256 scalar). Unset: generated once and
    /// kept in the database, so every node signs with the same.
    #[arg(long, env = "MISSIVE_VAPID_PRIVATE_KEY", hide_env_values = true)]
    pub vapid_private_key: Option<String>,

    /// Whether a push shows the first 100 characters of the message (`false`: sender and
    /// subject only).
    #[arg(long, env = "MISSIVE_PUSH_PREVIEW", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub push_preview: bool,

    /// At most one push per thread and subscription this often: the first message pushes at
    /// once, the latest of those that follow within it at its end. `0`: every message.
    #[arg(long, env = "MISSIVE_PUSH_COALESCE", default_value = "10s", value_parser = parse_duration_or_zero)]
    pub push_coalesce: Duration,

    /// For tests only: also allow push endpoints on loopback addresses, over `http://`.
    #[arg(long, env = "MISSIVE_PUSH_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub push_allow_private: bool,

    /// The address users reach this server at (`https://chat.example.org`): links in mails
    /// are built from it, never from a request's Host. Unset: `http://` and the bind address.
    #[arg(long, env = "MISSIVE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Where mail goes (e-mail verification, password resets): `smtp://host:25` (plain, or
    /// `?tls=required` for STARTTLS), `smtps://user:pass@host` (TLS). Unset: no mail; resets
    /// are done with `missive user password`.
    #[arg(long, env = "MISSIVE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender of those mails.
    #[arg(
        long,
        env = "MISSIVE_MAIL_FROM",
        default_value = "Missive <missive@localhost>"
    )]
    pub mail_from: String,
}

impl Config {
    /// [`Config::public_url`], or `http://` and the bind address; without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
            _ => format!("http://{}", self.bind),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://missive.db?mode=rwc".into(),
            database_schema: None,
            db_pool: 16,
            sqlite_synchronous: Synchronous::Full,
            bind: ([127, 0, 0, 1], 8000).into(),
            secret: None,
            redis_url: None,
            redis_ca: None,
            redis_prefix: "missive".into(),
            allowed_origins: Vec::new(),
            session_idle: Duration::from_secs(3600),
            max_body: 5000,
            max_participants: 32,
            group_adds: 10,
            edit_window: Duration::from_secs(24 * 3600),
            login_rate: 20,
            login_failures: 10,
            send_rate: 20,
            ws_read_buffer: 512,
            socket_buffer: 1024,
            socket_buffer_bytes: 1024 * 1024,
            event_rate: 50,
            user_event_rate: 100,
            events_in_flight: 32,
            sockets_per_user: 64,
            connections_per_address: 512,
            header_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            limiter_capacity: 100_000,
            metrics_token: None,
            trusted_proxies: Vec::new(),
            trust_proxy: None,
            body_timeout: Duration::from_secs(30),
            secure_cookies: false,
            recovery_window: Duration::from_secs(24 * 3600),
            recovery_max: 10_000,
            presence_grace: Duration::from_secs(5),
            replay_rate: 5000,
            push_contact: "mailto:postmaster@localhost".into(),
            public_url: None,
            smtp_url: None,
            mail_from: "Missive <missive@localhost>".into(),
            vapid_private_key: None,
            push_preview: true,
            push_coalesce: Duration::from_secs(10),
            push_allow_private: false,
        }
    }
}

/// SQLite's `synchronous` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Synchronous {
    Full,
    Normal,
}

impl Synchronous {
    pub fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// An address (`10.0.0.7`, `::1`) or a network (`10.0.0.0/8`).
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not an address or a CIDR like 10.0.0.0/8"))
}

/// Whether `peer` is one of the trusted proxies.
pub fn is_trusted_proxy(proxies: &[IpNet], peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    proxies.iter().any(|net| net.contains(&peer))
}

/// The client's address: `peer` itself unless it is a trusted proxy; from one, the
/// `X-Forwarded-For` entries are read from the right (each proxy appends the address it saw)
/// and the first that is not a trusted proxy is the client. Everything left of it was written
/// by the client, who may claim any address there.
pub fn client_addr(proxies: &[IpNet], headers: &HeaderMap, peer: Option<IpAddr>) -> IpAddr {
    let Some(mut client) = peer.map(|p| p.to_canonical()) else {
        return IpAddr::from([127, 0, 0, 1]);
    };
    if !is_trusted_proxy(proxies, client) {
        return client;
    }
    let entries = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for entry in entries.into_iter().rev() {
        let Ok(addr) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        client = addr.to_canonical();
        if !is_trusted_proxy(proxies, client) {
            break;
        }
    }
    client
}

/// Parses `90`, `90s`, `15m`, `1h`, `2d` or `250ms`.
/// As [`parse_duration`], where `0` means off.
pub fn parse_duration_or_zero(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(text)
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 90s, 15m or 1h"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86_400),
        _ => return Err(format!("unknown unit in `{text}` (use ms, s, m, h or d)")),
    };
    if d.is_zero() {
        return Err("duration must be more than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration_or_zero("0").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_duration_or_zero("2h").unwrap(),
            Duration::from_secs(7200)
        );
        assert!(parse_duration("0").is_err());
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxies: Vec<IpNet> = ["10.0.0.0/8", "::1"]
            .iter()
            .map(|t| parse_net(t).unwrap())
            .collect();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.7, 10.1.2.3".parse().unwrap(),
        );
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        // Through two trusted proxies: the entry the outer one appended.
        assert_eq!(
            client_addr(&proxies, &headers, Some(ip("10.0.0.1"))),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_addr(&proxies, &headers, Some(ip("::1"))),
            ip("203.0.113.7")
        );
        // Any other peer is its own address, whatever it writes.
        assert_eq!(
            client_addr(&proxies, &headers, Some(ip("198.51.100.2"))),
            ip("198.51.100.2")
        );
        assert_eq!(
            client_addr(&[], &headers, Some(ip("10.0.0.1"))),
            ip("10.0.0.1")
        );
        // A v4-mapped peer is the v4 address.
        assert_eq!(
            client_addr(&proxies, &headers, Some(ip("::ffff:10.0.0.1"))),
            ip("203.0.113.7")
        );
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("proxy").is_err());
    }
}
