//! Account rules shared by the browser (to warn early) and the server (to enforce).

#[cfg(feature = "nfc")]
use unicode_normalization::UnicodeNormalization;
#[cfg(feature = "nfc")]
use unicode_security::{RestrictionLevel, RestrictionLevelDetection};

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
    /// Scripts mixed the way look-alike names are made (Latin with Cyrillic or Greek, …).
    #[error(
        "the username mixes alphabets that look alike (such as Latin with Cyrillic); use one \
         alphabet, or Latin with Chinese, Japanese or Korean"
    )]
    UsernameMixedScripts,
    #[error("the password is shorter than {PASSWORD_MIN_CHARS} characters")]
    PasswordTooShort,
    #[error("the password is longer than {PASSWORD_MAX_CHARS} characters")]
    PasswordTooLong,
}

/// The username as stored and shown: trimmed, fullwidth and halfwidth forms mapped to their
/// ordinary ones (`ａｌｉｃｅ` is `alice`), NFC-normalised: the same name typed on two keyboards
/// is one account (RFC 8265's UsernameCaseMapped profile; case is folded in [`username_key`]).
pub fn normalize_username(raw: &str) -> Result<String, AccountError> {
    let trimmed = raw.trim();
    // ASCII is already in NFC: skip the normaliser on the relay's hot path.
    let name = nfc(&width_mapped(trimmed));
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

/// A name new accounts may take: besides [`normalize_username`]'s rules, one that does not mix
/// scripts the way look-alikes are made (Unicode UTS #39 "highly restrictive": one script, or
/// Latin with Han and kana or with Hangul, so `张伟_li` is fine and Latin `a` with Cyrillic `а`
/// is not). Only for new names: existing accounts keep theirs.
pub fn check_new_username(normalized: &str) -> Result<(), AccountError> {
    #[cfg(feature = "nfc")]
    if !normalized.is_ascii()
        && normalized.detect_restriction_level() > RestrictionLevel::HighlyRestrictive
    {
        return Err(AccountError::UsernameMixedScripts);
    }
    let _ = normalized;
    Ok(())
}

/// Fullwidth and halfwidth forms (U+FF00–U+FFEF) as their ordinary characters (PRECIS width
/// mapping); the browser build, without the tables, leaves them to the server.
fn width_mapped(text: &str) -> std::borrow::Cow<'_, str> {
    #[cfg(feature = "nfc")]
    {
        let wide = |c: &char| ('\u{ff00}'..='\u{ffef}').contains(c);
        if text.chars().any(|c| wide(&c)) {
            let mut mapped = String::with_capacity(text.len());
            for c in text.chars() {
                if wide(&c) {
                    mapped.extend(std::iter::once(c).nfkc());
                } else {
                    mapped.push(c);
                }
            }
            return mapped.into();
        }
    }
    text.into()
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
