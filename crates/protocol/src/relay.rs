//! The relay's view of a client frame: enough typing to validate and route it, while every field
//! the sender wrote (but `from`) reaches the peer untouched, as the seed's contract requires.
//!
//! Two readings give the same answers (`tests.rs` holds them to it on generated frames). The usual
//! frame — Duet's client (no `from`) or a seed page (its own name in `from`), each field once — is
//! read borrowed, its field values left as raw text, and delivered by splicing the sender's name
//! into the original text (in place of the `from` value the sender wrote, or in front): no JSON
//! tree is built and the SDP is never copied. Anything else (a repeated key, an escaped name,
//! every refusal) is read into a full JSON tree, which also words the errors.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::{ErrorCode, MAX_FRAME_BYTES, PeerKind, PeerMessage};

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

/// A validated frame waiting for delivery, borrowing the text it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayRequest<'a> {
    to: Cow<'a, str>,
    kind: PeerKind,
    call_id: Option<Cow<'a, str>>,
    body: Body<'a>,
}

#[derive(Debug, Clone, PartialEq)]
enum Body<'a> {
    /// The frame's own text and where in it the value of the sender's `from` lies, if it wrote
    /// one: delivery replaces that value, or prepends a `from`.
    Verbatim {
        text: &'a str,
        from: Option<Range<usize>>,
    },
    /// The frame's fields, whose `from` delivery replaces.
    Fields(Map<String, Value>),
}

impl<'a> RelayRequest<'a> {
    /// Validates one text frame from a client.
    pub fn parse(text: &'a str) -> Result<Self, RelayError> {
        if text.len() > MAX_FRAME_BYTES {
            return Err(RelayError::TooLarge(text.len()));
        }
        match Self::parse_borrowed(text) {
            Some(request) => Ok(request),
            None => Self::parse_tree(text),
        }
    }

    /// The recipient, as the sender wrote it in `name`.
    pub fn to(&self) -> &str {
        &self.to
    }

    pub fn kind(&self) -> PeerKind {
        self.kind
    }

    /// The call the message belongs to, if it names one.
    pub fn call_id(&self) -> Option<&str> {
        self.call_id.as_deref()
    }

