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
