//! `/user/*`: register, log in, log out, who am I. Answers follow the seed's shape
//! (`{"flag":true}` or `{"flag":false,"error":"…"}`) so its login page keeps working; refusals
//! add a `code` ([`AuthErrorCode`]) for clients that speak the user's language.

use std::time::Duration;

use axum::extract::{
    DefaultBodyLimit, Extension, FromRequest, FromRequestParts, OptionalFromRequestParts, Request,
    State,
};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use protocol::{
    AccountError, AuthErrorCode, FlagAnswer, check_new_username, normalize_username, username_key,
    validate_password, wait_minutes,
};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use time::OffsetDateTime;
use tower_sessions::session::Id as SessionId;

use crate::accounts::AccountsError;
use crate::proxy::Client;
use crate::sessions::{self, SessionPolicy};
use crate::state::AppState;
use crate::throttle::ThrottleKey;

/// A credentials body is a few hundred bytes; anything near this is not one.
const MAX_BODY_BYTES: usize = 16 * 1024;

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/user/register", post(register))
        .route("/user/login", post(login))
        .route("/user/logout", post(logout))
        .route("/user/me", get(me))
        .merge(crate::contacts_api::routes())
        .merge(crate::calls_api::routes())
        .merge(crate::account_api::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            same_site_posts_only,
        ))
        .layer(middleware::from_fn_with_state(state, answer_in_time))
}

/// A request that cannot be answered in `--request-timeout-secs` (a body trickling in, a long
/// queue for the hash) is answered 408 rather than held open.
async fn answer_in_time(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.settings.request_timeout(), next.run(request)).await {
        Ok(response) => response,
        Err(_) => AuthError::TimedOut.into_response(),
    }
}

/// Refuses a state-changing request that a page of another site made the browser send (CSRF):
/// its `Origin` (or, without one, `Sec-Fetch-Site`) names someone else. Requests without either
/// come from programs, not from a browser that could be tricked, and pass.
async fn same_site_posts_only(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::POST {
        let headers = request.headers();
        let cross_site = if headers.contains_key(header::ORIGIN) {
            !crate::origin::allowed(
                headers,
                request.uri(),
                &state.settings.allowed_origins,
                client.https,
            )
        } else {
            headers
                .get("sec-fetch-site")
                .is_some_and(|site| site.as_bytes() == b"cross-site")
        };
        if cross_site {
            return AuthError::CrossSite.into_response();
        }
    }
    next.run(request).await
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
                .map_err(|e| AuthError::rejected(e.status(), e.body_text()))
        } else {
            Form::<Credentials>::from_request(request, state)
                .await
                .map(|Form(c)| c)
                .map_err(|e| AuthError::rejected(e.status(), e.body_text()))
        }
    }
}

/// Everything that can go wrong in `/user/*`, with the safe message a user sees.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the request is too large")]
    TooLarge,
    #[error("{0}")]
    Invalid(#[from] AccountError),
    #[error("this username is taken")]
    Taken,
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("the password is wrong")]
    WrongPassword,
    #[error("too many failed logins; try again in {} minutes", wait_minutes(.0.as_secs()))]
    Throttled(Duration),
    #[error(
        "too many new accounts from your address; try again in {} minutes",
        wait_minutes(.0.as_secs())
    )]
    TooManyRegistrations(Duration),
    #[error("the server is busy; try again in a few seconds")]
    Busy,
    #[error("refused: this request came from another site")]
    CrossSite,
    #[error("the request took too long; please try again")]
    TimedOut,
    #[error("not logged in")]
    NotLoggedIn,
    #[error("you cannot add or block yourself")]
    ContactYourself,
    #[error("there is no request from {0}")]
    NoRequest(String),
    #[error("your contact list is full")]
    TooManyContacts,
    #[error("the server is out of storage space; please try again later")]
    StorageFull,
    #[error("internal error; please try again")]
    Internal(String),
}

