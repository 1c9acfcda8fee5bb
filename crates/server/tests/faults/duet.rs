//! The real `duet` binary as a child process: its own data directory, none of the developer's
//! `DUET_*` settings, loopback only, and killed when dropped so a failing test leaves no server
//! behind.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How many of the server's last log lines a failure shows.
const LOG_LINES_KEPT: usize = 200;

pub struct Duet {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
}

/// What a test adds to the server's command line and environment.
#[derive(Default, Clone)]
pub struct Options {
    /// `None`: a free port chosen by the kernel.
    pub addr: Option<SocketAddr>,
    pub env: Vec<(String, String)>,
}

impl Duet {
    /// Starts the binary and waits until it says it is serving (and on which address).
    pub fn start(data_dir: &Path, options: &Options) -> Self {
        let mut command = crate::common::binary::command();
        let addr = options
            .addr
            .unwrap_or_else(|| "127.0.0.1:0".parse().expect("valid address"));
        command
            .arg("--addr")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            // No site: these tests never load the page, and the working directory's must not count.
            .arg("--site-root")
            .arg(data_dir.join("no-site"))
            .env("RUST_LOG", "warn,server::startup=info")
            .env("NO_COLOR", "1")
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the duet binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (serving, announced) = mpsc::channel();
        {
            let log = log.clone();
            // Drained for the server's whole life: a full pipe would block its logging.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("Duet is serving")
                        && let Some(addr) = serving_addr(&line)
                    {
                        let _ = serving.send(addr);
                    }
                    let mut log = log.lock().expect("log lock");
                    if log.len() == LOG_LINES_KEPT {
                        log.pop_front();
                    }
                    log.push_back(line);
                }
            });
        }
        let mut duet = Self { child, addr, log };
        match announced.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => duet.addr = addr,
            Err(_) => panic!(
                "duet did not start within 30 s (exit: {:?}); its log:\n{}",
                duet.child.try_wait(),
                duet.log_tail()
            ),
        }
        duet
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's last log lines, for a failure message.
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().expect("log lock");
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, as a crash or the OOM killer would: no shutdown code runs.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// Polls `/healthz` until it answers 200, within `deadline`.
    pub async fn healthy_within(&self, deadline: Duration) -> bool {
        let http = reqwest::Client::new();
        let until = Instant::now() + deadline;
        while Instant::now() < until {
            let answer = http
                .get(self.url("/healthz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for Duet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `… Duet is serving addr=127.0.0.1:41234` → the address (colour codes, if any, stripped).
fn serving_addr(line: &str) -> Option<SocketAddr> {
    let plain: String = crate::common::binary::strip_ansi(line);
    let rest = &plain[plain.find("addr=")? + "addr=".len()..];
    rest.split_whitespace().next()?.parse().ok()
}
