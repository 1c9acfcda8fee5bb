//! The frame fuzzer's frames, and what the server must answer to each.
//!
//! Frames are generated from the protocol's message types (right and wrong), then some are
//! mutated. The expected answer is worked out from the protocol's own definitions read the slow,
//! full way (a JSON tree, then `PeerMessage`), as `docs/protocol.md` specifies it: whatever the
//! server's faster reading does, it must give the same answers.

use protocol::{
    ErrorCode, MAX_FRAME_BYTES, PeerKind, PeerMessage, normalize_username, username_key,
};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Every message type with the right fields, to the target, oneself or someone offline.
    Valid,
    /// Every message type with one field of the wrong type, or missing.
    WrongTypes,
    InvalidJson,
    DeepNesting,
    HugeNumbers,
    OddUnicode,
    /// One of the above with a few characters changed.
    Mutated,
    /// Binary frames of random bytes (invalid UTF-8 included).
    Binary,
    /// Over 64 KiB: refused, and the connection closed.
    Oversized,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Self::Valid => "valid messages",
            Self::WrongTypes => "wrong field types",
            Self::InvalidJson => "invalid JSON",
            Self::DeepNesting => "deep nesting",
            Self::HugeNumbers => "huge numbers",
            Self::OddUnicode => "odd Unicode",
            Self::Mutated => "mutated",
            Self::Binary => "binary frames",
            Self::Oversized => "oversized (>64 KiB)",
        }
    }
}

pub enum Payload {
    Text(String),
    Binary(Vec<u8>),
}

/// What the server must do with a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Answer with an error frame of this code.
    Error(ErrorCode),
    /// Relay it, unanswered, to the user with this key, as this JSON.
    Deliver { to: String, frame: Value },
    /// Answer `too_large`, then close with 1009.
    TooLarge,
}

/// Who a fuzzing connection is and whom it may name.
pub struct Cast {
    /// The sender, as registered.
    pub me: String,
    /// The one user its frames may reach.
    pub target: String,
    /// A name nobody has.
    pub offline: String,
}

pub struct Generator {
    rng: Rng,
    cast: Cast,
}

const WRONG_VALUES: &[&str] = &[
    "0",
    "-1",
    "1.5",
    "true",
    "false",
    "null",
    "[]",
    "{}",
    "[\"offer\"]",
    "{\"a\":1}",
    "\"\"",
    "\"   \"",
    "\"true\"",
    "\"0\"",
];

const HUGE_NUMBERS: &[&str] = &[
    "1e309",
    "-1e309",
    "1e-400",
    "123456789012345678901234567890",
    "18446744073709551616",
    "-9223372036854775809",
    "1.7976931348623157e308",
    "4.9e-324",
    "-0",
    "0.00000000000000000000000000000000000001",
    "1E+99999999999999999999",
    "1e-99999999999999999999",
    "9999999999999999999999999999999999999999e-40",
];

/// JSON string literals (quotes and escapes as written on the wire).
const ODD_STRINGS: &[&str] = &[
    r#""\ud800""#,
    r#""\udfff""#,
    r#""\udc00\ud800""#,
    r#""\ud800\u0041""#,
    r#""a\ud800b""#,
    r#""\ud800\ud800""#,
    r#""\uD800\uDBFF""#,
    r#""\ud83d\ude00""#,
    r#""\uDBFF\uDFFF""#,
    r#""\u0000""#,
    r#""\u001f\u007f""#,
    "\"\u{feff}\"",
    "\"\u{202e}evil\u{202c}\"",
    "\"\u{fffe}\u{ffff}\"",
    "\"e\u{301}\u{301}\u{301}\"",
    "\"\u{1f600}\u{200d}\u{1f600}\"",
    "\"\u{85}\u{2028}\u{2029}\"",
    "\"\u{10ffff}\"",
    "\"张伟\"",
    "\"ｆｚ\"",
];

