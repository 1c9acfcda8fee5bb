//! Settings: every one is a flag and an environment variable, with defaults that run Duet on one
//! machine with no other service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "duet", version, about = "Duet: self-hosted 1:1 video calls")]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the app (the default).
    Serve,
    /// Manage accounts from the operator's shell.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; the password is read from standard input or a prompt.
    Add { name: String },
    /// Set a new password; read from standard input or a prompt.
    Passwd { name: String },
    /// List the accounts.
    List,
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "DUET_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Where Duet keeps its data (the SQLite file by default).
    #[arg(long, env = "DUET_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Database URL; default: `sqlite://<data-dir>/duet.db`, created on first start.
    #[arg(long, env = "DUET_DATABASE_URL")]
    pub database_url: Option<String>,

    /// ICE servers handed to browsers, as a JSON array of RTCIceServer objects.
    #[arg(long, env = "DUET_ICE_SERVERS", default_value = "[]", value_parser = parse_ice_servers)]
    pub ice_servers: serde_json::Value,

    /// Extra origins (comma-separated, e.g. `https://duet.example`) allowed to open the WebSocket,
    /// besides the server's own.
    #[arg(long, env = "DUET_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Directory holding the built site (`pkg/` with the wasm, JS and CSS).
    #[arg(long, env = "DUET_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Minutes of inactivity after which a login session expires.
    #[arg(long, env = "DUET_SESSION_IDLE_MINUTES", default_value_t = 7 * 24 * 60)]
    pub session_idle_minutes: i64,

    /// Failed logins allowed per account and per client address within the throttle window.
    #[arg(long, env = "DUET_LOGIN_FAILURES", default_value_t = 10)]
    pub login_failures: u32,

    /// The throttle window in seconds.
    #[arg(long, env = "DUET_LOGIN_WINDOW_SECS", default_value_t = 15 * 60)]
    pub login_window_secs: u64,

    /// Seconds without a pong after which a WebSocket is closed and its user shown offline.
    #[arg(long, env = "DUET_HEARTBEAT_TIMEOUT_SECS", default_value_t = 30)]
    pub heartbeat_timeout_secs: u64,

    /// Frames a connection may send per second (sustained; bursts of twice as many pass).
    #[arg(long, env = "DUET_RATE_LIMIT", default_value_t = 200)]
    pub rate_limit_per_sec: u32,

    /// Password hashes computed at once (each takes 19 MiB and a core for tens of ms).
    /// Default: one less than the cores, so a burst of logins leaves a core to the relay.
    #[arg(long, env = "DUET_HASH_CONCURRENCY", default_value_t = default_hash_concurrency())]
    pub hash_concurrency: usize,
}

fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|cores| cores.get().saturating_sub(1))
        .unwrap_or(1)
        .max(1)
}

fn parse_ice_servers(raw: &str) -> Result<serde_json::Value, String> {
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| format!("not JSON: {e}"))?;
    let servers = value
        .as_array()
        .ok_or("must be a JSON array of RTCIceServer objects")?;
    for server in servers {
        if server.get("urls").is_none() {
            return Err(format!("every RTCIceServer needs \"urls\": {server}"));
        }
    }
    Ok(value)
}

impl Settings {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("duet.db").display()))
    }

    pub fn login_window(&self) -> Duration {
        Duration::from_secs(self.login_window_secs)
    }

    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_secs(self.heartbeat_timeout_secs.max(1))
    }

    /// Settings for tests and tools: defaults, as if no flag were given.
    pub fn defaults() -> Self {
        Cli::parse_from(["duet"]).settings
    }
}
