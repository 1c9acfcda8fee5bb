//! A connection cut off for not reading is released whole: its socket, queue and buffers. Counted
//! from outside the real binary: its open descriptors (`/proc/PID/fd`) and resident memory.

mod common;

use std::time::{Duration, Instant};

use common::Browser;
use common::binary::Duet;
use futures::future::join_all;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const STALLED: usize = 100;

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the server's descriptors")
        .count()
}

fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// A signaling socket whose client never reads, with a small receive window so the server's
/// writes block after a few kilobytes rather than megabytes of kernel buffers.
async fn stalled_socket(
    browser: &Browser,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let addr: std::net::SocketAddr = browser
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small window");
    let stream = socket.connect(addr).await.expect("connect");
    let mut request = format!("ws://{addr}/video")
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("cookie", browser.cookie().expect("logged in"));
    let (socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("handshake");
    socket
}

#[tokio::test]
async fn connections_cut_off_for_not_reading_leave_nothing_behind() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let duet = Duet::start(&[
        ("DUET_RATE_LIMIT", "1000000"),
        ("DUET_REGISTER_LIMIT", "1000"),
        ("DUET_HASH_CONCURRENCY", "2"),
        ("DUET_HASH_QUEUE", "1000"),
    ]);
    let base = duet.base_url();
    let register = |name: String| {
        let base = base.clone();
        async move {
            let browser = Browser::new(&base);
            let answer = browser
                .post_json("/user/register", &name, "correct horse")
                .await;
            assert_eq!(answer, json!({"flag": true}), "{name}");
            browser
        }
    };
    let stalled_users = join_all((0..STALLED).map(|i| register(format!("stalled{i}")))).await;
    let sender = register("sender".to_owned()).await;
    let mut sender = sender.socket().await.ready().await;
    let pid = duet.pid();
    let fds_before = open_descriptors(pid);
    let rss_before = resident_kib(pid);

    let mut stalled = Vec::new();
    for user in &stalled_users {
        stalled.push(stalled_socket(user).await);
    }
    let fds_open = open_descriptors(pid);
    assert!(
        fds_open >= fds_before + STALLED,
        "{fds_before} → {fds_open}"
    );

    // 4 KB frames to each until the server refuses: that user is gone (cut off).
    let sdp = "x".repeat(4_000);
    let mut frames = 0;
    let mut cut_off = 0;
    for i in 0..STALLED {
        let target = format!("stalled{i}");
        loop {
            sender
                .send(json!({"type":"candidate","name":target,"sdp":sdp,"call_id":"c"}))
                .await;
            frames += 1;
            if frames % 8 != 0 {
                continue;
            }
            let answer = tokio::time::timeout(
                Duration::from_millis(1),
                futures::StreamExt::next(&mut sender.stream),
            )
            .await;
            if let Ok(Some(Ok(Message::Text(text)))) = answer
                && text.contains("peer_offline")
            {
                cut_off += 1;
                break;
            }
            assert!(frames < STALLED * 5_000, "never cut off");
        }
    }
    assert_eq!(cut_off, STALLED);
    let peak_rss = resident_kib(pid);

    // The server gives each a close deadline, then drops it; the clients still hold theirs.
    // Freed memory goes back to the system at the server's next trim (every 10 s).
    let released = |fds: usize, rss: u64| fds <= fds_before && rss < rss_before + 20 * 1024;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut fds_after, mut rss_after) = (open_descriptors(pid), resident_kib(pid));
    while !released(fds_after, rss_after) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        (fds_after, rss_after) = (open_descriptors(pid), resident_kib(pid));
    }
    eprintln!(
        "{STALLED} stalled, {frames} frames sent; descriptors {fds_before} → {fds_open} → \
         {fds_after}; RSS {rss_before} KiB → peak {peak_rss} KiB → {rss_after} KiB"
    );
    assert!(
        fds_after <= fds_before,
        "every socket closed: {fds_before} → {fds_after}"
    );
    // What was queued for each (up to 256 frames of 4 KB) is gone with it: no growth beyond
    // the allocator's own pages.
    assert!(
        rss_after < rss_before + 20 * 1024,
        "RSS {rss_before} KiB → {rss_after} KiB"
    );
    drop(stalled);
}
