//! Short-lived TURN credentials (the "TURN REST API" scheme coturn implements with
//! `use-auth-secret` / `static-auth-secret`): Duet and the TURN server share a secret; each
//! connection gets a username `<unix expiry>:<duet user>` and the credential
//! `base64(HMAC-SHA1(secret, username))`, which coturn checks without any database.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;

/// The shared secret. Its `Debug` never shows it, so neither logs nor panics can leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnSecret(String);

impl TurnSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// Reads the secret from a file (trailing newline and spaces dropped).
    pub fn from_file(path: &Path) -> Result<Self, TurnError> {
        let text = std::fs::read_to_string(path).map_err(|source| TurnError::SecretFile {
            path: path.display().to_string(),
            source,
        })?;
        let secret = text.trim();
        if secret.is_empty() {
            return Err(TurnError::EmptySecret);
        }
        Ok(Self(secret.to_owned()))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TurnSecret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("cannot read the TURN secret file {path}: {source}")]
    SecretFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the TURN secret is empty")]
    EmptySecret,
    #[error("--turn-urls (DUET_TURN_URLS) needs a secret: DUET_TURN_SECRET or --turn-secret-file")]
    MissingSecret,
    #[error("a TURN secret was given but no --turn-urls (DUET_TURN_URLS)")]
    MissingUrls,
    #[error("TURN URLs must start with turn: or turns:, got {0:?}")]
    BadUrl(String),
}

/// The TURN servers and how to mint credentials for them.
#[derive(Debug, Clone)]
pub struct Turn {
    urls: Vec<String>,
    secret: TurnSecret,
    ttl: Duration,
}

impl Turn {
    pub fn new(urls: Vec<String>, secret: TurnSecret, ttl: Duration) -> Result<Self, TurnError> {
        if let Some(bad) = urls
            .iter()
            .find(|u| !(u.starts_with("turn:") || u.starts_with("turns:")))
        {
            return Err(TurnError::BadUrl(bad.clone()));
        }
        if urls.is_empty() {
            return Err(TurnError::MissingUrls);
        }
        Ok(Self {
            urls,
            secret,
            ttl: ttl.max(Duration::from_secs(1)),
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// How often a connection is sent fresh credentials: at half their lifetime, so the ones a
    /// client holds always have at least half of it left when it starts or accepts a call.
    pub fn refresh_every(&self) -> Duration {
        self.ttl / 2
    }

    /// One `RTCIceServer` with credentials for `user`, valid until `now + ttl`.
    pub fn ice_server(&self, user: &str, now: SystemTime) -> Value {
        let expiry = now
            .checked_add(self.ttl)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let username = format!("{expiry}:{user}");
        let credential = credential(&self.secret, &username);
        json!({"urls": self.urls, "username": username, "credential": credential})
    }
}

/// `base64(HMAC-SHA1(secret, username))`.
pub fn credential(secret: &TurnSecret, username: &str) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_matches_a_known_hmac_sha1_vector() {
        // RFC 2202 test case 2: HMAC-SHA1("Jefe", "what do ya want for nothing?")
        // = effcdf6ae5eb2fa2d27416d5f184df9c259a7c79.
        let secret = TurnSecret::new("Jefe");
        assert_eq!(
            credential(&secret, "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }

    #[test]
    fn ice_server_names_expiry_and_user() {
        let turn = Turn::new(
            vec!["turn:127.0.0.1:3478?transport=udp".into()],
            TurnSecret::new("s3cret"),
            Duration::from_secs(3600),
        )
        .unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let server = turn.ice_server("alice", now);
        assert_eq!(server["username"], "1700003600:alice");
        assert_eq!(server["urls"][0], "turn:127.0.0.1:3478?transport=udp");
        assert_eq!(
            server["credential"],
            credential(&TurnSecret::new("s3cret"), "1700003600:alice")
        );
    }

    #[test]
    fn the_secret_never_shows_in_debug() {
        let turn = Turn::new(
            vec!["turn:a".into()],
            TurnSecret::new("hunter2"),
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(!format!("{turn:?}").contains("hunter2"));
    }

    #[test]
    fn urls_must_be_turn() {
        assert!(matches!(
            Turn::new(
                vec!["stun:a".into()],
                TurnSecret::new("x"),
                Duration::from_secs(1)
            ),
            Err(TurnError::BadUrl(_))
        ));
    }
}
