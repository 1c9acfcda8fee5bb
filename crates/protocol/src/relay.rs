//! The relay's view of a client frame: enough typing to validate and route it, while every field
//! the sender wrote (but `from`) reaches the peer untouched, as the seed's contract requires.

use serde::Deserialize;
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
    fields: Map<String, Value>,
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

impl RelayRequest {
    /// Validates one text frame from a client.
    pub fn parse(text: &str) -> Result<Self, RelayError> {
        if text.len() > MAX_FRAME_BYTES {
            return Err(RelayError::TooLarge(text.len()));
        }
        let fields: Map<String, Value> =
            serde_json::from_str(text).map_err(|e| RelayError::NotJson(e.to_string()))?;
        let kind = match fields.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            _ => return Err(RelayError::MissingType),
        };
        if !KNOWN_TYPES.contains(&kind) {
            return Err(RelayError::UnknownType(kind.chars().take(64).collect()));
        }
        let to = match fields.get("name") {
            Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
            _ => return Err(RelayError::MissingTarget),
        };
        let object = Value::Object(fields);
        let message = PeerMessage::deserialize(&object).map_err(|e| RelayError::InvalidFields {
            kind: kind_of(&object),
            reason: e.to_string(),
        })?;
        let Value::Object(fields) = object else {
            unreachable!("constructed as an object above")
        };
        Ok(Self {
            to,
            message,
            fields,
        })
    }

    /// The frame as the recipient sees it: as sent, with `from` set to the sender.
    pub fn deliver_as(mut self, from: &str) -> String {
        self.fields
            .insert("from".to_owned(), Value::String(from.to_owned()));
        serde_json::to_string(&self.fields).unwrap_or_default()
    }
}

fn kind_of(object: &Value) -> String {
    object
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
