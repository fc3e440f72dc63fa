//! Random public identifiers and the clock.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// 128 random bits as 22 url-safe characters: thread ids, session ids.
pub fn public_id() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// 128 random bits as 32 lowercase hex characters (a user's `websocket_id`).
pub fn hex_id() -> String {
    random_hex::<16>()
}

/// Characters of [`message_url`], in ASCII order so that the strings sort as their numbers do.
const SORTABLE: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/// A message url: 23 url-safe characters, the creation time in milliseconds (7) then 96 random
/// bits (16). Urls of messages stored together share a prefix, so the unique index on them
/// takes a batch of new messages in a few neighbouring pages; with fully random urls each new
/// message dirtied a page of its own, and writing those pages out was most of a commit.
pub fn message_url() -> String {
    let millis = chrono::Utc::now().timestamp_millis().max(0) as u64;
    let mut random = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut random);
    let mut url = String::with_capacity(23);
    for shift in (0..7).rev() {
        url.push(SORTABLE[((millis >> (6 * shift)) & 63) as usize] as char);
    }
    for chunk in random.chunks(3) {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        for shift in (0..4).rev() {
            url.push(SORTABLE[((n >> (6 * shift)) & 63) as usize] as char);
        }
    }
    url
}

/// `N` random bytes as lowercase hex.
pub fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now, in Unix microseconds (how every time column is stored).
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// `d` in microseconds, saturated well below `i64::MAX`, so that a time plus or minus it
/// cannot overflow.
pub fn duration_micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 4)
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-23T06:00:00.123Z`.
pub fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_urls_are_url_safe_distinct_and_sort_by_time() {
        let first = message_url();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = message_url();
        for url in [&first, &second] {
            assert_eq!(url.len(), 23, "{url}");
            assert!(url.bytes().all(|b| SORTABLE.contains(&b)), "{url}");
        }
        assert!(first < second, "{first} !< {second}");
        assert_ne!(message_url(), message_url());
        assert!(SORTABLE.windows(2).all(|w| w[0] < w[1]));
    }
}
