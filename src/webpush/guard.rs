//! No server-side request forgery through push endpoints: an endpoint is `https://` and every
//! address its name resolves to is public, checked when it is subscribed and again at each
//! send (the name may resolve elsewhere by then: the client connects only to the public
//! addresses it is handed here). Loopback, private, link-local (cloud metadata), shared,
//! reserved and documentation ranges are refused, IPv4 inside IPv6 included. For tests,
//! `allow_loopback` also admits `http://` endpoints on loopback addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How long a name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Ranges that are not the public Internet (RFC 6890 and its updates).
static NOT_PUBLIC: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    [
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ]
    .iter()
    .map(|n| n.parse().expect("a valid network"))
    .collect()
});

/// Whether `ip` is on the public Internet.
pub fn is_public(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    };
    !NOT_PUBLIC.iter().any(|n| n.contains(&ip))
}

/// The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 or 6to4 address.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, a, b, ..] => Some(Ipv4Addr::new(
            (a >> 8) as u8,
            a as u8,
            (b >> 8) as u8,
            b as u8,
        )),
        _ => None,
    }
}

/// Which addresses pushes may go to.
#[derive(Debug, Clone, Copy)]
pub struct Guard {
    pub allow_loopback: bool,
}

impl Guard {
    /// The guard as the push client's resolver.
    pub fn resolver(self) -> Arc<Guard> {
        Arc::new(self)
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        is_public(ip) || (self.allow_loopback && ip.is_loopback())
    }

    /// The endpoint as a URL, if its form is acceptable (its addresses are checked apart).
    pub fn parse(&self, endpoint: &str) -> Result<Url, String> {
        let url = Url::parse(endpoint).map_err(|_| "the endpoint is not a URL".to_string())?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_loopback => {}
            _ => return Err("the endpoint must be an https:// URL".into()),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("the endpoint must not carry credentials".into());
        }
        match url.host() {
            None => Err("the endpoint has no host".into()),
            Some(url::Host::Ipv4(ip)) if !self.allows(IpAddr::V4(ip)) => {
                Err("the endpoint's address is not public".into())
            }
            Some(url::Host::Ipv6(ip)) if !self.allows(IpAddr::V6(ip)) => {
                Err("the endpoint's address is not public".into())
            }
            Some(_) => Ok(url),
        }
    }

    /// Checks an endpoint: its form, and that every address its name resolves to is allowed.
    pub async fn check(&self, endpoint: &str) -> Result<(), String> {
        let url = self.parse(endpoint)?;
        let Some(url::Host::Domain(name)) = url.host() else {
            return Ok(());
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port)))
                .await
                .map_err(|_| "the endpoint's name did not resolve in time".to_string())?
                .map_err(|_| "the endpoint's name does not resolve".to_string())?
                .collect();
        if addrs.is_empty() {
            return Err("the endpoint's name does not resolve".into());
        }
        if addrs.iter().any(|a| !self.allows(a.ip())) {
            return Err("the endpoint's name resolves to an address that is not public".into());
        }
        Ok(())
    }
}

/// The push client's resolver: a name's allowed addresses only (an error when none is).
impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = *self;
        Box::pin(async move {
            let found =
                tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name.as_str(), 0)))
                    .await
                    .map_err(|_| "name resolution timed out")??;
            let allowed: Vec<SocketAddr> = found.filter(|a| guard.allows(a.ip())).collect();
            if allowed.is_empty() {
                return Err("the name resolves to no public address".into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        let public = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "2a00:1450::1"];
        let not = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ];
        for ip in public {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in not {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn endpoints_must_be_https_without_credentials() {
        let strict = Guard {
            allow_loopback: false,
        };
        assert!(strict.parse("https://push.example.org/abc").is_ok());
        for bad in [
            "http://push.example.org/abc",
            "https://user:pw@push.example.org/",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest",
            "ftp://push.example.org/",
            "not a url",
        ] {
            assert!(strict.parse(bad).is_err(), "{bad}");
        }
        let tests = Guard {
            allow_loopback: true,
        };
        assert!(tests.parse("http://127.0.0.1:9000/x").is_ok());
        assert!(tests.parse("http://10.0.0.1/x").is_err());
    }
}
