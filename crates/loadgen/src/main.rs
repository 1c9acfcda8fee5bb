//! `loadgen`: a signaling load generator for Duet and two reference relays.
//!
//! It opens N WebSocket connections (spread over several 127.0.0.x source addresses), pairs them,
//! and drives trickle-ICE `candidate` messages through the relay, open-loop at a fixed total rate
//! or closed-loop as fast as the relay answers. Every message carries its sequence number, sender,
//! recipient and send time (nanoseconds since an `Instant` shared by the whole process), so the
//! receiver measures one-way latency and counts lost, duplicated and misrouted messages.
//! `--mode idle` only holds the connections and reports the server's memory per connection.
//!
//! Every loop is bounded in time and only loopback (127.0.0.0/8) targets are accepted.

#![recursion_limit = "256"]

mod accounts;
mod cli;
mod connections;
mod load;
mod report;
mod shared;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use futures_util::stream::SplitSink;
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use accounts::{befriend_ring, login_burst, register_all};
use cli::{Args, Flavour, Mode, check_loopback};
use connections::{Ws, connect, raise_nofile};
use load::{read_loop, write_loop};
use report::{cpu_secs, loadavg, merged_histograms, own_rss, round2, rss_bytes};
use shared::{Counters, EPOCH, Shared, TIMELINE_SECS, now_ns};

