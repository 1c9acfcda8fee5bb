//! SIGTERM against the real `duet` binary with real clients: every open socket hears 1001 before
//! the process exits, within the grace period, even when the supervisor's stderr pipe is gone.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use common::Browser;
use futures::future::join_all;
use serde_json::json;

/// The binary as a child process, killed if the test fails before it exits.
struct Duet {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Duet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Duet {
    /// Starts it on a free loopback port; returns once it serves. Its stderr is read until then
    /// and then closed, as by a supervisor that went away.
    fn start(grace_secs: u64) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_duet"));
        // The developer's own settings must not leak in.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("DUET_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .env("DUET_ADDR", "127.0.0.1:0")
            .env("DUET_DATA_DIR", dir.path().join("data"))
            .env("DUET_SITE_ROOT", dir.path().join("no-site"))
            .env("DUET_SHUTDOWN_GRACE_SECS", grace_secs.to_string())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("duet starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let mut log = String::new();
        let mut addr = None;
        for line in BufReader::new(stderr).lines() {
            let line = line.expect("log line");
            log.push_str(&line);
            log.push('\n');
            if let Some(rest) = strip_ansi(&line).split("Duet is serving addr=").nth(1) {
                addr = rest.split_whitespace().next().map(str::to_owned);
                break;
            }
        }
        // The reader is dropped here: stderr is a closed pipe from now on.
        let addr = addr.unwrap_or_else(|| panic!("duet did not start:\n{log}"));
        Self {
            child,
            addr,
            _dir: dir,
        }
    }

    fn terminate(&self) {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        // SAFETY: signals our own child process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[tokio::test]
async fn sigterm_tells_every_socket_going_away_then_exits() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut duet = Duet::start(10);
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
