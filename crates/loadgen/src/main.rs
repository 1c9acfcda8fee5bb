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

mod cli;
mod report;
mod shared;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use cli::{Args, Envelope, Flavour, Mode, check_loopback};
use report::{
    ALL, BURST, OUTSIDE_BURST, SEND_LAG, cpu_secs, loadavg, merged_histograms, own_rss, record,
    round2, rss_bytes,
};
use shared::{Counters, EPOCH, Shared, TIMELINE_SECS, now_ns};

type Ws = WebSocketStream<TcpStream>;

const PASSWORD: &str = "loadgen-password-1";

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

/// Raises RLIMIT_NOFILE (soft, and hard when permitted) to at least `want`.
fn raise_nofile(want: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur >= want {
            return limit.rlim_cur;
        }
        let raised = libc::rlimit {
            rlim_cur: want.max(limit.rlim_cur),
            rlim_max: want.max(limit.rlim_max),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
            return raised.rlim_cur;
        }
        let soft = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        libc::setrlimit(libc::RLIMIT_NOFILE, &soft);
        limit.rlim_max
    }
}

/// The relay's extra field: who sent what to whom, and when.
#[derive(Debug, Deserialize)]
struct Stamp {
    src: usize,
    dst: usize,
    seq: u64,
    ts: u64,
}

#[derive(Debug, Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    from: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    src: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    lg: Option<Stamp>,
    #[serde(default)]
    payload: Option<Payload>,
}

#[derive(Debug, Deserialize)]
struct Payload {
    #[serde(default)]
    lg: Option<Stamp>,
}

fn user_name(prefix: &str, index: usize) -> String {
    format!("{prefix}{index}")
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

fn session_cookie(response: &reqwest::Response) -> Option<HeaderValue> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("duet_session="))
        .and_then(|v| v.split(';').next())
        .and_then(|v| HeaderValue::from_str(v).ok())
}

async fn account_request(
    http: &reqwest::Client,
    target: SocketAddr,
    path: &str,
    user: &str,
) -> Result<HeaderValue, String> {
    let response = http
        .post(format!("http://{target}{path}"))
        .json(&json!({"username": user, "password": PASSWORD}))
        .send()
        .await
        .map_err(|e| format!("{path} {user}: {e}"))?;
    let cookie = session_cookie(&response);
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| format!("{path} {user}: {e}"))?;
    if body["flag"] != true {
        return Err(format!("{path} {user}: {body}"));
    }
    cookie.ok_or_else(|| format!("{path} {user}: no duet_session cookie"))
}

