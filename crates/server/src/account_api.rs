//! A signed-in user manages their own account (issue #15): `POST /user/password`,
//! `POST /user/logout-all`, `POST /user/delete`. Mounted by [`crate::auth::routes`], so the same
//! cross-site check, body limit and time limit apply, and answers have `/user/*`'s shape:
//! `{"flag":true}` or `{"flag":false,"error":"…","code":"…"}`. Without a login: 401. A password
//! given to confirm counts against the failed-login throttle like a login would.

use axum::extract::{Extension, FromRequest, Request, State};
use axum::routing::post;
use axum::{Json, Router};
use protocol::{FlagAnswer, username_key, validate_password};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use tower_sessions::Session;

use crate::auth::{AuthError, CurrentUser, check_password, ok};
use crate::proxy::Client;
use crate::sessions::{self, SessionPolicy};
use crate::signaling::hub::LoginTag;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/user/password", post(change_password))
        .route("/user/logout-all", post(logout_all))
        .route("/user/delete", post(delete))
}

/// `POST /user/password`.
#[derive(Deserialize)]
pub struct PasswordChange {
    current: String,
    new: String,
}

/// `POST /user/delete`: the account's password, as a confirmation.
#[derive(Deserialize)]
pub struct Confirmation {
    password: String,
}

/// A JSON body, refused in `/user/*`'s shape when it is not one.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(request, state)
            .await
            .map(|Json(body)| Self(body))
            .map_err(|e| AuthError::rejected(e.status(), e.body_text()))
    }
}

/// The signed-in user's own password, or [`AuthError::WrongPassword`] (a failed login).
async fn confirm(
    state: &AppState,
    client: &Client,
    user: &CurrentUser,
    password: &str,
) -> Result<(), AuthError> {
    match check_password(state, client, &user.username, password).await? {
        Some(_) => Ok(()),
        None => Err(AuthError::WrongPassword),
    }
}

/// Sets a new password. Every other login of the user ends and its sockets close; this browser
/// stays logged in, under a new session, and its sockets stay open.
async fn change_password(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    user: CurrentUser,
    session: Session,
    JsonBody(change): JsonBody<PasswordChange>,
) -> Result<Json<FlagAnswer>, AuthError> {
    // The new password's rules first (free), then the current one (throttled), then the hash.
    validate_password(&change.new)?;
    confirm(&state, &client, &user, &change.current).await?;
    let hash = state.accounts.hash_new_password(&change.new).await?;
    let key = username_key(&user.username);
    let now = OffsetDateTime::now_utc();
    let since = sessions::unix_ms(now);
    // A new session id (whoever had the old cookie is out too) that starts as the others end.
    let policy = SessionPolicy::from_settings(&state.settings);
    sessions::start_at(&session, &user.username, policy, now).await?;
    session.save().await?;
    // This browser's sockets belong to the new login before the change is stored, so neither
    // the closing below nor the watcher of password changes takes them for old ones.
    if let (Some(old), Some(new)) = (user.session, session.id()) {
        let login = LoginTag {
            session: new,
            started: since,
        };
        state.hub.move_login(&key, old, login);
    }
    state.accounts.store_password(&key, &hash, since).await?;
    let closed = state.hub.end_logins_before(&key, since);
    tracing::info!(username = %user.username, sockets = closed, "password changed; other logins ended");
    Ok(ok())
}

/// Ends every login of the user, this one included, and closes all their sockets.
async fn logout_all(
    State(state): State<AppState>,
    user: CurrentUser,
    session: Session,
) -> Result<Json<FlagAnswer>, AuthError> {
    let key = username_key(&user.username);
    // Every login that started up to now, whatever millisecond it began in.
    let since = sessions::unix_ms(OffsetDateTime::now_utc()) + 1;
    state.accounts.end_sessions(&key, since).await?;
    let closed = state.hub.end_user(&key);
    session.flush().await?;
    tracing::info!(username = %user.username, sockets = closed, "logged out everywhere");
    Ok(ok())
}

/// Deletes the account and everything of theirs ([`crate::accounts::Accounts::delete`]), and
/// closes all their sockets at once: others see them go offline.
async fn delete(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    user: CurrentUser,
    session: Session,
    JsonBody(confirmation): JsonBody<Confirmation>,
) -> Result<Json<FlagAnswer>, AuthError> {
    confirm(&state, &client, &user, &confirmation.password).await?;
    let key = state.accounts.delete(&user.username).await?;
    let closed = state.hub.remove_user(&key);
    // Their calls end now (their sockets' own leaving no longer finds them in the hub); only
    // the other side's records are written, theirs went with the account.
    for call in state.relay.calls.gone(&key) {
        state.relay.call_ended(call);
    }
    // The record went with the account; this forgets it here and clears the cookie.
    session.flush().await?;
    tracing::info!(username = %user.username, sockets = closed, "account deleted");
    Ok(ok())
}
