//! `/calls`: a user's call history over HTTP, in pages, newest first; mounted by
//! [`crate::auth::routes`] behind the same guards as `/user/*`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use protocol::{CallHistory, FlagAnswer};
use serde::Deserialize;

use crate::auth::{AuthError, CurrentUser};
use crate::calls::MAX_PAGE;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/calls", get(history))
        .route("/calls/seen", post(seen))
        .route("/calls/forget", post(forget))
}

#[derive(Deserialize)]
struct Page {
    /// Calls that started before this (Unix milliseconds); the newest without it.
    before: Option<i64>,
    limit: Option<i64>,
}

#[derive(Deserialize)]
struct OneCall {
    call_id: String,
}

async fn history(
    State(state): State<AppState>,
    user: CurrentUser,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<CallHistory>, AuthError> {
    let Query(page) = page.map_err(|rejection| AuthError::BadRequest(rejection.body_text()))?;
    let limit = page.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AuthError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    Ok(Json(
        state
            .relay
            .call_records
            .history(&user.username, page.before, limit)
            .await?,
    ))
}

async fn seen(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<FlagAnswer>, AuthError> {
    state.relay.call_records.seen(&user.username).await?;
    Ok(Json(FlagAnswer::ok()))
}

async fn forget(
    State(state): State<AppState>,
    user: CurrentUser,
    call: Result<Json<OneCall>, JsonRejection>,
) -> Result<Json<FlagAnswer>, AuthError> {
    let Json(OneCall { call_id }) =
        call.map_err(|rejection| AuthError::rejected(rejection.status(), rejection.body_text()))?;
    state
        .relay
        .call_records
        .forget(&user.username, &call_id)
        .await?;
    Ok(Json(FlagAnswer::ok()))
}
