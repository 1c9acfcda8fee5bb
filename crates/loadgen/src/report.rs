//! What a run measured: latency histograms (with several instances, also local and cross pairs
//! apart), the servers' (Redis's, our own) readings from /proc, and the JSON report.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde_json::json;

use crate::cli::{Args, Flavour, Mode, Plan};
use crate::shared::{Shared, TIMELINE_SECS};

/// Everything measured along the way that the counters and histograms do not hold.
pub struct Readings {
    pub register_secs: f64,
    pub contacts_secs: f64,
    pub server_rss_before: Option<u64>,
    pub connected: usize,
    pub connect_secs: f64,
    pub ramp_up: RampUp,
    pub load: LoadReadings,
}

/// Connecting and the settle after it.
pub struct RampUp {
    pub frames_at_connect: u64,
    pub settle_started: Instant,
    pub server_cpu: Option<f64>,
    pub frames: u64,
    pub server_rss: Option<u64>,
    pub own_rss: Option<u64>,
}

/// Readings as the load begins, the baseline for what it cost.
pub struct LoadStart {
    started: Instant,
    loadavg: String,
    server_cpu: Option<Vec<f64>>,
    redis_cpu: Option<f64>,
    own_cpu: Option<f64>,
}

pub struct LoadReadings {
    pub secs: f64,
    pub loadavg_before: String,
    /// All the servers' CPU seconds together, and each one's (in `--server-pid` order).
    pub server_cpu: Option<f64>,
    pub server_cpu_each: Option<Vec<f64>>,
    pub redis_cpu: Option<f64>,
    pub own_cpu: Option<f64>,
    pub server_rss_after: Option<u64>,
}

impl LoadStart {
    pub fn read(args: &Args) -> LoadStart {
        LoadStart {
            started: Instant::now(),
            loadavg: loadavg(),
            server_cpu: cpu_each(&args.server_pid),
            redis_cpu: args.redis_pid.and_then(cpu_secs),
            own_cpu: cpu_secs(std::process::id()),
        }
    }

    pub fn finish(self, args: &Args) -> LoadReadings {
        let server_cpu_each = cpu_used_each(self.server_cpu, cpu_each(&args.server_pid));
        LoadReadings {
            secs: self.started.elapsed().as_secs_f64(),
            server_cpu: server_cpu_each
                .as_ref()
                .map(|each| round2(each.iter().sum())),
            server_cpu_each,
            redis_cpu: cpu_used(self.redis_cpu, args.redis_pid),
            own_cpu: cpu_used(self.own_cpu, Some(std::process::id())),
            server_rss_after: rss_total(&args.server_pid),
            loadavg_before: self.loadavg,
        }
    }
}

