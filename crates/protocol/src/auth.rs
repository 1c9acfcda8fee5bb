//! The answers of the account endpoints (`/user/register`, `/user/login`, `/user/logout`).

use serde::{Deserialize, Serialize};

use crate::AccountError;

/// Why an account request was refused. It travels as `code` beside the seed's human-readable
/// `error`, so a client can say it in the user's own language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthErrorCode {
    /// The body was not a form or JSON with `username` and `password`.
    BadRequest,
    UsernameEmpty,
    UsernameTooLong,
    UsernameCharacters,
    UsernameMixedScripts,
    PasswordTooShort,
    PasswordTooLong,
    UsernameTaken,
    WrongCredentials,
    /// Too many failed logins; `retry_after_secs` says for how long.
    Throttled,
    /// Too many new accounts from this address; `retry_after_secs` says for how long.
    TooManyRegistrations,
    /// The server is checking too many passwords at once (503); `retry_after_secs` says when to
    /// try again.
    Busy,
    /// A form posted from another site (403): cross-site request forgery is refused.
    CrossSite,
    NotLoggedIn,
    /// A contact request (or block) naming yourself.
    ContactYourself,
    /// Accepting a request that is not there (withdrawn, or never made).
    NoRequest,
    /// The contact book is full (contacts, requests and blocks are each bounded).
    TooManyContacts,
    /// The server's disk is full (HTTP 503); `retry_after_secs` says when to try again.
    StorageFull,
    Internal,
    /// `/user/password` and `/user/delete`: the password given to confirm is not the account's
    /// (403; counted as a failed login).
    WrongPassword,
    /// A code this build does not know yet (a newer server): show the server's `error` text.
    #[serde(other)]
    Unknown,
}

impl From<&AccountError> for AuthErrorCode {
    fn from(error: &AccountError) -> Self {
        match error {
            AccountError::UsernameEmpty => Self::UsernameEmpty,
            AccountError::UsernameTooLong => Self::UsernameTooLong,
            AccountError::UsernameCharacters => Self::UsernameCharacters,
            AccountError::UsernameMixedScripts => Self::UsernameMixedScripts,
            AccountError::PasswordTooShort => Self::PasswordTooShort,
            AccountError::PasswordTooLong => Self::PasswordTooLong,
        }
    }
}

impl AuthErrorCode {
    /// Every code but `Unknown`, with its wire name (as serde writes it; a test checks).
    const NAMES: [(Self, &'static str); 21] = [
        (Self::BadRequest, "bad_request"),
        (Self::UsernameEmpty, "username_empty"),
        (Self::UsernameTooLong, "username_too_long"),
        (Self::UsernameCharacters, "username_characters"),
        (Self::UsernameMixedScripts, "username_mixed_scripts"),
        (Self::PasswordTooShort, "password_too_short"),
        (Self::PasswordTooLong, "password_too_long"),
        (Self::UsernameTaken, "username_taken"),
        (Self::WrongCredentials, "wrong_credentials"),
        (Self::Throttled, "throttled"),
        (Self::TooManyRegistrations, "too_many_registrations"),
        (Self::Busy, "busy"),
        (Self::CrossSite, "cross_site"),
        (Self::NotLoggedIn, "not_logged_in"),
        (Self::WrongPassword, "wrong_password"),
        (Self::ContactYourself, "contact_yourself"),
        (Self::NoRequest, "no_request"),
        (Self::TooManyContacts, "too_many_contacts"),
        (Self::StorageFull, "storage_full"),
        (Self::Internal, "internal"),
        (Self::Unknown, "unknown"),
    ];

    /// The code of a wire name; `Unknown` for a name this build does not know (as serde reads
    /// it). The browser reads answers with this, not serde's derived decoder, which costs its
    /// bundle several times more.
    pub fn from_name(name: &str) -> Self {
        Self::NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map_or(Self::Unknown, |(code, _)| *code)
    }

    /// The account rule behind this refusal, when it is one.
    pub fn account_error(self) -> Option<AccountError> {
        Some(match self {
            Self::UsernameEmpty => AccountError::UsernameEmpty,
            Self::UsernameTooLong => AccountError::UsernameTooLong,
            Self::UsernameCharacters => AccountError::UsernameCharacters,
            Self::UsernameMixedScripts => AccountError::UsernameMixedScripts,
            Self::PasswordTooShort => AccountError::PasswordTooShort,
            Self::PasswordTooLong => AccountError::PasswordTooLong,
            _ => return None,
        })
    }
}

/// A wait as refusals word it: whole minutes, rounded up, at least one (server and client alike).
pub fn wait_minutes(secs: u64) -> u64 {
    secs.div_ceil(60).max(1)
}

/// The seed's answer shape, `{"flag":true}` or `{"flag":false,"error":"…"}`, with Duet's
/// machine-readable additions on refusals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagAnswer {
    pub flag: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<AuthErrorCode>,
    /// With [`AuthErrorCode::Throttled`] and [`AuthErrorCode::StorageFull`]: seconds until the
    /// next attempt may succeed (also sent as the `Retry-After` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl FlagAnswer {
    pub fn ok() -> Self {
        Self {
            flag: true,
            error: None,
            code: None,
            retry_after_secs: None,
        }
    }

    pub fn refused(code: AuthErrorCode, error: impl Into<String>) -> Self {
        Self {
            flag: false,
            error: Some(error.into()),
            code: Some(code),
            retry_after_secs: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_what_serde_writes_and_reads() {
        for (code, name) in AuthErrorCode::NAMES {
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{name}\""));
            assert_eq!(AuthErrorCode::from_name(name), code);
            let read: AuthErrorCode = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(read, code);
        }
        assert_eq!(
            AuthErrorCode::from_name("from_the_future"),
            AuthErrorCode::Unknown
        );
    }
}