impl From<AccountsError> for AuthError {
    fn from(error: AccountsError) -> Self {
        match error {
            AccountsError::Invalid(e) => Self::Invalid(e),
            AccountsError::Taken => Self::Taken,
            AccountsError::Busy => Self::Busy,
            AccountsError::StorageFull => Self::StorageFull,
            // The account went away under a request made with its session.
            AccountsError::NoSuchUser(_) => Self::NotLoggedIn,
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<sessions::SessionError> for AuthError {
    fn from(error: sessions::SessionError) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<tower_sessions::session::Error> for AuthError {
    fn from(error: tower_sessions::session::Error) -> Self {
        Self::Internal(format!("session store: {error}"))
    }
}

/// How long a client told "busy" waits before trying again.
const BUSY_RETRY: Duration = Duration::from_secs(2);

/// When a client may try again after a full disk: an operator has to free space first.
const STORAGE_FULL_RETRY: Duration = Duration::from_secs(60);

impl AuthError {
    pub(crate) fn rejected(status: StatusCode, text: String) -> Self {
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Self::TooLarge
        } else {
            Self::BadRequest(text)
        }
    }

    /// When the client may try again, for the refusals that have such a time.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled(wait) | Self::TooManyRegistrations(wait) => Some(*wait),
            Self::Busy => Some(BUSY_RETRY),
            Self::StorageFull => Some(STORAGE_FULL_RETRY),
            _ => None,
        }
    }

    pub fn code(&self) -> AuthErrorCode {
        match self {
            Self::BadRequest(_) | Self::TooLarge => AuthErrorCode::BadRequest,
            Self::Invalid(error) => error.into(),
            Self::Taken => AuthErrorCode::UsernameTaken,
            Self::WrongCredentials => AuthErrorCode::WrongCredentials,
            Self::WrongPassword => AuthErrorCode::WrongPassword,
            Self::Throttled(_) => AuthErrorCode::Throttled,
            Self::TooManyRegistrations(_) => AuthErrorCode::TooManyRegistrations,
            Self::Busy | Self::TimedOut => AuthErrorCode::Busy,
            Self::CrossSite => AuthErrorCode::CrossSite,
            Self::NotLoggedIn => AuthErrorCode::NotLoggedIn,
            Self::ContactYourself => AuthErrorCode::ContactYourself,
            Self::NoRequest(_) => AuthErrorCode::NoRequest,
            Self::TooManyContacts => AuthErrorCode::TooManyContacts,
            Self::StorageFull => AuthErrorCode::StorageFull,
            Self::Internal(_) => AuthErrorCode::Internal,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::BadRequest(_) | Self::Invalid(_) | Self::ContactYourself => {
                StatusCode::BAD_REQUEST
            }
            Self::NoRequest(_) => StatusCode::NOT_FOUND,
            Self::TooManyContacts => StatusCode::CONFLICT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Taken => StatusCode::CONFLICT,
            // The seed's page reads `flag` from a 200; so do failed logins.
            Self::WrongCredentials => StatusCode::OK,
            Self::Throttled(_) | Self::TooManyRegistrations(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::CrossSite | Self::WrongPassword => StatusCode::FORBIDDEN,
            Self::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Self::NotLoggedIn => StatusCode::UNAUTHORIZED,
            Self::StorageFull => {
                tracing::error!("the disk holding the database is full; refusing writes");
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(detail) => {
                tracing::error!(%detail, "auth request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut answer = FlagAnswer::refused(self.code(), self.to_string());
        if let Some(wait) = self.retry_after() {
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

pub(crate) fn ok() -> Json<FlagAnswer> {
    Json(FlagAnswer::ok())
}

async fn start_session(
    state: &AppState,
    session: &Session,
    username: &str,
) -> Result<(), AuthError> {
    Ok(sessions::start(
        session,
        username,
        SessionPolicy::from_settings(&state.settings),
    )
    .await?)
}

async fn register(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    session: Session,
    credentials: Credentials,
) -> Result<Json<FlagAnswer>, AuthError> {
    // Rules first (free), then the address's allowance, then the hash (expensive).
    check_new_username(&normalize_username(&credentials.username)?)?;
    validate_password(&credentials.password)?;
    let keys = [ThrottleKey::address(client.ip)];
    let slot = state
        .registrations
        .take(&keys)
        .await
        .map_err(AuthError::TooManyRegistrations)?;
    let registered = state
        .accounts
        .register(&credentials.username, &credentials.password)
        .await;
    let username = match registered {
        Ok(username) => username,
        // Nothing was stored: the attempt does not count against the address.
        Err(error @ (AccountsError::Busy | AccountsError::StorageFull)) => {
            state.registrations.give_back(&keys, slot).await;
            return Err(error.into());
        }
        Err(error) => return Err(error.into()),
    };
    tracing::info!(%username, "account registered");
    start_session(&state, &session, &username).await?;
    Ok(ok())
}

async fn login(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    session: Session,
    credentials: Credentials,
) -> Result<Json<FlagAnswer>, AuthError> {
    let checked = check_password(
        &state,
        &client,
        &credentials.username,
        &credentials.password,
    )
    .await?;
    let Some(username) = checked else {
        return Err(AuthError::WrongCredentials);
    };
    start_session(&state, &session, &username).await?;
    Ok(ok())
}

/// Checks `username`'s password under the failed-login throttle (a login, or a signed-in user
/// confirming a change): the stored name when it is right, `None` when it is wrong (counted).
pub(crate) async fn check_password(
    state: &AppState,
    client: &Client,
    username: &str,
    password: &str,
) -> Result<Option<String>, AuthError> {
    // No account has a name the rules refuse: say so before it could become a throttle key
    // (a megabyte of junk per request) or cost a hash.
    let account_key = username_key(&normalize_username(username)?);
    let account = [ThrottleKey::Account(account_key)];
    let address = [ThrottleKey::address(client.ip)];
    let throttled = |wait| {
        state.metrics.login("throttled");
        AuthError::Throttled(wait)
    };
    state.logins.check(&address).await.map_err(throttled)?;
    // The account's slot counts as a failure from now on, so concurrent guesses at one account
    // cannot all slip through before the first is counted; a correct password gives it back.
    // The address counts failures once checked: an office's people logging in at once behind
    // one NAT must not take each other's places.
    let slot = state.logins.take(&account).await.map_err(throttled)?;
    let checked = state.accounts.authenticate(username, password).await;
    match checked {
        Ok(Some(username)) => {
            state.metrics.login("succeeded");
            state.logins.clear(&account[0]).await;
            Ok(Some(username))
        }
        Ok(None) => {
            state.metrics.login("failed");
            let _ = state.logins.record(&address).await;
            Ok(None)
        }
        Err(error) => {
            // Not checked at all (busy, or the database failed): not a guess either.
            state.logins.give_back(&account, slot).await;
            Err(error.into())
        }
    }
}

async fn logout(
    State(state): State<AppState>,
    user: Option<CurrentUser>,
    session: Session,
) -> Result<Json<FlagAnswer>, AuthError> {
    // The session's signaling sockets close now (4001), not at their next handshake.
    if let Some(CurrentUser {
        username,
        session: Some(id),
        ..
    }) = user
    {
        let closed = state.hub.end_session(&username_key(&username), id);
        tracing::info!(%username, sockets = closed, "logged out");
    }
    // Deletes the record server-side: the old cookie is worthless from now on.
    session.flush().await?;
    Ok(ok())
}

async fn me(user: CurrentUser) -> Json<serde_json::Value> {
    Json(json!({"username": user.username}))
}

/// The logged-in user (the session renewed when due); rejects with 401 when there is none.
pub struct CurrentUser {
    pub username: String,
    pub session: Option<SessionId>,
    /// When the user logged in (Unix milliseconds).
    pub started: i64,
    /// When the login ends unless renewed.
    pub expires: OffsetDateTime,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        <Self as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await?
            .ok_or(AuthError::NotLoggedIn)
    }
}

impl OptionalFromRequestParts<AppState> for CurrentUser {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, message)| AuthError::Internal(message.to_owned()))?;
        let policy = SessionPolicy::from_settings(&state.settings);
        let login = sessions::check(&session, policy, &state.accounts).await?;
        Ok(login.map(|login| CurrentUser {
            username: login.username,
            session: session.id(),
            started: login.started,
            expires: login.expires,
        }))
    }
}
