//! The Web Push protocol (RFC 8030), the transport of pushes: a message encrypted for one
//! browser (RFC 8291, `encrypt.rs`), signed for by the server's VAPID key (RFC 8292,
//! `vapid.rs`), posted to the push service over HTTPS to public addresses only (`guard.rs`),
//! with bounded times and no redirects. The service decides who is pushed what
//! (`service::push`); this says how, and what the push service answered.

mod encrypt;
mod guard;
mod vapid;

use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderValue};

use crate::config::Config;
use crate::service::push::Subscription;
use crate::service::push::{PushOutcome, PushSender};

pub use encrypt::{MAX_PAYLOAD, encrypt};
pub use guard::{Guard, is_public};

/// How long the push service keeps a push for a browser that is offline (RFC 8030 `TTL`).
const TTL_SECS: u64 = 24 * 3600;
/// The longest a push may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends pushes.
pub struct WebPush {
    client: reqwest::Client,
    guard: Guard,
    vapid: vapid::Vapid,
}

impl WebPush {
    /// The sender with the server's VAPID key (`private`, base64url) and `config`'s contact.
    pub fn new(private: &str, config: &Config) -> anyhow::Result<WebPush> {
        let guard = Guard {
            allow_loopback: config.push_allow_private,
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // A proxy from the environment would connect where the guard never looked.
            .no_proxy()
            .https_only(!config.push_allow_private)
            .dns_resolver(guard.resolver())
            .user_agent(concat!("missive/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(WebPush {
            client,
            guard,
            vapid: vapid::Vapid::new(private, &config.push_contact)?,
        })
    }

    async fn post(&self, to: &Subscription, payload: &[u8], topic: &str) -> PushOutcome {
        let url = match self.guard.parse(&to.endpoint) {
            Ok(url) => url,
            Err(reason) => return PushOutcome::Failed(reason),
        };
        let body = match encrypt(&to.p256dh, &to.auth, payload) {
            Ok(body) => body,
            Err(reason) => return PushOutcome::Failed(reason),
        };
        let audience = url.origin().ascii_serialization();
        let sent = self
            .client
            .post(url)
            .header(header::AUTHORIZATION, self.vapid.authorization(&audience))
            .header(header::CONTENT_ENCODING, "aes128gcm")
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header("TTL", TTL_SECS)
            .header("Urgency", "normal")
            .header("Topic", topic)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                tracing::debug!(error = %e, "push service unreachable");
                return PushOutcome::Retry(None);
            }
        };
        // The body is not read: the status says it all, and nothing more is taken in.
        let status = response.status();
        match status {
            s if s.is_success() => PushOutcome::Sent,
            StatusCode::NOT_FOUND | StatusCode::GONE => PushOutcome::Gone,
            s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                PushOutcome::Retry(retry_after(response.headers().get(header::RETRY_AFTER)))
            }
            s => PushOutcome::Failed(format!("the push service answered {s}")),
        }
    }
}

/// A `Retry-After` in seconds (the HTTP-date form is not used by push services).
fn retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    let secs: u64 = value?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

impl PushSender for WebPush {
    fn public_key(&self) -> &str {
        &self.vapid.public
    }

    fn check_endpoint<'a>(&'a self, endpoint: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.guard.check(endpoint))
    }

    fn send<'a>(
        &'a self,
        to: &'a Subscription,
        payload: &'a [u8],
        topic: &'a str,
    ) -> BoxFuture<'a, PushOutcome> {
        Box::pin(self.post(to, payload, topic))
    }
}
