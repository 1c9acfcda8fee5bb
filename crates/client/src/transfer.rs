//! The pure part of chat and file transfer: chunking, reassembly, the digest check, progress
//! figures and link detection. No browser APIs, so all of it is unit-tested natively; `talk`
//! drives it over the data channel.

use crate::sha256::Sha256;

/// Bytes of file content per data-channel message (safe across browsers: SCTP messages above
/// 64 KiB are not interoperable, and 16 KiB keeps the send queue smooth).
pub const CHUNK_BYTES: usize = 16 * 1024;
/// Bytes read from the file at once (then cut into chunks), so at most this much of a file is
/// in the sender's memory.
pub const READ_BYTES: u64 = 256 * 1024;
/// The sender pauses while the channel's send buffer holds more than this...
pub const BUFFER_HIGH_BYTES: u32 = 1024 * 1024;
/// ...and resumes when it drains below this (`bufferedAmountLowThreshold`).
pub const BUFFER_LOW_BYTES: u32 = 256 * 1024;
/// The receiver folds received chunks into one `Blob` every this many bytes, so the page holds
/// a bounded number of chunk buffers whatever the file's size.
pub const FOLD_BYTES: u64 = 1024 * 1024;
/// The largest file sent or accepted unless the user's setting says otherwise.
pub const DEFAULT_MAX_FILE_MIB: u64 = 512;
/// The `localStorage` key of that setting (a whole number of MiB).
pub const MAX_FILE_SETTING: &str = "duet.maxFileMiB";

/// Why a transfer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("the file is {size} bytes, over the limit of {max}")]
    TooLarge { size: u64, max: u64 },
    #[error("the sender sent more bytes than the {size} it announced")]
    Overflow { size: u64 },
    #[error("the file ended after {got} of {size} bytes")]
    Short { got: u64, size: u64 },
    #[error("the file's SHA-256 does not match: got {got}, expected {expected}")]
    DigestMismatch { got: String, expected: String },
}

/// The per-file size limit from the user's setting (MiB), or the default.
pub fn max_file_bytes(setting: Option<&str>) -> u64 {
    let mib = setting
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|mib| *mib > 0)
        .unwrap_or(DEFAULT_MAX_FILE_MIB);
    mib.saturating_mul(1024 * 1024)
}

pub fn check_size(size: u64, max: u64) -> Result<(), TransferError> {
    if size > max {
        Err(TransferError::TooLarge { size, max })
    } else {
        Ok(())
    }
}

