//! Starts a real Duet on 127.0.0.1:0 with its own database, and talks to it over real HTTP and
//! WebSocket connections.
//!
//! The database is a SQLite file in the test's data directory, or, when the test command started a
//! private PostgreSQL and named it in `DUET_TEST_POSTGRES_URL`, a database of its own on that
//! server (one per data directory, so a restart on the same directory finds its data again).
#![allow(dead_code)]

pub mod binary;
pub mod cable;
pub mod redis;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};
use server::config::Settings;
use server::startup::Application;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub addr: SocketAddr,
    /// Where `/metrics` is served (tests listen on a free loopback port).
    pub metrics_addr: Option<SocketAddr>,
    pub data_dir: PathBuf,
    /// The server's database when it is not the SQLite file in `data_dir`.
    pub database_url: Option<String>,
    _dir: Option<tempfile::TempDir>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The PostgreSQL server the test command started for these tests, if any (an admin URL).
fn postgres_server() -> Option<String> {
    std::env::var("DUET_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// The database of the tests that use `data_dir`: `None` for the SQLite file in it; on the test
/// PostgreSQL server, a database named after the directory, created on first use.
pub fn database_url_for(data_dir: &std::path::Path) -> Option<String> {
    use std::hash::{Hash, Hasher};
    let server = postgres_server()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data_dir.hash(&mut hasher);
    let name = format!("duet_test_{:016x}", hasher.finish());
    let mut url = reqwest::Url::parse(&server).expect("DUET_TEST_POSTGRES_URL is a URL");
    url.set_path(&name);
    // Its own runtime on its own thread: callers may be inside a test's runtime or not.
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime")
                    .block_on(create_database(&server, &name))
            })
            .join()
            .expect("the database is made")
    });
    Some(url.to_string())
}

async fn create_database(server: &str, name: &str) {
    use sqlx::{Connection, Executor};
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .expect("the test PostgreSQL server answers");
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut admin)
        .await
        .expect("pg_database");
    if exists.is_none() {
        // `name` is made of hex digits: nothing to quote.
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("CREATE DATABASE");
    }
    let _ = admin.close().await;
}

/// Settings for a test that is about the SQLite file itself (its modes, a crash, a full disk):
/// never on the test PostgreSQL server.
pub fn sqlite_settings(data_dir: &std::path::Path) -> Settings {
    let mut settings = test_settings(data_dir);
    settings.database_url = None;
    settings
}

pub fn test_settings(data_dir: &std::path::Path) -> Settings {
    // The test clients' reqwest is built without a crypto provider of its own (the server links
    // rustls with ring only); every test passes here before it makes a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut settings = Settings::defaults();
    settings.addr = "127.0.0.1:0".parse().expect("valid address");
    settings.data_dir = data_dir.to_path_buf();
    settings.database_url = database_url_for(data_dir);
    settings.site_root = data_dir.join("site");
    // Every test registers its users and opens its sockets from 127.0.0.1.
    settings.register_limit = 100_000;
    settings.max_connections_per_ip = 100_000;
    settings.metrics_addr = Some("127.0.0.1:0".parse().expect("valid address"));
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(dir.path());
    configure(&mut settings);
    let mut app = start(settings).await;
    app._dir = Some(dir);
    app
}

pub async fn start(settings: Settings) -> TestApp {
    let data_dir = settings.data_dir.clone();
    let database_url = settings.database_url.clone();
    let app = Application::build(settings).await.expect("app builds");
    let addr = app.local_addr();
    let metrics_addr = app.metrics_addr();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run());
    TestApp {
        addr,
        metrics_addr,
        data_dir,
        database_url,
        _dir: None,
        shutdown,
        server,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The metrics text, from the metrics listener.
    pub async fn metrics(&self) -> String {
        let addr = self.metrics_addr.expect("tests serve metrics");
        reqwest::get(format!("http://{addr}/metrics"))
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text")
    }

    /// Shuts the server down gracefully and waits for it; keeps the data directory.
    pub async fn stop(self) -> Option<tempfile::TempDir> {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
        self._dir
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// One number from the server's database, read over a connection of the test's own.
    /// `{sessions}` in `query` stands for the session store's table (named per backend).
    pub async fn db_number(&self, query: &str) -> i64 {
        use sqlx::Connection;
        /// The same steps on either backend's own connection type.
        macro_rules! read_one {
            ($connection:ty, $url:expr, $table:literal) => {{
                let query = query.replace("{sessions}", $table);
                let mut db = <$connection>::connect($url)
                    .await
                    .expect("the server's database");
                let value = sqlx::query_scalar(&query)
                    .fetch_one(&mut db)
                    .await
                    .expect("a number");
                let _ = db.close().await;
                value
            }};
        }
        match &self.database_url {
            Some(url) => read_one!(sqlx::PgConnection, url, "tower_sessions.session"),
            None => {
                let url = format!("sqlite://{}", self.data_dir.join("duet.db").display());
                read_one!(sqlx::SqliteConnection, &url, "tower_sessions")
            }
        }
    }

    /// A fresh HTTP client with its own cookie jar (one browser, in effect).
    pub fn browser(&self) -> Browser {
        Browser::new(&self.url(""))
    }

    /// Registers `name` and returns its logged-in browser.
    pub async fn user(&self, name: &str) -> Browser {
        let browser = self.browser();
        let answer = browser
            .post_json("/user/register", name, "correct horse")
            .await;
        assert_eq!(answer, json!({"flag": true}), "register {name}");
        browser
    }
}

pub struct Browser {
    pub http: reqwest::Client,
    pub jar: Arc<Jar>,
    pub base: String,
}

impl Browser {
    /// A browser with an empty cookie jar, for the server at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .build()
            .expect("client");
        Self {
            http,
            jar,
            base: base.to_owned(),
        }
    }

    /// A GET to this server, carrying this browser's cookies.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    /// A POST to this server, carrying this browser's cookies.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }

    /// Credentials as Duet's client sends them; the JSON answer.
    pub async fn post_json(&self, path: &str, username: &str, password: &str) -> Value {
        let request = self
            .post(path)
            .json(&json!({"username": username, "password": password}));
        json_answer(request).await.1
    }

    pub fn cookie(&self) -> Option<HeaderValue> {
        let url = self.base.parse().expect("url");
        self.jar
            .cookies(&url)
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
    }

    /// Opens the signaling socket with this browser's cookie (and no `Origin`).
    pub async fn socket(&self) -> Socket {
        self.socket_with_origin(None).await.expect("handshake")
    }

    pub async fn socket_with_origin(
        &self,
        origin: Option<&str>,
    ) -> Result<Socket, Box<tokio_tungstenite::tungstenite::Error>> {
        let url = format!("{}/video", self.base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().map_err(Box::new)?;
        if let Some(cookie) = self.cookie() {
            request.headers_mut().insert("cookie", cookie);
        }
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", HeaderValue::from_str(origin).expect("origin"));
        }
        let (stream, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(Box::new)?;
        Ok(Socket { stream })
    }
}

/// Asserts that a WebSocket handshake was refused with HTTP `status` (not accepted, not failed
/// some other way).
pub fn assert_refused(
    result: Result<Socket, Box<tokio_tungstenite::tungstenite::Error>>,
    status: u16,
) {
    match result.map_err(|error| *error) {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), status)
        }
        other => panic!("expected {status}, got {:?}", other.map(|_| ())),
    }
}

