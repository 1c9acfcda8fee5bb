//! What two browsers say to each other over a call's WebRTC data channel: chat and file
//! transfer. The server never sees any of it.
//!
//! Control messages are JSON text frames tagged by `kind`, each carrying the protocol version
//! `v`. A kind this version does not know decodes as [`DataMessage::Unknown`] and is ignored, so
//! a newer peer can add kinds without breaking an older one. File contents travel as binary
//! frames: a 4-byte big-endian transfer id, then the bytes (see [`encode_chunk`]).
//! `docs/protocol.md` shows each message.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The data-channel protocol version this build speaks (the `v` of every text frame).
pub const DATA_VERSION: u32 = 1;
/// The channel's label and its negotiated stream id (both sides create it themselves).
pub const DATA_CHANNEL_LABEL: &str = "duet";
pub const DATA_CHANNEL_ID: u16 = 0;
/// Text frames longer than this are refused unread (a chat message is at most a few KiB).
pub const MAX_TEXT_FRAME_BYTES: usize = 64 * 1024;
/// The longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 4000;
/// Bytes of the transfer id in front of every binary chunk.
pub const CHUNK_HEADER_BYTES: usize = 4;

/// Identifies one chat message or one file transfer, chosen by its sender (a counter).
pub type ItemId = u32;

/// One control message, tagged by `kind`.
///
/// On the wire each message is one flat JSON object ([`Wire`]): `v`, `kind`, then the fields of
/// that kind. Going through a flat struct instead of serde's internally-tagged enum derive keeps
/// the browser bundle ~25 KB (raw) smaller, and makes tolerance explicit: unknown fields are
/// ignored, an unknown `kind` is [`DataMessage::Unknown`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub enum DataMessage {
    /// A chat message; `at` is the sender's clock in ms since the Unix epoch.
    Chat { id: ItemId, text: String, at: f64 },
    /// The chat message `id` arrived (the delivered mark).
    ChatAck { id: ItemId },
    /// The sender proposes a file. Nothing is sent before the receiver accepts.
    FileOffer {
        id: ItemId,
        name: String,
        size: u64,
        #[serde(default)]
        mime: String,
    },
    /// The receiver wants the file: the sender starts streaming chunks.
    FileAccept { id: ItemId },
    /// The receiver does not want it (or it is over the receiver's size limit).
    FileDecline { id: ItemId },
    /// Either side stops a transfer; chunks still in flight are dropped. `id` is always the
    /// sender's number for the file; `by_sender` says which side cancelled (both sides may have a
    /// file with the same number, one in each direction).
    FileCancel { id: ItemId, by_sender: bool },
    /// Every chunk was sent; `sha256` is the whole file's digest in lower-case hex.
    FileEnd { id: ItemId, sha256: String },
    /// A kind from a newer version: ignored.
    Unknown,
}

/// The flat wire form of a [`DataMessage`]: every field any kind uses, each optional.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Wire {
    #[serde(default = "first_version")]
    v: u32,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<ItemId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by_sender: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

fn first_version() -> u32 {
    1
}

/// A required field that a known kind lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{kind}` without `{field}`")]
pub struct MissingField {
    kind: String,
    field: &'static str,
}

impl TryFrom<Wire> for DataMessage {
    type Error = MissingField;

    fn try_from(wire: Wire) -> Result<Self, MissingField> {
        let kind = wire.kind;
        let need = |field: &'static str| MissingField {
            kind: kind.clone(),
            field,
        };
        let id = wire.id.ok_or_else(|| need("id"));
        Ok(match kind.as_str() {
            "chat" => Self::Chat {
                id: id?,
                text: wire.text.ok_or_else(|| need("text"))?,
                at: wire.at.unwrap_or_default(),
            },
            "chat-ack" => Self::ChatAck { id: id? },
            "file-offer" => Self::FileOffer {
                id: id?,
                name: wire.name.ok_or_else(|| need("name"))?,
                size: wire.size.ok_or_else(|| need("size"))?,
                mime: wire.mime.unwrap_or_default(),
            },
            "file-accept" => Self::FileAccept { id: id? },
            "file-decline" => Self::FileDecline { id: id? },
            "file-cancel" => Self::FileCancel {
                id: id?,
                by_sender: wire.by_sender.ok_or_else(|| need("by_sender"))?,
            },
            "file-end" => Self::FileEnd {
                id: id?,
                sha256: wire.sha256.ok_or_else(|| need("sha256"))?,
            },
            _ => Self::Unknown,
        })
    }
}

