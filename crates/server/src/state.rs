//! The state every handler shares: cheap to clone, `Arc`s inside.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use tokio_util::sync::CancellationToken;

use crate::accounts::Accounts;
use crate::config::Settings;
use crate::contacts::Contacts;
use crate::metrics::Metrics;
use crate::signaling::{Hub, Relay};
use crate::throttle::Limiter;
use crate::turn::Turn;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub accounts: Accounts,
    pub contacts: Contacts,
    pub hub: Arc<Hub>,
    pub metrics: Metrics,
    /// Failed logins, per account and per client address.
    pub logins: Arc<Limiter>,
    /// New accounts, per client address.
    pub registrations: Arc<Limiter>,
    pub leptos: LeptosOptions,
    /// Mints TURN credentials per connection, when TURN is configured.
    pub turn: Option<Arc<Turn>>,
    /// What this instance shares with others, when `--redis-url` is set.
    pub redis: Option<crate::cluster::Redis>,
    /// The site is served from the binary (no site root on disk).
    pub embedded_site: bool,
    /// Login sessions, also read by open sockets to see that theirs still holds.
    pub sessions: crate::session_store::Store,
    /// Cancelled when the server shuts down: every open WebSocket closes with 1001.
    pub shutdown: CancellationToken,
    /// The part of this state every signaling connection holds, shared by all of them.
    pub relay: Arc<Relay>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}
