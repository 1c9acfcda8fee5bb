//! TURN credentials per connection, their refresh, and relay-only mode.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{spawn_app_with, test_settings};
use protocol::IceTransportPolicy;
use serde_json::Value;
use server::startup::{Application, StartupError};
use server::turn::{TurnSecret, credential};

const SECRET: &str = "integration-secret";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The TURN entry of an `ice_servers` array, checked against the secret; returns its expiry.
fn check_turn_entry(servers: &Value, user: &str) -> u64 {
    let servers = servers.as_array().expect("ice_servers is an array");
    let turn = servers
        .iter()
        .find(|s| s.get("credential").is_some() && s["urls"][0] == "turn:127.0.0.1:3478")
        .expect("a TURN entry");
    let username = turn["username"].as_str().expect("username");
    let (expiry, name) = username.split_once(':').expect("<expiry>:<user>");
    assert_eq!(name, user);
    assert_eq!(
        turn["credential"],
        credential(&TurnSecret::new(SECRET), username),
        "credential = base64(HMAC-SHA1(secret, username))"
    );
    expiry.parse().expect("numeric expiry")
}

#[tokio::test]
async fn each_user_gets_own_credentials_that_expire_after_the_ttl() {
    let app = spawn_app_with(|s| {
        s.turn_urls = vec!["turn:127.0.0.1:3478".into()];
        s.turn_secret = Some(TurnSecret::new(SECRET));
        s.turn_ttl_secs = 600;
        s.ice_servers = serde_json::json!([{"urls": "stun:127.0.0.1:3478"}]);
    })
    .await;
    let mut alice = app.user("alice").await.socket().await;
    let mut bob = app.user("bob").await.socket().await;
    let before = now_secs();
    let hello_a = alice.expect("hello").await;
    let hello_b = bob.expect("hello").await;
    let after = now_secs();
    assert_eq!(hello_a["ice_servers"][0]["urls"], "stun:127.0.0.1:3478");
    let expiry_a = check_turn_entry(&hello_a["ice_servers"], "alice");
    let expiry_b = check_turn_entry(&hello_b["ice_servers"], "bob");
    for expiry in [expiry_a, expiry_b] {
        assert!(
            (before - 2 + 600..=after + 2 + 600).contains(&expiry),
            "expiry {expiry} is now + ttl"
        );
    }
    assert_ne!(
        hello_a["ice_servers"][1]["username"],
        hello_b["ice_servers"][1]["username"]
    );
    assert!(
        hello_a.get("ice_transport_policy").is_none(),
        "all by default"
    );
    let text = hello_a.to_string();
    assert!(!text.contains(SECRET), "the secret is never sent");

    let metrics = app.metrics().await;
    assert!(!metrics.contains(SECRET));
}

#[tokio::test]
async fn credentials_are_refreshed_before_they_expire() {
    let app = spawn_app_with(|s| {
        s.turn_urls = vec!["turn:127.0.0.1:3478".into()];
        s.turn_secret = Some(TurnSecret::new(SECRET));
        s.turn_ttl_secs = 4;
    })
    .await;
    let mut alice = app.user("alice").await.socket().await;
    let hello = alice.expect("hello").await;
    let first = check_turn_entry(&hello["ice_servers"], "alice");
    // Half the lifetime later, fresh credentials arrive unasked.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ice = alice.expect("ice").await;
    let refreshed = check_turn_entry(&ice["ice_servers"], "alice");
    assert!(refreshed >= first, "{refreshed} >= {first}");
    assert!(
        refreshed > now_secs(),
        "the fresh ones still have time left"
    );
    let ice = alice.expect("ice").await;
    let again = check_turn_entry(&ice["ice_servers"], "alice");
    assert!(again > first, "{again} > {first}: credentials move forward");
}

#[tokio::test]
async fn relay_mode_is_announced_in_hello() {
    let app = spawn_app_with(|s| {
        s.turn_urls = vec!["turn:127.0.0.1:3478".into()];
        s.turn_secret = Some(TurnSecret::new(SECRET));
        s.ice_transport_policy = IceTransportPolicy::Relay;
    })
    .await;
    let mut alice = app.user("alice").await.socket().await;
    let hello = alice.expect("hello").await;
    assert_eq!(hello["ice_transport_policy"], "relay");
}

#[tokio::test]
async fn relay_mode_without_turn_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(dir.path());
    settings.ice_transport_policy = IceTransportPolicy::Relay;
    match Application::build(settings).await {
        Err(error @ StartupError::RelayWithoutTurn) => {
            assert!(error.to_string().contains("needs a TURN server"))
        }
        Err(other) => panic!("expected RelayWithoutTurn, got {other}"),
        Ok(_) => panic!("relay mode without TURN must not start"),
    }
}

#[tokio::test]
async fn turn_urls_without_a_secret_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(dir.path());
    settings.turn_urls = vec!["turn:127.0.0.1:3478".into()];
    assert!(matches!(
        Application::build(settings).await,
        Err(StartupError::Turn(_))
    ));
}

#[tokio::test]
async fn the_secret_can_come_from_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("turn-secret");
    std::fs::write(&file, format!("{SECRET}\n")).expect("write secret");
    let app = spawn_app_with(|s| {
        s.turn_urls = vec!["turn:127.0.0.1:3478".into()];
        s.turn_secret_file = Some(file.clone());
    })
    .await;
    let mut alice = app.user("alice").await.socket().await;
    let hello = alice.expect("hello").await;
    check_turn_entry(&hello["ice_servers"], "alice");
}