const INVALID_JSON: &[&str] = &[
    "",
    " ",
    "{",
    "}",
    "{]",
    "[",
    "null",
    "true",
    "0",
    "\"leave\"",
    "[]",
    "[{\"type\":\"leave\",\"name\":\"x\"}]",
    "{type:\"leave\"}",
    "{'type':'leave'}",
    "{\"type\":\"leave\",}",
    "{\"type\":\"leave\" \"name\":\"x\"}",
    "{\"type\":NaN}",
    "{\"a\":Infinity}",
    "{\"a\":-}",
    "{\"a\":01}",
    "{\"a\":1.}",
    "{\"a\":.5}",
    "{\"a\":+1}",
    "{\"a\":\"\\x41\"}",
    "{\"a\":\"\\u12\"}",
    "{\"a\":\"\\uZZZZ\"}",
    "{\"a\":\"tab\there\"}",
    "{\"a\":\"new\nline\"}",
    "/*c*/{}",
    "{} {}",
    "{}x",
    "\u{feff}{}",
    "{\"a\":tru}",
    "{\"a\":nul}",
    "{\"type\":\"leave\",\"name\":\"x\"}\u{0}",
    "{\"type\":\"leave\",\"name\":\"x\"",
    "{\"type\":\"leave\",\"name\":\"x\"}}",
    "{\"type\":\"leave\",\"name\":\"x\"]",
    "{\"type\"::\"leave\"}",
    "{\"\":\"\"}",
];

const STRUCTURAL: &[&str] = &[
    "\"",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\\ud800",
    "1e999",
    "null",
    "\u{0}",
    "\u{1f600}",
    "\\u",
    "-",
    ".",
    "e",
    "\"type\"",
    "\"name\"",
];

impl Generator {
    pub fn new(rng: Rng, cast: Cast) -> Self {
        Self { rng, cast }
    }

    pub fn me(&self) -> &str {
        &self.cast.me
    }

    pub fn target(&self) -> &str {
        &self.cast.target
    }

    /// One frame of any category but [`Category::Oversized`].
    pub fn next(&mut self) -> (Category, Payload) {
        let category = match self.rng.below(100) {
            0..=17 => Category::Valid,
            18..=33 => Category::WrongTypes,
            34..=45 => Category::InvalidJson,
            46..=53 => Category::DeepNesting,
            54..=63 => Category::HugeNumbers,
            64..=75 => Category::OddUnicode,
            76..=95 => Category::Mutated,
            _ => Category::Binary,
        };
        let payload = match category {
            Category::Valid => Payload::Text(self.valid()),
            Category::WrongTypes => Payload::Text(self.wrong_types()),
            Category::InvalidJson => Payload::Text(self.invalid_json()),
            Category::DeepNesting => Payload::Text(self.deep_nesting()),
            Category::HugeNumbers => Payload::Text(self.huge_numbers()),
            Category::OddUnicode => Payload::Text(self.odd_unicode()),
            Category::Mutated => Payload::Text(self.mutated()),
            Category::Binary => {
                let len = self.rng.within(0..=300);
                Payload::Binary((0..len).map(|_| self.rng.next_u64() as u8).collect())
            }
            Category::Oversized => unreachable!("generated on its own"),
        };
        (category, payload)
    }

    /// A text frame over the limit: just over it (read whole, then refused) or past twice it
    /// (cut off by the WebSocket layer).
    pub fn oversized(&mut self) -> String {
        let len = if self.rng.chance(50) {
            self.rng.within(MAX_FRAME_BYTES + 1..=2 * MAX_FRAME_BYTES)
        } else {
            self.rng
                .within(2 * MAX_FRAME_BYTES + 1..=4 * MAX_FRAME_BYTES)
        };
        match self.rng.below(3) {
            0 => self.sized_offer(len),
            1 => "[".repeat(len),
            _ => "x".repeat(len),
        }
    }

    /// A valid offer to the target of exactly `len` bytes (`len` ≥ 200).
    pub fn sized_offer(&mut self, len: usize) -> String {
        let head = format!(
            "{{\"type\":\"offer\",\"name\":{},\"call_id\":\"big\",\"sdp\":\"",
            json_string(&self.cast.target)
        );
        let tail = "\"}";
        let fill = len.saturating_sub(head.len() + tail.len());
        format!("{head}{}{tail}", "v".repeat(fill))
    }

