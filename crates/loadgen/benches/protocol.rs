//! The relay's per-message work in the `protocol` crate: validating a client frame
//! (`RelayRequest::parse`), re-serialising it with `from` set (`deliver_as`), and the client's
//! `ServerMessage::from_json` on what it receives.
//!
//! `cargo bench -p loadgen --bench protocol`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::{RelayRequest, ServerMessage};

/// A trickled ICE candidate as a browser sends it (about 300 bytes).
fn candidate_frame() -> String {
    r#"{"type":"candidate","name":"bob","from":"","sdp":{"candidate":"candidate:842163049 1 udp 1677729535 203.0.113.7 54321 typ srflx raddr 192.168.1.23 rport 54321 generation 0 ufrag EsAw network-id 1 network-cost 10","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"EsAw"},"call_id":"k3j9x7q2m1"}"#.to_owned()
}

/// An offer whose SDP is about 4 KiB: audio and video sections as Chromium writes them.
fn offer_frame() -> String {
    let mut sdp = String::from(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS stream\r\n",
    );
    for (mid, kind) in [(0, "audio"), (1, "video")] {
        sdp.push_str(&format!(
            "m={kind} 9 UDP/TLS/RTP/SAVPF 111 63 103 104 9 0 8 106 105 13 110 112 113 126\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:EsAw\r\na=ice-pwd:bP+XJMM09aR8AiX1jdydSDfA\r\na=ice-options:trickle\r\na=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\na=setup:actpass\r\na=mid:{mid}\r\na=sendrecv\r\na=msid:stream track{mid}\r\na=rtcp-mux\r\na=rtcp-rsize\r\n"
        ));
        for pt in 96..118 {
            sdp.push_str(&format!(
                "a=rtpmap:{pt} VP8/90000\r\na=rtcp-fb:{pt} goog-remb\r\na=rtcp-fb:{pt} transport-cc\r\na=fmtp:{pt} apt={pt}\r\n"
            ));
            if sdp.len() > 2000 * (mid + 1) {
                break;
            }
        }
    }
    let frame = serde_json::json!({
        "type": "offer",
        "name": "bob",
        "from": "",
        "call_id": "k3j9x7q2m1",
        "sdp": {"type": "offer", "sdp": sdp},
    });
    frame.to_string()
}

fn relay(c: &mut Criterion) {
    assert!(RelayRequest::parse(&offer_frame()).is_ok());
    for (name, frame) in [
        ("candidate", candidate_frame()),
        ("offer_4k", offer_frame()),
    ] {
        let mut group = c.benchmark_group(format!("relay/{name}"));
        group.throughput(Throughput::Bytes(frame.len() as u64));
        // The seed's pages write `from`: the relay reads such a frame into a JSON tree.
        group.bench_function("parse (seed frame, with from)", |b| {
            b.iter(|| RelayRequest::parse(black_box(&frame)).expect("valid frame"))
        });
        group.bench_function("parse+deliver_as (seed frame, with from)", |b| {
            b.iter(|| {
                RelayRequest::parse(black_box(&frame))
                    .expect("valid frame")
                    .deliver_as(black_box("alice"))
            })
        });
        // Duet's client writes none: borrowed reading, `from` spliced into the text.
        let without_from = frame.replace(r#""from":"","#, "");
        group.bench_function("parse+deliver_as (Duet frame, no from)", |b| {
            b.iter(|| {
                RelayRequest::parse(black_box(&without_from))
                    .expect("valid frame")
                    .deliver_as(black_box("alice"))
            })
        });
        let delivered = RelayRequest::parse(&frame)
            .expect("valid frame")
            .deliver_as("alice");
        group.bench_function("ServerMessage::from_json", |b| {
            b.iter(|| ServerMessage::from_json(black_box(&delivered)).expect("valid message"))
        });
        group.finish();
    }
    let presence = r#"{"type":"online","username":"bob"}"#;
    c.bench_function("server_event/online/from_json", |b| {
        b.iter(|| ServerMessage::from_json(black_box(presence)).expect("valid event"))
    });
}

criterion_group!(benches, relay);
criterion_main!(benches);
