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

/// Starts `duet` with `url` as its database in a fresh directory; what it said, and what it left
/// in that directory.
fn start_on(url: &str) -> (std::process::Output, Vec<std::ffi::OsString>) {
    let dir = tempfile::tempdir().unwrap();
    let started = common::binary::command()
        .args(["--addr", "127.0.0.1:0"])
        .env("DUET_DATA_DIR", dir.path().join("data"))
        .env("DUET_DATABASE_URL", url)
        .current_dir(dir.path())
        .output()
        .expect("duet runs");
    let left = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    (started, left)
}

/// A database URL Duet cannot use stops it at start with a clear error, instead of a new SQLite
/// file named after the URL (sqlx reads any string without `sqlite:` as a file name).
#[test]
fn a_database_url_duet_cannot_use_stops_it_at_start() {
    let (started, left) = start_on("mysql://duet:secret@127.0.0.1:1/duet");
    let said = String::from_utf8_lossy(&started.stderr);
    assert!(!started.status.success(), "it must not start: {said}");
    assert!(said.contains("\"mysql\""), "names the scheme: {said}");
    assert!(
        said.contains("sqlite://") && said.contains("postgres://"),
        "says what works: {said}"
    );
    assert!(
        !said.contains("secret"),
        "does not repeat the password: {said}"
    );
    assert!(left.is_empty(), "nothing created: {left:?}");
}

/// A PostgreSQL that does not answer stops Duet at start, said as such (and nothing is made on
/// disk in its place).
#[test]
fn a_postgres_server_that_does_not_answer_stops_it_at_start() {
    let (started, left) = start_on("postgres://duet:secret@127.0.0.1:1/duet");
    let said = String::from_utf8_lossy(&started.stderr);
    assert!(!started.status.success(), "it must not start: {said}");
    assert!(said.contains("cannot open the database"), "{said}");
    assert!(
        !said.contains("secret"),
        "does not repeat the password: {said}"
    );
    // Its data directory (TLS keys and the like live there with any database), and no file in
    // the working directory named after the URL.
    assert_eq!(left, ["data"], "nothing but the data directory: {left:?}");
}

/// An instance told to share its state through a Redis it cannot reach stops at start, said as
/// such, without repeating the password; so does a Redis URL it cannot read.
#[test]
fn a_redis_that_does_not_answer_stops_it_at_start() {
    for (url, said_what) in [
        (
            "redis://:secret@127.0.0.1:1/",
            "cannot reach Redis at 127.0.0.1:1",
        ),
        ("rediss-nope://:secret@127.0.0.1:1/", "invalid Redis URL"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let started = common::binary::command()
            .args(["--addr", "127.0.0.1:0"])
            .env("DUET_DATA_DIR", dir.path().join("data"))
            .env("DUET_REDIS_URL", url)
            .output()
            .expect("duet runs");
        let said = String::from_utf8_lossy(&started.stderr);
        assert!(!started.status.success(), "it must not start: {said}");
        assert!(said.contains(said_what), "{url}: {said}");
        assert!(
            !said.contains("secret"),
            "does not repeat the password: {said}"
        );
    }
}
