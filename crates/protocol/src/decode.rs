//! Decoding what the server sends ([`ServerMessage`]) through one flat struct.
//!
//! serde's derive for an untagged enum over internally tagged enums with `flatten` buffers every
//! frame into its generic `Content` tree and tries each shape in turn: about 45 KB of the browser's
//! wasm for one function. [`Frame`] reads every field any server frame uses into an `Option`, and
//! [`ServerMessage::try_from`] picks the variant by `type`. It accepts what the derived decoder
//! accepted, with the same result (checked against it in `tests.rs`); unknown fields are ignored.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::{
    Delivered, ErrorCode, IceTransportPolicy, PeerKind, PeerMessage, ServerEvent, ServerMessage,
};

/// Every field of every server frame, each kept as raw JSON until the frame's `type` says
/// what it must be: a field another type would use is ignored, whatever it holds, as before.
#[derive(Deserialize)]
pub(crate) struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "present")]
    from: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    sdp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    call_id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    audio: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    video: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    username: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    ice_servers: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    ice_transport_policy: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    online: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    more: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    in_call: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    code: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    message: Option<Value>,
}

impl Frame {
    /// The fields of an already parsed object, as [`Frame`]'s derived decoder reads them from
    /// text: a field that is there counts, even as `null`; any other member is ignored.
    fn from_object(mut object: serde_json::Map<String, Value>) -> Result<Self, FrameError> {
        let mut take = |field: &str| object.remove(field);
        let kind = match take("type") {
            Some(Value::String(kind)) => kind,
            Some(_) => return Err(FrameError::Invalid("type")),
            None => return Err(FrameError::MissingField("type")),
        };
        Ok(Self {
            kind,
            from: take("from"),
            sdp: take("sdp"),
            call_id: take("call_id"),
            audio: take("audio"),
            video: take("video"),
            username: take("username"),
            ice_servers: take("ice_servers"),
            ice_transport_policy: take("ice_transport_policy"),
            online: take("online"),
            more: take("more"),
            in_call: take("in_call"),
            code: take("code"),
            message: take("message"),
        })
    }
}

impl ServerMessage {
    /// Decodes a frame that is already parsed into a JSON value: the browser parses with its
    /// own `JSON.parse`, so its bundle carries no JSON parser and no derived decoders. Agrees with
    /// [`ServerMessage::from_json`] (a test checks).
    pub fn from_value(value: Value) -> Result<Self, FrameError> {
        match value {
            Value::Object(object) => Self::try_from(Frame::from_object(object)?),
            _ => Err(FrameError::Invalid("frame")),
        }
    }
}

/// A field that is there, even as `null` (`Some(Value::Null)`); `None` when absent.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Why a well-formed JSON object is not a server frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unknown frame type `{0}`")]
    UnknownType(String),
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("field `{0}` has the wrong type or value")]
    Invalid(&'static str),
}

/// Any JSON value, which must be there (`sdp`, `ice_servers`: `null` is a value).
fn required(value: Option<Value>, field: &'static str) -> Result<Value, FrameError> {
    value.ok_or(FrameError::MissingField(field))
}

fn text(value: Option<Value>, field: &'static str) -> Result<String, FrameError> {
    match required(value, field)? {
        Value::String(text) => Ok(text),
        _ => Err(FrameError::Invalid(field)),
    }
}

/// A string that may be absent or `null`.
fn optional_text(value: Option<Value>, field: &'static str) -> Result<Option<String>, FrameError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(FrameError::Invalid(field)),
    }
}

fn flag(value: Option<Value>, field: &'static str) -> Result<bool, FrameError> {
    match required(value, field)? {
        Value::Bool(flag) => Ok(flag),
        _ => Err(FrameError::Invalid(field)),
    }
}

