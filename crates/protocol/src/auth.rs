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
