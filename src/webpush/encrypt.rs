//! RFC 8291: a push message's payload encrypted for one browser (the `aes128gcm` content
//! coding of RFC 8188, one record), under a fresh key pair and salt for each message.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use p256::PublicKey;
use p256::ecdh::EphemeralSecret;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand::RngCore;
use sha2::Sha256;

/// The record size announced in the header: one record holds the whole payload.
const RECORD_SIZE: u32 = 4096;
/// The largest payload one record carries (the record's size less the padding delimiter and
/// the tag); push services accept 4096 bytes of body, header included.
pub const MAX_PAYLOAD: usize = 3993;

/// `plaintext` encrypted for the browser whose public key is `ua_public` (65 bytes,
/// uncompressed) and authentication secret is `auth` (16 bytes): the body of the push.
pub fn encrypt(ua_public: &[u8], auth: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, String> {
    if plaintext.len() > MAX_PAYLOAD {
        return Err(format!(
            "a payload of {} bytes is too long",
            plaintext.len()
        ));
    }
    let ua = PublicKey::from_sec1_bytes(ua_public).map_err(|_| "invalid p256dh key")?;
    let ephemeral = EphemeralSecret::random(&mut rand::rngs::OsRng);
    let as_public = ephemeral.public_key().to_encoded_point(false);
    let shared = ephemeral.diffie_hellman(&ua);

    // IKM = HKDF(auth, ecdh_secret, "WebPush: info" || 0x00 || ua_public || as_public, 32)
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public.as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes())
        .expand(&key_info, &mut ikm)
        .map_err(|e| e.to_string())?;

    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let content = Hkdf::<Sha256>::new(Some(&salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    content
        .expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .map_err(|e| e.to_string())?;
    content
        .expand(b"Content-Encoding: nonce\0", &mut nonce)
        .map_err(|e| e.to_string())?;

    // The last (and only) record: the plaintext, then the delimiter 0x02, no padding.
    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(2);
    let sealed = Aes128Gcm::new_from_slice(&cek)
        .map_err(|e| e.to_string())?
        .encrypt(&Nonce::from(nonce), record.as_slice())
        .map_err(|e| e.to_string())?;

    // Header: salt (16) || rs (4, big endian) || idlen (1) || keyid (the server's public key).
    let key = as_public.as_bytes();
    let mut body = Vec::with_capacity(16 + 4 + 1 + key.len() + sealed.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(key.len() as u8);
    body.extend_from_slice(key);
    body.extend_from_slice(&sealed);
    Ok(body)
}