fn main() {
    let args = Args::parse();
    if let Err(error) = check_loopback(&args.target) {
        eprintln!("loadgen: {error}");
        std::process::exit(2);
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder.enable_all().build().expect("tokio runtime");
    EPOCH.get_or_init(Instant::now);
    let code = runtime.block_on(async {
        match run(args).await {
            Ok(report) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
                let clean = report["lost"] == 0
                    && report["duplicated"] == 0
                    && report["misrouted"] == 0
                    && report["errors"] == 0;
                if clean { 0 } else { 1 }
            }
            Err(error) => {
                eprintln!("loadgen: {error}");
                2
            }
        }
    });
    // Connections still open are torn down with the process.
    runtime.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

async fn run(args: Args) -> Result<serde_json::Value, String> {
    let active = match args.mode {
        Mode::Idle => args.active.unwrap_or(0),
        _ => args.active.unwrap_or(args.conns),
    }
    .min(args.conns)
        / 2
        * 2;
    if args.mode != Mode::Idle && active < 2 {
        return Err("need at least two active connections".into());
    }
    if args.login_burst > 0 && args.flavour != Flavour::Duet {
        return Err("--login-burst needs --flavour duet".into());
    }
    if args.contacts > 0 && args.flavour != Flavour::Duet {
        return Err("--contacts needs --flavour duet".into());
    }
    let idle_conns = args.conns - active;
    let idle_users = args
        .idle_users
        .unwrap_or(idle_conns)
        .clamp(1, idle_conns.max(1));
    let nofile = raise_nofile(args.conns as u64 + 4096);
    if nofile < args.conns as u64 + 64 {
        return Err(format!(
            "file limit {nofile} is too low for {} connections",
            args.conns
        ));
    }
    let sources = args
        .sources
        // 28k ephemeral ports per address, less those still in TIME_WAIT from earlier runs.
        .unwrap_or_else(|| (args.conns / 4_000 + 1).clamp(1, 250) as u8)
        .max(1);
    let setup_deadline = Instant::now() + Duration::from_secs(args.setup_timeout);

    // Who each connection is. Active connection i is user `prefix i`; idle connection j shares
    // user `prefix (active + j % idle_users)`.
    let identity = |conn: usize| -> usize {
        if conn < active {
            conn
        } else {
            active + (conn - active) % idle_users
        }
    };
    let users = if idle_conns > 0 {
        active + idle_users
    } else {
        active
    };

    let shared = Arc::new(Shared {
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
    });
    let args = &shared.args;

    // 1. Accounts (Duet only).
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.register_concurrency)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let mut cookies: Vec<Option<HeaderValue>> = vec![None; users];
    let register_started = Instant::now();
    if args.flavour == Flavour::Duet {
        cookies = register_all(&http, args, users, setup_deadline).await?;
    }
    let register_secs = register_started.elapsed().as_secs_f64();
    let contacts_started = Instant::now();
    if args.contacts > 0 {
        befriend_ring(&http, args, &cookies, setup_deadline).await?;
    }
    let contacts_secs = contacts_started.elapsed().as_secs_f64();

    let rss_before = args.server_pid.and_then(rss_bytes);

    let cpu_used = |before: Option<f64>, pid: Option<u32>| match (before, pid.and_then(cpu_secs)) {
        (Some(b), Some(a)) => Some(round2(a - b)),
        _ => None,
    };
    // 2. Connections. Each one's reader starts at once: Duet queues presence frames for it.
    let ramp_up_cpu_before = args.server_pid.and_then(cpu_secs);
    let connect_started = Instant::now();
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    // Closed loop: one semaphore per direction; conn i sends under windows[i], its peer's reader
    // gives a permit back for every message it receives from i.
    let windows: Arc<Vec<Semaphore>> = Arc::new(
        (0..active)
            .map(|_| Semaphore::new(args.window.max(1)))
            .collect(),
    );
    let mut opens = Vec::with_capacity(args.conns);
    for conn in 0..args.conns {
        let gate = gate.clone();
        let shared = shared.clone();
        let cookie = cookies.get(identity(conn)).cloned().flatten();
        let source = Ipv4Addr::new(127, 0, 0, 1 + (conn % sources as usize) as u8);
        let id = identity(conn);
        let windows = windows.clone();
        let peer = if conn < active { Some(conn ^ 1) } else { None };
        opens.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.map_err(|e| e.to_string())?;
            let ws = tokio::time::timeout_at(
                setup_deadline.into(),
                connect(&shared.args, source, id, conn, cookie),
            )
            .await
            .map_err(|_| format!("connection {conn}: setup deadline passed"))??;
            // Read from the first moment: the server queues presence frames for us.
            let (sink, stream) = ws.split();
            let reader = tokio::spawn(read_loop(shared.clone(), stream, conn, peer, windows));
            Ok::<_, String>((sink, reader))
        }));
    }
    let mut sinks: Vec<Option<SplitSink<Ws, Message>>> = Vec::with_capacity(args.conns);
    let mut readers = Vec::with_capacity(args.conns);
    let mut connect_errors = 0usize;
    let mut first_connect_error = None;
    for open in opens {
        match open.await {
            Ok(Ok((sink, reader))) => {
                sinks.push(Some(sink));
                readers.push(reader);
            }
            Ok(Err(error)) => {
                connect_errors += 1;
                first_connect_error.get_or_insert(error);
                sinks.push(None);
            }
            Err(error) => {
                connect_errors += 1;
                first_connect_error.get_or_insert(error.to_string());
                sinks.push(None);
            }
        }
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    let connected = args.conns - connect_errors;
    if connect_errors > 0 {
        shared.error(format!(
            "{connect_errors} connections failed: {}",
            first_connect_error.clone().unwrap_or_default()
        ));
        shared
            .counters
            .errors
            .fetch_add(connect_errors as u64 - 1, Ordering::Relaxed);
    }
    // Let the ramp-up's presence traffic settle, then read memory.
    let frames_at_connect = shared.counters.server_frames.load(Ordering::Relaxed);
    let settle_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    // The ramp-up: connecting and the presence traffic it caused, settled.
    let server_cpu_ramp_up = cpu_used(ramp_up_cpu_before, args.server_pid);
    let frames_ramp_up = shared.counters.server_frames.load(Ordering::Relaxed);
    let rss_connected = args.server_pid.and_then(rss_bytes);
    let own_rss_connected = own_rss();

    // 3. Load.
    let mut writers = Vec::new();
    let load_started = Instant::now();
    let loadavg_before = loadavg();
    let server_cpu_before = args.server_pid.and_then(cpu_secs);
    let own_cpu_before = cpu_secs(std::process::id());
    if args.mode != Mode::Idle {
        let start_ns = now_ns();
        shared.load_from.store(start_ns, Ordering::Relaxed);
        let measure_from = start_ns + args.warmup * 1_000_000_000;
        let measure_to = measure_from + args.duration * 1_000_000_000;
        shared.measure_from.store(measure_from, Ordering::Relaxed);
        shared.measure_to.store(measure_to, Ordering::Relaxed);
        let period = Duration::from_secs_f64(active as f64 / args.rate.max(1) as f64);
        for (conn, sink) in sinks.iter_mut().enumerate().take(active) {
            let Some(sink) = sink.take() else { continue };
            // Stagger the senders over one period so the total rate is smooth.
            let phase = period.mul_f64(conn as f64 / active as f64);
            writers.push(tokio::spawn(write_loop(
                shared.clone(),
                sink,
                conn,
                conn ^ 1,
                windows.clone(),
                period,
                phase,
            )));
        }
        if args.login_burst > 0 {
            let shared = shared.clone();
            let http = http.clone();
            writers.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(
                    shared.args.warmup + shared.args.burst_at,
                ))
                .await;
                login_burst(&shared, &http).await;
                None
            }));
        }
        let total = Duration::from_secs(args.warmup + args.duration);
        tokio::time::sleep(total).await;
        shared.stop_sending.store(true, Ordering::Relaxed);
        for writer in writers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
        }
        tokio::time::sleep(Duration::from_secs(args.drain)).await;
    }
    let load_secs = load_started.elapsed().as_secs_f64();
    let server_cpu = cpu_used(server_cpu_before, args.server_pid);
    let own_cpu = cpu_used(own_cpu_before, Some(std::process::id()));
    let rss_after = args.server_pid.and_then(rss_bytes);
    shared.stop_reading.store(true, Ordering::Relaxed);
    let frames_total = shared.counters.server_frames.load(Ordering::Relaxed);

    let c = &shared.counters;
    let sent = c.sent.load(Ordering::Relaxed);
    let received = c.received.load(Ordering::Relaxed);
    let duplicated = c.duplicated.load(Ordering::Relaxed);
    let misrouted = c.misrouted.load(Ordering::Relaxed);
    let unique = received.saturating_sub(duplicated + misrouted);
    let lost = sent.saturating_sub(unique);
    let measured = c.measured.load(Ordering::Relaxed);
    let [h_all, h_burst, h_outside, h_send_lag] = merged_histograms();
    let quantiles = |h: &Histogram<u64>| {
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
        "server_frames_at_connect": frames_at_connect,
        "server_frames_ramp_up": frames_ramp_up,
        "server_cpu_ramp_up_secs": server_cpu_ramp_up,
        "contacts_each": args.contacts,
        "contacts_secs": round2(contacts_secs),
        "server_frames": frames_total,
        "server_frame_bytes": c.server_bytes.load(Ordering::Relaxed),
        "settle_secs": round2(settle_started.elapsed().as_secs_f64().min(args.settle as f64 + 1.0)),
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
        "load_secs": round2(load_secs),
        "measured_secs": args.duration,
        "delivered_per_sec": if args.mode == Mode::Idle { json!(null) } else { json!(round2(measured as f64 / args.duration.max(1) as f64)) },
        "target_rate": if args.mode == Mode::Open { json!(args.rate) } else { json!(null) },
        "latency": quantiles(&h_all),
        "send_lag": quantiles(&h_send_lag),
        "server_rss_before": rss_before,
        "server_rss_connected": rss_connected,
        "server_rss_after": rss_after,
        "server_bytes_per_conn": per_conn(rss_connected),
        "loadgen_rss_connected": own_rss_connected,
        "loadavg_before_load": loadavg_before,
        "loadavg_after_load": loadavg(),
        "server_cpu_secs": server_cpu,
        "loadgen_cpu_secs": own_cpu,
        "server_cpu_us_per_msg": match server_cpu {
            Some(cpu) if received > 0 => json!(round2(cpu * 1e6 / received as f64)),
            _ => serde_json::Value::Null,
        },
    });
    if args.mode != Mode::Idle {
        let seconds = (args.warmup + args.duration) as usize;
        report["timeline"] = json!(
            (0..seconds.min(TIMELINE_SECS))
                .map(|i| {
                    json!({
                        "sec": i,
                        "max_us": shared.timeline_max[i].load(Ordering::Relaxed) / 1000,
                        "over_1ms": shared.timeline_slow[i].load(Ordering::Relaxed),
                    })
                })
                .collect::<Vec<_>>()
        );
    }
    if args.login_burst > 0 {
        let from = shared.burst_from.load(Ordering::Relaxed);
        let to = shared.burst_to.load(Ordering::Relaxed);
        let load_from = shared.load_from.load(Ordering::Relaxed);
        report["login_burst"] = json!({
            "starts_at_sec": round2(from.saturating_sub(load_from) as f64 / 1e9),
            "logins": args.login_burst,
            "burst_secs": round2(to.saturating_sub(from) as f64 / 1e9),
            "latency_during_burst": quantiles(&h_burst),
            "latency_outside_burst": quantiles(&h_outside),
        });
    }
    if let Some(path) = &args.json_out {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        )
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    drop(sinks);
    for reader in readers {
        reader.abort();
    }
    Ok(report)
}
