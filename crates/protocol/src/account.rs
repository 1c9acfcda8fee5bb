//! Account rules shared by the browser (to warn early) and the server (to enforce).

#[cfg(feature = "nfc")]
use unicode_normalization::UnicodeNormalization;

pub const USERNAME_MAX_CHARS: usize = 32;
pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("the username is empty")]
    UsernameEmpty,
    #[error("the username is longer than {USERNAME_MAX_CHARS} characters")]
    UsernameTooLong,
    #[error("the username may only hold letters, digits, '_', '-' and '.'")]
    UsernameCharacters,
    #[error("the password is shorter than {PASSWORD_MIN_CHARS} characters")]
    PasswordTooShort,
    #[error("the password is longer than {PASSWORD_MAX_CHARS} characters")]
    PasswordTooLong,
}

/// The username as stored and shown: trimmed and NFC-normalised, so that the same name typed on
/// two keyboards is one account.
pub fn normalize_username(raw: &str) -> Result<String, AccountError> {
    let trimmed = raw.trim();
    // ASCII is already in NFC: skip the normaliser on the relay's hot path.
    let name = nfc(trimmed);
    let count = name.chars().count();
    if count == 0 {
        return Err(AccountError::UsernameEmpty);
    }
    if count > USERNAME_MAX_CHARS {
        return Err(AccountError::UsernameTooLong);
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(AccountError::UsernameCharacters);
    }
    Ok(name)
}

/// The key under which a normalised username is unique: case-insensitive, so "Bob" and "bob" are
/// one account.
pub fn username_key(normalized: &str) -> String {
    if normalized.is_ascii() {
        normalized.to_ascii_lowercase()
    } else {
        nfc(&normalized.to_lowercase())
    }
}

/// NFC form; ASCII is already in it, which keeps the relay's hot path off the normaliser.
fn nfc(text: &str) -> String {
    if text.is_ascii() {
        return text.to_owned();
    }
    #[cfg(feature = "nfc")]
    return text.nfc().collect();
    #[cfg(not(feature = "nfc"))]
    text.to_owned()
}

pub fn validate_password(password: &str) -> Result<(), AccountError> {
    let count = password.chars().count();
    if count < PASSWORD_MIN_CHARS {
        return Err(AccountError::PasswordTooShort);
    }
    if count > PASSWORD_MAX_CHARS {
        return Err(AccountError::PasswordTooLong);
    }
    Ok(())
}
