//! A local Web Push service that checks each push the way a real one does: the VAPID JWT
//! (RFC 8292: ES256 signature under the key `GET /push/key` gives, `aud` = this service's
//! origin, `exp` within 24 hours, a `mailto:` or `https:` `sub`, `k=` the same key), the
//! headers (RFC 8030: `TTL`, `Urgency`, a `Topic` of at most 32 base64url characters,
//! `Content-Encoding: aes128gcm`), the body's size, then decrypts it with the browser's private
//! key and auth secret (RFC 8291) and keeps the JSON inside. Browsers are made up here: each
//! `subscription()` is a fresh key pair and secret, at an endpoint of this service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use serde_json::{Value, json};
use sha2::Sha256;

/// One push as received and decrypted.
#[derive(Debug, Clone)]
pub struct Received {
    /// The subscription's name (its endpoint's last segment).
    pub to: String,
    pub payload: Value,
    pub topic: String,
    pub ttl: u64,
    pub urgency: String,
}

/// A made-up browser's subscription.
pub struct Browser {
    pub name: String,
    pub endpoint: String,
    secret: SecretKey,
    auth: [u8; 16],
}

impl Browser {
    /// What `PushSubscription.toJSON()` gives, for `POST /push/subscriptions`.
    pub fn json(&self) -> Value {
        let public = self.secret.public_key().to_encoded_point(false);
        json!({
            "endpoint": self.endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(public.as_bytes()),
                "auth": URL_SAFE_NO_PAD.encode(self.auth),
            }
        })
    }
}

#[derive(Default)]
struct Inner {
    /// The VAPID public key pushes must be signed with.
    vapid: Option<String>,
    browsers: HashMap<String, (SecretKey, [u8; 16])>,
    /// Statuses to answer a subscription's next pushes with (201 once they run out).
    answers: HashMap<String, Vec<u16>>,
    received: Vec<Received>,
    /// Requests that failed a check, and why.
    rejected: Vec<String>,
    /// Every request, whatever came of it.
    requests: usize,
}

#[derive(Clone)]
pub struct PushService {
    pub origin: String,
    inner: Arc<Mutex<Inner>>,
    _task: Arc<tokio::task::JoinHandle<()>>,
}