/// The `[start, end)` byte ranges that cover `size` bytes in pieces of at most `piece`.
pub fn ranges(size: u64, piece: u64) -> impl Iterator<Item = (u64, u64)> {
    let piece = piece.max(1);
    (0..size.div_ceil(piece)).map(move |i| (i * piece, ((i + 1) * piece).min(size)))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sender's running digest of what it has sent.
#[derive(Default, Clone)]
pub struct Outgoing {
    hasher: Sha256,
    pub sent: u64,
}

impl Outgoing {
    pub fn feed(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.sent += bytes.len() as u64;
    }

    pub fn digest(self) -> String {
        hex(&self.hasher.finalize())
    }
}

/// The receiver's view of one file being put back together: bytes counted and hashed as they
/// arrive (the bytes themselves are kept by the browser, as `Blob` parts).
#[derive(Clone)]
pub struct Reassembly {
    size: u64,
    received: u64,
    hasher: Sha256,
}

impl Reassembly {
    pub fn new(size: u64) -> Self {
        Self {
            size,
            received: 0,
            hasher: Sha256::new(),
        }
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// Takes one chunk; refuses to go past the announced size.
    pub fn push(&mut self, bytes: &[u8]) -> Result<u64, TransferError> {
        let total = self.received + bytes.len() as u64;
        if total > self.size {
            return Err(TransferError::Overflow { size: self.size });
        }
        self.hasher.update(bytes);
        self.received = total;
        Ok(total)
    }

    /// The sender says it is done: every byte must be there and the digest must match.
    pub fn finish(self, expected_sha256: &str) -> Result<String, TransferError> {
        if self.received != self.size {
            return Err(TransferError::Short {
                got: self.received,
                size: self.size,
            });
        }
        let got = hex(&self.hasher.finalize());
        if got.eq_ignore_ascii_case(expected_sha256.trim()) {
            Ok(got)
        } else {
            Err(TransferError::DigestMismatch {
                got,
                expected: expected_sha256.to_owned(),
            })
        }
    }
}

/// Speed (bytes/s) and time left (s) of a transfer that moved `done` of `total` bytes in
/// `elapsed_ms`; `None` until there is something to go on.
pub fn rate(done: u64, total: u64, elapsed_ms: f64) -> Option<(f64, f64)> {
    if done == 0 || elapsed_ms <= 0.0 {
        return None;
    }
    let speed = done as f64 / (elapsed_ms / 1000.0);
    let left = total.saturating_sub(done) as f64 / speed;
    Some((speed, left))
}

/// A size as people read it: `512 B`, `1.5 KB`, `5.2 MB`, `1.1 GB` (powers of 1000).
pub fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000.0 {
        return format!("{} B", bytes.max(0.0).round() as u64);
    }
    let mut value = bytes / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    // Whole tenths printed as integers: formatting an f64 (`{:.1}`) would bring core's float
    // printing into the browser bundle, ~14 KB of wasm for this one line.
    let tenths = (value * 10.0).round() as u64;
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

/// A piece of a chat message: plain text, or a web link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    Link(String),
}

/// Cuts `text` into plain text and `http(s)://` links. Nothing else ever becomes a link (no
/// `javascript:`, no `data:`), and nothing is ever markup: the UI puts both kinds in as text.
pub fn linkify(text: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut plain_from = 0;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let scheme = ["https://", "http://"].into_iter().find(|s| {
            bytes[i..].len() >= s.len() && bytes[i..i + s.len()].eq_ignore_ascii_case(s.as_bytes())
        });
        let at_word_start = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if let (Some(scheme), true) = (scheme, at_word_start) {
            let end = text[i..]
                .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '`'))
                .map_or(text.len(), |n| i + n);
            let link =
                text[i..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'', ']']);
            if link.len() > scheme.len() {
                if plain_from < i {
                    segments.push(Segment::Text(text[plain_from..i].to_owned()));
                }
                segments.push(Segment::Link(link.to_owned()));
                i += link.len();
                plain_from = i;
                continue;
            }
        }
        i += text[i..].chars().next().map_or(1, char::len_utf8);
    }
    if plain_from < text.len() {
        segments.push(Segment::Text(text[plain_from..].to_owned()));
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256::tests::sha256_hex;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn ranges_cover_the_file_exactly() {
        assert_eq!(ranges(0, 16).count(), 0);
        assert_eq!(ranges(16, 16).collect::<Vec<_>>(), vec![(0, 16)]);
        assert_eq!(
            ranges(40, 16).collect::<Vec<_>>(),
            vec![(0, 16), (16, 32), (32, 40)]
        );
        let size = 5 * 1024 * 1024 + 7;
        let mut next = 0;
        for (start, end) in ranges(size, CHUNK_BYTES as u64) {
            assert_eq!(start, next);
            assert!(end - start <= CHUNK_BYTES as u64 && end > start);
            next = end;
        }
        assert_eq!(next, size);
        assert_eq!(ranges(5, 0).count(), 5);
    }

    #[test]
    fn reading_in_slices_then_chunks_reassembles_with_the_same_digest() {
        let file = sample(3 * READ_BYTES as usize + 12_345);
        let mut outgoing = Outgoing::default();
        let mut incoming = Reassembly::new(file.len() as u64);
        let mut rebuilt = Vec::new();
        for (start, end) in ranges(file.len() as u64, READ_BYTES) {
            let slice = &file[start as usize..end as usize];
            for (a, b) in ranges(slice.len() as u64, CHUNK_BYTES as u64) {
                let chunk = &slice[a as usize..b as usize];
                outgoing.feed(chunk);
                let frame = protocol::datachannel::encode_chunk(3, chunk);
                let (id, bytes) = protocol::datachannel::decode_chunk(&frame).unwrap();
                assert_eq!(id, 3);
                incoming.push(bytes).unwrap();
                rebuilt.extend_from_slice(bytes);
            }
        }
        assert_eq!(outgoing.sent, file.len() as u64);
        let digest = outgoing.digest();
        assert_eq!(digest, sha256_hex(&file));
        assert_eq!(incoming.received(), file.len() as u64);
        assert_eq!(incoming.finish(&digest), Ok(digest.clone()));
        assert_eq!(rebuilt, file);
    }

    #[test]
    fn a_wrong_digest_a_short_file_or_extra_bytes_are_caught() {
        let file = sample(1000);
        let mut incoming = Reassembly::new(1000);
        incoming.push(&file[..600]).unwrap();
        assert_eq!(
            incoming.clone().finish(&sha256_hex(&file)),
            Err(TransferError::Short {
                got: 600,
                size: 1000
            })
        );
        assert_eq!(
            incoming.push(&file[..401]),
            Err(TransferError::Overflow { size: 1000 })
        );
        incoming.push(&file[600..]).unwrap();
        let mut corrupted = file.clone();
        corrupted[10] ^= 1;
        assert!(matches!(
            incoming.clone().finish(&sha256_hex(&corrupted)),
            Err(TransferError::DigestMismatch { .. })
        ));
        assert!(incoming.finish(&sha256_hex(&file).to_uppercase()).is_ok());
        // The empty file has the empty digest.
        assert!(
            Reassembly::new(0)
                .finish("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
                .is_ok()
        );
    }

    #[test]
    fn the_size_limit_is_a_setting_with_a_default() {
        assert_eq!(max_file_bytes(None), DEFAULT_MAX_FILE_MIB * 1024 * 1024);
        assert_eq!(max_file_bytes(Some(" 2 ")), 2 * 1024 * 1024);
        assert_eq!(
            max_file_bytes(Some("0")),
            DEFAULT_MAX_FILE_MIB * 1024 * 1024
        );
        assert_eq!(
            max_file_bytes(Some("lots")),
            DEFAULT_MAX_FILE_MIB * 1024 * 1024
        );
        assert!(check_size(10, 10).is_ok());
        assert_eq!(
            check_size(11, 10),
            Err(TransferError::TooLarge { size: 11, max: 10 })
        );
    }

    #[test]
    fn speed_and_time_left() {
        assert_eq!(rate(0, 100, 1000.0), None);
        assert_eq!(rate(10, 100, 0.0), None);
        assert_eq!(rate(1_000_000, 5_000_000, 500.0), Some((2_000_000.0, 2.0)));
        assert_eq!(format_bytes(512.0), "512 B");
        assert_eq!(format_bytes(1500.0), "1.5 KB");
        assert_eq!(format_bytes(5_242_880.0), "5.2 MB");
        assert_eq!(format_bytes(2.5e9), "2.5 GB");
    }

    #[test]
    fn only_http_links_become_links() {
        use Segment::{Link, Text};
        assert_eq!(linkify("no links"), vec![Text("no links".into())]);
        assert_eq!(
            linkify("see <b>https://example.com/a?b=1&c=2</b>, ok"),
            vec![
                Text("see <b>".into()),
                Link("https://example.com/a?b=1&c=2".into()),
                Text("</b>, ok".into()),
            ]
        );
        assert_eq!(
            linkify("(HTTP://x.org/p). 好"),
            vec![
                Text("(".into()),
                Link("HTTP://x.org/p".into()),
                Text("). 好".into())
            ]
        );
        for text in [
            "javascript:alert(1)",
            "data:text/html,<b>x</b>",
            "http://",
            "xhttp://a.b",
        ] {
            assert!(linkify(text).iter().all(|s| matches!(s, Text(_))), "{text}");
        }
        assert_eq!(linkify(""), vec![]);
        assert_eq!(
            linkify("中文https://例子.测试/路径 后"),
            vec![
                Text("中文".into()),
                Link("https://例子.测试/路径".into()),
                Text(" 后".into())
            ]
        );
    }
}