/// The report: counters, latency quantiles and readings; with the per-second timeline under
/// load, and the burst's own figures when there was one.
pub fn build(shared: &Shared, plan: &Plan, readings: &Readings) -> serde_json::Value {
    let args = &shared.args;
    let Plan {
        active,
        users,
        sources,
        ..
    } = *plan;
    let Readings {
        register_secs,
        contacts_secs,
        server_rss_before: rss_before,
        connected,
        connect_secs,
        ref ramp_up,
        ref load,
    } = *readings;
    let frames_total = shared.counters.server_frames.load(Ordering::Relaxed);

    let c = &shared.counters;
    let sent = c.sent.load(Ordering::Relaxed);
    let received = c.received.load(Ordering::Relaxed);
    let duplicated = c.duplicated.load(Ordering::Relaxed);
    let misrouted = c.misrouted.load(Ordering::Relaxed);
    let unique = received.saturating_sub(duplicated + misrouted);
    let lost = sent.saturating_sub(unique);
    let measured = c.measured.load(Ordering::Relaxed);
    let [h_all, h_burst, h_outside, h_send_lag, h_local, h_cross] = merged_histograms();
    let per_msg = |cpu: Option<f64>| match cpu {
        Some(cpu) if received > 0 => json!(round2(cpu * 1e6 / received as f64)),
        _ => serde_json::Value::Null,
    };
    let per_conn = |after: Option<u64>| match (rss_before, after) {
        (Some(b), Some(a)) if connected > 0 => json!(a.saturating_sub(b) / connected as u64),
        _ => serde_json::Value::Null,
    };
    let mut report = json!({
        "label": args.label,
        "flavour": format!("{:?}", args.flavour).to_lowercase(),
        "mode": format!("{:?}", args.mode).to_lowercase(),
        "envelope": format!("{:?}", args.envelope).to_lowercase(),
        "window": if args.mode == Mode::Closed { json!(args.window) } else { json!(null) },
        "conns": args.conns,
        "connected": connected,
        "active": active,
        "users": if args.flavour == Flavour::Duet { json!(users) } else { serde_json::Value::Null },
        "sources": sources,
        "register_secs": round2(register_secs),
        "connect_secs": round2(connect_secs),
        "connects_per_sec": round2(connected as f64 / connect_secs.max(1e-9)),
        "server_frames_at_connect": ramp_up.frames_at_connect,
        "server_frames_ramp_up": ramp_up.frames,
        "server_cpu_ramp_up_secs": ramp_up.server_cpu,
        "contacts_each": args.contacts,
        "contacts_secs": round2(contacts_secs),
        "server_frames": frames_total,
        "server_frame_bytes": c.server_bytes.load(Ordering::Relaxed),
        "settle_secs": round2(ramp_up.settle_started.elapsed().as_secs_f64().min(args.settle as f64 + 1.0)),
        "sent": sent,
        "received": received,
        "lost": lost,
        "duplicated": duplicated,
        "misrouted": misrouted,
        "out_of_order": c.out_of_order.load(Ordering::Relaxed),
        "errors": c.errors.load(Ordering::Relaxed),
        "error_frames": c.error_frames.load(Ordering::Relaxed),
        "closed_early": c.closed_early.load(Ordering::Relaxed),
        "first_error": shared.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        "load_secs": round2(load.secs),
        "measured_secs": args.duration,
        "delivered_per_sec": if args.mode == Mode::Idle { json!(null) } else { json!(round2(measured as f64 / args.duration.max(1) as f64)) },
        "target_rate": if args.mode == Mode::Open { json!(args.rate) } else { json!(null) },
        "latency": quantiles(&h_all),
        "send_lag": quantiles(&h_send_lag),
        "server_rss_before": rss_before,
        "server_rss_connected": ramp_up.server_rss,
        "server_rss_after": load.server_rss_after,
        "server_bytes_per_conn": per_conn(ramp_up.server_rss),
        "loadgen_rss_connected": ramp_up.own_rss,
        "loadavg_before_load": load.loadavg_before,
        "loadavg_after_load": loadavg(),
        "server_cpu_secs": load.server_cpu,
        "loadgen_cpu_secs": load.own_cpu,
        "server_cpu_us_per_msg": per_msg(load.server_cpu),
        "targets": args.target.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "instances": plan.instances,
        "placement": if plan.instances > 1 { json!(format!("{:?}", plan.placement).to_lowercase()) } else { json!(null) },
        "server_cpu_secs_each": load.server_cpu_each,
        "redis_cpu_secs": load.redis_cpu,
        "redis_cpu_us_per_msg": per_msg(load.redis_cpu),
    });
    if plan.instances > 1 && args.mode != Mode::Idle {
        report["latency_local"] = quantiles(&h_local);
        report["latency_cross"] = quantiles(&h_cross);
    }
    if args.mode != Mode::Idle {
        report["timeline"] = timeline(shared);
    }
    if args.login_burst > 0 {
        report["login_burst"] = login_burst(shared, &h_burst, &h_outside);
    }
    report
}

