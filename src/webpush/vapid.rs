//! RFC 8292: the server identifies itself to a push service with a JWT (ES256) signed by its
//! VAPID key, naming the push service (`aud`), an expiry (`exp`, within 24 hours) and a
//! contact (`sub`). One token per push service is reused until an hour before it expires.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;

/// How long a token is good for.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// A token is made anew once it has less than this left.
const RENEW_BEFORE: Duration = Duration::from_secs(3600);
/// Push services remembered at once.
const CACHED: usize = 1000;

pub struct Vapid {
    key: SigningKey,
    /// The public key, base64url of the uncompressed point (`k=` and `GET /push/key`).
    pub public: String,
    contact: String,
    tokens: Mutex<HashMap<String, (String, u64)>>,
}

impl Vapid {
    /// The key from its base64url scalar.
    pub fn new(private: &str, contact: &str) -> anyhow::Result<Vapid> {
        let bytes = URL_SAFE_NO_PAD
            .decode(private.trim().trim_end_matches('='))
            .map_err(|_| anyhow::anyhow!("the VAPID private key is not base64url"))?;
        let key = SigningKey::from_slice(&bytes)
            .map_err(|_| anyhow::anyhow!("the VAPID private key is not a P-256 scalar"))?;
        let point = key.verifying_key().as_affine().to_encoded_point(false);
        Ok(Vapid {
            public: URL_SAFE_NO_PAD.encode(point.as_bytes()),
            key,
            contact: contact.to_owned(),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The `Authorization` header for the push service at `audience` (its origin).
    pub fn authorization(&self, audience: &str) -> String {
        format!("vapid t={}, k={}", self.token(audience), self.public)
    }

    fn token(&self, audience: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, exp)) = tokens.get(audience)
            && *exp > now + RENEW_BEFORE.as_secs()
        {
            return token.clone();
        }
        let exp = now + LIFETIME.as_secs();
        let claims = serde_json::json!({"aud": audience, "exp": exp, "sub": self.contact});
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature: Signature = self.key.sign(signed.as_bytes());
        let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        if tokens.len() >= CACHED {
            tokens.clear();
        }
        tokens.insert(audience.to_owned(), (token.clone(), exp));
        token
    }
}
