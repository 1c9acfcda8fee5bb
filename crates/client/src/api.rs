//! The account endpoints of the Duet server (`/user/*`), as typed async calls.

use gloo_net::http::{Request, Response};
use protocol::{AuthErrorCode, FlagAnswer};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("the server could not be reached: {0}")]
    Network(String),
    /// The server understood and said no: `code` says why (when the server sends one), `message`
    /// in the server's words.
    #[error("{message}")]
    Refused {
        code: Option<AuthErrorCode>,
        message: String,
        retry_after_secs: Option<u64>,
    },
    #[error("not signed in")]
    Unauthorized,
    #[error("unexpected answer from the server (HTTP {0})")]
    Unexpected(u16),
}

impl From<gloo_net::Error> for ApiError {
    fn from(error: gloo_net::Error) -> Self {
        Self::Network(error.to_string())
    }
}

#[derive(Serialize)]
struct Credentials<'a> {
    username: &'a str,
    password: &'a str,
}

#[derive(Deserialize)]
struct Me {
    username: String,
}

pub async fn register(username: &str, password: &str) -> Result<(), ApiError> {
    post_credentials("/user/register", username, password).await
}

pub async fn login(username: &str, password: &str) -> Result<(), ApiError> {
    post_credentials("/user/login", username, password).await
}

pub async fn logout() -> Result<(), ApiError> {
    let response = Request::post("/user/logout").send().await?;
    if response.ok() {
        Ok(())
    } else {
        Err(ApiError::Unexpected(response.status()))
    }
}

/// Who the session cookie belongs to.
pub async fn me() -> Result<String, ApiError> {
    let response = Request::get("/user/me").send().await?;
    match response.status() {
        200 => Ok(response.json::<Me>().await?.username),
        401 => Err(ApiError::Unauthorized),
        status => Err(ApiError::Unexpected(status)),
    }
}

async fn post_credentials(path: &str, username: &str, password: &str) -> Result<(), ApiError> {
    post_json(path, &Credentials { username, password }).await
}

/// Refusals come as `{"flag":false,"error":…,"code":…}` with 200 or a 4xx status alike.
async fn flag_answer(response: Response) -> Result<(), ApiError> {
    let status = response.status();
    match response.json::<FlagAnswer>().await {
        Ok(FlagAnswer { flag: true, .. }) if response.ok() => Ok(()),
        Ok(answer) if status < 500 => Err(ApiError::Refused {
            code: answer.code,
            message: answer.error.unwrap_or_default(),
            retry_after_secs: answer.retry_after_secs,
        }),
        _ => Err(ApiError::Unexpected(status)),
    }
}

async fn post_json(path: &str, body: &impl Serialize) -> Result<(), ApiError> {
    let response = Request::post(path).json(body)?.send().await?;
    if response.status() == 401 {
        return Err(ApiError::Unauthorized);
    }
    flag_answer(response).await
}

/// The signed-in user's own account (`/user/password`, `/user/logout-all`, `/user/delete`).
pub async fn change_password(current: &str, new: &str) -> Result<(), ApiError> {
    #[derive(Serialize)]
    struct Change<'a> {
        current: &'a str,
        new: &'a str,
    }
    post_json("/user/password", &Change { current, new }).await
}

pub async fn logout_all() -> Result<(), ApiError> {
    post_json("/user/logout-all", &()).await
}

pub async fn delete_account(password: &str) -> Result<(), ApiError> {
    #[derive(Serialize)]
    struct Confirm<'a> {
        password: &'a str,
    }
    post_json("/user/delete", &Confirm { password }).await
}
