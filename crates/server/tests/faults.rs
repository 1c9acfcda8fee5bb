//! The fault and attack suite (issue 19): the real `duet` binary, attacked and broken the way the
//! open internet and bad luck would, over loopback. `docs/security-faults.md` has the figures.
//!
//! - a frame fuzzer: 100,000+ generated and mutated frames through real sockets;
//! - `kill -9` while 200 clients register, log in and relay, then a restart on the same files;
//! - a data directory on a tmpfs that fills up, then gets space back.
//!
//! `FAULTS_SEED=<number>` replays the fuzzer's frames of an earlier run.

#[path = "faults/client.rs"]
mod client;
#[path = "common/mod.rs"]
mod common;
#[path = "faults/duet.rs"]
mod duet;
#[path = "faults/frames.rs"]
mod frames;
#[path = "faults/rng.rs"]
mod rng;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use protocol::{ErrorCode, username_key};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use client::{Browser, Ws, expect_joined, next_json, next_text};
use duet::{Duet, Options};
use frames::{Cast, Category, Expect, Generator, Payload};
use rng::Rng;

/// Server events every connected user may see about others; anything else reaching a user
/// nobody wrote to is a leak.
const PRESENCE_TYPES: &[&str] = &["hello", "presence", "online", "offline"];

/// Server events about one's own calls: the two sides of a fuzzed "call" may be told that the
/// server recorded it (`history`); a bystander never is.
fn is_own_notice(kind: &str) -> bool {
    PRESENCE_TYPES.contains(&kind) || kind == "history"
}

/// One test at a time: each measures its own server, and they would slow each other down.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn seed() -> u64 {
    std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0x19f0_a175_eed5_u64)
}

// ---------------------------------------------------------------------------------------------
// 1. The frame fuzzer

const ATTACKERS: usize = 4;
/// Frames per batch; each batch ends with a sentinel whose error marks where its answers end.
const BATCH: usize = 128;
const BATCHES_PER_ATTACKER: usize = 200;
/// Frames an attacker may have relayed that its target has not read yet.
const TARGET_LAG: usize = 128;
/// Every this many batches, one oversized frame (which costs the connection).
const OVERSIZED_EVERY: usize = 8;

/// One category's tally, summed over the attackers.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    sent: usize,
    errors_expected: usize,
    errors_received: usize,
    relayed: usize,
}

#[derive(Default)]
struct FuzzReport {
    by_category: BTreeMap<Category, Tally>,
    by_code: BTreeMap<&'static str, usize>,
    /// Frames not sent because they would have reached a user outside this attacker's cast.
    skipped: usize,
    sentinels: usize,
    reconnects: usize,
}