    fn kind(&mut self) -> PeerKind {
        *self.rng.pick(&PeerKind::ALL)
    }

    /// The recipient as written: mostly the target, sometimes oneself, someone offline, or the
    /// target in other letter case.
    fn recipient(&mut self) -> String {
        let name = match self.rng.below(20) {
            0 => self.cast.me.clone(),
            1 | 2 => self.cast.offline.clone(),
            3 => self.cast.target.to_uppercase(),
            _ => self.cast.target.clone(),
        };
        json_string(&name)
    }

    fn call_id(&mut self) -> String {
        json_string(&self.plain_text(1..=24))
    }

    /// Printable text of ASCII and other scripts (all valid Unicode).
    fn plain_text(&mut self, len: std::ops::RangeInclusive<usize>) -> String {
        const CHARS: &[char] = &[
            'a',
            'k',
            'z',
            'Q',
            '0',
            '9',
            '-',
            '_',
            ' ',
            '"',
            '\\',
            '/',
            '\n',
            '\t',
            'é',
            'ß',
            '张',
            '伟',
            'ж',
            '\u{1f600}',
            '\u{200b}',
            '\u{7f}',
        ];
        let len = self.rng.within(len);
        (0..len).map(|_| *self.rng.pick(CHARS)).collect()
    }

    fn sdp(&mut self) -> String {
        match self.rng.below(6) {
            0 => "null".to_owned(),
            1 => format!(
                "{{\"type\":\"offer\",\"sdp\":{}}}",
                json_string(&format!(
                    "v=0\r\no=- {} 2 IN IP4 127.0.0.1\r\n",
                    self.rng.next_u64()
                ))
            ),
            2 => format!(
                "{{\"candidate\":{},\"sdpMid\":\"0\",\"sdpMLineIndex\":0}}",
                json_string(&format!(
                    "candidate:1 1 udp 2122260223 127.0.0.1 {} typ host",
                    self.rng.within(1024..=65535)
                ))
            ),
            3 => json_string(&self.plain_text(0..=40)),
            4 => format!("[{},{}]", self.rng.below(1000), self.rng.chance(50)),
            _ => self.any_value(2),
        }
    }

    /// Any valid JSON value, nested at most `depth` deep.
    fn any_value(&mut self, depth: usize) -> String {
        match self.rng.below(if depth == 0 { 5 } else { 7 }) {
            0 => "null".to_owned(),
            1 => self.rng.chance(50).to_string(),
            2 => (self.rng.next_u64() as i64 >> self.rng.below(60)).to_string(),
            3 => format!("{}.{}", self.rng.below(1000), self.rng.below(1000)),
            4 => json_string(&self.plain_text(0..=12)),
            5 => {
                let n = self.rng.below(4);
                let items: Vec<String> = (0..n).map(|_| self.any_value(depth - 1)).collect();
                format!("[{}]", items.join(","))
            }
            _ => {
                let n = self.rng.below(4);
                let items: Vec<String> = (0..n)
                    .map(|_| {
                        let key = json_string(&self.plain_text(0..=6));
                        format!("{key}:{}", self.any_value(depth - 1))
                    })
                    .collect();
                format!("{{{}}}", items.join(","))
            }
        }
    }

