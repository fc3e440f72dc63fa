//! Who is asking: credentials (session tokens, the session cookies, Bearer and Basic), the
//! client's address, the Origin rule, and [`App::authenticate`], the one check that every
//! transport (HTTP, the Socket.IO handshake, the `/ws` lobby) goes through.

use crate::domain::views::Account;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, header};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{App, Identity, ServiceError, ServiceResult};
use crate::domain::{DomainError, accounts, sessions};

/// Name of the native session cookie.
pub const SESSION_COOKIE: &str = "missive_session";
/// Name of the Piratchat session cookie.
pub const PIRATCHAT_COOKIE: &str = "session";
/// Tokens are signed for this long; the session row's idle deadline usually ends them first.
const TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 86_400);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    sid: String,
    iat: i64,
    exp: i64,
}

/// Signs and checks session tokens.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Tokens {
    pub fn new(secret: &str) -> Tokens {
        Tokens {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        }
    }

    /// A token for session `sid` of `username`.
    pub fn issue(&self, username: &str, sid: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: username.to_owned(),
            sid: sid.to_owned(),
            iat: now,
            exp: now + TOKEN_LIFETIME.as_secs() as i64,
        };
        // HS256 signing of a small struct cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .unwrap_or_default()
    }

    /// The session id in a well-signed, unexpired token.
    pub fn session_id(&self, token: &str) -> Option<String> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|d| d.claims.sid)
    }
}

/// A credential found on a request, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Session token from a cookie (native or Piratchat).
    Cookie(String),
    /// Session token from `Authorization: Bearer` or the Socket.IO auth payload.
    Token(String),
    /// `Authorization: Basic`.
    Basic { username: String, password: String },
}

impl Credential {
    /// Whether a browser may attach this credential on its own: the cookie, and Basic, which
    /// browsers cache once a user typed it. The Origin rule applies to those.
    pub fn browser_attached(&self) -> bool {
        matches!(self, Credential::Cookie(_) | Credential::Basic { .. })
    }
}

/// The credential on a request: Authorization header first, then the session cookies.
pub fn credential_from_headers(headers: &HeaderMap) -> Option<Credential> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            return Some(Credential::Token(rest.trim().to_owned()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = STANDARD.decode(rest.trim()).ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (username, password) = text.split_once(':')?;
            return Some(Credential::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            });
        }
        return None;
    }
    cookie_value(headers, SESSION_COOKIE)
        .or_else(|| cookie_value(headers, PIRATCHAT_COOKIE))
        .map(Credential::Cookie)
}

/// Piratchat's session credential: its own cookie, else the native one.
pub fn piratchat_session(headers: &HeaderMap) -> Option<Credential> {
    cookie_value(headers, PIRATCHAT_COOKIE)
        .or_else(|| cookie_value(headers, SESSION_COOKIE))
        .map(Credential::Cookie)
}

/// The value of cookie `name`, if sent.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| cookie::Cookie::parse(pair.trim()).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A credential as a transport found it, with what the limits and the Origin rule need.
pub struct Presented<'a> {
    pub credential: Credential,
    /// The request's headers (Origin, Host).
    pub headers: &'a HeaderMap,
    /// The client's address ([`crate::config::client_addr`]).
    pub client: IpAddr,
    /// A request that changes state, or a socket handshake: a credential the browser may have
    /// attached by itself must come from an allowed Origin.
    pub guarded: bool,
}

impl App {
    /// Who is asking, whichever transport: every password check spends the login limits of
    /// the address and the username, a failed one counts against the username, and a
    /// browser-attached credential on a guarded request must come from an allowed Origin.
    pub async fn authenticate(&self, presented: Presented<'_>) -> ServiceResult<Identity> {
        let Presented {
            credential,
            headers,
            client,
            guarded,
        } = presented;
        // Before anything is checked: a foreign page using a browser's cached Basic
        // credentials spent the address's and the name's login budget before this refusal.
        if guarded && credential.browser_attached() && !self.origins.allows(headers) {
            return Err(ServiceError::ForbiddenOrigin);
        }
        let identity = match &credential {
            Credential::Cookie(token) | Credential::Token(token) => {
                let sid = self
                    .tokens
                    .session_id(token)
                    .ok_or(ServiceError::Unauthorized)?;
                let (session, user) = sessions::resolve(&self.db.conn, &sid)
                    .await?
                    .ok_or(ServiceError::Unauthorized)?;
                let idle = self.config.session_idle;
                if sessions::is_stale(&session, idle) {
                    let now = crate::ids::now_micros();
                    let ids = std::slice::from_ref(&session.id);
                    self.db
                        .write(async |txn| sessions::touch(txn, ids, now, idle).await)
                        .await?;
                }
                Identity::of(user, Some(session.id))
            }
            Credential::Basic { username, password } => {
                let user = self
                    .check_password(client, username, password)
                    .await
                    .map_err(|e| match e {
                        ServiceError::Domain(DomainError::InvalidCredentials) => {
                            ServiceError::Unauthorized
                        }
                        other => other,
                    })?;
                super::accounts::refuse_disabled(&user)?;
                if user.security.two_factor {
                    return Err(DomainError::Refused(
                        "code_required",
                        "this account has two-factor on: log in with a code (POST \
                         /api/v1/auth/login) and use the token, not Basic"
                            .into(),
                    )
                    .into());
                }
                Identity::of(user, None)
            }
        };
        Ok(identity)
    }

