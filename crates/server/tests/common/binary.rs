//! The real `duet` binary as a child process, on a free loopback port and a data directory of
//! its own.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The binary as a child process, killed if the test fails before it exits.
pub struct Duet {
    pub child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Duet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Duet {
    /// Starts it on a free loopback port with these extra `DUET_*` settings; returns once it
    /// serves. Its stderr is read until then and then closed, as by a supervisor that went away.
    pub fn start(settings: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = command()
            .env("DUET_ADDR", "127.0.0.1:0")
            .env("DUET_DATA_DIR", dir.path().join("data"))
            .env("DUET_SITE_ROOT", dir.path().join("no-site"))
            .envs(settings.iter().copied())
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

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn terminate(&self) {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        // SAFETY: signals our own child process.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    }
}

/// The binary, without the developer's own `DUET_*` settings (they must not leak into a test).
pub fn command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_duet"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DUET_") {
            command.env_remove(name);
        }
    }
    command
}

/// A log line without its colour codes.
pub fn strip_ansi(line: &str) -> String {
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