impl PushService {
    pub async fn start() -> PushService {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/push/{name}", axum::routing::post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        PushService {
            origin,
            inner,
            _task: Arc::new(task),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Pushes are checked against the key `server` gives at `GET /push/key`.
    pub async fn trust(&self, server: &str) {
        let key: Value = reqwest::get(format!("{server}/api/v1/push/key"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = key["public_key"].as_str().expect("public_key").to_owned();
        let mut inner = self.lock();
        assert!(
            inner.vapid.as_ref().is_none_or(|k| *k == key),
            "every node signs with the same key"
        );
        inner.vapid = Some(key);
    }

    /// A new browser's subscription, named `name`.
    pub fn browser(&self, name: &str) -> Browser {
        let secret = SecretKey::random(&mut rand::rngs::OsRng);
        let mut auth = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut auth);
        self.lock()
            .browsers
            .insert(name.to_owned(), (secret.clone(), auth));
        Browser {
            name: name.to_owned(),
            endpoint: format!("{}/push/{name}", self.origin),
            secret,
            auth,
        }
    }

    /// The next pushes to `name` are answered with these statuses, in order.
    pub fn answer(&self, name: &str, statuses: &[u16]) {
        self.lock()
            .answers
            .insert(name.to_owned(), statuses.to_vec());
    }

    pub fn received(&self) -> Vec<Received> {
        let inner = self.lock();
        assert!(
            inner.rejected.is_empty(),
            "pushes failed their checks: {:?}",
            inner.rejected
        );
        inner.received.clone()
    }

    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    /// Waits until `n` pushes have come (panics after `timeout`); returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "waited {timeout:?} for {n} pushes, got {}: {got:?}",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut inner = inner.lock().unwrap();
    inner.requests += 1;
    let origin = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(|h| format!("http://{h}"))
        .unwrap_or_default();
    match check(&inner, &name, &origin, &headers, &body) {
        Ok(received) => {
            let status = match inner.answers.get_mut(&name) {
                Some(next) if !next.is_empty() => next.remove(0),
                _ => 201,
            };
            if status < 300 {
                inner.received.push(received);
            }
            StatusCode::from_u16(status).unwrap()
        }
        Err(why) => {
            inner.rejected.push(format!("{name}: {why}"));
            StatusCode::BAD_REQUEST
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, String> {
    headers
        .get(name)
        .ok_or(format!("no {name} header"))?
        .to_str()
        .map_err(|e| e.to_string())
}

fn check(
    inner: &Inner,
    name: &str,
    origin: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Received, String> {
    let (secret, auth) = inner.browsers.get(name).ok_or("no such subscription")?;
    let vapid = inner
        .vapid
        .as_deref()
        .ok_or("no VAPID key to check against")?;

    // RFC 8292: `Authorization: vapid t=<jwt>, k=<key>`.
    let authorization = header(headers, "authorization")?;
    let params = authorization
        .strip_prefix("vapid ")
        .ok_or("not a vapid authorization")?;
    let mut token = None;
    let mut key = None;
    for part in params.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => token = Some(v),
            Some(("k", v)) => key = Some(v),
            _ => return Err(format!("unexpected authorization part {part:?}")),
        }
    }
    if key != Some(vapid) {
        return Err(format!("k={key:?} is not the server's key"));
    }
    let point = URL_SAFE_NO_PAD.decode(vapid).map_err(|e| e.to_string())?;
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..65]),
    )
    .map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[origin]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(token.ok_or("no t=")?, &decoding, &validation)
        .map_err(|e| format!("JWT: {e}"))?
        .claims;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().ok_or("exp is not a number")?;
    if exp > now + 24 * 3600 {
        return Err("exp is more than 24 hours away".into());
    }
    let sub = claims["sub"].as_str().ok_or("no sub")?;
    if !(sub.starts_with("mailto:") || sub.starts_with("https:")) {
        return Err(format!("sub {sub:?} is neither mailto: nor https:"));
    }

    // RFC 8030 headers.
    let ttl: u64 = header(headers, "ttl")?
        .parse()
        .map_err(|_| "TTL is not a number")?;
    let urgency = header(headers, "urgency")?.to_owned();
    if !["very-low", "low", "normal", "high"].contains(&urgency.as_str()) {
        return Err(format!("Urgency {urgency:?}"));
    }
    let topic = header(headers, "topic")?.to_owned();
    if topic.len() > 32
        || !topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "Topic {topic:?} is not at most 32 base64url characters"
        ));
    }
    if header(headers, "content-encoding")? != "aes128gcm" {
        return Err("Content-Encoding is not aes128gcm".into());
    }
    if body.len() > 4096 {
        return Err(format!("a body of {} bytes", body.len()));
    }
    let plain = decrypt(secret, auth, body)?;
    let payload = serde_json::from_slice(&plain).map_err(|e| format!("payload: {e}"))?;
    Ok(Received {
        to: name.to_owned(),
        payload,
        topic,
        ttl,
        urgency,
    })
}

/// RFC 8291, the browser's side.
fn decrypt(secret: &SecretKey, auth: &[u8; 16], body: &[u8]) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err("body shorter than its header".into());
    }
    let salt = &body[..16];
    let rs = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
    let idlen = body[20] as usize;
    let keyid = body.get(21..21 + idlen).ok_or("truncated keyid")?;
    let sealed = &body[21 + idlen..];
    if sealed.len() > rs {
        return Err("more than one record".into());
    }
    let as_public = PublicKey::from_sec1_bytes(keyid).map_err(|_| "keyid is not a P-256 key")?;
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), as_public.as_affine());
    let ua_public = secret.public_key().to_encoded_point(false);
    let mut info = b"WebPush: info\0".to_vec();
    info.extend_from_slice(ua_public.as_bytes());
    info.extend_from_slice(keyid);
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes())
        .expand(&info, &mut ikm)
        .unwrap();
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .unwrap();
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
        .unwrap();
    let mut record = Aes128Gcm::new_from_slice(&cek)
        .unwrap()
        .decrypt(&Nonce::from(nonce), sealed)
        .map_err(|_| "the body does not decrypt")?;
    while record.last() == Some(&0) {
        record.pop();
    }
    if record.pop() != Some(2) {
        return Err("the last record's delimiter is not 2".into());
    }
    Ok(record)
}