impl FuzzReport {
    fn merge(&mut self, other: FuzzReport) {
        for (category, tally) in other.by_category {
            let mine = self.by_category.entry(category).or_default();
            mine.sent += tally.sent;
            mine.errors_expected += tally.errors_expected;
            mine.errors_received += tally.errors_received;
            mine.relayed += tally.relayed;
        }
        for (code, n) in other.by_code {
            *self.by_code.entry(code).or_default() += n;
        }
        self.skipped += other.skipped;
        self.sentinels += other.sentinels;
        self.reconnects += other.reconnects;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzed_frames_get_errors_and_reach_nobody_else() {
    let _serial = SERIAL.lock().await;
    let seed = seed();
    println!("frame fuzzer: seed {seed} (FAULTS_SEED={seed} replays it)");
    let dir = tempfile::tempdir().expect("temp dir");
    // The fuzzer is not a flood: the rate limit must not answer in place of the parser.
    let options = Options {
        env: vec![("DUET_RATE_LIMIT".into(), "1000000".into())],
        ..Options::default()
    };
    let mut duet = Duet::start(dir.path(), &options);
    let base = duet.url("");

    let attackers: Vec<String> = (0..ATTACKERS).map(|i| format!("fz_a{i}")).collect();
    let targets: Vec<String> = (0..ATTACKERS).map(|i| format!("fz_t{i}")).collect();
    let bystander_name = "fz_bystander".to_owned();
    let mut browsers = BTreeMap::new();
    for name in attackers.iter().chain(&targets).chain([&bystander_name]) {
        let browser = Browser::new(&base);
        let answer = browser.register(name).await.expect("register");
        assert!(answer.ok(), "register {name}: {answer:?}");
        browsers.insert(name.clone(), browser);
    }
    let online: Arc<Vec<String>> = Arc::new(browsers.keys().map(|n| username_key(n)).collect());

    let stop = CancellationToken::new();
    let mut bystander = browsers[&bystander_name]
        .socket()
        .await
        .expect("bystander connects");
    expect_joined(&mut bystander).await;
    let bystander_task = tokio::spawn(watch_bystander(bystander, stop.clone()));

    let started = Instant::now();
    let mut root = Rng::new(seed);
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for i in 0..ATTACKERS {
        // Bounded: an attacker waits for its target to read what it sent (as a real peer
        // would be read), or the target would lag past its inbox's 256 frames and be cut off
        // as a slow reader, which is not what this test is about.
        let (expected_tx, expected_rx) = mpsc::channel(TARGET_LAG);
        let mut target_ws = browsers[&targets[i]]
            .socket()
            .await
            .expect("target connects");
        expect_joined(&mut target_ws).await;
        receivers.push(tokio::spawn(receive_as_target(
            target_ws,
            attackers[i].clone(),
            expected_rx,
        )));
        let cast = Cast {
            me: attackers[i].clone(),
            target: targets[i].clone(),
            offline: format!("fz_nobody{i}"),
        };
        let generator = Generator::new(root.fork(), cast);
        senders.push(tokio::spawn(attack(
            browsers[&attackers[i]].clone(),
            generator,
            online.clone(),
            expected_tx,
        )));
    }

    let mut report = FuzzReport::default();
    for sender in senders {
        report.merge(sender.await.expect("an attacker panicked"));
    }
    let mut relayed = 0;
    for receiver in receivers {
        relayed += receiver.await.expect("a target saw something wrong");
    }
    let elapsed = started.elapsed();
    stop.cancel();
    let bystander = bystander_task.await.expect("bystander task");

    let sent: usize = report.by_category.values().map(|t| t.sent).sum();
    let expected: usize = report.by_category.values().map(|t| t.errors_expected).sum();
    let received: usize = report.by_category.values().map(|t| t.errors_received).sum();
    println!(
        "frame fuzzer: {sent} frames in {:.1} s ({:.0}/s) by {ATTACKERS} attackers; \
         {received} error frames for {expected} expected; {relayed} relayed as sent; \
         {} batches; {} reconnects after oversized frames; {} skipped",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64(),
        report.sentinels,
        report.reconnects,
        report.skipped,
    );
    println!("| category | sent | errors expected | error frames received | relayed |");
    for (category, t) in &report.by_category {
        println!(
            "| {} | {} | {} | {} | {} |",
            category.name(),
            t.sent,
            t.errors_expected,
            t.errors_received,
            t.relayed
        );
    }
    println!("error codes received: {:?}", report.by_code);
    println!(
        "bystander: {} frames, all presence; connection open to the end: {}",
        bystander.frames, bystander.open
    );

    assert!(sent >= 100_000, "only {sent} frames were sent");
    assert_eq!(
        received, expected,
        "every refused frame gets one error frame"
    );
    assert!(
        bystander.leaks.is_empty(),
        "the bystander received frames meant for nobody: {:?}",
        bystander.leaks
    );
    assert!(bystander.open, "the bystander's connection was closed");

    // The server is still whole: up, answering, and taking new users.
    assert!(duet.is_running(), "the server died:\n{}", duet.log_tail());
    assert!(duet.healthy_within(Duration::from_secs(5)).await);
    let newcomer = Browser::new(&base);
    assert!(newcomer.register("fz_after").await.expect("register").ok());
    let again = Browser::new(&base);
    assert!(again.login("fz_after").await.expect("login").ok());
    let mut ws = again
        .socket()
        .await
        .expect("a new socket after the fuzzing");
    expect_joined(&mut ws).await;
    let returning = Browser::new(&base);
    assert!(returning.login(&attackers[0]).await.expect("login").ok());
}

/// Sends `BATCHES_PER_ATTACKER` batches, each checked against the expected answers in order.
async fn attack(
    browser: Browser,
    mut generator: Generator,
    online: Arc<Vec<String>>,
    to_target: mpsc::Sender<Value>,
) -> FuzzReport {
    let me = generator.me().to_owned();
    let target_key = username_key(generator.target());
    let mut report = FuzzReport::default();
    let mut ws = browser.socket().await.expect("attacker connects");
    expect_joined(&mut ws).await;
    for batch in 0..BATCHES_PER_ATTACKER {
        let mut expected_codes = Vec::with_capacity(BATCH);
        // The frames refused, in order, to show the one whose answer was wrong.
        let mut refused: Vec<(Category, String)> = Vec::new();
        let mut sent = 0;
        while sent < BATCH {
            let (category, payload) = generator.next();
            let (expect, message, shown) = match payload {
                Payload::Text(text) => {
                    let expect = frames::expect(&text, &me, &online);
                    let shown = preview(&text);
                    (expect, Message::Text(text.into()), shown)
                }
                Payload::Binary(bytes) => (
                    Expect::Error(ErrorCode::Malformed),
                    Message::Binary(bytes.into()),
                    "<binary>".to_owned(),
                ),
            };
            let tally = report.by_category.entry(category).or_default();
            match expect {
                Expect::Error(code) => {
                    expected_codes.push(code);
                    refused.push((category, shown));
                    tally.errors_expected += 1;
                }
                Expect::Deliver { to, frame } if to == target_key => {
                    to_target.send(frame).await.expect("target task alive");
                    tally.relayed += 1;
                }
                Expect::Deliver { .. } => {
                    report.skipped += 1;
                    continue;
                }
                Expect::TooLarge => panic!("the generator made an oversized frame: {shown}"),
            }
            tally.sent += 1;
            sent += 1;
            ws.feed(message).await.expect("send a frame");
        }
        let sentinel = format!("zz-sentinel-{batch}");
        ws.feed(Message::Text(
            format!("{{\"type\":\"{sentinel}\",\"name\":\"x\"}}").into(),
        ))
        .await
        .expect("send the sentinel");
        ws.flush().await.expect("flush");
        report.sentinels += 1;

        let mut received = Vec::with_capacity(expected_codes.len());
        loop {
            let Some(frame) = next_json(&mut ws, Duration::from_secs(30)).await else {
                panic!(
                    "{me}: connection lost in batch {batch} after {} answers; last refused \
                     frames: {:?}",
                    received.len(),
                    refused.iter().rev().take(3).collect::<Vec<_>>()
                );
            };
            let kind = frame["type"].as_str().unwrap_or_default();
            if is_own_notice(kind) {
                continue;
            }
            assert_eq!(kind, "error", "{me} was sent {frame}");
            assert!(
                frame["message"].is_string(),
                "error without message: {frame}"
            );
            let code = frame["code"].as_str().expect("error code").to_owned();
            if code == "unknown_type"
                && frame["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&sentinel))
            {
                break;
            }
            received.push(code);
        }
        let expected: Vec<&str> = expected_codes.iter().map(|c| c.as_str()).collect();
        if received != expected {
            let at = received
                .iter()
                .zip(&expected)
                .position(|(r, e)| r != e)
                .unwrap_or(received.len().min(expected.len()));
            panic!(
                "{me}, batch {batch}: {} error frames for {} refusals; first difference at \
                 refusal {at}: got {:?}, expected {:?}, for frame {:?}",
                received.len(),
                expected.len(),
                received.get(at),
                expected.get(at),
                refused.get(at)
            );
        }
        for ((category, _), code) in refused.iter().zip(&received) {
            report
                .by_category
                .entry(*category)
                .or_default()
                .errors_received += 1;
            *report
                .by_code
                .entry(
                    ErrorCode::ALL
                        .iter()
                        .find(|c| c.as_str() == code)
                        .map_or("?", |c| c.as_str()),
                )
                .or_default() += 1;
        }

        if batch % OVERSIZED_EVERY == OVERSIZED_EVERY - 1 {
            let text = generator.oversized();
            let tally = report.by_category.entry(Category::Oversized).or_default();
            tally.sent += 1;
            tally.errors_expected += 1;
            let len = text.len();
            ws.send(Message::Text(text.into()))
                .await
                .expect("send an oversized frame");
            let error = loop {
                match next_json(&mut ws, Duration::from_secs(30)).await {
                    Some(frame) if is_own_notice(frame["type"].as_str().unwrap_or("")) => {}
                    Some(frame) => break frame,
                    None => panic!("{me}: no error frame for an oversized frame of {len} bytes"),
                }
            };
            assert_eq!(error["code"], "too_large", "{len} bytes: {error}");
            tally.errors_received += 1;
            *report.by_code.entry("too_large").or_default() += 1;
            assert_eq!(close_code(&mut ws).await, Some(1009), "{len} bytes");
            ws = browser.socket().await.expect("attacker reconnects");
            expect_joined(&mut ws).await;
            report.reconnects += 1;
        }
    }
    // The last frame the target gets: it stops reading there.
    let end = format!(
        "{{\"type\":\"hangup\",\"name\":{},\"call_id\":\"fuzz-end\"}}",
        frames::json_string(generator.target())
    );
    match frames::expect(&end, &me, &online) {
        Expect::Deliver { frame, .. } => to_target.send(frame).await.expect("target task alive"),
        other => panic!("the end marker would not be relayed: {other:?}"),
    }
    ws.send(Message::Text(end.into()))
        .await
        .expect("send the end marker");
    // A closing handshake, not a drop: a socket closed with unread data is reset, and a reset
    // throws away what this side had sent but the server had not yet taken in (the end marker).
    let _ = ws.close(None).await;
    close_code(&mut ws).await;
    report
}

/// Reads until the server's close frame; its code.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = ws.next().await {
            match frame {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// The target's side: every relayed frame must be the next one its attacker sent, as sent but
/// for `from`. Returns how many arrived.
async fn receive_as_target(
    mut ws: Ws,
    attacker: String,
    mut expected: mpsc::Receiver<Value>,
) -> usize {
    let mut relayed = 0;
    loop {
        let text = next_text(&mut ws, Duration::from_secs(120))
            .await
            .expect("the target's connection stays open");
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            panic!(
                "a frame from {attacker} that the protocol refuses reached its target: {}",
                preview(&text)
            );
        };
        let kind = frame["type"].as_str().unwrap_or_default();
        if is_own_notice(kind) {
            continue;
        }
        assert_ne!(kind, "error", "the target sent nothing, yet got {frame}");
        let Ok(next) = expected.try_recv() else {
            panic!("the target got a frame its attacker ({attacker}) never sent: {frame}");
        };
        assert_eq!(frame, next, "relayed frame differs from the one sent");
        relayed += 1;
        if frame["call_id"] == "fuzz-end" {
            return relayed;
        }
    }
}

struct Bystander {
    frames: usize,
    leaks: Vec<String>,
    open: bool,
}

/// A user online the whole time whom no frame names: only presence may reach it.
async fn watch_bystander(mut ws: Ws, stop: CancellationToken) -> Bystander {
    let mut seen = Bystander {
        frames: 0,
        leaks: Vec::new(),
        open: true,
    };
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    seen.frames += 1;
                    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let kind = value["type"].as_str().unwrap_or_default();
                    if !PRESENCE_TYPES.contains(&kind) {
                        seen.leaks.push(preview(&text));
                    }
                }
                Some(Ok(Message::Binary(_))) => seen.leaks.push("<binary>".to_owned()),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    seen.open = false;
                    return seen;
                }
            },
            () = stop.cancelled() => return seen,
        }
    }
}

