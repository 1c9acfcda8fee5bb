//! Two Duet instances behind a real HAProxy (Debian's `haproxy`, installed by
//! `scripts/install-tools test`), started with the repository's own `deploy/haproxy.cfg` on
//! loopback ports (issue #17), which spreads users over both. Logins and WebSockets pass through
//! it, and when an instance stops or loses its database, its users' sockets reconnect through
//! the balancer to the other one and their login holds.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Browser, TestApp, json_answer, start, test_settings};
use serde_json::json;

/// A private HAProxy running `deploy/haproxy.cfg`, stopped (by its PID) when dropped.
struct Balancer {
    child: Child,
    addr: std::net::SocketAddr,
    /// What HAProxy said, shown when the test fails.
    log: tempfile::NamedTempFile,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Balancer {
    fn start(instances: [&TestApp; 2]) -> Self {
        // A port free a moment ago; HAProxy cannot be told to pick one.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/haproxy.cfg");
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let child = common::dies_with_test(&mut Command::new("haproxy"))
            // In the foreground, as this test's child.
            .args(["-db", "-f", config])
            .env("DUET_LB_BIND", addr.to_string())
            .env("DUET_INSTANCE_1", instances[0].addr.to_string())
            .env("DUET_INSTANCE_2", instances[1].addr.to_string())
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("the log file"))
            .spawn()
            .expect("haproxy runs (scripts/install-tools test installs it)");
        Self { child, addr, log }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (a bounded while) until HAProxy answers. Its servers start as up; a stopped one is
    /// found by its checks or by a refused connection, which is tried on the other.
    async fn ready(&self) {
        for _ in 0..100 {
            if let Ok(answer) = reqwest::get(format!("{}/healthz", self.base())).await
                && answer.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let said = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        panic!("HAProxy does not answer; it said:\n{said}");
    }
}

/// Open signaling sockets on `app`, from its metrics.
async fn sockets_on(app: &TestApp) -> u64 {
    let text = app.metrics().await;
    text.lines()
        .find_map(|line| line.strip_prefix("duet_websocket_connections "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the connection gauge")
}

#[tokio::test]
async fn sockets_of_a_stopped_instance_reconnect_through_the_balancer_to_the_other() {
    let dir = tempfile::tempdir().unwrap();
    // Two instances on one database, each trusting the balancer's forwarded headers.
    let instance = || {
        let mut settings = test_settings(dir.path());
        settings.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a proxy")];
        start(settings)
    };
    let first = instance().await;
    let second = instance().await;
    let balancer = Balancer::start([&first, &second]);
    balancer.ready().await;

    // Through the balancer: register, log in, open a socket.
    let browser = Browser::new(&balancer.base());
    let answer = browser
        .post_json("/user/register", "nadia", "correct horse")
        .await;
    assert_eq!(answer, json!({"flag": true}));
    let mut tab = browser.socket().await.ready().await;
    let (holder, other) = if sockets_on(&first).await == 1 {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(sockets_on(&holder).await, 1, "on one instance");
    assert_eq!(sockets_on(&other).await, 0, "not on both");

    // The instance holding it stops: the socket closes, as for a restart.
    holder.stop().await;
    let closed = tokio::time::timeout(Duration::from_secs(10), tab.expect_close())
        .await
        .expect("the socket closes");
    assert_eq!(closed, 1001, "going away");

    // The client reconnects through the balancer (a refused connection is tried on the other
    // instance), still logged in: the other instance reads the same session store.
    let _again = browser.socket().await.ready().await;
    assert_eq!(sockets_on(&other).await, 1, "now on the other instance");
    let (status, me) = json_answer(browser.get("/user/me")).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "nadia", "{me}");
}

/// An instance whose database becomes unreachable fails HAProxy's health check (`/healthz`
/// answers 503), HAProxy closes its sockets, and its users reconnect to the instance that can
/// serve them. Needs a database behind a connection to cut: the run on PostgreSQL
/// (`scripts/with-postgres`, part of the test command).
#[tokio::test]
async fn users_leave_an_instance_whose_database_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    let Some(cable) = common::cable::through_cable(&mut settings).await else {
        eprintln!("on SQLite there is no connection to cut: this test runs on PostgreSQL");
        return;
    };
    // One instance reaches the database through the cable, the other directly.
    let cut_off = start(settings).await;
    let healthy = start(test_settings(dir.path())).await;
    let balancer = Balancer::start([&cut_off, &healthy]);
    balancer.ready().await;
    let browser = Browser::new(&balancer.base());
    let answer = browser
        .post_json("/user/register", "omar", "correct horse")
        .await;
    assert_eq!(answer, json!({"flag": true}));
    // Tabs until one is on the instance that will lose its database (the balancer spreads
    // them: the second at the latest).
    let mut tabs = Vec::new();
    while sockets_on(&cut_off).await == 0 {
        assert!(
            tabs.len() < 4,
            "the balancer never chose one of the instances"
        );
        tabs.push(browser.socket().await.ready().await);
    }
    let mut doomed = tabs
        .pop()
        .expect("a tab on the instance about to be cut off");
    let kept = sockets_on(&healthy).await;

    cable.cut();
    // HAProxy marks it down after two failed checks a second apart, and drops its sockets.
    assert_eq!(doomed.expect_close().await, 1006, "dropped by the balancer");
    // Reconnecting lands on the instance that can serve.
    let _again = browser.socket().await.ready().await;
    assert_eq!(
        sockets_on(&healthy).await,
        kept + 1,
        "on the other instance now"
    );
    assert_eq!(sockets_on(&cut_off).await, 0);
    let (status, me) = json_answer(browser.get("/user/me")).await;
    assert_eq!(status, 200, "{me}");
}
