//! The account and contact endpoints of the Duet server (`/user/*`, `/contacts`), as typed
//! async calls.

use gloo_net::http::{Request, Response};
use protocol::{AuthErrorCode, CallsFrom, Contact, ContactAction, ContactBook, ContactState};
use serde::Serialize;

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
        200 => js_sys::JSON::parse(&response.text().await?)
            .ok()
            .and_then(|me| crate::js_fields::text(&me, "username"))
            .ok_or(ApiError::Unexpected(200)),
        401 => Err(ApiError::Unauthorized),
        status => Err(ApiError::Unexpected(status)),
    }
}

/// The signed-in user's contact book.
pub async fn contacts() -> Result<ContactBook, ApiError> {
    let response = Request::get("/contacts").send().await?;
    match response.status() {
        200 => parse_book(&response.text().await?).ok_or(ApiError::Unexpected(200)),
        401 => Err(ApiError::Unauthorized),
        status => Err(ApiError::Unexpected(status)),
    }
}

/// Reads a book with the browser's `JSON.parse`: serde's derived decoder for these few types
/// costs the bundle more than this does.
fn parse_book(text: &str) -> Option<ContactBook> {
    use crate::js_fields::{get, text as text_field};
    let value = js_sys::JSON::parse(text).ok()?;
    let list = |key| get(&value, key).map(|v| js_sys::Array::from(&v));
    let contacts = list("contacts")?
        .iter()
        .map(|contact| {
            let state = match text_field(&contact, "state")?.as_str() {
                "mutual" => ContactState::Mutual,
                "incoming" => ContactState::Incoming,
                "outgoing" => ContactState::Outgoing,
                _ => return None,
            };
            Some(Contact {
                username: text_field(&contact, "username")?,
                state,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let blocked = list("blocked")?
        .iter()
        .map(|name| name.as_string())
        .collect::<Option<Vec<_>>>()?;
    Some(ContactBook {
        contacts,
        blocked,
        calls_from: CallsFrom::parse(&text_field(&value, "calls_from")?)?,
    })
}

/// Acts on the contact book: `POST /contacts/{action}` naming `username`, or with `calls_from`
/// the setting `POST /contacts/settings`. The JSON is written here (names quoted by the browser's
/// `JSON.stringify`): one small function rather than serde's serialisers for two bodies.
pub async fn contact(
    action: Option<ContactAction>,
    username: &str,
    calls_from: CallsFrom,
) -> Result<(), ApiError> {
    let (path, body) = match action {
        Some(action) => {
            let name = js_sys::JSON::stringify(&username.into())
                .ok()
                .and_then(|quoted| quoted.as_string())
                .unwrap_or_default();
            (
                format!("/contacts/{}", action.as_str()),
                format!(r#"{{"username":{name}}}"#),
            )
        }
        None => (
            "/contacts/settings".to_owned(),
            format!(r#"{{"calls_from":"{}"}}"#, calls_from.as_str()),
        ),
    };
    let response = Request::post(&path)
        .header("content-type", "application/json")
        .body(body)?
        .send()
        .await?;
    flag_answer(response).await
}

async fn post_credentials(path: &str, username: &str, password: &str) -> Result<(), ApiError> {
    let response = Request::post(path)
        .json(&Credentials { username, password })?
        .send()
        .await?;
    flag_answer(response).await
}

/// Refusals come as `{"flag":false,"error":…,"code":…}` with 200 or a 4xx status alike. Read
/// with the browser's `JSON.parse` (see [`parse_book`]).
async fn flag_answer(response: Response) -> Result<(), ApiError> {
    use crate::js_fields::{get, number, text};
    let status = response.status();
    let answer = response
        .text()
        .await
        .ok()
        .and_then(|body| js_sys::JSON::parse(&body).ok());
    let Some(answer) = answer.filter(|_| status < 500) else {
        return Err(ApiError::Unexpected(status));
    };
    match get(&answer, "flag").and_then(|flag| flag.as_bool()) {
        Some(true) if response.ok() => Ok(()),
        Some(_) => Err(ApiError::Refused {
            code: text(&answer, "code").map(|code| AuthErrorCode::from_name(&code)),
            message: text(&answer, "error").unwrap_or_default(),
            retry_after_secs: number(&answer, "retry_after_secs").map(|secs| secs as u64),
        }),
        None => Err(ApiError::Unexpected(status)),
    }
}