    /// A password check, within the login limits; a wrong password counts against the name.
    pub(super) async fn check_password(
        &self,
        client: IpAddr,
        username: &str,
        password: &str,
    ) -> ServiceResult<Account> {
        self.limits.check_login(client, username)?;
        match accounts::authenticate(&self.db, username, password).await {
            Ok(user) => {
                self.limits.record_login_success(username);
                Ok(user)
            }
            Err(DomainError::InvalidCredentials) => {
                self.limits.record_login_failure();
                Err(DomainError::InvalidCredentials.into())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Which origins may use cookie credentials.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    allowed: Vec<String>,
}

impl OriginPolicy {
    pub fn new(allowed: &[String]) -> OriginPolicy {
        OriginPolicy {
            allowed: allowed
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect(),
        }
    }

    pub fn configured(&self) -> &[String] {
        &self.allowed
    }

    /// Whether a request with these headers passes: no Origin (not a cross-site browser
    /// request), a configured origin, or (with none configured) the server's own origin.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return true;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.allowed.contains(&origin) {
            return true;
        }
        if !self.allowed.is_empty() {
            return false;
        }
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        origin
            .split_once("://")
            .is_some_and(|(scheme, rest)| (scheme == "http" || scheme == "https") && rest == host)
    }
}

impl OriginPolicy {
    /// Whether a GET that changes state (Piratchat's `/api/logout`) comes from a page of an
    /// allowed origin, or from no page at all: browsers say where a request comes from in
    /// `Sec-Fetch-Site` (a cross-site link or image sends the cookie, SameSite=Lax included),
    /// and may send an Origin.
    pub fn allows_state_changing_get(&self, headers: &HeaderMap) -> bool {
        let site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        matches!(site, "same-origin" | "none") && self.allows(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn own_origin_is_allowed_by_default_and_others_are_not() {
        let policy = OriginPolicy::new(&[]);
        assert!(policy.allows(&headers(&[("host", "127.0.0.1:8000")])));
        assert!(policy.allows(&headers(&[
            ("host", "127.0.0.1:8000"),
            ("origin", "http://127.0.0.1:8000")
        ])));
        assert!(!policy.allows(&headers(&[
            ("host", "127.0.0.1:8000"),
            ("origin", "https://evil.example")
        ])));
        assert!(!policy.allows(&headers(&[("host", "127.0.0.1:8000"), ("origin", "null")])));
    }

    #[test]
    fn configured_origins_replace_the_default() {
        let policy = OriginPolicy::new(&["https://app.example/".into()]);
        assert!(policy.allows(&headers(&[
            ("host", "api.example"),
            ("origin", "https://app.example")
        ])));
        assert!(!policy.allows(&headers(&[
            ("host", "api.example"),
            ("origin", "http://api.example")
        ])));
    }

    #[test]
    fn credentials_are_read_from_authorization_then_cookies() {
        let basic = headers(&[("authorization", "Basic YWxpY2U6c2VjcmV0IHB3")]);
        assert_eq!(
            credential_from_headers(&basic),
            Some(Credential::Basic {
                username: "alice".into(),
                password: "secret pw".into()
            })
        );
        let bearer = headers(&[
            ("authorization", "Bearer abc"),
            ("cookie", "missive_session=zzz"),
        ]);
        assert_eq!(
            credential_from_headers(&bearer),
            Some(Credential::Token("abc".into()))
        );
        let cookie = headers(&[("cookie", "other=1; missive_session=zzz")]);
        assert_eq!(
            credential_from_headers(&cookie),
            Some(Credential::Cookie("zzz".into()))
        );
    }

    #[test]
    fn forged_tokens_are_rejected() {
        let tokens = Tokens::new("one secret");
        let token = tokens.issue("alice", "sid1");
        assert_eq!(tokens.session_id(&token).as_deref(), Some("sid1"));
        assert_eq!(Tokens::new("another secret").session_id(&token), None);
        assert_eq!(tokens.session_id("not.a.token"), None);
    }
}