/// A frame as a failure message shows it: escaped, and cut short.
fn preview(text: &str) -> String {
    let mut shown: String = text.chars().take(300).collect();
    if shown.len() < text.len() {
        shown.push_str(&format!("… ({} bytes)", text.len()));
    }
    shown
}

// ---------------------------------------------------------------------------------------------
// 2. kill -9 in the middle of registrations, logins and relaying

const CLIENTS: usize = 200;
/// The real client's reconnect backoff (crates/client/src/signaling.rs): 500 ms doubling to 10 s,
/// with equal jitter.
const BACKOFF_BASE_MS: u64 = 500;
const BACKOFF_CAP_MS: u64 = 10_000;

fn backoff(attempt: u32, rng: &mut Rng) -> Duration {
    let ceiling = (BACKOFF_BASE_MS << attempt.saturating_sub(1).min(16)).min(BACKOFF_CAP_MS);
    let half = ceiling / 2;
    Duration::from_millis(half + rng.below(half as usize + 1) as u64)
}

/// What the clients share with the test: what the server confirmed, and what they saw.
#[derive(Default)]
struct Crowd {
    /// Accounts whose registration was answered `{"flag":true}`.
    confirmed: Mutex<BTreeSet<String>>,
    logged_in: AtomicUsize,
    connected: AtomicUsize,
    relayed: AtomicUsize,
    /// Set at the restart: what happens after it is counted apart.
    restarted: Mutex<Option<Instant>>,
    reconnected: AtomicUsize,
    relayed_after_restart: AtomicUsize,
}