async fn register_all(
    http: &reqwest::Client,
    args: &Args,
    users: usize,
    deadline: Instant,
) -> Result<Vec<Option<HeaderValue>>, String> {
    let next = Arc::new(AtomicU64::new(0));
    let results = Arc::new(std::sync::Mutex::new(vec![None; users]));
    let mut tasks = Vec::new();
    for _ in 0..args.register_concurrency.max(1) {
        let next = next.clone();
        let results = results.clone();
        let http = http.clone();
        let prefix = args.prefix.clone();
        let target = args.target;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= users || Instant::now() > deadline {
                    return Ok::<(), String>(());
                }
                let name = user_name(&prefix, i);
                let cookie = account_request(&http, target, "/user/register", &name).await?;
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(cookie);
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let results = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    if results.iter().any(Option::is_none) {
        return Err("registration did not finish before the setup deadline".into());
    }
    Ok(results)
}

/// Makes user i and user i+d (mod the number of users) mutual contacts for d in 1..=K/2: i
/// asks, the other accepts. Every user ends with K contacts (fewer when there are few users).
async fn befriend_ring(
    http: &reqwest::Client,
    args: &Args,
    cookies: &[Option<HeaderValue>],
    deadline: Instant,
) -> Result<(), String> {
    let users = cookies.len();
    let reach = (args.contacts / 2).min(users.saturating_sub(1) / 2);
    let pairs: Vec<(usize, usize)> = (0..users)
        .flat_map(|i| (1..=reach).map(move |d| (i, (i + d) % users)))
        .collect();
    let pairs = Arc::new(pairs);
    let cookies: Arc<Vec<Option<HeaderValue>>> = Arc::new(cookies.to_vec());
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.contact_concurrency.max(1) {
        let (pairs, cookies, next) = (pairs.clone(), cookies.clone(), next.clone());
        let (http, prefix, target) = (http.clone(), args.prefix.clone(), args.target);
        tasks.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(&(asker, asked)) = pairs.get(k) else {
                    return Ok::<(), String>(());
                };
                if Instant::now() > deadline {
                    return Err("contacts were not set up before the setup deadline".into());
                }
                for (by, about, action) in [(asker, asked, "request"), (asked, asker, "accept")] {
                    let cookie = cookies[by].clone().ok_or("a user without a session")?;
                    contact_action(&http, target, cookie, action, &user_name(&prefix, about))
                        .await?;
                }
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

async fn contact_action(
    http: &reqwest::Client,
    target: SocketAddr,
    cookie: HeaderValue,
    action: &str,
    about: &str,
) -> Result<(), String> {
    let path = format!("/contacts/{action}");
    let body: serde_json::Value = http
        .post(format!("http://{target}{path}"))
        .header(reqwest::header::COOKIE, cookie)
        .json(&json!({ "username": about }))
        .send()
        .await
        .map_err(|e| format!("{path} {about}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{path} {about}: {e}"))?;
    if body["flag"] != true {
        return Err(format!("{path} {about}: {body}"));
    }
    Ok(())
}

/// `login_burst` logins at once (users 0.. are registered already); records when they ran.
async fn login_burst(shared: &Shared, http: &reqwest::Client) {
    let args = &shared.args;
    shared.burst_from.store(now_ns(), Ordering::Relaxed);
    let mut tasks = Vec::new();
    for i in 0..args.login_burst {
        let http = http.clone();
        let name = user_name(&args.prefix, i);
        let target = args.target;
        tasks.push(tokio::spawn(async move {
            account_request(&http, target, "/user/login", &name).await
        }));
    }
    for task in tasks {
        match task.await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => shared.error(format!("login burst: {error}")),
            Err(error) => shared.error(format!("login burst: {error}")),
        }
    }
    shared.burst_to.store(now_ns(), Ordering::Relaxed);
}

fn peer_id(prefix: &str, index: usize) -> String {
    user_name(prefix, index)
}

async fn connect(
    args: &Args,
    source: Ipv4Addr,
    identity: usize,
    conn: usize,
    cookie: Option<HeaderValue>,
) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(IpAddr::V4(source), 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let stream = socket
        .connect(args.target)
        .await
        .map_err(|e| format!("connect from {source}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let id = peer_id(&args.prefix, identity);
    let url = match args.flavour {
        Flavour::Duet => format!("ws://{}/video", args.target),
        Flavour::Minimal => format!("ws://{}/?name={id}", args.target),
        Flavour::Peerjs => format!(
            "ws://{}/peerjs?key=peerjs&id={id}&token=t{conn}",
            args.target
        ),
    };
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert(tokio_tungstenite::tungstenite::http::header::COOKIE, cookie);
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(16 << 20));
    let (mut ws, _) = client_async_with_config(request, stream, Some(config))
        .await
        .map_err(|e| format!("handshake from {source}: {e}"))?;
    // Wait for the greeting, so a connection counts only once the server has taken it in.
    let greeting = match args.flavour {
        Flavour::Duet => Some("hello"),
        Flavour::Peerjs => Some("OPEN"),
        Flavour::Minimal => None,
    };
    if let Some(expected) = greeting {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    if text.contains(expected) {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("before {expected}: {e}")),
                None => return Err(format!("closed before {expected}")),
            }
        }
    }
    Ok(ws)
}

/// Reads until told to stop: relayed messages are checked and timed, the rest counted.
async fn read_loop(
    shared: Arc<Shared>,
    mut stream: SplitStream<Ws>,
    me: usize,
    peer: Option<usize>,
    windows: Arc<Vec<Semaphore>>,
) {
    let prefix = &shared.args.prefix;
    let peer_name = peer.map(|p| peer_id(prefix, p));
    let mut next_seq = 0u64;
    let c = &shared.counters;
    loop {
        if shared.stop_reading.load(Ordering::Relaxed) {
            break;
        }
        // No timeout here: readers still waiting when the run ends are aborted.
        let frame = stream.next().await;
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None => {
                if !shared.stop_reading.load(Ordering::Relaxed) {
                    c.closed_early.fetch_add(1, Ordering::Relaxed);
                    shared.error(format!("connection {me} closed by the server"));
                }
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => {
                if !shared.stop_reading.load(Ordering::Relaxed) {
                    shared.error(format!("connection {me}: {error}"));
                }
                break;
            }
        };
        let now = now_ns();
        let Ok(incoming) = serde_json::from_str::<Incoming>(text.as_str()) else {
            shared.error(format!("connection {me}: unparsable frame"));
            continue;
        };
        let stamp = incoming.lg.or(incoming.payload.and_then(|p| p.lg));
        let Some(stamp) = stamp else {
            c.server_frames.fetch_add(1, Ordering::Relaxed);
            c.server_bytes
                .fetch_add(text.len() as u64, Ordering::Relaxed);
            if incoming.kind == "error" || incoming.kind == "ERROR" {
                c.error_frames.fetch_add(1, Ordering::Relaxed);
                shared.error(format!("connection {me}: {}", text.as_str()));
            }
            continue;
        };
        c.received.fetch_add(1, Ordering::Relaxed);
        let sender = incoming.from.or(incoming.src);
        let routed_ok = peer.is_some()
            && stamp.dst == me
            && Some(stamp.src) == peer
            && sender.as_deref() == peer_name.as_deref();
        if !routed_ok {
            c.misrouted.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if stamp.seq < next_seq {
            c.duplicated.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if stamp.seq > next_seq {
            c.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        next_seq = stamp.seq + 1;
        if let Some(window) = windows.get(stamp.src) {
            window.add_permits(1);
        }
        let latency = now.saturating_sub(stamp.ts).max(1_000);
        let load_from = shared.load_from.load(Ordering::Relaxed);
        if stamp.ts >= load_from {
            let slot = ((stamp.ts - load_from) / 1_000_000_000) as usize;
            if let Some(max) = shared.timeline_max.get(slot) {
                max.fetch_max(latency, Ordering::Relaxed);
                if latency > 1_000_000 {
                    shared.timeline_slow[slot].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        let from = shared.measure_from.load(Ordering::Relaxed);
        let to = shared.measure_to.load(Ordering::Relaxed);
        if stamp.ts >= from && stamp.ts < to {
            c.measured.fetch_add(1, Ordering::Relaxed);
            record(ALL, latency);
            if shared.args.login_burst > 0 {
                let b_from = shared.burst_from.load(Ordering::Relaxed);
                let b_to = shared.burst_to.load(Ordering::Relaxed);
                // A burst still running has b_to == 0 (before) or < b_from (previous run).
                let in_burst = stamp.ts >= b_from && (b_to < b_from || stamp.ts <= b_to);
                record(if in_burst { BURST } else { OUTSIDE_BURST }, latency);
            }
        }
    }
}

/// A realistic trickle-ICE candidate (about 300 bytes on the wire) with the loadgen stamp.
fn candidate_frame(
    flavour: Flavour,
    envelope: Envelope,
    prefix: &str,
    me: usize,
    peer: usize,
    seq: u64,
) -> String {
    let peer_name = peer_id(prefix, peer);
    let octet = me % 250 + 2;
    let port = 40_000 + (seq % 20_000);
    let ts = now_ns();
    let candidate = format!(
        r#"{{"candidate":"candidate:842163049 1 udp 1677729535 203.0.113.{octet} {port} typ srflx raddr 192.168.1.{octet} rport {port} generation 0 ufrag EsAw network-id 1 network-cost 10","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"EsAw"}}"#
    );
    let stamp = format!(r#""lg":{{"src":{me},"dst":{peer},"seq":{seq},"ts":{ts}}}"#);
    let call = me.min(peer);
    match (flavour, envelope) {
        (Flavour::Duet | Flavour::Minimal, Envelope::Duet) => format!(
            r#"{{"type":"candidate","name":"{peer_name}","sdp":{candidate},"call_id":"c{call:08x}",{stamp}}}"#
        ),
        // As the seed's `send()` writes it: its own name in `from`, which the relay replaces.
        (Flavour::Duet | Flavour::Minimal, Envelope::Seed) => {
            let own_name = peer_id(prefix, me);
            format!(
                r#"{{"type":"candidate","sdp":{candidate},{stamp},"name":"{peer_name}","from":"{own_name}"}}"#
            )
        }
        (Flavour::Peerjs, _) => format!(
            r#"{{"type":"CANDIDATE","dst":"{peer_name}","payload":{{"candidate":{candidate},"type":"media","connectionId":"mc_{call:08x}",{stamp}}}}}"#
        ),
    }
}

async fn write_loop(
    shared: Arc<Shared>,
    mut sink: SplitSink<Ws, Message>,
    me: usize,
    peer: usize,
    windows: Arc<Vec<Semaphore>>,
    period: Duration,
    phase: Duration,
) -> Option<SplitSink<Ws, Message>> {
    let args = &shared.args;
    let mut seq = 0u64;
    let window = &windows[me];
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while !shared.stop_sending.load(Ordering::Relaxed) {
        match args.mode {
            Mode::Open => {
                let scheduled = ticker.tick().await;
                let lag = tokio::time::Instant::now().saturating_duration_since(scheduled);
                record(SEND_LAG, lag.as_nanos() as u64);
            }
            Mode::Closed => {
                match tokio::time::timeout(Duration::from_millis(200), window.acquire()).await {
                    Ok(Ok(permit)) => permit.forget(),
                    Ok(Err(_)) => break,
                    Err(_) => continue,
                }
            }
            Mode::Idle => break,
        }
        if shared.stop_sending.load(Ordering::Relaxed) {
            break;
        }
        let frame = candidate_frame(args.flavour, args.envelope, &args.prefix, me, peer, seq);
        seq += 1;
        match tokio::time::timeout(
            Duration::from_secs(5),
            sink.send(Message::Text(Utf8Bytes::from(frame))),
        )
        .await
        {
            Ok(Ok(())) => {
                shared.counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(error)) => {
                shared.error(format!("send on {me}: {error}"));
                break;
            }
            Err(_) => {
                shared.error(format!("send on {me}: blocked for 5 s"));
                break;
            }
        }
    }
    Some(sink)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duet_frame_is_a_valid_candidate_and_keeps_its_stamp() {
        for envelope in [Envelope::Duet, Envelope::Seed] {
            let frame = candidate_frame(Flavour::Duet, envelope, "lg", 7, 6, 42);
            assert!((300..400).contains(&frame.len()), "{} bytes", frame.len());
            let request = protocol::RelayRequest::parse(&frame).expect("valid relay frame");
            assert_eq!(request.to(), "lg6");
            let delivered = request.deliver_as("lg7");
            let incoming: Incoming = serde_json::from_str(&delivered).unwrap();
            assert_eq!(incoming.from.as_deref(), Some("lg7"));
            let stamp = incoming.lg.expect("stamp relayed");
            assert_eq!((stamp.src, stamp.dst, stamp.seq), (7, 6, 42));
        }
    }

    #[test]
    fn peerjs_frame_carries_the_stamp_in_its_payload() {
        let frame = candidate_frame(Flavour::Peerjs, Envelope::Duet, "lg", 1, 0, 3);
        let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(value["type"], "CANDIDATE");
        assert_eq!(value["dst"], "lg0");
        // PeerServer relays only type, src, dst and payload.
        let relayed = json!({"type": value["type"], "src": "lg1", "dst": value["dst"], "payload": value["payload"]});
        let text = relayed.to_string();
        let incoming: Incoming = serde_json::from_str(&text).unwrap();
        let stamp = incoming
            .payload
            .and_then(|p| p.lg)
            .expect("stamp in payload");
        assert_eq!((stamp.src, stamp.dst, stamp.seq), (1, 0, 3));
    }
}
