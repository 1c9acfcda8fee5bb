//! A signed-in user manages their own account (issue #15): change the password, log out
//! everywhere, delete the account; and the operator deletes one from the shell. Real server, real
//! SQLite file, real WebSockets.

mod common;

use std::time::Duration;

use common::{Browser, TestApp, duet, json_answer, spawn_app, spawn_app_with};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse";

/// A JSON POST from this browser; status and answer.
async fn post(browser: &Browser, path: &str, body: Value) -> (u16, Value) {
    let (status, answer) = json_answer(browser.post(path).json(&body)).await;
    (status.as_u16(), answer)
}

async fn me_status(browser: &Browser) -> u16 {
    json_answer(browser.get("/user/me")).await.0.as_u16()
}

/// `name` logged in on a second device.
async fn second_login(app: &TestApp, name: &str) -> Browser {
    let browser = app.browser();
    let answer = browser.post_json("/user/login", name, PASSWORD).await;
    assert_eq!(answer, json!({"flag": true}), "{name} logs in");
    browser
}

/// An offer from `from`'s socket reaches `to`'s: the socket still relays.
async fn relays(from: &mut common::Socket, to: &mut common::Socket, to_name: &str) {
    from.send(json!({"type": "offer", "name": to_name, "sdp": {"type": "offer", "sdp": "v=0"}}))
        .await;
    to.expect("offer").await;
}