/// One of `options`, by its wire name.
fn one_of<T: Copy>(
    value: Option<Value>,
    field: &'static str,
    options: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, FrameError> {
    let wire = text(value, field)?;
    options
        .iter()
        .copied()
        .find(|option| name(*option) == wire)
        .ok_or(FrameError::Invalid(field))
}

fn names(value: Option<Value>, field: &'static str) -> Result<Vec<String>, FrameError> {
    let Value::Array(items) = required(value, field)? else {
        return Err(FrameError::Invalid(field));
    };
    items
        .into_iter()
        .map(|item| text(Some(item), field))
        .collect()
}

impl TryFrom<Frame> for ServerMessage {
    type Error = FrameError;

    fn try_from(frame: Frame) -> Result<Self, FrameError> {
        let event = match frame.kind.as_str() {
            "hello" => ServerEvent::Hello {
                username: text(frame.username, "username")?,
                ice_servers: required(frame.ice_servers, "ice_servers")?,
                ice_transport_policy: match frame.ice_transport_policy {
                    None => IceTransportPolicy::All,
                    policy => one_of(
                        policy,
                        "ice_transport_policy",
                        &[IceTransportPolicy::All, IceTransportPolicy::Relay],
                        IceTransportPolicy::as_str,
                    )?,
                },
            },
            "ice" => ServerEvent::Ice {
                ice_servers: required(frame.ice_servers, "ice_servers")?,
            },
            "presence" => ServerEvent::Presence {
                online: names(frame.online, "online")?,
                more: frame.more.is_some() && flag(frame.more, "more")?,
                in_call: match frame.in_call {
                    None => Vec::new(),
                    in_call => names(in_call, "in_call")?,
                },
            },
            "online" => ServerEvent::Online {
                username: text(frame.username, "username")?,
            },
            "offline" => ServerEvent::Offline {
                username: text(frame.username, "username")?,
            },
            "status" => ServerEvent::Status {
                username: text(frame.username, "username")?,
                in_call: flag(frame.in_call, "in_call")?,
            },
            "contacts" => ServerEvent::Contacts,
            "history" => ServerEvent::History,
            "error" => ServerEvent::Error {
                code: one_of(frame.code, "code", &ErrorCode::ALL, ErrorCode::as_str)?,
                message: text(frame.message, "message")?,
                call_id: optional_text(frame.call_id, "call_id")?,
            },
            other => {
                let kind = PeerKind::from_type(other)
                    .ok_or_else(|| FrameError::UnknownType(other.into()))?;
                let from = text(frame.from, "from")?;
                let message =
                    peer_message(kind, frame.sdp, frame.call_id, frame.audio, frame.video)?;
                return Ok(Self::Peer(Delivered { from, message }));
            }
        };
        Ok(Self::Event(event))
    }
}

fn peer_message(
    kind: PeerKind,
    sdp: Option<Value>,
    call_id: Option<Value>,
    audio: Option<Value>,
    video: Option<Value>,
) -> Result<PeerMessage, FrameError> {
    let described = |sdp: Option<Value>, call_id: Option<Value>| {
        Ok::<_, FrameError>((required(sdp, "sdp")?, optional_text(call_id, "call_id")?))
    };
    Ok(match kind {
        PeerKind::Offer => {
            let (sdp, call_id) = described(sdp, call_id)?;
            PeerMessage::Offer { sdp, call_id }
        }
        PeerKind::Answer => {
            let (sdp, call_id) = described(sdp, call_id)?;
            PeerMessage::Answer { sdp, call_id }
        }
        PeerKind::Candidate => {
            let (sdp, call_id) = described(sdp, call_id)?;
            PeerMessage::Candidate { sdp, call_id }
        }
        PeerKind::Leave => PeerMessage::Leave {
            call_id: optional_text(call_id, "call_id")?,
        },
        PeerKind::Media => PeerMessage::Media {
            call_id: text(call_id, "call_id")?,
            audio: flag(audio, "audio")?,
            video: flag(video, "video")?,
        },
        PeerKind::Invite => PeerMessage::Invite {
            call_id: text(call_id, "call_id")?,
            video: video.is_none() || flag(video, "video")?,
        },
        call_control => {
            let call_id = text(call_id, "call_id")?;
            match call_control {
                PeerKind::Ringing => PeerMessage::Ringing { call_id },
                PeerKind::Accept => PeerMessage::Accept { call_id },
                PeerKind::Decline => PeerMessage::Decline { call_id },
                PeerKind::Cancel => PeerMessage::Cancel { call_id },
                PeerKind::Busy => PeerMessage::Busy { call_id },
                _ => PeerMessage::Hangup { call_id },
            }
        }
    })
}

impl<'de> Deserialize<'de> for ServerMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let frame = Frame::deserialize(deserializer)?;
        Self::try_from(frame).map_err(serde::de::Error::custom)
    }
}
