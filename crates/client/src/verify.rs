//! The verification code: a short number both users read aloud to make sure nobody sits in the
//! middle of their call.
//!
//! Media is encrypted by DTLS-SRTP between the two browsers, keyed by certificates whose
//! fingerprints travel in the SDP through the server. A server that swapped those fingerprints
//! could run two DTLS sessions of its own and watch the call. Each browser hashes the two
//! fingerprints it actually used (its own and its peer's, from `getStats()`): without a man in
//! the middle both hash the same pair and show the same code; with one, they differ.
//!
//! Chromium caches certificate statistics per transport, and a `getStats()` that lands between
//! its own certificate and the peer's (the quality watch asks every second) can leave the peer's
//! out until the next negotiation. Once DTLS is `connected`, the peer's certificate is by
//! definition the one the remote description's `a=fingerprint` names (the browser refuses any
//! other), so that line stands in for the missing entry.
//!
//! The code: each fingerprint written `"<algorithm> <FINGERPRINT>"` (algorithm lower case, hex
//! upper case, as `sha-256 AB:CD:…`), the two sorted and joined by a newline, SHA-256 of that,
//! the first four bytes as a big-endian number modulo 1,000,000, six digits shown as `123 456`.

use crate::sha256::Sha256;
use js_sys::Reflect;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::RtcPeerConnection;

use crate::js_fields::text;

/// `"sha-256 AB:CD:…"` from a `certificate` stats entry's `fingerprintAlgorithm` and
/// `fingerprint`.
pub fn fingerprint_text(algorithm: &str, fingerprint: &str) -> String {
    format!(
        "{} {}",
        algorithm.trim().to_ascii_lowercase(),
        fingerprint.trim().to_ascii_uppercase()
    )
}

/// The first `a=fingerprint:<algorithm> <fingerprint>` of a session description.
pub fn sdp_fingerprint(sdp: &str) -> Option<String> {
    let line = sdp
        .lines()
        .find_map(|line| line.trim_end().strip_prefix("a=fingerprint:"))?;
    let (algorithm, fingerprint) = line.split_once(' ')?;
    Some(fingerprint_text(algorithm, fingerprint))
}

/// The six digits for two fingerprints (in either order), as `"123 456"`.
pub fn verification_code(a: &str, b: &str) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    let mut hasher = Sha256::new();
    hasher.update(first.as_bytes());
    hasher.update(b"\n");
    hasher.update(second.as_bytes());
    let digest = hasher.finalize();
    let number = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 1_000_000;
    format!("{:03} {:03}", number / 1000, number % 1000)
}

/// The local and remote certificate fingerprints of the connection's (bundled) DTLS transport,
/// once DTLS is up; `None` before that.
pub async fn fingerprints(pc: &RtcPeerConnection) -> Option<(String, String)> {
    let report = JsFuture::from(pc.get_stats()).await.ok()?;
    let values = js_sys::try_iter(&report).ok()??;
    let stats: Vec<JsValue> = values
        .filter_map(Result::ok)
        .filter_map(|entry| Reflect::get(&entry, &JsValue::from_f64(1.0)).ok())
        .collect();
    let by_id = |id: &str| {
        stats
            .iter()
            .find(|s| text(s, "id").as_deref() == Some(id))
            .and_then(|cert| {
                Some(fingerprint_text(
                    &text(cert, "fingerprintAlgorithm")?,
                    &text(cert, "fingerprint")?,
                ))
            })
    };
    stats.iter().find_map(|s| {
        if text(s, "type").as_deref() != Some("transport") {
            return None;
        }
        let local = by_id(&text(s, "localCertificateId")?)?;
        let remote = text(s, "remoteCertificateId")
            .and_then(|id| by_id(&id))
            .or_else(|| {
                (text(s, "dtlsState").as_deref() == Some("connected"))
                    .then(|| sdp_fingerprint(&pc.remote_description()?.sdp()))?
            })?;
        Some((local, remote))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha-256 8F:1C:2B:3A:4D:5E:6F:70:81:92:A3:B4:C5:D6:E7:F8:09:1A:2B:3C:4D:5E:6F:70:81:92:A3:B4:C5:D6:E7:F8";
    const B: &str = "sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00";
    const C: &str = "sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:01";

    #[test]
    fn order_does_not_matter() {
        assert_eq!(verification_code(A, B), verification_code(B, A));
    }

    #[test]
    fn changing_either_fingerprint_changes_the_code() {
        let code = verification_code(A, B);
        assert_ne!(code, verification_code(A, C), "remote changed");
        assert_ne!(code, verification_code(C, B), "local changed");
    }

    #[test]
    fn six_digits_in_two_groups() {
        let code = verification_code(A, B);
        assert_eq!(code.len(), 7);
        assert_eq!(code.as_bytes()[3], b' ');
        assert!(code.replace(' ', "").bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn a_known_value() {
        // SHA-256("a\nb") starts 7e18f737; 0x7e18f737 = 2115565367; mod 1e6 = 565367.
        assert_eq!(verification_code("b", "a"), "565 367");
    }

    #[test]
    fn the_remote_description_names_the_first_fingerprint() {
        let sdp = "v=0\r\na=group:BUNDLE 0\r\na=fingerprint:SHA-256 ab:cd:ef\r\na=fingerprint:sha-1 00:11\r\n";
        assert_eq!(sdp_fingerprint(sdp).as_deref(), Some("sha-256 AB:CD:EF"));
        assert_eq!(sdp_fingerprint("v=0\r\na=setup:actpass\r\n"), None);
        assert_eq!(sdp_fingerprint("a=fingerprint:sha-256\r\n"), None);
    }

    #[test]
    fn fingerprints_are_normalised() {
        assert_eq!(fingerprint_text("SHA-256", "ab:cd "), "sha-256 AB:CD");
    }
}