/// One client's life, as seen after the test.
#[derive(Debug, Default)]
struct ClientLog {
    /// When its socket was greeted again after the restart.
    reconnected_after: Option<Duration>,
    /// Got a frame from its partner after the restart.
    relay_after_restart: bool,
    /// Its session did not survive and it had to log in again.
    logged_in_again: bool,
    /// Registration answered 409 after a lost answer: the account had been stored.
    found_taken: bool,
    /// Had its socket open before the kill.
    connected_before_kill: bool,
    logins: u32,
    attempts: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_confirmed_account() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let options = Options {
        env: crowd_settings(),
        ..Options::default()
    };
    let mut duet = Duet::start(dir.path(), &options);
    let base = duet.url("");
    let crowd = Arc::new(Crowd::default());
    let stop = CancellationToken::new();
    let mut root = Rng::new(seed());
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            // Arriving over ~10 s, so that some register while others already relay.
            let arrival = Duration::from_millis(50 * i as u64);
            tokio::spawn(live(
                i,
                arrival,
                Browser::new(&base),
                crowd.clone(),
                root.fork(),
                stop.clone(),
            ))
        })
        .collect();

    // "In the middle": half the accounts confirmed, others still registering or logging in,
    // sockets open and relaying.
    let deadline = started + Duration::from_secs(90);
    while crowd.confirmed.lock().expect("lock").len() < CLIENTS / 2
        || crowd.connected.load(Ordering::SeqCst) < CLIENTS / 4
        || crowd.relayed.load(Ordering::SeqCst) < 100
    {
        assert!(
            Instant::now() < deadline,
            "the crowd is too slow to get going"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    duet.kill9();
    let killed_after = started.elapsed();
    let confirmed_at_kill = crowd.confirmed.lock().expect("lock").clone();
    let logged_in_at_kill = crowd.logged_in.load(Ordering::SeqCst);
    let connected_at_kill = crowd.connected.load(Ordering::SeqCst);
    let relayed_at_kill = crowd.relayed.load(Ordering::SeqCst);
    println!(
        "kill -9 after {:.1} s: {} registrations confirmed, {logged_in_at_kill} logins, \
         {connected_at_kill} sockets opened, {relayed_at_kill} messages relayed",
        killed_after.as_secs_f64(),
        confirmed_at_kill.len()
    );

    // The files as the crash left them, checked on a copy so the restart gets them untouched.
    let crashed = tempfile::tempdir().expect("temp dir");
    for name in ["duet.db", "duet.db-wal", "duet.db-shm"] {
        let from = dir.path().join(name);
        if from.exists() {
            std::fs::copy(&from, crashed.path().join(name)).expect("copy the crashed files");
        }
    }
    let (integrity, users) = integrity_check(&crashed.path().join("duet.db")).await;
    println!("after the crash: integrity_check = {integrity:?}, {users} accounts stored");
    assert_eq!(integrity, ["ok"]);
    assert!(users >= confirmed_at_kill.len() as i64);

    let restarted = Instant::now();
    *crowd.restarted.lock().expect("lock") = Some(restarted);
    let duet = Duet::start(
        dir.path(),
        &Options {
            addr: Some(duet.addr),
            ..options.clone()
        },
    );
    let up_after = restarted.elapsed();

    // Every client finds its way back by itself, and relays again.
    let deadline = Instant::now() + Duration::from_secs(90);
    while crowd.reconnected.load(Ordering::SeqCst) < CLIENTS
        || crowd.relayed_after_restart.load(Ordering::SeqCst) < CLIENTS
    {
        assert!(
            Instant::now() < deadline,
            "after 90 s only {} clients reconnected and {} relayed again; server log:\n{}",
            crowd.reconnected.load(Ordering::SeqCst),
            crowd.relayed_after_restart.load(Ordering::SeqCst),
            duet.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_back_after = restarted.elapsed();
    stop.cancel();
    let mut logs = Vec::new();
    for client in clients {
        logs.push(client.await.expect("a client panicked"));
    }
    let slowest = logs
        .iter()
        .filter_map(|l| l.reconnected_after)
        .max()
        .expect("reconnect times");
    let mut were_connected: Vec<Duration> = logs
        .iter()
        .filter(|l| l.connected_before_kill)
        .filter_map(|l| l.reconnected_after)
        .collect();
    were_connected.sort();
    let median = were_connected
        .get(were_connected.len() / 2)
        .copied()
        .unwrap_or_default();
    let slowest_reconnect = were_connected.last().copied().unwrap_or_default();
    let relogins = logs.iter().filter(|l| l.logged_in_again).count();
    let found_taken = logs.iter().filter(|l| l.found_taken).count();
    let attempts: u32 = logs.iter().map(|l| l.attempts).sum();
    println!(
        "restart: serving after {:.2} s; the {} clients connected before the kill reconnected \
         by themselves within {:.2} s of the restart (median {:.2} s); all {CLIENTS} clients \
         registered, connected and relaying after {:.2} s (slowest socket {:.2} s); {relogins} \
         had to log in again; {found_taken} registrations whose answer the crash swallowed \
         were stored; {attempts} retries in all",
        up_after.as_secs_f64(),
        were_connected.len(),
        slowest_reconnect.as_secs_f64(),
        median.as_secs_f64(),
        all_back_after.as_secs_f64(),
        slowest.as_secs_f64(),
    );
    assert_eq!(relogins, 0, "sessions confirmed before the kill survive it");
    assert!(logs.iter().all(|l| l.relay_after_restart));

    // Every account the server ever confirmed logs in, from a fresh browser.
    let confirmed: Vec<String> = crowd
        .confirmed
        .lock()
        .expect("lock")
        .iter()
        .cloned()
        .collect();
    assert!(confirmed_at_kill.iter().all(|n| confirmed.contains(n)));
    let checked = Instant::now();
    let mut failed = Vec::new();
    for chunk in confirmed.chunks(8) {
        let logins = chunk.iter().map(|name| {
            let base = base.clone();
            async move { (name, Browser::new(&base).login(name).await) }
        });
        for (name, answer) in futures::future::join_all(logins).await {
            if !answer.as_ref().is_ok_and(|a| a.ok()) {
                failed.push((
                    name.clone(),
                    answer.map(|a| a.body).map_err(|e| e.to_string()),
                ));
            }
        }
    }
    println!(
        "{} confirmed accounts ({} of them before the kill) logged in after the restart in \
         {:.1} s; failures: {failed:?}",
        confirmed.len(),
        confirmed_at_kill.len(),
        checked.elapsed().as_secs_f64()
    );
    assert!(failed.is_empty());
    let (integrity, _) = integrity_check(&dir.path().join("duet.db")).await;
    assert_eq!(integrity, ["ok"]);
    drop(duet);
}

/// Settings that let one address be 200 users (a later rate limit on registrations or
/// connections per address must not be what this test measures).
fn crowd_settings() -> Vec<(String, String)> {
    [
        ("DUET_REGISTER_LIMIT", "1000000"),
        ("DUET_MAX_CONNECTIONS_PER_IP", "100000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// `PRAGMA integrity_check` and the number of accounts, read from the database file.
async fn integrity_check(path: &std::path::Path) -> (Vec<String>, i64) {
    use sqlx::sqlite::SqliteConnectOptions;
    let options = SqliteConnectOptions::new().filename(path);
    let pool = sqlx::SqlitePool::connect_with(options)
        .await
        .expect("open the database");
    let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&pool)
        .await
        .expect("integrity_check");
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&pool)
        .await
        .expect("count users");
    pool.close().await;
    (integrity, users)
}

/// One client: registers, logs in, opens its socket and relays to its partner; on any failure
/// it starts over where it stands, after the browser client's backoff.
async fn live(
    i: usize,
    arrival: Duration,
    browser: Browser,
    crowd: Arc<Crowd>,
    mut rng: Rng,
    stop: CancellationToken,
) -> ClientLog {
    let me = format!("kc{i}");
    let partner = format!("kc{}", i ^ 1);
    let mut log = ClientLog::default();
    let mut registered = false;
    let mut need_login = true;
    let mut failures = 0;
    tokio::time::sleep(arrival).await;
    while !stop.is_cancelled() {
        if failures > 0 {
            log.attempts += 1;
            tokio::select! {
                () = tokio::time::sleep(backoff(failures, &mut rng)) => {}
                () = stop.cancelled() => break,
            }
        }
        if !registered {
            match browser.register(&me).await {
                Ok(answer) if answer.ok() => {
                    crowd.confirmed.lock().expect("lock").insert(me.clone());
                    registered = true;
                }
                Ok(answer) if answer.body["code"] == "username_taken" => {
                    log.found_taken = true;
                    registered = true;
                }
                Ok(answer) => {
                    assert!(
                        answer.status.is_server_error(),
                        "{me}: registration refused: {answer:?}"
                    );
                    failures += 1;
                    continue;
                }
                Err(_) => {
                    failures += 1;
                    continue;
                }
            }
        }
        // A login of its own too, as a returning user would (a second session), and again
        // whenever the session is gone.
        if need_login {
            match browser.login(&me).await {
                Ok(answer) if answer.ok() => {
                    if log.logins > 0 {
                        log.logged_in_again = true;
                    } else {
                        crowd.logged_in.fetch_add(1, Ordering::SeqCst);
                    }
                    log.logins += 1;
                    need_login = false;
                }
                Ok(answer) => {
                    assert!(
                        answer.status.is_server_error(),
                        "{me}: login refused: {answer:?}"
                    );
                    failures += 1;
                    continue;
                }
                Err(_) => {
                    failures += 1;
                    continue;
                }
            }
        }
        let mut ws = match browser.socket().await {
            Ok(ws) => ws,
            Err(error) => {
                if let tokio_tungstenite::tungstenite::Error::Http(response) = &*error
                    && response.status() == 401
                {
                    // The session is gone: log in again (the browser client sends the user to
                    // the login page).
                    need_login = true;
                }
                failures += 1;
                continue;
            }
        };
        if next_json(&mut ws, Duration::from_secs(10)).await.is_none() {
            failures += 1;
            continue;
        }
        crowd.connected.fetch_add(1, Ordering::SeqCst);
        let restarted = restart_time(&crowd);
        if restarted.is_none() {
            log.connected_before_kill = true;
        }
        if let Some(restarted) = restarted
            && log.reconnected_after.is_none()
        {
            log.reconnected_after = Some(restarted.elapsed());
            crowd.reconnected.fetch_add(1, Ordering::SeqCst);
        }
        relay(&mut ws, &me, &partner, &crowd, &mut log, restarted, &stop).await;
        failures = 1;
    }
    log
}

fn restart_time(crowd: &Crowd) -> Option<Instant> {
    *crowd.restarted.lock().expect("lock")
}

/// Sends its partner a `media` message every 100 ms and reads what comes, until the connection
/// ends or the test stops.
async fn relay(
    ws: &mut Ws,
    me: &str,
    partner: &str,
    crowd: &Crowd,
    log: &mut ClientLog,
    restarted: Option<Instant>,
    stop: &CancellationToken,
) {
    let frame = format!(
        "{{\"type\":\"media\",\"name\":{},\"call_id\":\"c-{me}\",\"audio\":true,\"video\":false}}",
        frames::json_string(partner)
    );
    let mut every = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = every.tick() => {
                if ws.send(Message::Text(frame.clone().into())).await.is_err() {
                    return;
                }
            }
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON from the server");
                    if value["type"] == "media" {
                        assert_eq!(value["from"], partner, "{me} got {value}");
                        crowd.relayed.fetch_add(1, Ordering::SeqCst);
                        if restarted.is_some() && !log.relay_after_restart {
                            log.relay_after_restart = true;
                            crowd.relayed_after_restart.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
            () = stop.cancelled() => {
                let _ = ws.close(None).await;
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. A full disk

/// The tmpfs the data directory lives on.
const DISK: &str = "4m";
/// Room left beside the filler file: a handful of registrations.
const LEFT_FREE: u64 = 128 * 1024;
const EARLIER_ACCOUNTS: usize = 10;
/// Registrations tried at most before the disk must have filled.
const FILL_ATTEMPTS: usize = 300;

/// A tmpfs mounted for the test, unmounted when dropped (after the server using it is gone).
struct Tmpfs {
    path: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Self {
        std::fs::create_dir_all(path).expect("mount point");
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs failed: {status}");
        Self {
            path: path.to_path_buf(),
        }
    }

    fn free_bytes(&self) -> u64 {
        let path = std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes())
            .expect("a path without NUL");
        // SAFETY: statvfs only writes into the struct it is given.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
        assert_eq!(rc, 0, "statvfs");
        stat.f_bavail * stat.f_frsize
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy: detach it now, the kernel frees it when the last user goes.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.path)
                .status();
        }
    }
}

/// A refusal for a full disk, as `docs/protocol.md` words it.
fn assert_storage_full(answer: &client::Answer, what: &str, duet: &Duet) {
    assert_eq!(
        answer.status,
        503,
        "{what}: {answer:?}; server log:\n{}",
        duet.log_tail()
    );
    assert_eq!(answer.body["flag"], false, "{what}: {answer:?}");
    assert_eq!(answer.body["code"], "storage_full", "{what}: {answer:?}");
    assert!(
        answer.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("storage")),
        "{what}: {answer:?}"
    );
    assert!(answer.retry_after.is_some(), "{what}: no Retry-After");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_with_503_keeps_what_is_stored_and_recovers() {
    let _serial = SERIAL.lock().await;
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        println!("full disk: skipped, mounting a tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = Tmpfs::mount(&dir.path().join("data"), DISK);
    let options = Options {
        env: crowd_settings(),
        ..Options::default()
    };
    let mut duet = Duet::start(&disk.path, &options);
    let base = duet.url("");

    let mut stored = Vec::new();
    for i in 0..EARLIER_ACCOUNTS {
        let name = format!("df_early{i}");
        let answer = Browser::new(&base).register(&name).await.expect("register");
        assert!(answer.ok(), "{name}: {answer:?}");
        stored.push(name);
    }

    // Fill the disk but for a little room.
    let filler_path = disk.path.join("filler");
    let free = disk.free_bytes();
    let filler_len = free.saturating_sub(LEFT_FREE);
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(&filler_path).expect("filler file");
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0;
        while written < filler_len {
            let n = chunk.len().min((filler_len - written) as usize);
            filler.write_all(&chunk[..n]).expect("write the filler");
            written += n as u64;
        }
    }
    println!(
        "full disk: tmpfs of {DISK}, {} KiB free after {EARLIER_ACCOUNTS} accounts; filler of \
         {} KiB leaves {} KiB",
        free / 1024,
        filler_len / 1024,
        disk.free_bytes() / 1024
    );

    let started = Instant::now();
    let mut refused = None;
    for n in 0..FILL_ATTEMPTS {
        let name = format!("df_fill{n}");
        let answer = Browser::new(&base).register(&name).await.expect("register");
        if answer.ok() {
            stored.push(name);
            continue;
        }
        refused = Some((name, answer));
        break;
    }
    let (refused_name, answer) = refused.expect("the disk never filled");
    let until_full = stored.len() - EARLIER_ACCOUNTS;
    println!(
        "full disk: {until_full} registrations until full ({:.1} s); then {} {}",
        started.elapsed().as_secs_f64(),
        answer.status,
        answer.body
    );
    assert_storage_full(&answer, "the first registration on a full disk", &duet);

    // While full: every answer is a success or the same clear refusal, never a bare 500.
    let mut while_full = BTreeMap::<String, usize>::new();
    for n in 0..5 {
        let answer = Browser::new(&base)
            .register(&format!("df_more{n}"))
            .await
            .expect("register");
        if answer.ok() {
            stored.push(format!("df_more{n}"));
            *while_full.entry("register 200".into()).or_default() += 1;
        } else {
            assert_storage_full(&answer, "a registration on a full disk", &duet);
            *while_full.entry("register 503".into()).or_default() += 1;
        }
    }
    for name in stored.iter().take(EARLIER_ACCOUNTS) {
        let answer = Browser::new(&base).login(name).await.expect("login");
        if answer.ok() {
            *while_full.entry("login 200".into()).or_default() += 1;
        } else {
            assert_storage_full(&answer, "a login on a full disk", &duet);
            *while_full.entry("login 503".into()).or_default() += 1;
        }
    }
    println!("full disk: answers while full: {while_full:?}");
    assert!(duet.is_running(), "the server died:\n{}", duet.log_tail());
    assert!(duet.healthy_within(Duration::from_secs(5)).await);

    // Space comes back: registration works again, with no restart.
    std::fs::remove_file(&filler_path).expect("remove the filler");
    let recovered = Instant::now();
    let answer = Browser::new(&base)
        .register("df_after")
        .await
        .expect("register");
    assert!(answer.ok(), "after freeing space: {answer:?}");
    stored.push("df_after".into());
    // The refused name is free, or was stored while its session was not: then it logs in.
    let again = Browser::new(&base)
        .register(&refused_name)
        .await
        .expect("register");
    if again.ok() || again.body["code"] == "username_taken" {
        stored.push(refused_name.clone());
    } else {
        panic!("{refused_name} after freeing space: {again:?}");
    }
    println!(
        "full disk: registration works again {:.2} s after the filler was removed; {refused_name} \
         was {}",
        recovered.elapsed().as_secs_f64(),
        if again.ok() {
            "registered now"
        } else {
            "already stored"
        }
    );

    // Nothing stored before or while full is lost.
    for name in &stored {
        let answer = Browser::new(&base).login(name).await.expect("login");
        assert!(answer.ok(), "{name} after recovery: {answer:?}");
    }
    let (integrity, users) = integrity_check(&disk.path.join("duet.db")).await;
    println!(
        "full disk: all {} stored accounts log in after recovery; integrity_check = \
         {integrity:?}; {users} accounts",
        stored.len()
    );
    assert_eq!(integrity, ["ok"]);
    drop(duet);
    drop(disk);
}