#[tokio::test]
async fn changing_the_password_ends_every_other_login_and_keeps_this_one() {
    // A minute's idle limit: open sockets look at their session every second, so the laptop's
    // socket below is checked, under its new session, while the test waits.
    let app = spawn_app_with(|s| s.session_idle_minutes = 1).await;
    let laptop = app.user("alice").await;
    let phone = second_login(&app, "alice").await;
    let mut laptop_tab = laptop.socket().await.ready().await;
    let mut phone_tab = phone.socket().await.ready().await;
    let bob = app.user("bob").await;
    let mut bob_tab = bob.socket().await.ready().await;
    let old_cookie = laptop.cookie().expect("a session cookie");

    let (status, wrong) = post(
        &laptop,
        "/user/password",
        json!({"current": "not my password", "new": "a brand new password"}),
    )
    .await;
    assert_eq!(status, 403, "{wrong}");
    assert_eq!(wrong["flag"], false);
    assert_eq!(wrong["code"], "wrong_password");
    assert_eq!(wrong["error"], "the password is wrong");
    let (status, short) = post(
        &laptop,
        "/user/password",
        json!({"current": PASSWORD, "new": "short"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(short["code"], "password_too_short");
    assert_eq!(me_status(&phone).await, 200, "nothing changed yet");

    let (status, changed) = post(
        &laptop,
        "/user/password",
        json!({"current": PASSWORD, "new": "a brand new password"}),
    )
    .await;
    assert_eq!((status, changed), (200, json!({"flag": true})));

    // The other login is over, its socket closed at once.
    assert_eq!(phone_tab.expect_close().await, 4001);
    assert_eq!(me_status(&phone).await, 401);
    // This browser carries on under a new session: the old cookie is worthless.
    assert_eq!(me_status(&laptop).await, 200);
    assert_ne!(laptop.cookie(), Some(old_cookie.clone()));
    let replay = app.browser().get("/user/me").header("cookie", old_cookie);
    assert_eq!(replay.send().await.expect("answer").status(), 401);
    // Its socket stays open past the watcher of password changes (every 2 s) and past its
    // own session checks (every second here).
    relays(&mut laptop_tab, &mut bob_tab, "bob").await;
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    relays(&mut laptop_tab, &mut bob_tab, "bob").await;
    let mut new_tab = laptop.socket().await.ready().await;
    relays(&mut new_tab, &mut bob_tab, "bob").await;

    let old = app
        .browser()
        .post_json("/user/login", "alice", PASSWORD)
        .await;
    assert_eq!(old["code"], "wrong_credentials");
    let new = app
        .browser()
        .post_json("/user/login", "alice", "a brand new password")
        .await;
    assert_eq!(new, json!({"flag": true}));
}

#[tokio::test]
async fn a_wrong_password_to_confirm_counts_as_a_failed_login() {
    let app = spawn_app_with(|s| s.login_failures = 3).await;
    let carol = app.user("carol").await;
    for _ in 0..3 {
        let (status, _) = post(&carol, "/user/delete", json!({"password": "guess guess"})).await;
        assert_eq!(status, 403);
    }
    // Even the right password waits now, and so does a login.
    let (status, throttled) = post(&carol, "/user/delete", json!({"password": PASSWORD})).await;
    assert_eq!(status, 429, "{throttled}");
    assert_eq!(throttled["code"], "throttled");
    let login = app
        .browser()
        .post_json("/user/login", "carol", PASSWORD)
        .await;
    assert_eq!(login["code"], "throttled");
    assert_eq!(me_status(&carol).await, 200, "the account is still there");
}

#[tokio::test]
async fn account_requests_need_a_login_and_a_proper_body() {
    let app = spawn_app().await;
    let stranger = app.browser();
    for (path, body) in [
        (
            "/user/password",
            json!({"current": PASSWORD, "new": "whatever else"}),
        ),
        ("/user/logout-all", json!({})),
        ("/user/delete", json!({"password": PASSWORD})),
    ] {
        let (status, answer) = post(&stranger, path, body).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(answer["code"], "not_logged_in", "{path}");
    }
    let dave = app.user("dave").await;
    let (status, answer) = post(&dave, "/user/password", json!({"old": PASSWORD})).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], "bad_request");
    // A page of another site cannot make the browser ask.
    let forged = dave
        .post("/user/logout-all")
        .header("origin", "https://evil.example");
    let (status, answer) = json_answer(forged).await;
    assert_eq!(status, 403);
    assert_eq!(answer["code"], "cross_site");
    assert_eq!(me_status(&dave).await, 200);
}

#[tokio::test]
async fn logging_out_everywhere_ends_every_login_and_closes_every_socket() {
    let app = spawn_app().await;
    let laptop = app.user("erin").await;
    let phone = second_login(&app, "erin").await;
    let mut laptop_tab = laptop.socket().await.ready().await;
    let mut phone_tab = phone.socket().await.ready().await;

    let (status, answer) = post(&laptop, "/user/logout-all", json!({})).await;
    assert_eq!((status, answer), (200, json!({"flag": true})));
    assert_eq!(laptop_tab.expect_close().await, 4001);
    assert_eq!(phone_tab.expect_close().await, 4001);
    assert_eq!(me_status(&laptop).await, 401);
    assert_eq!(me_status(&phone).await, 401);
    // The password is unchanged.
    second_login(&app, "erin").await;
}

#[tokio::test]
async fn deleting_the_account_removes_it_and_everything_of_theirs() {
    let app = spawn_app().await;
    let laptop = app.user("frank").await;
    let phone = second_login(&app, "frank").await;
    let mut laptop_tab = laptop.socket().await.ready().await;
    let mut phone_tab = phone.socket().await.ready().await;
    let grace = app.user("grace").await;
    common::befriend(&laptop, "frank", &grace, "grace").await;
    let mut grace_tab = grace.socket().await.ready().await;
    let phone_cookie = phone.cookie().expect("a session cookie");
    assert_eq!(app.db_number("SELECT COUNT(*) FROM {sessions}").await, 3);

    let (status, wrong) = post(
        &laptop,
        "/user/delete",
        json!({"password": "not it at all"}),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(wrong["code"], "wrong_password");
    assert_eq!(me_status(&phone).await, 200, "nothing deleted");

    let (status, answer) = post(&laptop, "/user/delete", json!({"password": PASSWORD})).await;
    assert_eq!((status, answer), (200, json!({"flag": true})));
    // Every socket of theirs closes at once, and the others see them go.
    assert_eq!(laptop_tab.expect_close().await, 4001);
    assert_eq!(phone_tab.expect_close().await, 4001);
    let offline = grace_tab.expect("offline").await;
    assert_eq!(offline["username"], "frank");
    assert_eq!(me_status(&laptop).await, 401);
    assert_eq!(me_status(&phone).await, 401);
    // Nothing of theirs is left: no user row, no stored session; grace keeps hers.
    assert_eq!(app.db_number("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(app.db_number("SELECT COUNT(*) FROM {sessions}").await, 1);
    assert_eq!(me_status(&grace).await, 200);
    let login = app
        .browser()
        .post_json("/user/login", "frank", PASSWORD)
        .await;
    assert_eq!(login["code"], "wrong_credentials");

    // The name is free again, and the old logins are not logins of the new account.
    app.user("Frank").await;
    let replay = app.browser().get("/user/me").header("cookie", phone_cookie);
    assert_eq!(replay.send().await.expect("answer").status(), 401);
}

#[tokio::test]
async fn the_operator_deletes_an_account_from_the_shell() {
    let app = spawn_app().await;
    let henry = app.user("henry").await;
    let mut tab = henry.socket().await.ready().await;
    let iris = app.user("iris").await;
    common::befriend(&henry, "henry", &iris, "iris").await;
    let mut iris_tab = iris.socket().await.ready().await;
    let data_dir = app.data_dir.clone();
    let (unknown, deleted, listed) = tokio::task::spawn_blocking(move || {
        (
            duet(&data_dir, &["user", "delete", "nobody"], ""),
            duet(&data_dir, &["user", "delete", "HENRY"], ""),
            duet(&data_dir, &["user", "list"], ""),
        )
    })
    .await
    .expect("duet ran");
    assert!(!unknown.status.success());
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(said.contains("no user named \"nobody\""), "{said}");
    assert!(deleted.status.success(), "{deleted:?}");
    assert_eq!(String::from_utf8_lossy(&deleted.stdout), "deleted HENRY\n");
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listing.starts_with("iris\t"), "{listing}");
    assert_eq!(listing.lines().count(), 1);

    // The running server closed the socket as the logins ended, before the account went.
    assert_eq!(tab.expect_close().await, 4001);
    assert_eq!(iris_tab.expect("offline").await["username"], "henry");
    assert_eq!(me_status(&henry).await, 401);
    let login = app
        .browser()
        .post_json("/user/login", "henry", PASSWORD)
        .await;
    assert_eq!(login["code"], "wrong_credentials");
}