pub struct Socket {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    pub async fn send(&mut self, value: Value) {
        self.send_text(value.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// Sends frames as fast as the socket takes them, until the server cuts the connection.
    pub async fn flood(&mut self, frames: impl IntoIterator<Item = Message>) {
        for frame in frames {
            if self.stream.send(frame).await.is_err() {
                break;
            }
        }
    }

    /// The next message, or `None` if the server closed; panics after 5 s of silence.
    pub async fn next(&mut self) -> Option<Message> {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(message)) => return Some(message),
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
        .expect("a message within 5 s")
    }

    /// The next JSON message whose `type` is `kind`, skipping others.
    pub async fn expect(&mut self, kind: &str) -> Value {
        loop {
            match self.next().await {
                Some(Message::Text(text)) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON from server");
                    if value["type"] == kind {
                        return value;
                    }
                }
                Some(other) => panic!("expected {kind}, got {other:?}"),
                None => panic!("connection closed while waiting for {kind}"),
            }
        }
    }

    /// The next JSON message, whatever its type.
    pub async fn expect_any(&mut self) -> Value {
        match self.next().await {
            Some(Message::Text(text)) => serde_json::from_str(&text).expect("JSON from server"),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// Reads until the server closes; returns the close code.
    pub async fn expect_close(&mut self) -> u16 {
        loop {
            match self.next().await {
                Some(Message::Close(frame)) => {
                    return frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                }
                Some(_) => continue,
                None => return 1006,
            }
        }
    }

    /// Swallows the hello and presence frames every connection starts with.
    pub async fn ready(mut self) -> Self {
        self.expect("hello").await;
        self.expect("presence").await;
        self
    }
}

/// Makes `a` (named `a_name`) and `b` (named `b_name`) contacts: a asks, b accepts. Only
/// contacts see each other's presence (the default `--presence contacts`).
pub async fn befriend(a: &Browser, a_name: &str, b: &Browser, b_name: &str) {
    for (browser, action, name) in [(a, "request", b_name), (b, "accept", a_name)] {
        let request = browser
            .post(&format!("/contacts/{action}"))
            .json(&json!({"username": name}));
        assert_eq!(
            json_answer(request).await.1,
            json!({"flag": true}),
            "{action} {name}"
        );
    }
}

/// Makes a helper process of a test (Redis, HAProxy) die with the thread that starts it: the
/// kernel kills it when that thread ends, so it goes even when the test binary is killed (a CI
/// timeout) and no destructor runs. Start it from the test's own thread (a test body, which
/// `#[tokio::test]` polls there), not from a thread that ends before the test does.
pub fn dies_with_test(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs in the child between fork and exec, where only async-signal-safe calls are
    // allowed; `prctl` is one, and nothing else is done there.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// Sends a request to the local server and reads its status and JSON body.
pub async fn json_answer(request: reqwest::RequestBuilder) -> (reqwest::StatusCode, Value) {
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.expect("JSON answer"))
}

/// Runs `duet ARGS` (the operator's shell) on the database in `data_dir`, `stdin` as its input.
pub fn duet(data_dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_duet"));
    match database_url_for(data_dir) {
        Some(url) => command.env("DUET_DATABASE_URL", url),
        None => command.env_remove("DUET_DATABASE_URL"),
    };
    let mut child = command
        .args(args)
        .env("DUET_DATA_DIR", data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("duet runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write password");
    child.wait_with_output().expect("duet exits")
}
