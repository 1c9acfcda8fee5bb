//! Several Duet instances on one database (issue #17): what one instance writes, the others
//! honour. Two real servers on loopback ports share the test run's database (the SQLite file of
//! one data directory, or one PostgreSQL database when the test command started a server).

mod common;

use std::time::Duration;

use common::{Browser, TestApp, json_answer, start, test_settings};
use serde_json::json;

const PASSWORD: &str = "correct horse";

/// Two instances on one database.
async fn two_instances(dir: &std::path::Path) -> (TestApp, TestApp) {
    two_instances_with(dir, |_| {}).await
}

/// Two instances on one database, each with `configure` applied to its settings.
async fn two_instances_with(
    dir: &std::path::Path,
    configure: impl Fn(&mut server::config::Settings),
) -> (TestApp, TestApp) {
    let instance = || {
        let mut settings = test_settings(dir);
        configure(&mut settings);
        start(settings)
    };
    let first = instance().await;
    let second = instance().await;
    (first, second)
}

/// `name` logs in through `app`.
async fn log_in(app: &TestApp, name: &str, password: &str) -> Browser {
    let browser = app.browser();
    let answer = browser.post_json("/user/login", name, password).await;
    assert_eq!(answer, json!({"flag": true}), "{name} logs in");
    browser
}

#[tokio::test]
async fn an_account_made_on_one_instance_logs_in_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = two_instances(dir.path()).await;
    first.user("ines").await;
    let on_second = log_in(&second, "ines", PASSWORD).await;
    let (status, me) = json_answer(on_second.get("/user/me")).await;
    assert_eq!(status, 200, "{me}");
    // The name is taken everywhere.
    let taken = second
        .browser()
        .post_json("/user/register", "INES", PASSWORD)
        .await;
    assert_eq!(taken["code"], "username_taken", "{taken}");
}

#[tokio::test]
async fn a_password_changed_on_one_instance_closes_the_sockets_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = two_instances(dir.path()).await;
    let laptop = first.user("jonas").await;
    let phone = log_in(&second, "jonas", PASSWORD).await;
    let mut phone_tab = phone.socket().await.ready().await;

    let (status, answer) = json_answer(
        laptop
            .post("/user/password")
            .json(&json!({"current": PASSWORD, "new": "a brand new password"})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    // The other instance learns it from the database (it looks every 2 s).
    let closed = tokio::time::timeout(Duration::from_secs(10), phone_tab.expect_close())
        .await
        .expect("the socket on the other instance closes");
    assert_eq!(closed, 4001, "session ended");
    let (status, _) = json_answer(phone.get("/user/me")).await;
    assert_eq!(status, 401, "the other instance's login is over too");
    log_in(&second, "jonas", "a brand new password").await;
}

#[tokio::test]
async fn contacts_made_on_one_instance_are_the_book_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = two_instances(dir.path()).await;
    let kim = first.user("kim").await;
    let lou = second.user("lou").await;
    common::befriend(&kim, "kim", &lou, "lou").await;
    let kim_there = log_in(&second, "kim", PASSWORD).await;
    let (status, book) = json_answer(kim_there.get("/contacts")).await;
    assert_eq!(status, 200, "{book}");
    assert_eq!(
        book["contacts"],
        json!([{"username": "lou", "state": "mutual"}]),
        "{book}"
    );
}

async fn healthz(app: &TestApp) -> u16 {
    reqwest::get(app.url("/healthz"))
        .await
        .expect("an answer")
        .status()
        .as_u16()
}

/// `/healthz`'s status once it is 200, or the last one seen within 10 s: what it depends on
/// comes back on the next request that tries it.
async fn healthz_recovered(app: &TestApp) -> u16 {
    let mut status = healthz(app).await;
    for _ in 0..40 {
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        status = healthz(app).await;
    }
    status
}

/// `/healthz` tells a load balancer the truth: 503 while the database cannot be reached, 200 again
/// once it can; `/livez` says only that the process runs. Needs a database behind a network
/// connection to cut: the run on PostgreSQL (`scripts/with-postgres`, part of the test command).
#[tokio::test]
async fn healthz_answers_503_while_the_database_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    let Some(cable) = common::cable::through_cable(&mut settings).await else {
        eprintln!("on SQLite there is no connection to cut: this test runs on PostgreSQL");
        return;
    };
    let app = start(settings).await;
    app.user("mo").await;
    assert_eq!(healthz(&app).await, 200);

    cable.cut();
    assert_eq!(healthz(&app).await, 503, "the database is unreachable");
    let live = reqwest::get(app.url("/livez")).await.unwrap();
    assert_eq!(live.status(), 200, "the process still runs");

    cable.mend();
    // The pool opens a new connection on the next request.
    assert_eq!(
        healthz_recovered(&app).await,
        200,
        "ready again once the database answers"
    );
    log_in(&app, "mo", PASSWORD).await;
}

