//! SIGTERM against the real `duet` binary with real clients: every open socket hears 1001 before
//! the process exits, within the grace period, even when the supervisor's stderr pipe is gone.

mod common;

use std::time::Instant;

use common::Browser;
use common::binary::Duet;
use futures::future::join_all;
use serde_json::json;

#[tokio::test]
async fn sigterm_tells_every_socket_going_away_then_exits() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut duet = Duet::start(&[("DUET_SHUTDOWN_GRACE_SECS", "10")]);
    let base = format!("http://{}", duet.addr);
    let mut sockets = Vec::new();
    for i in 0..20 {
        let browser = Browser::new(&base);
        let answer = browser
            .post_json("/user/register", &format!("leaver{i}"), "correct horse")
            .await;
        assert_eq!(answer, json!({"flag": true}));
        sockets.push(browser.socket().await.ready().await);
    }
    let asked = Instant::now();
    duet.terminate();
    let codes = join_all(sockets.iter_mut().map(|s| s.expect_close())).await;
    assert!(
        codes.iter().all(|code| *code == 1001),
        "every socket is told the server is going away: {codes:?}"
    );
    let (status, _duet) = tokio::task::spawn_blocking(move || {
        let status = duet.child.wait().expect("duet exits");
        (status, duet)
    })
    .await
    .expect("waited");
    // A clean exit (not a panic on the closed stderr), and the sockets were closed, not dropped.
    assert!(status.success(), "clean exit: {status:?}");
    eprintln!("SIGTERM to exit, 20 sockets closed: {:?}", asked.elapsed());
}
