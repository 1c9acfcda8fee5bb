//! The account, contact and call-history endpoints of the Duet server (`/user/*`, `/contacts`,
//! `/calls`), as typed async calls.

use gloo_net::http::{Request, Response};
use protocol::{
    AuthErrorCode, CallHistory, CallOutcome, CallRecord, CallsFrom, Contact, ContactAction,
    ContactBook, ContactState,
};
use serde::Serialize;
use wasm_bindgen::JsValue;

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
    crate::js_fields::text(&get_json("/user/me").await?, "username")
        .ok_or(ApiError::Unexpected(200))
}

/// The signed-in user's contact book.
pub async fn contacts() -> Result<ContactBook, ApiError> {
    parse_book(&get_json("/contacts").await?).ok_or(ApiError::Unexpected(200))
}

/// The newest page of the signed-in user's calls.
pub async fn calls() -> Result<CallHistory, ApiError> {
    parse_history(&get_json("/calls?limit=20").await?).ok_or(ApiError::Unexpected(200))
}

/// Every missed call so far counts as seen (on every device: the server keeps it).
pub async fn calls_seen() -> Result<(), ApiError> {
    flag_answer(Request::post("/calls/seen").send().await?).await
}

/// A signed-in GET, its JSON read by the browser's `JSON.parse`: serde's derived decoders for
/// the answers cost the bundle more than reading their few fields by name.
async fn get_json(path: &str) -> Result<JsValue, ApiError> {
    let response = Request::get(path).send().await?;
    match response.status() {
        200 => js_sys::JSON::parse(&response.text().await?).map_err(|_| ApiError::Unexpected(200)),
        401 => Err(ApiError::Unauthorized),
        status => Err(ApiError::Unexpected(status)),
    }
}

fn list(value: &JsValue, key: &str) -> Option<js_sys::Array> {
    crate::js_fields::get(value, key).map(|v| js_sys::Array::from(&v))
}

fn parse_history(value: &JsValue) -> Option<CallHistory> {
    use crate::js_fields::{get, number, text};
    let calls = list(value, "calls")?
        .iter()
        .map(|call| {
            Some(CallRecord {
                call_id: text(&call, "call_id")?,
                peer: text(&call, "peer")?,
                outgoing: get(&call, "outgoing")?.as_bool()?,
                outcome: CallOutcome::parse(&text(&call, "outcome")?)?,
                started_at: number(&call, "started_at")? as i64,
                duration_ms: number(&call, "duration_ms").map(|ms| ms as i64),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(CallHistory {
        calls,
        missed_unseen: number(value, "missed_unseen")? as u32,
        next_before: number(value, "next_before").map(|ms| ms as i64),
    })
}

fn parse_book(value: &JsValue) -> Option<ContactBook> {
    use crate::js_fields::text as text_field;
    let contacts = list(value, "contacts")?
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
    let blocked = list(value, "blocked")?
        .iter()
        .map(|name| name.as_string())
        .collect::<Option<Vec<_>>>()?;
    Some(ContactBook {
        contacts,
        blocked,
        calls_from: CallsFrom::parse(&text_field(value, "calls_from")?)?,
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
    post_json(path, &Credentials { username, password }).await
}

/// Refusals come as `{"flag":false,"error":…,"code":…}` with 200 or a 4xx status alike. Read
/// with the browser's `JSON.parse` (see [`get_json`]).
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
