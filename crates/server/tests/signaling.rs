//! The relay at `/video`, with real WebSocket clients.

mod common;

use std::time::Duration;

use common::{spawn_app, spawn_app_with};
use serde_json::json;
use server::signaling::PresenceScope;

#[tokio::test]
async fn the_handshake_needs_a_session_and_a_friendly_origin() {
    let app = spawn_app().await;
    let stranger = app.browser().socket_with_origin(None).await;
    common::assert_refused(stranger, 401);
    let alice = app.user("alice").await;
    common::assert_refused(
        alice.socket_with_origin(Some("http://evil.example")).await,
        403,
    );
    let own = format!("http://{}", app.addr);
    let socket = alice
        .socket_with_origin(Some(&own))
        .await
        .expect("own origin");
    let mut socket = socket;
    let hello = socket.expect("hello").await;
    assert_eq!(
        hello,
        json!({"type":"hello","username":"alice","ice_servers":[]})
    );
    let presence = socket.expect("presence").await;
    assert_eq!(presence["online"], json!(["alice"]));
}

#[tokio::test]
async fn allowed_origins_and_ice_servers_come_from_settings() {
    let app = spawn_app_with(|s| {
        s.allowed_origins = vec!["https://duet.example".into()];
        s.ice_servers =
            json!([{"urls": "turn:127.0.0.1:3478", "username": "u", "credential": "c"}]);
    })
    .await;
    let alice = app.user("alice").await;
    let mut socket = alice
        .socket_with_origin(Some("https://duet.example"))
        .await
        .expect("allowed origin");
    let hello = socket.expect("hello").await;
    assert_eq!(hello["ice_servers"][0]["urls"], "turn:127.0.0.1:3478");
}

#[tokio::test]
async fn the_seed_envelope_is_relayed_unchanged_but_for_from() {
    let app = spawn_app().await;
    let mut alice = app.user("alice").await.socket().await.ready().await;
    let mut bob = app.user("bob").await.socket().await.ready().await;
    let offer =
        json!({"type":"offer","sdp":{"type":"offer","sdp":"v=0\r\n"},"name":"bob","from":"bob"});
    alice.send(offer.clone()).await;
    let mut expected = offer;
    expected["from"] = json!("alice");
    assert_eq!(
        bob.expect("offer").await,
        expected,
        "from is the sender, whatever it wrote"
    );

    for frame in [
        json!({"type":"answer","sdp":{"type":"answer","sdp":"v=0\r\n"},"name":"alice","from":""}),
        json!({"type":"candidate","sdp":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0},"name":"alice"}),
        json!({"type":"leave","name":"alice"}),
    ] {
        bob.send(frame.clone()).await;
        let mut expected = frame.clone();
        expected["from"] = json!("bob");
        let kind = frame["type"].as_str().unwrap();
        assert_eq!(alice.expect(kind).await, expected);
    }
}

#[tokio::test]
async fn names_are_matched_case_insensitively() {
    let app = spawn_app().await;
    let mut alice = app.user("Alice").await.socket().await.ready().await;
    let mut bob = app.user("bob").await.socket().await.ready().await;
    bob.send(json!({"type":"invite","name":"ALICE","call_id":"c1"}))
        .await;
    let invite = alice.expect("invite").await;
    assert_eq!(invite["from"], "bob");
    assert_eq!(invite["call_id"], "c1");
}