    /// The same, kept past [`Self::deliver_as`]: free for Duet's frames, whose `call_id` is
    /// borrowed from the frame's text.
    pub fn call_id_cow(&self) -> Option<Cow<'a, str>> {
        self.call_id.clone()
    }

    /// The frame as the recipient sees it: as sent, with `from` set to the sender.
    pub fn deliver_as(self, from: &str) -> String {
        let from = Value::String(from.to_owned());
        match self.body {
            Body::Verbatim {
                text,
                from: Some(written),
            } => {
                let from = from.to_string();
                let mut out = String::with_capacity(text.len() + from.len());
                out.push_str(&text[..written.start]);
                out.push_str(&from);
                out.push_str(&text[written.end..]);
                out
            }
            Body::Verbatim { text, from: None } => {
                let fields = text.trim_start().strip_prefix('{').unwrap_or_default();
                let from = from.to_string();
                let mut out = String::with_capacity(text.len() + from.len() + 9);
                out.push_str("{\"from\":");
                out.push_str(&from);
                if !fields.trim_start().starts_with('}') {
                    out.push(',');
                }
                out.push_str(fields);
                out
            }
            Body::Fields(mut fields) => {
                fields.insert("from".to_owned(), from);
                Value::Object(fields).to_string()
            }
        }
    }

    /// The fast reading: `None` sends the frame to [`Self::parse_tree`], which is always right.
    /// It must accept only what that one accepts, with the same meaning.
    fn parse_borrowed(text: &'a str) -> Option<Self> {
        // serde also reads a struct from an array: only an object is a frame.
        if !text.trim_start().starts_with('{') {
            return None;
        }
        // A repeated known key fails here ("duplicate field"); the tree keeps the last one.
        let raw: RawFields<'a> = serde_json::from_str(text).ok()?;
        let from = match raw.from {
            Some(written) => Some(span_in(text, written.get())?),
            None => None,
        };
        let kind = PeerKind::from_type(plain_string(raw.kind?)?)?;
        let to = plain_string(raw.name?)?;
        if to.trim().is_empty() {
            return None;
        }
        let call_id = raw.call_id.map(plain_string);
        // The fields each kind requires, as `PeerMessage`'s derived `Deserialize` wants them.
        let fields_ok = match kind {
            PeerKind::Offer | PeerKind::Answer | PeerKind::Candidate => {
                raw.sdp && call_id.is_none_or(|id| id.is_some())
            }
            PeerKind::Leave => call_id.is_none_or(|id| id.is_some()),
            PeerKind::Media => {
                matches!(call_id, Some(Some(_))) && is_bool(raw.audio) && is_bool(raw.video)
            }
            PeerKind::Invite => {
                matches!(call_id, Some(Some(_))) && (raw.video.is_none() || is_bool(raw.video))
            }
            _ => matches!(call_id, Some(Some(_))),
        };
        if !fields_ok {
            return None;
        }
        // The raw reading skips values unchecked; the tree refuses a lone surrogate escape, a
        // number beyond f64 and nesting past serde_json's limit. Read again as the tree would,
        // keeping nothing.
        serde_json::from_str::<Checked>(text).ok()?;
        Some(Self {
            to: Cow::Borrowed(to),
            kind,
            call_id: call_id.flatten().map(Cow::Borrowed),
            body: Body::Verbatim { text, from },
        })
    }

    /// The full reading, into a JSON tree.
    fn parse_tree(text: &str) -> Result<Self, RelayError> {
        let fields: Map<String, Value> =
            serde_json::from_str(text).map_err(|e| RelayError::NotJson(e.to_string()))?;
        let kind = match fields.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            _ => return Err(RelayError::MissingType),
        };
        if PeerKind::from_type(kind).is_none() {
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
            to: Cow::Owned(to),
            kind: message.kind(),
            call_id: message.call_id().map(|id| Cow::Owned(id.to_owned())),
            body: Body::Fields(fields),
        })
    }
}

/// The fields the relay looks at, unparsed; serde skips all others without allocating.
#[derive(Deserialize)]
struct RawFields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    // `"from": null` must be replaced too: read as raw text, null included.
    #[serde(default, borrow, deserialize_with = "raw_even_null")]
    from: Option<&'a RawValue>,
    // Presence, not value: `"sdp": null` is valid.
    #[serde(default, deserialize_with = "present")]
    sdp: bool,
    #[serde(borrow)]
    call_id: Option<&'a RawValue>,
    #[serde(borrow)]
    audio: Option<&'a RawValue>,
    // An invite may leave `video` out, but not set it to null: null must reach the check.
    #[serde(default, borrow, deserialize_with = "raw_even_null")]
    video: Option<&'a RawValue>,
}

/// Any JSON value, read the way `serde_json::Value` reads it (escapes decoded, numbers
/// converted, depth counted) but kept nowhere.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(value: D) -> Result<Self, D::Error> {
        value.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> serde::de::Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Checked, A::Error> {
        while items.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut fields: A) -> Result<Checked, A::Error> {
        while fields.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

fn present<'de, D: serde::Deserializer<'de>>(field: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(field).map(|_| true)
}

fn raw_even_null<'de, D: serde::Deserializer<'de>>(
    field: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(field).map(Some)
}

/// Where `part`, a slice borrowed from `text`, lies in it.
fn span_in(text: &str, part: &str) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= text.len() && text.get(start..end) == Some(part)).then_some(start..end)
}

/// A JSON string without escapes, borrowed; anything else is left to the tree.
fn plain_string(raw: &RawValue) -> Option<&str> {
    let inner = raw.get().strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains(['\\', '"'])).then_some(inner)
}

