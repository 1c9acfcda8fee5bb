//! Builds the application from settings and serves it until shut down. Tests use the same path
//! with port 0 and a temporary database.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt;
use leptos::prelude::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::trace::TraceLayer;
use tower_sessions::{ExpiredDeletion, Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

use crate::accounts::{Accounts, AccountsError};
use crate::config::Settings;
use crate::db::{self, DbError};
use crate::metrics::Metrics;
use crate::signaling::{self, Hub};
use crate::state::AppState;
use crate::throttle::LoginThrottle;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("cannot prepare the session store: {0}")]
    Sessions(sqlx::Error),
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let pool = db::connect(&settings.database_url()).await?;
        let sessions = SqliteStore::new(pool.clone());
        sessions.migrate().await.map_err(StartupError::Sessions)?;
        let metrics = Metrics::new();
        let listener =
            TcpListener::bind(settings.addr)
                .await
                .map_err(|source| StartupError::Bind {
                    addr: settings.addr,
                    source,
                })?;
        let bound = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: settings.addr,
            source,
        })?;
        let leptos = LeptosOptions::builder()
            .output_name("duet")
            .hash_files(hash_file_present())
            .site_root(settings.site_root.to_string_lossy().into_owned())
            .site_pkg_dir("pkg")
            .site_addr(bound)
            .build();
        let state = AppState {
            accounts: Accounts::new(pool, settings.hash_concurrency)?,
            hub: Hub::new(metrics.clone()),
            throttle: Arc::new(LoginThrottle::new(
                settings.login_failures,
                settings.login_window(),
            )),
            metrics,
            leptos,
            shutdown: CancellationToken::new(),
            settings: Arc::new(settings),
        };

        // Expired sessions are deleted in the background; the task ends with the server.
        let sweeper = sessions.clone();
        let stop = state.shutdown.clone();
        tokio::spawn(async move {
            let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = hourly.tick() => {
                        if let Err(error) = sweeper.delete_expired().await {
                            tracing::warn!(%error, "cannot delete expired sessions");
                        }
                    }
                    _ = stop.cancelled() => break,
                }
            }
        });
        let session_layer = SessionManagerLayer::new(sessions)
            .with_name("duet_session")
            .with_http_only(true)
            .with_same_site(tower_sessions::cookie::SameSite::Lax)
            .with_secure(false)
            .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
                state.settings.session_idle_minutes,
            )));

        // Outside the session layer, so it sees the cookie that layer sets.
        let router = router(state.clone())
            .layer(session_layer)
            .layer(middleware::from_fn(secure_cookies_behind_https));
        Ok(Self {
            listener,
            router,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.settings.addr)
    }

    /// Cancel this to shut the server down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    pub async fn run(self) -> std::io::Result<()> {
        let shutdown = self.state.shutdown.clone();
        tracing::info!(addr = %self.local_addr(), "Duet is serving");
        // Signaling frames are small and latency-bound: no Nagle delay.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
    }
}

fn router(state: AppState) -> Router {
    let routes = generate_route_list(client::App);
    let pkg_dir = state.settings.site_root.join("pkg");
    let pkg = Router::new()
        .fallback_service(
            ServeDir::new(pkg_dir)
                .precompressed_br()
                .precompressed_gzip(),
        )
        .layer(middleware::from_fn(cache_by_name));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/video", get(signaling::socket::upgrade))
        .merge(crate::auth::routes())
        .nest("/pkg", pkg)
        .leptos_routes(&state, routes, {
            let options = state.leptos.clone();
            move || client::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(
            client::shell,
        ))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn metrics(
    State(state): State<AppState>,
) -> ([(header::HeaderName, &'static str); 1], String) {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Duet speaks plain HTTP; behind a TLS proxy (`X-Forwarded-Proto: https`) its cookies must be
/// `Secure` all the same.
async fn secure_cookies_behind_https(request: Request, next: Next) -> Response {
    let https = request
        .headers()
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let mut response = next.run(request).await;
    if https {
        let cookies: Vec<HeaderValue> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| {
                let text = v.to_str().ok()?;
                if text.contains("; Secure") {
                    Some(v.clone())
                } else {
                    HeaderValue::from_str(&format!("{text}; Secure")).ok()
                }
            })
            .collect();
        response.headers_mut().remove(header::SET_COOKIE);
        for cookie in cookies {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// The release build names its files after their content (`duet.<hash>.wasm`) and leaves the
/// hashes in `hash.txt` beside the executable, where leptos looks for them.
fn hash_file_present() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("hash.txt").is_file()))
        .unwrap_or(false)
}

/// A file whose name holds its content hash never changes: cache it for a year. Any other file
/// may change under the same name, so browsers revalidate it (a cheap 304).
async fn cache_by_name(request: Request, next: Next) -> Response {
    let hashed = is_content_hashed(request.uri().path());
    let mut response = next.run(request).await;
    let policy = if hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    if response.status().is_success() {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}

/// `duet.0123456789abcdef.wasm` (scripts/build-site) or `duet.FWAU3AsGiE7gQcypT-hP6Q.wasm`
/// (cargo-leptos, base64url) → true; `duet.css` → false.
fn is_content_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    name.split('.').any(|part| {
        part.len() >= 16
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashed_names_are_recognised() {
        assert!(super::is_content_hashed("/duet.0123456789abcdef.wasm"));
        assert!(super::is_content_hashed(
            "/duet.FWAU3AsGiE7gQcypT-hP6Q.wasm"
        ));
        assert!(!super::is_content_hashed("/duet.css"));
        assert!(!super::is_content_hashed("/favicon.svg"));
        assert!(!super::is_content_hashed("/duet.wasm"));
    }
}