#[tokio::test]
async fn bad_input_gets_documented_errors_while_others_keep_talking() {
    let app = spawn_app().await;
    let mut mallory = app.user("mallory").await.socket().await.ready().await;
    let mut alice = app.user("alice").await.socket().await.ready().await;
    let mut bob = app.user("bob").await.socket().await.ready().await;

    let cases = [
        ("{not json".to_owned(), "malformed"),
        (
            json!({"type":"teleport","name":"bob"}).to_string(),
            "unknown_type",
        ),
        (
            json!({"type":"offer","name":"bob"}).to_string(),
            "malformed",
        ),
        (
            json!({"type":"offer","sdp":{}}).to_string(),
            "invalid_target",
        ),
        (
            json!({"type":"offer","sdp":{},"name":"nobody"}).to_string(),
            "peer_offline",
        ),
        (
            json!({"type":"invite","call_id":"x","name":"mallory"}).to_string(),
            "invalid_target",
        ),
        (
            json!({"type":"invite","call_id":"c7","name":"nobody"}).to_string(),
            "peer_offline",
        ),
    ];
    for (text, code) in cases {
        mallory.send_text(text.clone()).await;
        let error = mallory.expect("error").await;
        assert_eq!(error["code"], code, "{text}");
        // An error names the call of the frame it refuses, so a client can tell calls apart.
        let sent: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(error.get("call_id"), sent.get("call_id"), "{text}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        // Meanwhile a pair keeps relaying.
        alice
            .send(json!({"type":"ringing","name":"bob","call_id":text}))
            .await;
        assert_eq!(bob.expect("ringing").await["call_id"], text);
    }

    // Oversized: an error, then a close with 1009.
    let huge = json!({"type":"offer","name":"bob","sdp":"a".repeat(70 * 1024)}).to_string();
    mallory.send_text(huge).await;
    assert_eq!(mallory.expect("error").await["code"], "too_large");
    assert_eq!(mallory.expect_close().await, 1009);

    alice
        .send(json!({"type":"ringing","name":"bob","call_id":"after"}))
        .await;
    assert_eq!(bob.expect("ringing").await["call_id"], "after");
}

#[tokio::test]
async fn a_flood_is_cut_off_with_policy_close() {
    let app = spawn_app_with(|s| s.rate_limit_per_sec = 20).await;
    let mut flooder = app.user("flooder").await.socket().await.ready().await;
    let mut alice = app.user("alice").await.socket().await.ready().await;
    let mut bob = app.user("bob").await.socket().await.ready().await;
    let frames = (0..200).map(|i| {
        let frame = json!({"type":"candidate","name":"alice","sdp":null,"call_id":i.to_string()});
        tokio_tungstenite::tungstenite::Message::Text(frame.to_string().into())
    });
    flooder.flood(frames).await;
    assert_eq!(flooder.expect("error").await["code"], "rate_limited");
    assert_eq!(flooder.expect_close().await, 1008);
    bob.send(json!({"type":"hangup","name":"alice","call_id":"z"}))
        .await;
    assert_eq!(alice.expect("hangup").await["from"], "bob");
}

use futures::StreamExt;

#[tokio::test]
async fn pings_and_binary_frames_count_toward_the_rate_limit() {
    use tokio_tungstenite::tungstenite::Message;
    let app = spawn_app_with(|s| s.rate_limit_per_sec = 20).await;
    let floods = [
        ("pinger", Message::Ping(vec![1].into())),
        ("binary", Message::Binary(vec![1].into())),
    ];
    for (name, flood) in floods {
        let mut flooder = app.user(name).await.socket().await.ready().await;
        flooder.flood(std::iter::repeat_n(flood, 200)).await;
        // Binary frames are each refused as malformed until the limit cuts the flood off.
        let mut codes = Vec::new();
        while codes.last() != Some(&"rate_limited".to_owned()) && codes.len() < 100 {
            codes.push(
                flooder.expect("error").await["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        assert_eq!(
            codes.last().map(String::as_str),
            Some("rate_limited"),
            "{name}: {codes:?}"
        );
        assert_eq!(flooder.expect_close().await, 1008, "{name}");
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_while_the_others_keep_talking() {
    let app = spawn_app_with(|s| {
        s.rate_limit_per_sec = 1_000_000;
        s.presence = PresenceScope::Everyone;
    })
    .await;
    let mut stalled = app.user("stalled").await.socket().await.ready().await;
    let mut sender = app.user("sender").await.socket().await.ready().await;
    let mut watcher = app.user("watcher").await.socket().await.ready().await;
    sender.expect("online").await;
    // 30 KB per frame: the kernel's socket buffers fill after a few hundred, then the
    // server's inbox for `stalled` (256 frames), which is when the hub gives up on it.
    let sdp = "x".repeat(30_000);
    let mut refused = None;
    for i in 0..5_000 {
        let frame = json!({"type":"candidate","name":"stalled","sdp":sdp,"call_id":"c"});
        sender.send(frame).await;
        // The first error answers a frame; `stalled` going offline may be announced before it.
        if i % 20 == 0
            && let Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) =
                tokio::time::timeout(Duration::from_millis(1), sender.stream.next()).await
            && text.contains("\"error\"")
        {
            refused = Some((i, text.to_string()));
            break;
        }
    }
    let (sent, refusal) = refused.expect("the stalled client is cut off");
    assert!(refusal.contains("peer_offline"), "{refusal}");
    assert!(sent > 256, "cut off after {sent} frames");
    assert_eq!(watcher.expect("offline").await["username"], "stalled");
    // The others keep talking.
    watcher
        .send(json!({"type":"hangup","name":"sender","call_id":"z"}))
        .await;
    assert_eq!(sender.expect("hangup").await["from"], "watcher");
    // What the stalled client finally reads ends with the server's reason.
    assert_eq!(stalled.expect_close().await, 1008);
}

#[tokio::test]
async fn presence_follows_connections_and_tabs() {
    let app = spawn_app_with(|s| s.presence = PresenceScope::Everyone).await;
    let mut alice = app.user("alice").await.socket().await.ready().await;
    let bob_browser = app.user("bob").await;
    let mut bob_tab1 = bob_browser.socket().await;
    bob_tab1.expect("hello").await;
    assert_eq!(
        bob_tab1.expect("presence").await["online"],
        json!(["alice", "bob"])
    );
    assert_eq!(alice.expect("online").await["username"], "bob");

    // A second tab: no new announcement; messages reach both tabs.
    let mut bob_tab2 = bob_browser.socket().await.ready().await;
    alice
        .send(json!({"type":"invite","name":"bob","call_id":"c1"}))
        .await;
    assert_eq!(bob_tab1.expect("invite").await["call_id"], "c1");
    assert_eq!(bob_tab2.expect("invite").await["call_id"], "c1");

    // Answering in one tab tells the other tab too, so it stops ringing.
    bob_tab1
        .send(json!({"type":"accept","name":"alice","call_id":"c1"}))
        .await;
    assert_eq!(alice.expect("accept").await["from"], "bob");
    assert_eq!(bob_tab2.expect("accept").await["call_id"], "c1");

    // Closing one tab keeps bob online; closing the last shows him offline.
    drop(bob_tab1);
    bob_tab2
        .send(json!({"type":"ringing","name":"alice","call_id":"still-here"}))
        .await;
    let next = alice.expect("ringing").await;
    assert_eq!(next["call_id"], "still-here", "no offline event came first");
    drop(bob_tab2);
    assert_eq!(alice.expect("offline").await["username"], "bob");
}

#[tokio::test]
async fn a_silent_connection_is_dropped_by_the_heartbeat() {
    let app = spawn_app_with(|s| {
        s.heartbeat_timeout_secs = 2;
        s.presence = PresenceScope::Everyone;
    })
    .await;
    let mut alice = app.user("alice").await.socket().await.ready().await;
    let bob = app.user("bob").await.socket().await.ready().await;
    assert_eq!(alice.expect("online").await["username"], "bob");
    // Bob's client stops reading, so it never answers pings; alice keeps reading.
    let started = std::time::Instant::now();
    assert_eq!(alice.expect("offline").await["username"], "bob");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(bob);
}

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let app = spawn_app().await;
    let mut alice = app.user("alice").await.socket().await.ready().await;
    app.shutdown_token().cancel();
    assert_eq!(alice.expect_close().await, 1001);
    app.stop().await;
}
