//! `/user/*`: register, log in, log out, who am I. Answers follow the seed's shape
//! (`{"flag":true}` or `{"flag":false,"error":"…"}`) so its login page keeps working; refusals
//! add a `code` ([`AuthErrorCode`]) for clients that speak the user's language.

use std::time::Duration;

use axum::extract::{
    Extension, FromRequest, FromRequestParts, OptionalFromRequestParts, Request, State,
};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use protocol::{
    AccountError, AuthErrorCode, FlagAnswer, normalize_username, username_key, wait_minutes,
};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use crate::accounts::AccountsError;
use crate::proxy::Client;
use crate::state::AppState;
use crate::throttle::ThrottleKey;

const USER_KEY: &str = "user";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/user/register", post(register))
        .route("/user/login", post(login))
        .route("/user/logout", post(logout))
        .route("/user/me", get(me))
}

/// Login form fields, from a form-encoded body (the seed's page) or JSON (Duet's client).
#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl<S: Send + Sync> FromRequest<S> for Credentials {
    type Rejection = AuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            Json::<Credentials>::from_request(request, state)
                .await
                .map(|Json(c)| c)
                .map_err(|e| AuthError::BadRequest(e.body_text()))
        } else {
            Form::<Credentials>::from_request(request, state)
                .await
                .map(|Form(c)| c)
                .map_err(|e| AuthError::BadRequest(e.body_text()))
        }
    }
}

/// Everything that can go wrong in `/user/*`, with the safe message a user sees.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Invalid(#[from] AccountError),
    #[error("this username is taken")]
    Taken,
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("too many failed logins; try again in {} minutes", wait_minutes(.0.as_secs()))]
    Throttled(Duration),
    #[error("not logged in")]
    NotLoggedIn,
    #[error("internal error; please try again")]
    Internal(String),
}

impl From<AccountsError> for AuthError {
    fn from(error: AccountsError) -> Self {
        match error {
            AccountsError::Invalid(e) => Self::Invalid(e),
            AccountsError::Taken => Self::Taken,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<tower_sessions::session::Error> for AuthError {
    fn from(error: tower_sessions::session::Error) -> Self {
        Self::Internal(format!("session store: {error}"))
    }
}

impl AuthError {
    pub fn code(&self) -> AuthErrorCode {
        match self {
            Self::BadRequest(_) => AuthErrorCode::BadRequest,
            Self::Invalid(error) => error.into(),
            Self::Taken => AuthErrorCode::UsernameTaken,
            Self::WrongCredentials => AuthErrorCode::WrongCredentials,
            Self::Throttled(_) => AuthErrorCode::Throttled,
            Self::NotLoggedIn => AuthErrorCode::NotLoggedIn,
            Self::Internal(_) => AuthErrorCode::Internal,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::BadRequest(_) | Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::Taken => StatusCode::CONFLICT,
            // The seed's page reads `flag` from a 200; so do failed logins.
            Self::WrongCredentials => StatusCode::OK,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::NotLoggedIn => StatusCode::UNAUTHORIZED,
            Self::Internal(detail) => {
                tracing::error!(%detail, "auth request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut answer = FlagAnswer::refused(self.code(), self.to_string());
        if let Self::Throttled(wait) = self {
            let secs = wait.as_secs().max(1);
            answer.retry_after_secs = Some(secs);
            (
                status,
                [(header::RETRY_AFTER, secs.to_string())],
                Json(answer),
            )
                .into_response()
        } else {
            (status, Json(answer)).into_response()
        }
    }
}

fn ok() -> Json<FlagAnswer> {
    Json(FlagAnswer::ok())
}

async fn start_session(session: &Session, username: &str) -> Result<(), AuthError> {
    // A new id at login defeats session fixation.
    session.cycle_id().await?;
    session.insert(USER_KEY, username).await?;
    Ok(())
}

async fn register(
    State(state): State<AppState>,
    session: Session,
    credentials: Credentials,
) -> Result<Json<FlagAnswer>, AuthError> {
    let username = state
        .accounts
        .register(&credentials.username, &credentials.password)
        .await?;
    tracing::info!(%username, "account registered");
    start_session(&session, &username).await?;
    Ok(ok())
}

async fn login(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    session: Session,
    credentials: Credentials,
) -> Result<Json<FlagAnswer>, AuthError> {
    let account_key = normalize_username(&credentials.username)
        .map(|name| username_key(&name))
        .unwrap_or_else(|_| credentials.username.clone());
    let keys = [
        ThrottleKey::Account(account_key),
        ThrottleKey::Address(client.ip),
    ];
    if let Some(wait) = state.throttle.retry_after(&keys) {
        state.metrics.login("throttled");
        return Err(AuthError::Throttled(wait));
    }
    match state
        .accounts
        .authenticate(&credentials.username, &credentials.password)
        .await?
    {
        Some(username) => {
            state.metrics.login("succeeded");
            state.throttle.clear(&keys[0]);
            start_session(&session, &username).await?;
            Ok(ok())
        }
        None => {
            state.metrics.login("failed");
            state.throttle.record_failure(&keys);
            Err(AuthError::WrongCredentials)
        }
    }
}

async fn logout(session: Session) -> Result<Json<FlagAnswer>, AuthError> {
    // Deletes the record server-side: the old cookie is worthless from now on.
    session.flush().await?;
    Ok(ok())
}

async fn me(user: CurrentUser) -> Json<serde_json::Value> {
    Json(json!({"username": user.0}))
}

/// The logged-in user; rejects with 401 when there is none.
pub struct CurrentUser(pub String);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        <Self as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
            .await?
            .ok_or(AuthError::NotLoggedIn)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for CurrentUser {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, message)| AuthError::Internal(message.to_owned()))?;
        Ok(session.get::<String>(USER_KEY).await?.map(CurrentUser))
    }
}
