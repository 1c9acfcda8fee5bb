//! A browser's view of Duet, over real HTTP and WebSocket connections: one cookie jar per user.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const PASSWORD: &str = "correct horse battery";

/// One account's answer: the status, the `Retry-After` header and the JSON body (`Null` when the
/// body is not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status == StatusCode::OK && self.body == json!({"flag": true})
    }
}

#[derive(Clone)]
pub struct Browser {
    http: reqwest::Client,
    jar: Arc<Jar>,
    base: String,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        // reqwest is built without a crypto provider of its own (the server links rustls with
        // ring only); plain HTTP never uses it, but building a client asks for one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        Self {
            http,
            jar,
            base: base.to_owned(),
        }
    }

    pub async fn register(&self, username: &str) -> Result<Answer, reqwest::Error> {
        self.account("/user/register", username).await
    }

    pub async fn login(&self, username: &str) -> Result<Answer, reqwest::Error> {
        self.account("/user/login", username).await
    }

    async fn account(&self, path: &str, username: &str) -> Result<Answer, reqwest::Error> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await?;
        Ok(Answer {
            status,
            retry_after,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        })
    }

    /// Opens the signaling socket with this browser's session cookie (and no `Origin`, as a
    /// non-browser client).
    pub async fn socket(&self) -> Result<Ws, Box<tokio_tungstenite::tungstenite::Error>> {
        let url = format!("{}/video", self.base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().map_err(Box::new)?;
        let cookie = self
            .base
            .parse()
            .ok()
            .and_then(|url| self.jar.cookies(&url))
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
        if let Some(cookie) = cookie {
            request.headers_mut().insert("cookie", cookie);
        }
        let (stream, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(Box::new)?;
        Ok(stream)
    }
}

/// The next text frame, skipping pings; `None` when the connection ends or `wait` passes first.
pub async fn next_text(ws: &mut Ws, wait: Duration) -> Option<String> {
    tokio::time::timeout(wait, async {
        loop {
            match ws.next().await? {
                Ok(Message::Text(text)) => return Some(text.as_str().to_owned()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// The next text frame as JSON, skipping pings; `None` when the connection ends or `wait`
/// passes first.
pub async fn next_json(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let text = next_text(ws, wait).await?;
    match serde_json::from_str(&text) {
        Ok(value) => Some(value),
        Err(error) => panic!("the server sent a frame that is not JSON ({error}): {text:?}"),
    }
}

/// Reads `hello` and the presence list that follows it: the connection is then fully joined.
pub async fn expect_joined(ws: &mut Ws) {
    let hello = next_json(ws, Duration::from_secs(10))
        .await
        .expect("hello within 10 s");
    assert_eq!(hello["type"], "hello", "first frame");
    loop {
        let page = next_json(ws, Duration::from_secs(10))
            .await
            .expect("presence within 10 s");
        assert_eq!(page["type"], "presence", "second frame");
        if page["more"] != true {
            return;
        }
    }
}