    /// A well-formed message's fields (keys and values as raw JSON).
    fn valid_fields(&mut self, kind: PeerKind) -> Vec<(String, String)> {
        let mut fields = vec![
            ("\"type\"".to_owned(), json_string(kind.as_str())),
            ("\"name\"".to_owned(), self.recipient()),
        ];
        match kind {
            PeerKind::Offer | PeerKind::Answer | PeerKind::Candidate => {
                fields.push(("\"sdp\"".to_owned(), self.sdp()));
                if self.rng.chance(70) {
                    fields.push(("\"call_id\"".to_owned(), self.call_id()));
                }
            }
            PeerKind::Leave => {
                if self.rng.chance(50) {
                    fields.push(("\"call_id\"".to_owned(), self.call_id()));
                }
            }
            PeerKind::Media => {
                fields.push(("\"call_id\"".to_owned(), self.call_id()));
                fields.push(("\"audio\"".to_owned(), self.rng.chance(50).to_string()));
                fields.push(("\"video\"".to_owned(), self.rng.chance(50).to_string()));
            }
            _ => fields.push(("\"call_id\"".to_owned(), self.call_id())),
        }
        if self.rng.chance(15) {
            let spoof = match self.rng.below(3) {
                0 => "null".to_owned(),
                1 => json_string(&self.cast.target),
                _ => self.any_value(1),
            };
            fields.push(("\"from\"".to_owned(), spoof));
        }
        if self.rng.chance(15) {
            let value = self.any_value(2);
            fields.push(("\"x-extra\"".to_owned(), value));
        }
        fields
    }

    /// Fields as a JSON object: keys in any order, with or without whitespace.
    fn object(&mut self, mut fields: Vec<(String, String)>) -> String {
        for i in (1..fields.len()).rev() {
            let j = self.rng.below(i + 1);
            fields.swap(i, j);
        }
        let gap = *self.rng.pick(&["", "", "", " ", "\n\t "]);
        let pairs: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("{gap}{k}{gap}:{gap}{v}{gap}"))
            .collect();
        format!("{gap}{{{}}}{gap}", pairs.join(","))
    }

    fn valid(&mut self) -> String {
        let kind = self.kind();
        let fields = self.valid_fields(kind);
        self.object(fields)
    }

    fn wrong_types(&mut self) -> String {
        let kind = self.kind();
        let mut fields = self.valid_fields(kind);
        let i = self.rng.below(fields.len());
        if self.rng.chance(20) {
            fields.remove(i);
        } else {
            fields[i].1 = (*self.rng.pick(WRONG_VALUES)).to_owned();
        }
        if self.rng.chance(10) {
            // A field that belongs to another message type.
            let stray = self
                .rng
                .pick(&["\"audio\"", "\"video\"", "\"sdp\"", "\"call_id\""]);
            fields.push((
                (*stray).to_owned(),
                (*self.rng.pick(WRONG_VALUES)).to_owned(),
            ));
        }
        self.object(fields)
    }

    fn invalid_json(&mut self) -> String {
        match self.rng.below(3) {
            0 => (*self.rng.pick(INVALID_JSON)).to_owned(),
            1 => {
                let frame = self.valid();
                let cut = self.rng.below(frame.len().max(1));
                cut_at(&frame, cut).to_owned()
            }
            _ => {
                const GARBAGE: &[char] = &['{', '}', '[', ']', '"', ':', ',', 'a', '1', ' ', '\\'];
                let len = self.rng.within(1..=200);
                (0..len).map(|_| *self.rng.pick(GARBAGE)).collect()
            }
        }
    }

    fn deep_nesting(&mut self) -> String {
        let depth = *self
            .rng
            .pick(&[16, 100, 126, 127, 128, 129, 200, 1_000, 5_000, 20_000]);
        let nested = match self.rng.below(3) {
            0 => format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
            // Capped so the frame stays under the size limit.
            1 => {
                let depth = depth.min(10_000);
                format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
            }
            // Unclosed: the parser must give up, not wait or recurse to the end.
            _ => "[{\"a\":".repeat(depth / 2),
        };
        self.placed(nested)
    }

    fn huge_numbers(&mut self) -> String {
        let number = if self.rng.chance(10) {
            format!("1{}", "0".repeat(self.rng.within(300..=5_000)))
        } else {
            (*self.rng.pick(HUGE_NUMBERS)).to_owned()
        };
        self.placed(number)
    }

    fn odd_unicode(&mut self) -> String {
        let odd = (*self.rng.pick(ODD_STRINGS)).to_owned();
        if self.rng.chance(15) {
            // As a key.
            let kind = self.kind();
            let mut fields = self.valid_fields(kind);
            fields.push((odd, "1".to_owned()));
            return self.object(fields);
        }
        if self.rng.chance(10) {
            // The target's name, escaped (a different spelling of the same user).
            let escaped: String = self
                .cast
                .target
                .chars()
                .map(|c| format!("\\u{:04x}", u32::from(c)))
                .collect();
            let kind = self.kind();
            let mut fields = self.valid_fields(kind);
            fields[1].1 = format!("\"{escaped}\"");
            return self.object(fields);
        }
        self.placed(odd)
    }

    /// `value` in one field of a message that is otherwise well-formed, or alone.
    fn placed(&mut self, value: String) -> String {
        if self.rng.chance(10) {
            return value;
        }
        let kind = self.kind();
        let mut fields = self.valid_fields(kind);
        let keys = [
            "\"type\"",
            "\"name\"",
            "\"sdp\"",
            "\"call_id\"",
            "\"audio\"",
            "\"from\"",
            "\"x-extra\"",
        ];
        let key = *self.rng.pick(&keys);
        match fields.iter_mut().find(|(k, _)| k == key) {
            Some(field) => field.1 = value,
            None => fields.push((key.to_owned(), value)),
        }
        self.object(fields)
    }

    fn mutated(&mut self) -> String {
        let mut text = match self.rng.below(4) {
            0 | 1 => self.valid(),
            2 => self.wrong_types(),
            _ => self.odd_unicode(),
        };
        for _ in 0..self.rng.within(1..=4) {
            let at = cut_at(&text, self.rng.below(text.len() + 1)).len();
            match self.rng.below(5) {
                0 => {
                    let end = cut_at(&text, at + self.rng.within(1..=8)).len().max(at);
                    text.replace_range(at..end, "");
                }
                1 | 2 => {
                    let piece = *self.rng.pick(STRUCTURAL);
                    text.insert_str(at, piece);
                }
                3 => {
                    let end = cut_at(&text, at + self.rng.within(1..=16)).len().max(at);
                    let copy = text[at..end].to_owned();
                    text.insert_str(end, &copy);
                }
                _ => {
                    let end = cut_at(&text, at + 1).len().max(at);
                    let piece = *self.rng.pick(STRUCTURAL);
                    text.replace_range(at..end, piece);
                }
            }
        }
        text
    }
}

