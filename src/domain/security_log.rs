//! Each account's own security log: logins, failed logins, password, e-mail and second-factor
//! changes, ended sessions; with where they came from (a coarse address, the device its user
//! agent names). Kept 90 days, and at most [`MAX_PER_USER`] entries an account.

use std::net::IpAddr;
use std::time::Duration;

use entity::security_event;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::DomainResult;
use crate::ids;

/// How long entries are kept.
pub const KEPT: Duration = Duration::from_secs(90 * 86_400);
/// Entries kept per account, newest first: failed logins cannot grow a log without end.
pub const MAX_PER_USER: u64 = 1000;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Login,
    LoginFailed,
    PasswordChanged,
    PasswordReset,
    SessionEnded,
    EmailChanged,
    TwoFactorOn,
    TwoFactorOff,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::LoginFailed => "login_failed",
            Kind::PasswordChanged => "password_changed",
            Kind::PasswordReset => "password_reset",
            Kind::SessionEnded => "session_ended",
            Kind::EmailChanged => "email_changed",
            Kind::TwoFactorOn => "two_factor_on",
            Kind::TwoFactorOff => "two_factor_off",
        }
    }
}

/// Where a request came from, as sessions and the log keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The client's address, coarse: its /24 (IPv4) or /48 (IPv6).
    pub address: String,
    /// "Firefox on Linux", or the start of an unknown user agent.
    pub device: String,
}

impl Place {
    pub fn new(ip: IpAddr, user_agent: Option<&str>) -> Place {
        Place {
            address: coarse(ip),
            device: device_of(user_agent.unwrap_or_default()),
        }
    }

    /// Where the server itself acts (an operator's command).
    pub fn operator() -> Place {
        Place {
            address: String::new(),
            device: "missive command".into(),
        }
    }
}

/// The network a client is in, not the client: `203.0.113.0/24`, `2001:db8:1::/48`.
pub fn coarse(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0);
            format!("{net}/48")
        }
    }
}

/// The browser and system a user agent names ("Chrome on Linux"); a client that is not a
/// browser by its name ("curl"), cut to 100 characters.
pub fn device_of(user_agent: &str) -> String {
    let parser = woothee::parser::Parser::new();
    // Browsers by name; a script's client ("HTTP Library" to woothee) by its own token.
    let known = parser.parse(user_agent).filter(|r| {
        r.name != "UNKNOWN"
            && matches!(
                r.category,
                "pc" | "smartphone" | "mobilephone" | "appliance"
            )
    });
    let device = match known {
        Some(r) if r.os != "UNKNOWN" => format!("{} on {}", r.name, r.os),
        Some(r) => r.name.to_owned(),
        None => {
            let first = user_agent.split_whitespace().next().unwrap_or_default();
            let name = first.split('/').next().unwrap_or_default();
            if name.is_empty() {
                "unknown device".to_owned()
            } else {
                name.to_owned()
            }
        }
    };
    device
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect()
}

/// Adds an entry to `user_id`'s log, dropping what is beyond [`MAX_PER_USER`].
pub async fn record(
    db: &impl ConnectionTrait,
    user_id: i64,
    kind: Kind,
    place: &Place,
) -> DomainResult<()> {
    security_event::Entity::insert(security_event::ActiveModel {
        user_id: Set(user_id),
        kind: Set(kind.as_str().to_owned()),
        at: Set(ids::now_micros()),
        address: Set(place.address.clone()),
        device: Set(place.device.clone()),
        ..Default::default()
    })
    .exec(db)
    .await?;
    let oldest_kept: Option<i64> = security_event::Entity::find()
        .select_only()
        .column(security_event::Column::Id)
        .filter(security_event::Column::UserId.eq(user_id))
        .order_by_desc(security_event::Column::Id)
        .offset(MAX_PER_USER - 1)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    if let Some(oldest) = oldest_kept {
        security_event::Entity::delete_many()
            .filter(security_event::Column::UserId.eq(user_id))
            .filter(security_event::Column::Id.lt(oldest))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// One page of a log, newest first, before the entry `before` (an id); and the next page's
/// cursor.
pub async fn page(
    db: &impl ConnectionTrait,
    user_id: i64,
    before: Option<i64>,
    limit: u64,
) -> DomainResult<(Vec<security_event::Model>, Option<i64>)> {
    let mut query = security_event::Entity::find()
        .filter(security_event::Column::UserId.eq(user_id))
        .filter(security_event::Column::At.gt(ids::now_micros() - ids::duration_micros(KEPT)));
    if let Some(before) = before {
        query = query.filter(security_event::Column::Id.lt(before));
    }
    let mut rows = query
        .order_by_desc(security_event::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let next = if rows.len() as u64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| r.id)
    } else {
        None
    };
    Ok((rows, next))
}

/// Deletes entries older than [`KEPT`], a few thousand at a time; returns how many.
pub async fn sweep(db: &impl ConnectionTrait) -> DomainResult<u64> {
    let cutoff = ids::now_micros() - ids::duration_micros(KEPT);
    let ids: Vec<i64> = security_event::Entity::find()
        .select_only()
        .column(security_event::Column::Id)
        .filter(security_event::Column::At.lt(cutoff))
        .limit(5000)
        .into_tuple()
        .all(db)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let res = security_event::Entity::delete_many()
        .filter(security_event::Column::Id.is_in(ids))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_kept_coarse() {
        assert_eq!(coarse("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(
            coarse("2001:db8:1:2:3::9".parse().unwrap()),
            "2001:db8:1::/48"
        );
        assert_eq!(coarse("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.0/24");
    }

    #[test]
    fn devices_are_named_from_the_user_agent() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/126.0.0.0 Safari/537.36";
        assert_eq!(device_of(chrome), "Chrome on Linux");
        let firefox =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(device_of(firefox), "Firefox on Windows 10");
        assert_eq!(device_of("curl/8.5.0"), "curl");
        assert_eq!(device_of(""), "unknown device");
        assert_eq!(device_of(&"x".repeat(500)).chars().count(), 100);
    }
}
