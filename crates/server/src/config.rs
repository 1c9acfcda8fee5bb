//! Settings: every one is a flag and an environment variable, with defaults that run Duet on one
//! machine with no other service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use protocol::IceTransportPolicy;

use crate::proxy::TrustedProxy;
use crate::signaling::hub::PresenceScope;
use crate::turn::{Turn, TurnError, TurnSecret};

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
    /// Delete an account and everything of theirs (sessions, contacts, history). A server
    /// running on the same database ends their logins and closes their sockets first.
    Delete { name: String },
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

    /// Redis URL (`redis://[:password@]host:port/`) for what several instances share: the
    /// login and registration throttles (docs/scale-out.md). Unset: each instance counts alone.
    #[arg(long, env = "DUET_REDIS_URL")]
    pub redis_url: Option<String>,

    /// ICE servers handed to browsers, as a JSON array of RTCIceServer objects.
    #[arg(long, env = "DUET_ICE_SERVERS", default_value = "[]", value_parser = parse_ice_servers)]
    pub ice_servers: serde_json::Value,

    /// TURN servers (comma-separated `turn:`/`turns:` URLs) for which Duet mints short-lived
    /// credentials per connection. The shared secret comes from `DUET_TURN_SECRET` or
    /// `--turn-secret-file`, never from a flag (it would show in `ps`).
    #[arg(long, env = "DUET_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,

    /// File holding the TURN shared secret (coturn's `static-auth-secret`).
    #[arg(long, env = "DUET_TURN_SECRET_FILE")]
    pub turn_secret_file: Option<PathBuf>,

    /// The TURN shared secret, from the `DUET_TURN_SECRET` environment variable only.
    #[arg(skip)]
    pub turn_secret: Option<TurnSecret>,

    /// Lifetime of the TURN credentials handed out, in seconds.
    #[arg(long, env = "DUET_TURN_TTL_SECS", default_value_t = 3600)]
    pub turn_ttl_secs: u64,

    /// `all` or `relay`: with `relay`, browsers use TURN candidates only, so users never see
    /// each other's addresses (needs a TURN server).
    #[arg(long, env = "DUET_ICE_TRANSPORT_POLICY", default_value = "all", value_parser = parse_policy)]
    pub ice_transport_policy: IceTransportPolicy,

    /// Whose presence users see: `contacts` (their mutual contacts) or `everyone` online on this
    /// server (a small team; blocks still hide people from each other).
    #[arg(long, env = "DUET_PRESENCE", value_enum, default_value_t = PresenceScope::Contacts)]
    pub presence: PresenceScope,

    /// Serve HTTPS with this certificate chain (PEM); needs `--tls-key`.
    #[arg(long, env = "DUET_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of `--tls-cert`.
    #[arg(long, env = "DUET_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed certificate made once and kept in `<data-dir>/tls/`.
    #[arg(long, env = "DUET_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,

    /// Names and addresses (comma-separated) the self-signed certificate is made for; default:
    /// this host's name, `localhost` and the loopback addresses.
    #[arg(long, env = "DUET_TLS_NAMES", value_delimiter = ',')]
    pub tls_names: Vec<String>,

    /// With TLS: also listen here for plain HTTP, answering only with a redirect to HTTPS.
    #[arg(long, env = "DUET_HTTP_REDIRECT_ADDR")]
    pub http_redirect_addr: Option<SocketAddr>,

    /// Reverse proxies (comma-separated CIDR blocks or addresses) whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed; from anyone else those headers are ignored.
    #[arg(long, env = "DUET_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<TrustedProxy>,

    /// Extra origins (comma-separated, e.g. `https://duet.example`) allowed to open the WebSocket,
    /// besides the server's own.
    #[arg(long, env = "DUET_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Serve Prometheus metrics at `GET /metrics` on this address (for example `127.0.0.1:9090`),
    /// apart from the app, so they are not public; by default they are not served at all.
    #[arg(long, env = "DUET_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Directory holding the built site (`pkg/` with the wasm, JS and CSS).
    #[arg(long, env = "DUET_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,

    /// Minutes of inactivity after which a login session expires.
    #[arg(long, env = "DUET_SESSION_IDLE_MINUTES", default_value_t = 7 * 24 * 60)]
    pub session_idle_minutes: i64,

    /// Maximum lifetime of a login session in days, however active it is.
    #[arg(long, env = "DUET_SESSION_MAX_DAYS", default_value_t = 30.0, value_parser = parse_days)]
    pub session_max_days: f64,

    /// New accounts per client address per hour (a family or an office behind one NAT stays
    /// well under it; benchmarks that register thousands of users raise it).
    #[arg(long, env = "DUET_REGISTER_LIMIT", default_value_t = 30)]
    pub register_limit: u32,

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

    /// On SIGTERM or SIGINT: seconds the open connections get to close (every WebSocket is told
    /// 1001 "going away" at once) before the process exits regardless.
    #[arg(long, env = "DUET_SHUTDOWN_GRACE_SECS", default_value_t = 10)]
    pub shutdown_grace_secs: u64,

    /// Connections one client address (IPv6: one /64) may hold open at once; more are answered
    /// 429. A family or an office behind one NAT never meets it; benchmarks raise it.
    #[arg(long, env = "DUET_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,

    /// Connections open at once, from everyone; more are answered 503.
    #[arg(long, env = "DUET_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,

    /// Seconds a client has to send a request's headers (slowloris), and a `/user/*` request
    /// to be answered (408 after that).
    #[arg(long, env = "DUET_REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    pub request_timeout_secs: u64,

    /// Password hashes computed at once (each takes 19 MiB and a core for tens of ms).
    /// Default: one less than the cores, so a burst of logins leaves a core to the relay.
    #[arg(long, env = "DUET_HASH_CONCURRENCY", default_value_t = default_hash_concurrency())]
    pub hash_concurrency: usize,

    /// Logins and registrations that may wait for a hashing slot; beyond that, 503 with
    /// `Retry-After` at once.
    #[arg(long, env = "DUET_HASH_QUEUE", default_value_t = DEFAULT_HASH_QUEUE)]
    pub hash_queue: usize,
}