impl From<DataMessage> for Wire {
    fn from(message: DataMessage) -> Self {
        let wire = |kind: &str, id: ItemId| Wire {
            v: DATA_VERSION,
            kind: kind.to_owned(),
            id: Some(id),
            ..Wire::default()
        };
        match message {
            DataMessage::Chat { id, text, at } => Wire {
                text: Some(text),
                at: Some(at),
                ..wire("chat", id)
            },
            DataMessage::ChatAck { id } => wire("chat-ack", id),
            DataMessage::FileOffer {
                id,
                name,
                size,
                mime,
            } => Wire {
                name: Some(name),
                size: Some(size),
                mime: Some(mime),
                ..wire("file-offer", id)
            },
            DataMessage::FileAccept { id } => wire("file-accept", id),
            DataMessage::FileDecline { id } => wire("file-decline", id),
            DataMessage::FileCancel { id, by_sender } => Wire {
                by_sender: Some(by_sender),
                ..wire("file-cancel", id)
            },
            DataMessage::FileEnd { id, sha256 } => Wire {
                sha256: Some(sha256),
                ..wire("file-end", id)
            },
            DataMessage::Unknown => Wire {
                v: DATA_VERSION,
                kind: "unknown".to_owned(),
                ..Wire::default()
            },
        }
    }
}

/// Why a frame from the other browser was ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("data-channel frame of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("malformed data-channel frame: {0}")]
    Malformed(String),
    #[error("binary frame of {0} bytes is shorter than its header")]
    ShortChunk(usize),
}

impl DataMessage {
    /// The text frame for this message.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a text frame. The version `v` is informational: each version only adds kinds and
    /// fields, which older readers ignore. Unknown kinds are `Ok(Unknown)`; anything else that
    /// does not fit is an error for the caller to log and drop.
    pub fn decode(text: &str) -> Result<Self, DataError> {
        Self::check_size(text)?;
        let value = serde_json::from_str(text).map_err(|e| DataError::Malformed(e.to_string()))?;
        Self::from_value(value)
    }

    /// A text frame over [`MAX_TEXT_FRAME_BYTES`] is refused before it is parsed.
    pub fn check_size(text: &str) -> Result<(), DataError> {
        if text.len() > MAX_TEXT_FRAME_BYTES {
            return Err(DataError::TooLarge(text.len()));
        }
        Ok(())
    }

    /// Reads a frame already parsed into a JSON value (the browser parses with `JSON.parse`,
    /// so its bundle carries no JSON parser and no derived decoder), by the rules of
    /// [`DataMessage::decode`].
    pub fn from_value(value: Value) -> Result<Self, DataError> {
        let Value::Object(mut object) = value else {
            return Err(DataError::Malformed("not an object".into()));
        };
        let o = &mut object;
        let wire = Wire {
            v: member(o, "v", count)?.unwrap_or_else(first_version),
            kind: member(o, "kind", text)?
                .ok_or_else(|| DataError::Malformed("missing field `kind`".into()))?,
            id: member(o, "id", count)?,
            text: member(o, "text", text)?,
            at: member(o, "at", |v| v.as_f64())?,
            name: member(o, "name", text)?,
            size: member(o, "size", |v| v.as_u64())?,
            mime: member(o, "mime", text)?,
            by_sender: member(o, "by_sender", |v| v.as_bool())?,
            sha256: member(o, "sha256", text)?,
        };
        Self::try_from(wire).map_err(|e| DataError::Malformed(e.to_string()))
    }
}

/// Member `name` of a frame's object: absent or `null` is `None` (as serde reads an `Option`),
/// any other value that `read` does not take is an error.
fn member<T>(
    object: &mut Map<String, Value>,
    name: &'static str,
    read: impl Fn(Value) -> Option<T>,
) -> Result<Option<T>, DataError> {
    match object.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => read(value)
            .map(Some)
            .ok_or_else(|| DataError::Malformed(format!("field `{name}` has the wrong type"))),
    }
}

fn text(value: Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text),
        _ => None,
    }
}