fn is_bool(raw: Option<&RawValue>) -> bool {
    raw.is_some_and(|raw| matches!(raw.get(), "true" | "false"))
}

fn kind_of(object: &Value) -> String {
    object
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    /// Both readings, compared: the same verdict, and the same message delivered.
    fn assert_same_reading(text: &str) -> Result<(), TestCaseError> {
        let tree = RelayRequest::parse_tree(text);
        match (RelayRequest::parse(text), tree) {
            (Err(fast), Err(tree)) => prop_assert_eq!(fast, tree),
            (Ok(fast), Ok(tree)) => {
                prop_assert_eq!(fast.to(), tree.to());
                prop_assert_eq!(fast.kind(), tree.kind());
                prop_assert_eq!(fast.call_id(), tree.call_id());
                let fast: Value = serde_json::from_str(&fast.deliver_as("al\"ice")).unwrap();
                let tree: Value = serde_json::from_str(&tree.deliver_as("al\"ice")).unwrap();
                prop_assert_eq!(fast, tree);
            }
            (fast, tree) => prop_assert!(false, "{text}: {fast:?} but {tree:?}"),
        }
        Ok(())
    }

    /// Raw JSON values of every shape the readings treat differently.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("7".to_owned()),
            Just("{}".to_owned()),
            Just("[1,{\"a\":null}]".to_owned()),
            Just(r#"{"type":"offer","sdp":"v=0\r\n"}"#.to_owned()),
            Just(r#""\u0062ob""#.to_owned()),
            Just(r#""a\"b""#.to_owned()),
            // What the raw reading skips unchecked and the tree refuses, and their valid kin:
            // a surrogate pair, an escaped backslash before `u`.
            Just(r#""\ud800""#.to_owned()),
            Just(r#""x\uDC00y""#.to_owned()),
            Just(r#""\ud83d\ude00""#.to_owned()),
            Just(r#""\\ud800""#.to_owned()),
            Just(r#""a\udc00\ud800b""#.to_owned()),
            Just(r#"{"\udfff":1}"#.to_owned()),
            Just("1e999".to_owned()),
            Just("-1e400".to_owned()),
            Just(format!("1{}", "0".repeat(400))),
            Just(format!("{}{}", "[".repeat(127), "]".repeat(127))),
            Just(format!("{}{}", "[".repeat(200), "]".repeat(200))),
            "[a-z ]{0,6}".prop_map(|s| Value::String(s).to_string()),
        ]
    }

    fn frame() -> impl Strategy<Value = String> {
        let kind = prop_oneof![
            3 => proptest::sample::select(PeerKind::ALL.to_vec())
                .prop_map(|kind| format!("\"{}\"", kind.as_str())),
            1 => value(),
        ];
        let name = prop_oneof![3 => Just("\"bob\"".to_owned()), 1 => value()];
        let boolean = prop_oneof![3 => Just("true".to_owned()), 1 => value()];
        let call_id = prop_oneof![3 => Just("\"c1\"".to_owned()), 1 => value()];
        let fields = (
            proptest::option::weighted(0.95, kind),
            proptest::option::weighted(0.9, name),
            proptest::option::weighted(0.5, value()),
            proptest::option::weighted(0.6, value()),
            proptest::option::weighted(0.8, call_id),
            proptest::option::weighted(0.3, boolean.clone()),
            proptest::option::weighted(0.3, boolean),
            proptest::option::weighted(0.3, value()),
        );
        (
            fields,
            any::<bool>(),
            0..32usize,
            any::<prop::sample::Index>(),
        )
            .prop_flat_map(|(fields, spaced, repeat, order)| {
                let (kind, name, from, sdp, call_id, audio, video, extra) = fields;
                let mut pairs: Vec<String> = [
                    ("type", kind),
                    ("name", name),
                    ("from", from),
                    ("sdp", sdp),
                    ("call_id", call_id),
                    ("audio", audio),
                    ("video", video),
                    ("x-extra", extra),
                ]
                .into_iter()
                .filter_map(|(key, value)| value.map(|value| format!("\"{key}\":{value}")))
                .collect();
                // Now and then a key twice.
                if let Some(pair) = pairs.get(repeat).cloned() {
                    pairs.insert(order.index(pairs.len() + 1), pair);
                }
                Just(pairs).prop_shuffle().prop_map(move |pairs| {
                    let gap = if spaced { " \n" } else { "" };
                    format!("{gap}{{{gap}{}{gap}}}{gap}", pairs.join(","))
                })
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn the_fast_reading_agrees_with_the_tree(text in frame()) {
            assert_same_reading(&text)?;
        }
    }

    #[test]
    fn what_the_tree_refuses_the_fast_reading_refuses_too() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let frames = [
            r#"{"type":"offer","name":"bob","sdp":"\ud800","call_id":"k3"}"#.to_owned(),
            r#"{"type":"leave","name":"bob","x-extra":1e999}"#.to_owned(),
            r#"{"type":"leave","name":"bob","from":"\udc00"}"#.to_owned(),
            format!(r#"{{"type":"offer","name":"bob","sdp":{deep}}}"#),
            r#"{"type":"candidate","name":"bob","sdp":{"candidate":"\uDFFF"}}"#.to_owned(),
        ];
        for text in frames {
            let refused = RelayRequest::parse(&text).map(|r| r.kind());
            assert_eq!(
                refused.map_err(|e| e.code()),
                Err(ErrorCode::Malformed),
                "{text}"
            );
            assert_same_reading(&text).unwrap();
        }
        let paired = r#"{"type":"offer","name":"bob","sdp":"\ud83d\ude00"}"#;
        assert!(
            RelayRequest::parse(paired).is_ok(),
            "a surrogate pair is fine"
        );
    }

    #[test]
    fn duets_own_frames_take_the_fast_reading() {
        let frames = [
            json!({"type":"candidate","name":"bob","sdp":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5 typ host","sdpMid":"0"},"call_id":"k3"}),
            json!({"type":"candidate","name":"bob","sdp":null,"call_id":"k3"}),
            json!({"type":"offer","name":"张伟","sdp":{"type":"offer","sdp":"v=0\r\n"},"call_id":"k3"}),
            json!({"type":"media","name":"bob","call_id":"k3","audio":false,"video":true}),
            json!({"type":"leave","name":"bob"}),
        ];
        for frame in frames {
            let text = frame.to_string();
            let request = RelayRequest::parse(&text).unwrap();
            assert!(matches!(request.body, Body::Verbatim { .. }), "{text}");
            assert_same_reading(&text).unwrap();
        }
    }

    #[test]
    fn the_seeds_frames_take_the_fast_reading_and_lose_their_own_from() {
        let frames = [
            r#"{"type":"candidate","sdp":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5 typ host"},"name":"bob","from":"alice"}"#,
            r#"{"type":"leave","name":"bob","from":"mallory"}"#,
            r#"{"from":null,"type":"offer","sdp":{"type":"offer","sdp":"v=0\r\n"},"name":"bob"}"#,
            r#" { "type" : "answer" , "from" : {"spoof":["x"]} , "sdp" : 1 , "name" : "bob" } "#,
        ];
        for text in frames {
            let request = RelayRequest::parse(text).unwrap();
            assert!(
                matches!(request.body, Body::Verbatim { from: Some(_), .. }),
                "{text}"
            );
            assert_same_reading(text).unwrap();
            let delivered: Value = serde_json::from_str(&request.deliver_as("al\"ice")).unwrap();
            assert_eq!(delivered["from"], "al\"ice", "{text}");
        }
        // A second `from` is left to the tree, which keeps the last one (and replaces it).
        let twice = r#"{"type":"leave","name":"bob","from":"a","from":"b"}"#;
        assert!(matches!(
            RelayRequest::parse(twice).unwrap().body,
            Body::Fields(_)
        ));
        assert_same_reading(twice).unwrap();
    }
}