/// Per second of the load: the worst latency and how many messages took over 1 ms.
fn timeline(shared: &Shared) -> serde_json::Value {
    let args = &shared.args;
    let seconds = (args.warmup + args.duration) as usize;
    json!(
        (0..seconds.min(TIMELINE_SECS))
            .map(|i| {
                json!({
                    "sec": i,
                    "max_us": shared.timeline_max[i].load(Ordering::Relaxed) / 1000,
                    "over_1ms": shared.timeline_slow[i].load(Ordering::Relaxed),
                })
            })
            .collect::<Vec<_>>()
    )
}

/// When the login burst ran, and latency during it beside latency outside it.
fn login_burst(
    shared: &Shared,
    during: &Histogram<u64>,
    outside: &Histogram<u64>,
) -> serde_json::Value {
    let from = shared.burst_from.load(Ordering::Relaxed);
    let to = shared.burst_to.load(Ordering::Relaxed);
    let load_from = shared.load_from.load(Ordering::Relaxed);
    json!({
        "starts_at_sec": round2(from.saturating_sub(load_from) as f64 / 1e9),
        "logins": shared.args.login_burst,
        "burst_secs": round2(to.saturating_sub(from) as f64 / 1e9),
        "latency_during_burst": quantiles(during),
        "latency_outside_burst": quantiles(outside),
    })
}

fn quantiles(h: &Histogram<u64>) -> serde_json::Value {
    let us = |v: u64| (v as f64 / 1000.0 * 10.0).round() / 10.0;
    json!({
        "count": h.len(),
        "p50_us": us(h.value_at_quantile(0.50)),
        "p90_us": us(h.value_at_quantile(0.90)),
        "p99_us": us(h.value_at_quantile(0.99)),
        "p99_9_us": us(h.value_at_quantile(0.999)),
        "max_us": us(h.max()),
        "mean_us": us(h.mean() as u64),
    })
}

pub fn write(report: &serde_json::Value, path: &Path) -> Result<(), String> {
    std::fs::write(
        path,
        serde_json::to_string_pretty(report).unwrap_or_default(),
    )
    .map_err(|e| format!("writing {}: {e}", path.display()))
}

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
/// With several instances: messages between two ends on one instance, and across two.
pub const LOCAL: usize = 4;
pub const CROSS: usize = 5;
const HISTOGRAMS: usize = 6;
type ThreadHistograms = Arc<std::sync::Mutex<[Histogram<u64>; HISTOGRAMS]>>;
static THREAD_HISTOGRAMS: std::sync::Mutex<Vec<ThreadHistograms>> =
    std::sync::Mutex::new(Vec::new());

thread_local! {
    static LOCAL_HISTOGRAMS: ThreadHistograms = {
        let own = Arc::new(std::sync::Mutex::new(std::array::from_fn(|_| histogram())));
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
pub fn merged_histograms() -> [Histogram<u64>; HISTOGRAMS] {
    let mut total: [Histogram<u64>; HISTOGRAMS] = std::array::from_fn(|_| histogram());
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

/// Each process's CPU seconds (user + system), or `None` without processes or when one could
/// not be read.
pub fn cpu_each(pids: &[u32]) -> Option<Vec<f64>> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| cpu_secs(pid)).collect()
}

/// The processes' resident memory together, or `None` as for [`cpu_each`].
pub fn rss_total(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| rss_bytes(pid)).sum()
}

/// Each process's CPU seconds between two readings of [`cpu_each`].
pub fn cpu_used_each(before: Option<Vec<f64>>, after: Option<Vec<f64>>) -> Option<Vec<f64>> {
    let (before, after) = (before?, after?);
    Some(
        before
            .iter()
            .zip(&after)
            .map(|(b, a)| round2(a - b))
            .collect(),
    )
}

/// CPU seconds a process used since `before`, when both readings were had.
pub fn cpu_used(before: Option<f64>, pid: Option<u32>) -> Option<f64> {
    match (before, pid.and_then(cpu_secs)) {
        (Some(b), Some(a)) => Some(round2(a - b)),
        _ => None,
    }
}

pub fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
