//! The load: each connection's reader, which checks and times the relayed messages, and each
//! active connection's writer, open or closed loop, with the frames they exchange.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::accounts::login_burst;
use crate::cli::{Envelope, Flavour, Mode};
use crate::connections::{Sink, Ws, peer_id};
use crate::report::{
    ALL, BURST, CROSS, LOCAL, OUTSIDE_BURST, RampUp, SEND_LAG, cpu_each, cpu_used_each, own_rss,
    record, round2, rss_total,
};
use crate::shared::{Shared, now_ns};

/// Closed loop: one semaphore per direction; conn i sends under windows[i], its peer's reader
/// gives a permit back for every message it receives from i.
pub type Windows = Arc<Vec<Semaphore>>;

pub fn windows(active: usize, window: usize) -> Windows {
    Arc::new((0..active).map(|_| Semaphore::new(window.max(1))).collect())
}

/// Holds the connections for `--settle` seconds, then reads what the ramp-up cost.
pub async fn settle(shared: &Shared, ramp_up_cpu_before: Option<Vec<f64>>) -> RampUp {
    let args = &shared.args;
    // Let the ramp-up's presence traffic settle, then read memory.
    let frames_at_connect = shared.counters.server_frames.load(Ordering::Relaxed);
    let settle_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.settle)).await;
    // The ramp-up: connecting and the presence traffic it caused, settled.
    RampUp {
        frames_at_connect,
        settle_started,
        server_cpu: cpu_used_each(ramp_up_cpu_before, cpu_each(&args.server_pid))
            .map(|each| round2(each.iter().sum())),
        frames: shared.counters.server_frames.load(Ordering::Relaxed),
        server_rss: rss_total(&args.server_pid),
        own_rss: own_rss(),
    }
}

/// The load (closed or open loop): `--warmup` seconds, the `--duration` measured, then the
/// senders stop and messages in flight get `--drain` seconds to arrive.
pub async fn drive(
    shared: &Arc<Shared>,
    active: usize,
    sinks: &mut [Option<Sink>],
    windows: &Windows,
    http: &reqwest::Client,
) {
    let args = &shared.args;
    open_measured_window(shared);
    let mut writers = spawn_writers(shared, active, sinks, windows);
    if args.login_burst > 0 {
        writers.push(spawn_login_burst(shared.clone(), http.clone()));
    }
    let total = Duration::from_secs(args.warmup + args.duration);
    tokio::time::sleep(total).await;
    shared.stop_sending.store(true, Ordering::Relaxed);
    for writer in writers.drain(..) {
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    }
    tokio::time::sleep(Duration::from_secs(args.drain)).await;
}

/// Marks the load's start; messages sent from `--warmup` seconds on, for `--duration`, count.
fn open_measured_window(shared: &Shared) {
    let args = &shared.args;
    let start_ns = now_ns();
    shared.load_from.store(start_ns, Ordering::Relaxed);
    let measure_from = start_ns + args.warmup * 1_000_000_000;
    let measure_to = measure_from + args.duration * 1_000_000_000;
    shared.measure_from.store(measure_from, Ordering::Relaxed);
    shared.measure_to.store(measure_to, Ordering::Relaxed);
}

/// A writer per active connection that connected, sending to its pair.
fn spawn_writers(
    shared: &Arc<Shared>,
    active: usize,
    sinks: &mut [Option<Sink>],
    windows: &Windows,
) -> Vec<JoinHandle<Option<Sink>>> {
    let period = Duration::from_secs_f64(active as f64 / shared.args.rate.max(1) as f64);
    let mut writers = Vec::new();
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
    writers
}

/// The `--login-burst`, `--burst-at` seconds into the measured load.
fn spawn_login_burst(shared: Arc<Shared>, http: reqwest::Client) -> JoinHandle<Option<Sink>> {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(
            shared.args.warmup + shared.args.burst_at,
        ))
        .await;
        login_burst(&shared, &http).await;
        None
    })
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

/// Reads until told to stop: relayed messages are checked and timed, the rest counted.
/// `placed`: with several instances, whether this connection's pair crosses instances (its
/// latency is then also kept apart, local or cross).
pub async fn read_loop(
    shared: Arc<Shared>,
    mut stream: SplitStream<Ws>,
    me: usize,
    peer: Option<usize>,
    placed: Option<bool>,
    windows: Windows,
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
            if let Some(cross) = placed {
                record(if cross { CROSS } else { LOCAL }, latency);
            }
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
    mut sink: Sink,
    me: usize,
    peer: usize,
    windows: Windows,
    period: Duration,
    phase: Duration,
) -> Option<Sink> {
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
    use serde_json::json;

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
