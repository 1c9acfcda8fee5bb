//! The relay's view of a client frame: enough typing to validate and route it, while every field
//! the sender wrote (but `from`) reaches the peer untouched, as the seed's contract requires.
//!
//! This is the relay's hot path, so it avoids building a `serde_json::Value` tree: one borrowed
//! pass reads the routing fields, one typed pass validates the message, and delivery splices the
//! sender's name into the original text. Only a frame that carries its own `from` (the seed's
//! pages do) is re-serialised, to replace that field rather than duplicate it.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::{ErrorCode, MAX_FRAME_BYTES, PeerMessage};

/// Why a frame cannot be relayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME_BYTES} bytes")]
    TooLarge(usize),
    #[error("frame is not a JSON object: {0}")]
    NotJson(String),
    #[error("frame has no string field \"type\"")]
    MissingType,
    #[error("unknown message type \"{0}\"")]
    UnknownType(String),
    #[error("invalid \"{kind}\" message: {reason}")]
    InvalidFields { kind: String, reason: String },
    #[error("field \"name\" must name the user the message is for")]
    MissingTarget,
}

impl RelayError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge(_) => ErrorCode::TooLarge,
            Self::NotJson(_) | Self::MissingType | Self::InvalidFields { .. } => {
                ErrorCode::Malformed
            }
            Self::UnknownType(_) => ErrorCode::UnknownType,
            Self::MissingTarget => ErrorCode::InvalidTarget,
        }
    }
}

/// A validated frame waiting for delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayRequest {
    /// The recipient, as the sender wrote it in `name`.
    pub to: String,
    /// The typed message, for the relay's own decisions (echo to own tabs, metrics).
    pub message: PeerMessage,
    /// The frame as received.
    text: String,
    /// Whether the sender wrote a `from` of its own, which delivery must replace.
    has_from: bool,
}

const KNOWN_TYPES: [&str; 12] = [
    "offer",
    "answer",
    "candidate",
    "leave",
    "invite",
    "ringing",
    "accept",
    "decline",
    "cancel",
    "busy",
    "hangup",
    "media",
];

/// The fields routing needs, borrowed from the frame where it has no escapes.
#[derive(Deserialize)]
struct Routing<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Loose<'a>>,
    #[serde(default, borrow)]
    name: Option<Loose<'a>>,
    #[serde(default, deserialize_with = "present")]
    from: bool,
}

/// A field that should be a string; anything else is kept as "not a string" so the error can
/// say which field is wrong instead of failing the whole frame as not JSON.
enum Loose<'a> {
    Str(Cow<'a, str>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<'a> {
            Str(#[serde(borrow)] Cow<'a, str>),
            Other(IgnoredAny),
        }
        Ok(match Either::deserialize(deserializer)? {
            Either::Str(text) => Loose::Str(text),
            Either::Other(_) => Loose::Other,
        })
    }
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

impl RelayRequest {
    /// Validates one text frame from a client.
    pub fn parse(text: &str) -> Result<Self, RelayError> {
        if text.len() > MAX_FRAME_BYTES {
            return Err(RelayError::TooLarge(text.len()));
        }
        let routing: Routing<'_> =
            serde_json::from_str(text).map_err(|e| RelayError::NotJson(e.to_string()))?;
        let kind = match &routing.kind {
            Some(Loose::Str(kind)) => kind.as_ref(),
            _ => return Err(RelayError::MissingType),
        };
        if !KNOWN_TYPES.contains(&kind) {
            return Err(RelayError::UnknownType(kind.chars().take(64).collect()));
        }
        let to = match &routing.name {
            Some(Loose::Str(name)) if !name.trim().is_empty() => name.clone().into_owned(),
            _ => return Err(RelayError::MissingTarget),
        };
        let message: PeerMessage =
            serde_json::from_str(text).map_err(|e| RelayError::InvalidFields {
                kind: kind.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            to,
            message,
            text: text.to_owned(),
            has_from: routing.from,
        })
    }

    /// The frame as the recipient sees it: as sent, with `from` set to the sender.
    pub fn deliver_as(self, from: &str) -> String {
        let sender = Value::String(from.to_owned()).to_string();
        if !self.has_from {
            // `parse` proved the text is an object with at least `type` and `name`, so it
            // starts (after white space) with `{` and a key follows.
            if let Some(rest) = self.text.trim_start().strip_prefix('{') {
                let mut out = String::with_capacity(self.text.len() + sender.len() + 9);
                out.push_str("{\"from\":");
                out.push_str(&sender);
                out.push(',');
                out.push_str(rest);
                return out;
            }
        }
        let mut fields: Map<String, Value> = serde_json::from_str(&self.text).unwrap_or_default();
        fields.insert("from".to_owned(), Value::String(from.to_owned()));
        serde_json::to_string(&fields).unwrap_or_default()
    }
}
