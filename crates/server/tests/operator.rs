//! `duet user …` on a real database file, then a login over HTTP with what it created.

mod common;

use common::{duet, start, test_settings};
use serde_json::json;

#[tokio::test]
async fn operator_adds_lists_and_changes_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let added = duet(
        dir.path(),
        &["user", "add", "operator.made"],
        "first password\n",
    );
    assert!(added.status.success(), "{added:?}");
    let dup = duet(
        dir.path(),
        &["user", "add", "Operator.Made"],
        "first password\n",
    );
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("taken"));
    let short = duet(dir.path(), &["user", "add", "other"], "short\n");
    assert!(String::from_utf8_lossy(&short.stderr).contains("shorter than 8"));

    let changed = duet(
        dir.path(),
        &["user", "passwd", "operator.made"],
        "second password\n",
    );
    assert!(changed.status.success(), "{changed:?}");
    let listed = duet(dir.path(), &["user", "list"], "");
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listing.starts_with("operator.made\t"), "{listing}");
    assert_eq!(listing.lines().count(), 1);

    let app = start(test_settings(dir.path())).await;
    let browser = app.browser();
    let old = browser
        .post_json("/user/login", "operator.made", "first password")
        .await;
    assert_eq!(old["flag"], false);
    let new = browser
        .post_json("/user/login", "operator.made", "second password")
        .await;
    assert_eq!(new, json!({"flag": true}));
}

#[tokio::test]
async fn a_password_change_from_the_shell_ends_every_login_of_the_old_one() {
    let app = common::spawn_app().await;
    let laptop = app.user("olga").await;
    let mut tab = laptop.socket().await.ready().await;
    let data_dir = app.data_dir.clone();
    // Another process, on the same database, while the server runs.
    let changed = tokio::task::spawn_blocking(move || {
        duet(&data_dir, &["user", "passwd", "olga"], "a new password\n")
    })
    .await
    .expect("duet ran");
    assert!(changed.status.success(), "{changed:?}");
    assert_eq!(tab.expect_close().await, 4001, "the open socket closes");
    let (status, _) = common::json_answer(laptop.get("/user/me")).await;
    assert_eq!(status, 401, "the old login is over");
    let again = laptop
        .post_json("/user/login", "olga", "a new password")
        .await;
    assert_eq!(again, json!({"flag": true}));
}

/// A database URL Duet cannot use stops it at start with a clear error, instead of a new SQLite
/// file named after the URL (sqlx reads any string without `sqlite:` as a file name).
#[test]
fn a_database_url_duet_cannot_use_stops_it_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::process::Command::new(env!("CARGO_BIN_EXE_duet"))
        .args(["--addr", "127.0.0.1:0"])
        .env("DUET_DATA_DIR", dir.path().join("data"))
        .env(
            "DUET_DATABASE_URL",
            "postgres://duet:secret@127.0.0.1:1/duet",
        )
        .current_dir(dir.path())
        .output()
        .expect("duet runs");
    let said = String::from_utf8_lossy(&started.stderr);
    assert!(!started.status.success(), "it must not start: {said}");
    assert!(said.contains("\"postgres\""), "names the scheme: {said}");
    assert!(said.contains("sqlite://"), "says what works: {said}");
    assert!(
        !said.contains("secret"),
        "does not repeat the password: {said}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "nothing created: {left:?}");
}
