//! Duet's signaling wire format: every JSON frame that crosses the `/video` WebSocket, and the
//! account rules that both the browser and the server enforce.
//!
//! The seed tutorial's envelope `{"type", "sdp", "name", "from"}` is kept unchanged: `name` is the
//! user a message is for and `from` the user it comes from (always set by the server). Duet adds
//! call control, presence, ICE configuration and errors on top of it; `docs/protocol.md` shows each
//! message with an example.

mod account;
mod auth;
mod contacts;
pub mod datachannel;
mod decode;
mod history;
mod relay;

pub use account::{AccountError, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS, USERNAME_MAX_CHARS};
pub use account::{check_new_username, normalize_username, username_key, validate_password};
pub use auth::{AuthErrorCode, FlagAnswer, wait_minutes};
pub use contacts::{
    CallsFrom, Contact, ContactAction, ContactBook, ContactSettings, ContactState, ContactTarget,
};
pub use decode::FrameError;
pub use history::{CallHistory, CallOutcome, CallRecord};
pub use relay::{RelayError, RelayRequest};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The WebSocket close code for "your session is over" (logged out, expired, or the password
/// changed): the client goes to the login page instead of reconnecting.
pub const CLOSE_SESSION_ENDED: u16 = 4001;

/// Frames longer than this are refused (and the connection closed): an SDP is a few KiB.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Identifies one call across all its messages, chosen by the caller (a random token).
pub type CallId = String;

/// What one peer tells another through the relay, tagged by `type`.
///
/// `offer`, `answer`, `candidate` and `leave` are the seed's; `call_id` is optional on them so the
/// seed's pages, which never send it, keep working.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PeerMessage {
    /// An SDP offer (`sdp` is an `RTCSessionDescriptionInit`).
    Offer {
        sdp: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
    },
    /// An SDP answer.
    Answer {
        sdp: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
    },
    /// A trickled ICE candidate (`sdp` is an `RTCIceCandidateInit`, or `null` at the end).
    Candidate {
        sdp: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
    },
    /// The seed's hang-up.
    Leave {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
    },
    /// The caller asks the callee to ring. `video` says which kind of call rings: false for a
    /// voice call, which opens no camera on either side. A caller that does not say (an older
    /// Duet) places a video call.
    Invite {
        call_id: CallId,
        #[serde(default = "video_call")]
        video: bool,
    },
    /// The callee's client is ringing.
    Ringing { call_id: CallId },
    /// The callee picked up; the caller now sends an offer.
    Accept { call_id: CallId },
    /// The callee refused.
    Decline { call_id: CallId },
    /// The caller gave up before an answer.
    Cancel { call_id: CallId },
    /// The callee is already in another call.
    Busy { call_id: CallId },
    /// Either side ended an established call.
    Hangup { call_id: CallId },
    /// The sender's microphone or camera was switched on or off.
    Media {
        call_id: CallId,
        audio: bool,
        video: bool,
    },
}

/// An invite that does not say which kind of call it is asks for video, as every invite did
/// before voice calls.
fn video_call() -> bool {
    true
}

/// The `type` of a peer message, without its fields: what the relay needs to route it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKind {
    Offer,
    Answer,
    Candidate,
    Leave,
    Invite,
    Ringing,
    Accept,
    Decline,
    Cancel,
    Busy,
    Hangup,
    Media,
}

impl PeerKind {
    pub const ALL: [PeerKind; 12] = [
        Self::Offer,
        Self::Answer,
        Self::Candidate,
        Self::Leave,
        Self::Invite,
        Self::Ringing,
        Self::Accept,
        Self::Decline,
        Self::Cancel,
        Self::Busy,
        Self::Hangup,
        Self::Media,
    ];

    /// The `type` as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offer => "offer",
            Self::Answer => "answer",
            Self::Candidate => "candidate",
            Self::Leave => "leave",
            Self::Invite => "invite",
            Self::Ringing => "ringing",
            Self::Accept => "accept",
            Self::Decline => "decline",
            Self::Cancel => "cancel",
            Self::Busy => "busy",
            Self::Hangup => "hangup",
            Self::Media => "media",
        }
    }

    pub fn from_type(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|known| known.as_str() == kind)
    }

    /// Whether the sender's other tabs should see this message too: when one tab answers a
    /// ringing call, the others must stop ringing.
    /// Frames that start, answer or end a call (what the call history is written from).
    pub fn is_call_control(self) -> bool {
        matches!(
            self,
            Self::Invite
                | Self::Accept
                | Self::Decline
                | Self::Busy
                | Self::Cancel
                | Self::Hangup
                | Self::Leave
        )
    }

    pub fn is_echoed_to_own_tabs(self) -> bool {
        matches!(self, Self::Accept | Self::Decline | Self::Busy)
    }
}