/// Two instances on one database that share their throttles through `redis`, each with
/// `configure` applied.
async fn two_instances_on_redis(
    dir: &std::path::Path,
    redis: &common::redis::RedisServer,
    configure: impl Fn(&mut server::config::Settings),
) -> (TestApp, TestApp) {
    two_instances_with(dir, |settings| {
        settings.redis_url = Some(redis.url());
        configure(settings);
    })
    .await
}

/// A login's status code through `app`.
async fn login_status(app: &TestApp, name: &str, password: &str) -> u16 {
    let (status, _) = json_answer(app.browser().post("/user/login").json(&json!({
        "username": name,
        "password": password,
    })))
    .await;
    status.as_u16()
}

/// Guessing a password on one instance counts on the other: the limit is the service's, not
/// each instance's (an attacker behind a balancer would otherwise get N times the guesses).
#[tokio::test]
async fn failed_logins_count_across_instances_through_redis() {
    let dir = tempfile::tempdir().unwrap();
    let redis = common::redis::RedisServer::start().await;
    let (first, second) =
        two_instances_on_redis(dir.path(), &redis, |s| s.login_failures = 3).await;
    first.user("pia").await;
    for _ in 0..2 {
        assert_eq!(login_status(&first, "pia", "wrong guess").await, 200);
    }
    assert_eq!(login_status(&second, "pia", "wrong guess").await, 200);
    // Three failures in all: both instances refuse the fourth, even with the right password.
    assert_eq!(login_status(&second, "pia", PASSWORD).await, 429);
    assert_eq!(login_status(&first, "pia", "wrong guess").await, 429);
}

/// Registrations per address count across instances too.
#[tokio::test]
async fn registrations_per_address_count_across_instances_through_redis() {
    let dir = tempfile::tempdir().unwrap();
    let redis = common::redis::RedisServer::start().await;
    let (first, second) =
        two_instances_on_redis(dir.path(), &redis, |s| s.register_limit = 2).await;
    first.user("quinn").await;
    second.user("rosa").await;
    let third = first
        .browser()
        .post_json("/user/register", "sami", PASSWORD)
        .await;
    assert_eq!(third["code"], "too_many_registrations", "{third}");
}

/// While Redis is away the instance is not ready (`/healthz` 503, so a balancer sends users
/// elsewhere), logins still work and its own count of failures still holds; once Redis is back,
/// it is ready again and shares its counts again.
#[tokio::test]
async fn without_redis_an_instance_says_so_and_keeps_counting_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = common::redis::RedisServer::start().await;
    let (first, _second) =
        two_instances_on_redis(dir.path(), &redis, |s| s.login_failures = 2).await;
    first.user("tao").await;
    assert_eq!(healthz(&first).await, 200);

    redis.stop();
    assert_eq!(healthz(&first).await, 503, "Redis is away");
    assert_eq!(login_status(&first, "tao", PASSWORD).await, 200);
    for _ in 0..2 {
        assert_eq!(login_status(&first, "tao", "wrong guess").await, 200);
    }
    assert_eq!(
        login_status(&first, "tao", PASSWORD).await,
        429,
        "the local count holds"
    );

    redis.restart().await;
    // The connection comes back on the next command.
    assert_eq!(
        healthz_recovered(&first).await,
        200,
        "ready again once Redis answers"
    );
}

/// Set for the victim of the test below.
const HOLD_REDIS: &str = "DUET_TEST_HOLD_REDIS";

/// A test's Redis goes when the test binary is killed and no destructor runs (a CI timeout): the
/// kernel stops it. The binary runs itself as the victim (a test that starts a Redis, says where,
/// and waits), kills it with SIGKILL, and watches the Redis port close.
#[tokio::test]
async fn a_test_redis_goes_with_a_killed_test_binary() {
    use std::io::BufRead;
    let mut victim = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "holds_a_redis_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(HOLD_REDIS, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let said = std::io::BufReader::new(victim.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let (pid, port) = line.strip_prefix("redis ")?.split_once(' ')?;
            Some((pid.parse::<i32>().ok()?, port.parse::<u16>().ok()?))
        });
    let Some((pid, port)) = said else {
        let _ = victim.kill();
        panic!("the victim did not say where its Redis is");
    };
    let listening = || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    };
    assert!(listening().await, "the victim's Redis serves");
    victim.kill().unwrap();
    victim.wait().unwrap();
    for _ in 0..100 {
        if !listening().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SAFETY: signals the Redis the victim started (still its process: it never exited).
    unsafe { libc::kill(pid, libc::SIGKILL) };
    panic!("the Redis of a killed test binary still served 5 s later");
}

/// The victim of the test above, run only by it.
#[tokio::test]
#[ignore = "run by a_test_redis_goes_with_a_killed_test_binary"]
async fn holds_a_redis_until_killed() {
    use std::io::Write;
    if std::env::var_os(HOLD_REDIS).is_none() {
        return;
    }
    let redis = common::redis::RedisServer::start().await;
    println!("redis {} {}", redis.pid().unwrap(), redis.port());
    std::io::stdout().flush().unwrap();
    // Bounded, should the test above not kill it.
    tokio::time::sleep(Duration::from_secs(60)).await;
}