/// `text` cut at the last character boundary at or before `at`.
fn cut_at(text: &str, at: usize) -> &str {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    &text[..at]
}

pub fn json_string(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// The answer `docs/protocol.md` prescribes for `text` from user `me`, with `online` the users
/// connected now (keys).
pub fn expect(text: &str, me: &str, online: &[String]) -> Expect {
    if text.len() > MAX_FRAME_BYTES {
        return Expect::TooLarge;
    }
    let Ok(mut fields) = serde_json::from_str::<Map<String, Value>>(text) else {
        return Expect::Error(ErrorCode::Malformed);
    };
    let Some(Value::String(kind)) = fields.get("type") else {
        return Expect::Error(ErrorCode::Malformed);
    };
    if PeerKind::from_type(kind).is_none() {
        return Expect::Error(ErrorCode::UnknownType);
    }
    let to = match fields.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
        _ => return Expect::Error(ErrorCode::InvalidTarget),
    };
    let object = Value::Object(fields.clone());
    if PeerMessage::deserialize(&object).is_err() {
        return Expect::Error(ErrorCode::Malformed);
    }
    let Ok(key) = normalize_username(&to).map(|name| username_key(&name)) else {
        return Expect::Error(ErrorCode::PeerOffline);
    };
    if key == username_key(me) {
        return Expect::Error(ErrorCode::InvalidTarget);
    }
    if !online.contains(&key) {
        return Expect::Error(ErrorCode::PeerOffline);
    }
    fields.insert("from".to_owned(), Value::String(me.to_owned()));
    Expect::Deliver {
        to: key,
        frame: Value::Object(fields),
    }
}
