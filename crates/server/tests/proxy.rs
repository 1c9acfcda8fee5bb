//! `X-Forwarded-For` / `X-Forwarded-Proto` are believed only from `--trusted-proxies`.

mod common;

use common::{spawn_app, spawn_app_with};
use serde_json::json;

async fn register_cookie(app: &common::TestApp, name: &str, proto: &str) -> String {
    let response = app
        .browser()
        .post("/user/register")
        .header("x-forwarded-proto", proto)
        .form(&[("username", name), ("password", "correct horse")])
        .send()
        .await
        .expect("register");
    response.headers()["set-cookie"]
        .to_str()
        .expect("ascii cookie")
        .to_owned()
}

#[tokio::test]
async fn a_forged_forwarded_proto_from_an_untrusted_peer_changes_nothing() {
    let app = spawn_app().await;
    let cookie = register_cookie(&app, "mallory", "https").await;
    assert!(!cookie.contains("Secure"), "{cookie}");

    // Trusting some other proxy does not make this peer one.
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()]).await;
    let cookie = register_cookie(&app, "mallory", "https").await;
    assert!(!cookie.contains("Secure"), "{cookie}");

    // From a trusted proxy, it is believed.
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let cookie = register_cookie(&app, "trent", "https").await;
    assert!(cookie.contains("Secure"), "{cookie}");
    let cookie = register_cookie(&app, "victor", "http").await;
    assert!(!cookie.contains("Secure"), "{cookie}");
}

/// Three failed logins, each for another account and claiming another address; then whether
/// a fourth account is refused for the address.
async fn address_throttled_after_forged_addresses(app: &common::TestApp) -> bool {
    for name in ["u1", "u2", "u3", "u4"] {
        app.user(name).await;
    }
    let attacker = app.browser();
    for (i, name) in ["u1", "u2", "u3"].iter().enumerate() {
        let answer = attacker
            .post("/user/login")
            .header("x-forwarded-for", format!("198.51.100.{}", i + 1))
            .json(&json!({"username": name, "password": "guess guess"}))
            .send()
            .await
            .expect("login");
        assert_eq!(answer.status(), 200);
    }
    let response = attacker
        .post("/user/login")
        .header("x-forwarded-for", "198.51.100.99")
        .json(&json!({"username": "u4", "password": "correct horse"}))
        .send()
        .await
        .expect("login");
    response.status() == 429
}

#[tokio::test]
async fn a_forged_forwarded_for_does_not_escape_login_throttling() {
    let app = spawn_app_with(|s| s.login_failures = 3).await;
    assert!(
        address_throttled_after_forged_addresses(&app).await,
        "from an untrusted peer, every forged address is the peer's own"
    );
    // Behind a trusted proxy, those are four different clients.
    let app = spawn_app_with(|s| {
        s.login_failures = 3;
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    assert!(!address_throttled_after_forged_addresses(&app).await);
}

#[tokio::test]
async fn the_origin_check_uses_the_scheme_really_used() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    // Plain HTTP from an untrusted peer: an https:// origin for this host is not our own.
    let forged = format!("https://{}", app.addr);
    common::assert_refused(alice.socket_with_origin(Some(&forged)).await, 403);
    let own = format!("http://{}", app.addr);
    alice
        .socket_with_origin(Some(&own))
        .await
        .expect("own origin");
}
