//! A login's life: logout and expiry end its signaling sockets at once, activity renews it, and
//! no activity outlasts its maximum age. Real server, real SQLite file, real WebSockets.

mod common;

use common::{json_answer, spawn_app_with};
use serde_json::json;

#[tokio::test]
async fn logging_out_closes_that_sessions_sockets_and_no_other() {
    let app = spawn_app_with(|_| {}).await;
    let laptop = app.user("alice").await;
    let phone = app.browser();
    let answer = phone
        .post_json("/user/login", "alice", "correct horse")
        .await;
    assert_eq!(answer, json!({"flag": true}));
    let mut laptop_tab = laptop.socket().await.ready().await;
    let mut laptop_tab2 = laptop.socket().await.ready().await;
    let mut phone_tab = phone.socket().await.ready().await;
    let bob = app.user("bob").await;
    let mut bob_tab = bob.socket().await.ready().await;

    let (status, _) = json_answer(laptop.post("/user/logout")).await;
    assert!(status.is_success());
    assert_eq!(laptop_tab.expect_close().await, 4001, "session ended");
    assert_eq!(laptop_tab2.expect_close().await, 4001);

    // The phone's login is another session: its socket still relays.
    phone_tab
        .send(json!({"type": "offer", "name": "bob", "sdp": {"type": "offer", "sdp": "v=0"}}))
        .await;
    let offer = bob_tab.expect("offer").await;
    assert_eq!(offer["from"], "alice");
}

/// The latest session expiry in the store, in Unix seconds (each backend keeps its own type).
async fn session_expiry(app: &common::TestApp) -> i64 {
    let query = if app.database_url.is_some() {
        "SELECT MAX(EXTRACT(EPOCH FROM expiry_date))::BIGINT FROM {sessions}"
    } else {
        "SELECT MAX(CAST(strftime('%s', expiry_date) AS INTEGER)) FROM {sessions}"
    };
    app.db_number(query).await
}

#[tokio::test]
async fn activity_renews_an_idle_session() {
    // A minute's idle limit renews at most every second (a sixtieth of it).
    let app = spawn_app_with(|s| s.session_idle_minutes = 1).await;
    let carol = app.user("carol").await;
    let first = session_expiry(&app).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let (status, _) = json_answer(carol.get("/user/me")).await;
    assert_eq!(status, 200);
    let renewed = session_expiry(&app).await;
    assert!(
        renewed >= first + 2,
        "the request pushed the expiry on: {first} → {renewed}"
    );
}

#[tokio::test]
async fn no_activity_outlasts_the_maximum_age() {
    // Four seconds' maximum (the setting is in days).
    let app = spawn_app_with(|s| s.session_max_days = 4.0 / 86_400.0).await;
    let dave = app.user("dave").await;
    let mut tab = dave.socket().await.ready().await;
    // Activity all along: it renews the session, but not past its maximum age.
    assert_eq!(tab.expect_close().await, 4001);
    let (status, body) = json_answer(dave.get("/user/me")).await;
    assert_eq!(status, 401, "{body}");
}
