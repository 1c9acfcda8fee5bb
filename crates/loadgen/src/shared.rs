//! State every task shares: the clock, the counters, and the signals that end each phase.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::cli::Args;

pub const TIMELINE_SECS: usize = 600;

/// The shared clock: message timestamps are nanoseconds since this instant.
pub static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Counters shared by every task.
#[derive(Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Received messages that were sent inside the measured window.
    pub measured: AtomicU64,
    pub duplicated: AtomicU64,
    pub misrouted: AtomicU64,
    /// Messages that arrived after a gap in their flow's sequence (later counted as lost).
    pub out_of_order: AtomicU64,
    pub errors: AtomicU64,
    /// Frames from the server that are not relayed messages (hello, presence, online, …).
    pub server_frames: AtomicU64,
    pub server_bytes: AtomicU64,
    pub error_frames: AtomicU64,
    pub closed_early: AtomicU64,
}

pub struct Shared {
    pub args: Args,
    pub counters: Counters,
    /// Stop sending (the load is over).
    pub stop_sending: AtomicBool,
    /// Stop reading (drain is over).
    pub stop_reading: AtomicBool,
    pub measure_from: AtomicU64,
    pub measure_to: AtomicU64,
    pub burst_from: AtomicU64,
    pub burst_to: AtomicU64,
    /// Per second of send time since the load began: worst latency (ns) and messages over 1 ms.
    pub timeline_max: Vec<AtomicU64>,
    pub timeline_slow: Vec<AtomicU64>,
    pub load_from: AtomicU64,
    pub first_error: std::sync::Mutex<Option<String>>,
}

impl Shared {
    pub fn new(args: Args) -> Shared {
        Shared {
            counters: Counters::default(),
            stop_sending: AtomicBool::new(false),
            stop_reading: AtomicBool::new(false),
            measure_from: AtomicU64::new(u64::MAX),
            measure_to: AtomicU64::new(u64::MAX),
            burst_from: AtomicU64::new(u64::MAX),
            burst_to: AtomicU64::new(0),
            first_error: std::sync::Mutex::new(None),
            timeline_max: (0..TIMELINE_SECS).map(|_| AtomicU64::new(0)).collect(),
            timeline_slow: (0..TIMELINE_SECS).map(|_| AtomicU64::new(0)).collect(),
            load_from: AtomicU64::new(u64::MAX),
            args,
        }
    }

    pub fn error(&self, what: String) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(what);
        }
    }
}