impl PeerMessage {
    pub fn kind(&self) -> PeerKind {
        match self {
            Self::Offer { .. } => PeerKind::Offer,
            Self::Answer { .. } => PeerKind::Answer,
            Self::Candidate { .. } => PeerKind::Candidate,
            Self::Leave { .. } => PeerKind::Leave,
            Self::Invite { .. } => PeerKind::Invite,
            Self::Ringing { .. } => PeerKind::Ringing,
            Self::Accept { .. } => PeerKind::Accept,
            Self::Decline { .. } => PeerKind::Decline,
            Self::Cancel { .. } => PeerKind::Cancel,
            Self::Busy { .. } => PeerKind::Busy,
            Self::Hangup { .. } => PeerKind::Hangup,
            Self::Media { .. } => PeerKind::Media,
        }
    }

    /// The call this message belongs to, if it names one.
    pub fn call_id(&self) -> Option<&str> {
        match self {
            Self::Offer { call_id, .. }
            | Self::Answer { call_id, .. }
            | Self::Candidate { call_id, .. }
            | Self::Leave { call_id } => call_id.as_deref(),
            Self::Invite { call_id, .. }
            | Self::Ringing { call_id }
            | Self::Accept { call_id }
            | Self::Decline { call_id }
            | Self::Cancel { call_id }
            | Self::Busy { call_id }
            | Self::Hangup { call_id }
            | Self::Media { call_id, .. } => Some(call_id),
        }
    }
}

/// A frame the client sends: a message for user `name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientFrame {
    pub name: String,
    #[serde(flatten)]
    pub message: PeerMessage,
}

impl ClientFrame {
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why the server could not act on a frame; sent as `{"type":"error","code":…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not an object, or a known `type` with missing or mistyped fields.
    Malformed,
    /// A `type` the server does not know.
    UnknownType,
    /// The frame exceeded [`MAX_FRAME_BYTES`]; the connection is closed.
    TooLarge,
    /// Too many frames too fast; the connection is closed.
    RateLimited,
    /// The user in `name` is not online.
    PeerOffline,
    /// `name` is missing, empty, or the sender themself.
    InvalidTarget,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownType => "unknown_type",
            Self::TooLarge => "too_large",
            Self::RateLimited => "rate_limited",
            Self::PeerOffline => "peer_offline",
            Self::InvalidTarget => "invalid_target",
        }
    }

    pub const ALL: [ErrorCode; 6] = [
        Self::Malformed,
        Self::UnknownType,
        Self::TooLarge,
        Self::RateLimited,
        Self::PeerOffline,
        Self::InvalidTarget,
    ];
}

/// Which ICE candidates browsers may use (`RTCConfiguration.iceTransportPolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IceTransportPolicy {
    /// Host, server-reflexive and relay candidates (the browser default).
    #[default]
    All,
    /// TURN relay candidates only: neither user learns the other's address.
    Relay,
}

impl IceTransportPolicy {
    pub fn is_all(&self) -> bool {
        *self == Self::All
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Relay => "relay",
        }
    }
}

/// A message from the server itself (not relayed from a peer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerEvent {
    /// First frame on every connection: who you are and which ICE servers to use
    /// (an array of `RTCIceServer`, empty by default).
    Hello {
        username: String,
        ice_servers: Value,
        /// `relay` when the server runs in relay-only mode; absent means `all`.
        #[serde(default, skip_serializing_if = "IceTransportPolicy::is_all")]
        ice_transport_policy: IceTransportPolicy,
    },
    /// Fresh ICE servers (new short-lived TURN credentials) replacing those of `hello`; pushed
    /// by the server at half the credentials' lifetime, so a client always holds valid ones.
    Ice { ice_servers: Value },
    /// Second frame: everyone online now (you included), sorted. A long list comes in pages:
    /// every page but the last says `more`, and the list is the pages joined.
    Presence {
        online: Vec<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        more: bool,
        /// Those of this page's `online` who are in a call now.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        in_call: Vec<String>,
    },
    /// A user came online (their first connection opened).
    Online { username: String },
    /// A user went offline (their last connection closed).
    Offline { username: String },
    /// A user you see online went into a call (an answered one), or came out of their last.
    Status { username: String, in_call: bool },
    /// Your contact book changed (a request arrived, was accepted, a contact was removed):
    /// fetch `GET /contacts` again. It says nothing more, so it leaks nothing.
    Contacts,
    /// A call of yours was recorded (it ended): fetch `GET /calls` again.
    History,
    /// A frame of yours could not be handled. `call_id` is the refused frame's, when it named a
    /// call, so a client never ends a newer call over an error about an older one.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
    },
}

fn is_false(value: &bool) -> bool {
    !value
}

impl ServerEvent {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            call_id: None,
        }
    }

    /// An error about a frame that belonged to call `call_id` (if it named one).
    pub fn call_error(code: ErrorCode, message: impl Into<String>, call_id: Option<&str>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            call_id: call_id.map(str::to_owned),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A peer's message as delivered: `from` is the sender's authenticated username.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivered {
    pub from: String,
    #[serde(flatten)]
    pub message: PeerMessage,
}

/// Anything the server sends. Decoded through a flat struct (`decode.rs`), not a derive.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ServerMessage {
    Event(ServerEvent),
    Peer(Delivered),
}

impl ServerMessage {
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests;
