//! The account and contact endpoints of the Duet server (`/user/*`, `/contacts`), as typed
//! async calls.

use gloo_net::http::{Request, Response};
use protocol::{
    AuthErrorCode, CallsFrom, ContactAction, ContactBook, ContactSettings, ContactTarget,
    FlagAnswer,
};
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

/// The signed-in user's contact book.
pub async fn contacts() -> Result<ContactBook, ApiError> {
    let response = Request::get("/contacts").send().await?;
    match response.status() {
        200 => Ok(response.json::<ContactBook>().await?),
        401 => Err(ApiError::Unauthorized),
        status => Err(ApiError::Unexpected(status)),
    }
}

/// Requests, accepts, declines, removes, blocks or unblocks `username`.
pub async fn contact(action: ContactAction, username: &str) -> Result<(), ApiError> {
    let target = ContactTarget {
        username: username.to_owned(),
    };
    let path = format!("/contacts/{}", action.as_str());
    flag_answer(Request::post(&path).json(&target)?.send().await?).await
}

/// Who may call the signed-in user.
pub async fn set_calls_from(calls_from: CallsFrom) -> Result<(), ApiError> {
    let settings = ContactSettings { calls_from };
    flag_answer(
        Request::post("/contacts/settings")
            .json(&settings)?
            .send()
            .await?,
    )
    .await
}

async fn post_credentials(path: &str, username: &str, password: &str) -> Result<(), ApiError> {
    let response = Request::post(path)
        .json(&Credentials { username, password })?
        .send()
        .await?;
    flag_answer(response).await
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