fn count(value: Value) -> Option<u32> {
    value.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// A binary frame: the transfer id, then `bytes`.
pub fn encode_chunk(id: ItemId, bytes: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(CHUNK_HEADER_BYTES + bytes.len());
    frame.extend_from_slice(&id.to_be_bytes());
    frame.extend_from_slice(bytes);
    frame
}

/// Splits a binary frame into its transfer id and bytes.
pub fn decode_chunk(frame: &[u8]) -> Result<(ItemId, &[u8]), DataError> {
    match frame.split_first_chunk::<CHUNK_HEADER_BYTES>() {
        Some((id, bytes)) => Ok((ItemId::from_be_bytes(*id), bytes)),
        None => Err(DataError::ShortChunk(frame.len())),
    }
}

/// Only the id of a binary frame (the receiver reads the header without copying the bytes).
pub fn chunk_id(header: &[u8]) -> Result<ItemId, DataError> {
    decode_chunk(header).map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn all() -> Vec<DataMessage> {
        vec![
            DataMessage::Chat {
                id: 1,
                text: "hi <b>there</b> https://example.com/?a=1&b=2 你好".into(),
                at: 1_767_000_000_000.0,
            },
            DataMessage::ChatAck { id: 1 },
            DataMessage::FileOffer {
                id: 7,
                name: "photo 1.jpg".into(),
                size: 5 * 1024 * 1024,
                mime: "image/jpeg".into(),
            },
            DataMessage::FileAccept { id: 7 },
            DataMessage::FileDecline { id: 7 },
            DataMessage::FileCancel {
                id: 7,
                by_sender: false,
            },
            DataMessage::FileEnd {
                id: 7,
                sha256: "ab".repeat(32),
            },
        ]
    }

    #[test]
    fn every_message_round_trips_with_its_version() {
        for message in all() {
            let text = message.encode();
            let value: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["v"], json!(DATA_VERSION), "{text}");
            assert!(value["kind"].is_string(), "{text}");
            assert_eq!(DataMessage::decode(&text), Ok(message));
        }
    }

    #[test]
    fn the_documented_examples_decode() {
        let cases = [
            (
                r#"{"v":1,"kind":"chat","id":3,"text":"hello","at":1767000000000}"#,
                DataMessage::Chat {
                    id: 3,
                    text: "hello".into(),
                    at: 1_767_000_000_000.0,
                },
            ),
            (
                r#"{"v":1,"kind":"chat-ack","id":3}"#,
                DataMessage::ChatAck { id: 3 },
            ),
            (
                r#"{"v":1,"kind":"file-offer","id":1,"name":"a.pdf","size":1024,"mime":"application/pdf"}"#,
                DataMessage::FileOffer {
                    id: 1,
                    name: "a.pdf".into(),
                    size: 1024,
                    mime: "application/pdf".into(),
                },
            ),
            (
                r#"{"kind":"file-accept","id":1}"#,
                DataMessage::FileAccept { id: 1 },
            ),
        ];
        for (text, message) in cases {
            assert_eq!(DataMessage::decode(text), Ok(message), "{text}");
        }
    }

    #[test]
    fn unknown_kinds_and_extra_fields_are_tolerated() {
        assert_eq!(
            DataMessage::decode(r#"{"v":2,"kind":"reaction","id":1,"emoji":"👍"}"#),
            Ok(DataMessage::Unknown)
        );
        assert_eq!(
            DataMessage::decode(r#"{"v":2,"kind":"chat-ack","id":4,"extra":true}"#),
            Ok(DataMessage::ChatAck { id: 4 })
        );
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        for text in [
            "",
            "not json",
            "[]",
            "null",
            r#"{"v":1}"#,
            r#"{"kind":7}"#,
            r#"{"kind":"chat","id":"x","text":"t","at":0}"#,
            r#"{"kind":"chat","id":-1,"text":"t","at":0}"#,
            r#"{"kind":"file-offer","id":1,"name":"a","size":-5}"#,
            r#"{"kind":"file-end","id":1}"#,
        ] {
            assert!(
                matches!(DataMessage::decode(text), Err(DataError::Malformed(_))),
                "{text}"
            );
        }
        let huge = format!(
            r#"{{"kind":"chat","id":1,"at":0,"text":"{}"}}"#,
            "a".repeat(70_000)
        );
        assert!(matches!(
            DataMessage::decode(&huge),
            Err(DataError::TooLarge(_))
        ));
    }

    #[test]
    fn chunks_carry_their_transfer_id() {
        let frame = encode_chunk(0x0102_0304, b"abc");
        assert_eq!(&frame[..4], &[1, 2, 3, 4]);
        assert_eq!(decode_chunk(&frame), Ok((0x0102_0304, &b"abc"[..])));
        assert_eq!(decode_chunk(&encode_chunk(9, &[])), Ok((9, &[][..])));
        assert_eq!(chunk_id(&frame[..4]), Ok(0x0102_0304));
        assert_eq!(decode_chunk(&[1, 2, 3]), Err(DataError::ShortChunk(3)));
    }
}
