//! `/contacts`: a user's contact book over HTTP. Answers in the `/user/*` style
//! (`{"flag":true}`, or `{"flag":false,"error":…,"code":…}`), behind the same guards (same-site
//! POSTs only, small bodies, a time limit), mounted by [`crate::auth::routes`].

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use protocol::{
    ContactAction, ContactBook, ContactSettings, ContactTarget, FlagAnswer, username_key,
};

use crate::auth::{AuthError, CurrentUser};
use crate::contacts::ContactsError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/contacts", get(book))
        .route("/contacts/settings", post(settings))
        .route("/contacts/{action}", post(act))
}

impl From<ContactsError> for AuthError {
    fn from(error: ContactsError) -> Self {
        match error {
            ContactsError::Invalid(error) => Self::Invalid(error),
            ContactsError::Yourself => Self::ContactYourself,
            ContactsError::NoRequest(name) => Self::NoRequest(name),
            ContactsError::Full => Self::TooManyContacts,
            ContactsError::NoSuchUser => Self::NotLoggedIn,
            ContactsError::Storage(error) => error.into(),
        }
    }
}

/// A JSON body, or the documented refusal (400 with `bad_request`) rather than axum's text.
fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, AuthError> {
    body.map(|Json(body)| body)
        .map_err(|rejection| AuthError::rejected(rejection.status(), rejection.body_text()))
}

async fn book(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<ContactBook>, AuthError> {
    Ok(Json(state.contacts.book(&user.username).await?))
}

async fn act(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(action): Path<String>,
    target: Result<Json<ContactTarget>, JsonRejection>,
) -> Result<Json<FlagAnswer>, AuthError> {
    let action = ContactAction::parse(&action).ok_or_else(|| {
        AuthError::BadRequest(format!(
            "unknown action {action:?}: request, accept, decline, remove, block or unblock"
        ))
    })?;
    let target = body(target)?;
    let change = state
        .contacts
        .act(&user.username, action, &target.username)
        .await?;
    state.hub.apply(&username_key(&user.username), &change);
    Ok(Json(FlagAnswer::ok()))
}

async fn settings(
    State(state): State<AppState>,
    user: CurrentUser,
    settings: Result<Json<ContactSettings>, JsonRejection>,
) -> Result<Json<FlagAnswer>, AuthError> {
    let ContactSettings { calls_from } = body(settings)?;
    state
        .contacts
        .set_calls_from(&user.username, calls_from)
        .await?;
    state
        .hub
        .set_calls_from(&username_key(&user.username), calls_from);
    Ok(Json(FlagAnswer::ok()))
}
