//! `/user/*` against a real server and a real SQLite file.

mod common;

use common::{json_answer, spawn_app, spawn_app_with, start, test_settings};
use serde_json::json;

#[tokio::test]
async fn register_me_logout_login() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let (_, me) = json_answer(alice.get("/user/me")).await;
    assert_eq!(me, json!({"username": "alice"}));

    let cookie = alice.cookie().expect("session cookie");
    let (status, _) = json_answer(alice.post("/user/logout")).await;
    assert!(status.is_success());
    // The old cookie is dead server-side, not merely forgotten by this browser.
    let replay = app.browser().get("/user/me").header("cookie", cookie);
    assert_eq!(replay.send().await.unwrap().status(), 401);

    let answer = alice
        .post_json("/user/login", "ALICE", "correct horse")
        .await;
    assert_eq!(answer, json!({"flag": true}), "case-insensitive login");
    let (status, _) = json_answer(alice.get("/user/me")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_lax_and_secure_behind_https() {
    // The test client stands for a TLS proxy on this host (tests/proxy.rs: from anyone else,
    // `X-Forwarded-Proto` changes nothing).
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let response = app
        .browser()
        .post("/user/register")
        .header("x-forwarded-proto", "https")
        .form(&[("username", "carol"), ("password", "correct horse")])
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");

    let plain = app
        .browser()
        .post("/user/register")
        .form(&[("username", "dave"), ("password", "correct horse")])
        .send()
        .await
        .unwrap();
    let cookie = plain.headers()["set-cookie"].to_str().unwrap();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn the_seed_login_form_works() {
    let app = spawn_app().await;
    app.user("seeduser").await;
    let browser = app.browser();
    let (_, answer) = json_answer(
        browser
            .post("/user/login")
            .form(&[("username", "seeduser"), ("password", "correct horse")]),
    )
    .await;
    assert_eq!(answer, json!({"flag": true}));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    app.user("bob").await;
    let browser = app.browser();
    let wrong = browser
        .post_json("/user/login", "bob", "not the password")
        .await;
    let unknown = browser
        .post_json("/user/login", "nobody", "not the password")
        .await;
    assert_eq!(wrong["flag"], false);
    assert_eq!(wrong, unknown, "no user enumeration through messages");
    assert_eq!(wrong["error"], "wrong username or password");
    assert_eq!(wrong["code"], "wrong_credentials");
}

#[tokio::test]
async fn registration_rules_give_clear_errors() {
    let app = spawn_app().await;
    let browser = app.browser();
    let cases = [
        ("", "correct horse", "empty", "username_empty"),
        (
            "a b",
            "correct horse",
            "letters, digits",
            "username_characters",
        ),
        (
            &"x".repeat(33),
            "correct horse",
            "longer than 32",
            "username_too_long",
        ),
        ("shorty", "short", "shorter than 8", "password_too_short"),
        (
            "longpass",
            &"p".repeat(129),
            "longer than 128",
            "password_too_long",
        ),
    ];
    for (name, password, message, code) in cases {
        let request = browser
            .post("/user/register")
            .json(&json!({"username": name, "password": password}));
        let (status, body) = json_answer(request).await;
        assert_eq!(status, 400, "{name:?}");
        assert_eq!(body["flag"], false);
        assert!(body["error"].as_str().unwrap().contains(message), "{body}");
        assert_eq!(body["code"], code, "{body}");
    }
    app.user("张伟").await;
    let request = browser
        .post("/user/register")
        .json(&json!({"username": "张伟", "password": "another password"}));
    assert_eq!(json_answer(request).await.0, 409);
    app.user("Erin").await;
    let taken = browser
        .post_json("/user/register", "erin", "another password")
        .await;
    assert_eq!(taken["error"], "this username is taken");
    assert_eq!(taken["code"], "username_taken");
    let garbage = browser
        .post("/user/login")
        .header("content-type", "application/json")
        .body("{not json");
    let (status, body) = json_answer(garbage).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "bad_request", "{body}");
}

#[tokio::test]
async fn failed_logins_are_throttled() {
    let app = spawn_app_with(|s| s.login_failures = 3).await;
    app.user("frank").await;
    let attacker = app.browser();
    for _ in 0..3 {
        let answer = attacker
            .post_json("/user/login", "frank", "guess guess")
            .await;
        assert_eq!(answer["error"], "wrong username or password");
    }
    // Even the right password is refused while the account is throttled.
    let response = attacker
        .post("/user/login")
        .json(&json!({"username": "frank", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["flag"], false);
    assert_eq!(body["code"], "throttled");
    assert_eq!(body["retry_after_secs"], retry_after);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("too many failed logins")
    );
}

#[tokio::test]
async fn accounts_survive_a_restart_on_the_same_file() {
    let app = spawn_app().await;
    app.user("grace").await;
    let dir = app.stop().await.expect("data dir");
    let app = start(test_settings(dir.path())).await;
    let answer = app
        .browser()
        .post_json("/user/login", "grace", "correct horse")
        .await;
    assert_eq!(answer, json!({"flag": true}));
}

#[tokio::test]
async fn health_and_metrics() {
    let app = spawn_app().await;
    let health = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    app.user("heidi").await;
    app.browser()
        .post_json("/user/login", "heidi", "wrong wrong")
        .await;
    let text = app.metrics().await;
    assert!(
        text.contains("duet_logins_total{outcome=\"failed\"} 1"),
        "{text}"
    );
    assert!(text.contains("duet_websocket_connections 0"), "{text}");
    assert!(
        text.contains("duet_signaling_errors_total{code=\"peer_offline\"} 0"),
        "{text}"
    );
    // Not on the app's own address: what it counts is for the operator only.
    let public = reqwest::get(app.url("/metrics")).await.unwrap();
    let public = public.text().await.unwrap();
    assert!(!public.contains("duet_logins_total"), "{public}");
}

#[tokio::test]
async fn metrics_are_not_served_unless_asked_for() {
    let app = spawn_app_with(|s| s.metrics_addr = None).await;
    assert_eq!(app.metrics_addr, None);
    let public = reqwest::get(app.url("/metrics")).await.unwrap();
    assert!(!public.text().await.unwrap().contains("duet_logins_total"));
}
