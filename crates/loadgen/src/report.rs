//! What a run measured: latency histograms, the server's (and our own) readings from /proc,
//! and the JSON report.

use std::sync::Arc;

use hdrhistogram::Histogram;

/// VmRSS of a process in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// CPU time (user + system) a process has used, in seconds.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at state, field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((utime + stime) as f64 / hz)
}

pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub fn own_rss() -> Option<u64> {
    rss_bytes(std::process::id())
}

/// Latency histograms live per worker thread: recording is an uncontended lock and a counter
/// increment, with no per-connection allocation and no periodic merging while the load runs.
pub const ALL: usize = 0;
pub const BURST: usize = 1;
pub const OUTSIDE_BURST: usize = 2;
pub const SEND_LAG: usize = 3;
type ThreadHistograms = Arc<std::sync::Mutex<[Histogram<u64>; 4]>>;
static THREAD_HISTOGRAMS: std::sync::Mutex<Vec<ThreadHistograms>> =
    std::sync::Mutex::new(Vec::new());

thread_local! {
    static LOCAL_HISTOGRAMS: ThreadHistograms = {
        let own = Arc::new(std::sync::Mutex::new([histogram(), histogram(), histogram(), histogram()]));
        THREAD_HISTOGRAMS.lock().unwrap_or_else(|e| e.into_inner()).push(own.clone());
        own
    };
}

pub fn record(which: usize, nanos: u64) {
    LOCAL_HISTOGRAMS.with(|h| {
        let _ = h.lock().unwrap_or_else(|e| e.into_inner())[which].record(nanos.max(1_000));
    });
}

/// All threads' histograms merged.
pub fn merged_histograms() -> [Histogram<u64>; 4] {
    let mut total = [histogram(), histogram(), histogram(), histogram()];
    for h in THREAD_HISTOGRAMS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let h = h.lock().unwrap_or_else(|e| e.into_inner());
        for (t, h) in total.iter_mut().zip(h.iter()) {
            let _ = t.add(h);
        }
    }
    total
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 100 s, 3 significant figures; values are in nanoseconds.
    Histogram::new_with_bounds(1_000, 100_000_000_000, 3).expect("valid bounds")
}

pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