/// Logins and registrations that may wait for a hashing slot; more are answered 503 at once.
const DEFAULT_HASH_QUEUE: usize = 64;

fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|cores| cores.get().saturating_sub(1))
        .unwrap_or(1)
        .max(1)
}

fn parse_days(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(days) if days.is_finite() && days > 0.0 => Ok(days),
        _ => Err(format!("must be a positive number of days, not {raw:?}")),
    }
}

fn parse_policy(raw: &str) -> Result<IceTransportPolicy, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "all" => Ok(IceTransportPolicy::All),
        "relay" => Ok(IceTransportPolicy::Relay),
        other => Err(format!("must be `all` or `relay`, not {other:?}")),
    }
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

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs.max(1))
    }

    pub fn heartbeat_timeout(&self) -> Duration {
        Duration::from_secs(self.heartbeat_timeout_secs.max(1))
    }

    /// Whether Duet itself serves HTTPS.
    pub fn serves_tls(&self) -> bool {
        self.tls_cert.is_some() || self.tls_self_signed
    }

    /// Takes the TURN secret from `DUET_TURN_SECRET` (the binary calls this once at start).
    pub fn read_secret_from_env(&mut self) {
        if self.turn_secret.is_none()
            && let Ok(secret) = std::env::var("DUET_TURN_SECRET")
            && !secret.trim().is_empty()
        {
            self.turn_secret = Some(TurnSecret::new(secret.trim()));
        }
    }

    /// The TURN set-up, if any: URLs and secret must come together.
    pub fn turn(&self) -> Result<Option<Turn>, TurnError> {
        let secret = match (&self.turn_secret, &self.turn_secret_file) {
            (Some(secret), _) => Some(secret.clone()),
            (None, Some(path)) => Some(TurnSecret::from_file(path)?),
            (None, None) => None,
        };
        let urls: Vec<String> = self
            .turn_urls
            .iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        match (urls.is_empty(), secret) {
            (true, None) => Ok(None),
            (true, Some(_)) => Err(TurnError::MissingUrls),
            (false, None) => Err(TurnError::MissingSecret),
            (false, Some(secret)) => {
                Turn::new(urls, secret, Duration::from_secs(self.turn_ttl_secs.max(1))).map(Some)
            }
        }
    }

    /// Whether `DUET_ICE_SERVERS` names a TURN server of its own (static credentials).
    pub fn static_turn_configured(&self) -> bool {
        let is_turn = |url: &serde_json::Value| {
            url.as_str()
                .is_some_and(|u| u.starts_with("turn:") || u.starts_with("turns:"))
        };
        self.ice_servers.as_array().is_some_and(|servers| {
            servers.iter().any(|server| match &server["urls"] {
                serde_json::Value::Array(urls) => urls.iter().any(is_turn),
                url => is_turn(url),
            })
        })
    }

    /// Settings for tests and tools: the defaults, as if no flag and no `DUET_*` variable were
    /// given (a developer's environment must not change what a test runs against).
    pub fn defaults() -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let command = Cli::command().mut_args(|arg| arg.env(None));
        let matches = command.get_matches_from(["duet"]);
        Cli::from_arg_matches(&matches)
            .expect("the defaults parse")
            .settings
    }
}
