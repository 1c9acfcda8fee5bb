//! Builds the application from settings and serves it until shut down. Tests use the same path
//! with port 0 and a temporary database.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use leptos::prelude::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::accounts::{Accounts, AccountsError};
use crate::calls::{CallLog, CallStore};
use crate::config::Settings;
use crate::contacts::Contacts;
use crate::db::{self, DbError};
use crate::metrics::Metrics;
use crate::signaling::{self, Hub, Relay};
use crate::state::AppState;
use crate::throttle::Limiter;
use crate::turn::TurnError;
use protocol::IceTransportPolicy;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("cannot prepare the session store: {0}")]
    Sessions(sqlx::Error),
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    #[error(transparent)]
    Turn(#[from] TurnError),
    #[error(
        "--ice-transport-policy relay needs a TURN server: set --turn-urls (DUET_TURN_URLS) with \
         DUET_TURN_SECRET or --turn-secret-file, or a turn: entry in DUET_ICE_SERVERS"
    )]
    RelayWithoutTurn,
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Redis(#[from] crate::cluster::ClusterError),
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
    /// Set when Duet serves HTTPS itself.
    tls: Option<RustlsConfig>,
    /// With TLS: the plain-HTTP listener that only redirects.
    redirect: Option<TcpListener>,
    /// With `--metrics-addr`: the listener that serves `/metrics` and nothing else.
    metrics: Option<TcpListener>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let turn = settings.turn()?.map(Arc::new);
        if settings.ice_transport_policy == IceTransportPolicy::Relay
            && turn.is_none()
            && !settings.static_turn_configured()
        {
            return Err(StartupError::RelayWithoutTurn);
        }
        let tls = match crate::tls::load_pem(&settings)? {
            Some((cert, key)) => Some(crate::tls::config(cert, key).await?),
            None => None,
        };
        // Before anything is created on disk for a database Duet cannot use.
        db::check_url(&settings.database_url())?;
        db::private_dir(&settings.data_dir)?;
        let pool = db::connect(&settings.database_url()).await?;
        let sessions = crate::session_store::Store::open(&pool)
            .await
            .map_err(StartupError::Sessions)?;
        let redis = match &settings.redis_url {
            Some(url) => Some(crate::cluster::Redis::connect(url).await?),
            None => None,
        };
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
        // A site on disk wins (development); otherwise the one embedded in a release binary.
        let embedded = !settings.site_root.join("pkg").is_dir() && crate::site::available();
        let (hash_files, hash_file) = if embedded {
            tracing::info!("serving the site embedded in the binary");
            embedded_hash_file(&settings.data_dir)
        } else {
            (hash_file_present(), "hash.txt".into())
        };
        let leptos = LeptosOptions::builder()
            .output_name("duet")
            .hash_files(hash_files)
            .hash_file(hash_file)
            .site_root(settings.site_root.to_string_lossy().into_owned())
            .site_pkg_dir("pkg")
            .site_addr(bound)
            .build();
        let accounts = Accounts::new(pool, settings.hash_concurrency, settings.hash_queue)?;
        let rekeyed = accounts.rekey().await?;
        if rekeyed > 0 {
            tracing::info!(
                users = rekeyed,
                "usernames brought in line with today's rules"
            );
        }
        let settings = Arc::new(settings);
        let hub = Hub::new(metrics.clone(), settings.presence);
        let shutdown = CancellationToken::new();
        let relay = Arc::new(Relay {
            settings: settings.clone(),
            hub: hub.clone(),
            metrics: metrics.clone(),
            turn: turn.clone(),
            sessions: sessions.clone(),
            shutdown: shutdown.clone(),
            connections: TaskTracker::new(),
            contacts: Contacts::new(accounts.pool().clone()),
            calls: CallLog::default(),
            call_records: CallStore::new(accounts.pool().clone()),
        });
        let state = AppState {
            contacts: Contacts::new(accounts.pool().clone()),
            accounts,
            hub,
            logins: Arc::new(Limiter::new(
                "login",
                settings.login_failures,
                settings.login_window(),
                redis.clone(),
            )),
            registrations: Arc::new(Limiter::new(
                "register",
                settings.register_limit,
                std::time::Duration::from_secs(3600),
                redis.clone(),
            )),
            redis,
            metrics,
            leptos,
            turn,
            embedded_site: embedded,
            sessions: sessions.clone(),
            shutdown,
            settings,
            relay,
        };

        if let Some(redis) = &state.redis {
            crate::signaling::remote::start(redis, state.relay.clone(), state.shutdown.clone());
        }

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
        spawn_password_change_watch(&state);
        let session_layer = SessionManagerLayer::new(sessions)
            .with_name("duet_session")
            .with_http_only(true)
            .with_same_site(tower_sessions::cookie::SameSite::Lax)
            .with_secure(false)
            // Every login sets its own expiry (crate::sessions); this covers anonymous ones.
            .with_expiry(Expiry::OnInactivity(
                crate::sessions::SessionPolicy::from_settings(&state.settings).idle,
            ));

        let router = router(state.clone())
            .layer(session_layer)
            // Outside the session layer, so it sees that layer's failed writes.
            .layer(middleware::from_fn(
                crate::session_store::storage_full_answer,
            ))
            // Outside the session layer, so it sees the cookie that layer sets.
            .layer(middleware::from_fn(secure_cookies_behind_https))
            // Outermost: every layer and handler inside sees the resolved client.
            .layer(middleware::from_fn_with_state(
                state.clone(),
                crate::proxy::identify,
            ));
        let router = if tls.is_some() {
            router.layer(SetResponseHeaderLayer::overriding(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            ))
        } else {
            router
        };
        let redirect = match (state.settings.http_redirect_addr, &tls) {
            (Some(addr), Some(_)) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartupError::Bind { addr, source })?,
            ),
            _ => None,
        };
        let metrics = match state.settings.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartupError::Bind { addr, source })?,
            ),
            None => None,
        };
        Ok(Self {
            listener,
            router,
            state,
            tls,
            redirect,
            metrics,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.state.settings.addr)
    }

    /// The plain-HTTP redirect listener's address, when there is one.
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The metrics listener's address, when `--metrics-addr` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Cancel this to shut the server down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    pub async fn run(mut self) -> std::io::Result<()> {
        let shutdown = self.state.shutdown.clone();
        if let Some(listener) = self.metrics.take() {
            serve_metrics(listener, self.state.metrics.clone(), shutdown.clone());
        }
        let addr = self.local_addr();
        if let Some(redirect) = self.redirect.take() {
            serve_redirect(redirect, addr.port(), shutdown.clone());
        }
        let tls = self.tls.is_some();
        tracing::info!(%addr, tls, "Duet is serving");
        let settings = &self.state.settings;
        let gate = crate::listen::Gate::new(crate::listen::Caps {
            per_address: settings.max_connections_per_ip.max(1),
            total: settings.max_connections.max(1),
        });
        let header_timeout = settings.request_timeout();
        crate::listen::serve(
            self.listener,
            self.router,
            gate,
            header_timeout,
            self.tls,
            shutdown,
        )
        .await?;
        // Told 1001 when the shutdown began: wait until each socket has finished closing.
        let connections = &self.state.relay.connections;
        connections.close();
        connections.wait().await;
        Ok(())
    }
}

/// With TLS: plain HTTP on its own listener, answered only with a redirect to HTTPS.
fn serve_redirect(redirect: TcpListener, https_port: u16, shutdown: CancellationToken) {
    tracing::info!(addr = ?redirect.local_addr().ok(), "redirecting plain HTTP to HTTPS");
    let app = Router::new().fallback(
        move |headers: axum::http::HeaderMap, uri: axum::http::Uri| {
            std::future::ready(redirect_to_https(&headers, &uri, https_port))
        },
    );
    tokio::spawn(async move {
        let served = axum::serve(redirect, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "the redirect listener stopped");
        }
    });
}

/// How often a server looks for logins ended by another process ([`spawn_password_change_watch`]).
pub const ENDED_LOGINS_WATCH: std::time::Duration = std::time::Duration::from_secs(2);

/// A password change (`duet user passwd` in another process, or another server on the same
/// database) ends the sessions of the old password: their open sockets close within a moment.
fn spawn_password_change_watch(state: &AppState) {
    const EVERY: std::time::Duration = ENDED_LOGINS_WATCH;
    let accounts = state.accounts.clone();
    let hub = state.hub.clone();
    let stop = state.shutdown.clone();
    let mut seen = crate::sessions::unix_ms(time::OffsetDateTime::now_utc());
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = stop.cancelled() => break,
            }
            match accounts.sessions_ended_after(seen).await {
                Ok(changes) => {
                    for (key, since) in changes {
                        // Every instance watches: no need to tell the others.
                        let closed = hub.end_logins_before_here(&key, since);
                        tracing::info!(user = %key, sockets = closed, "password changed; old logins ended");
                        seen = seen.max(since);
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot look for password changes"),
            }
        }
    });
}

/// `http://host[:port]/path` → `https://host[:https_port]/path` (301).
fn redirect_to_https(
    headers: &axum::http::HeaderMap,
    uri: &axum::http::Uri,
    https_port: u16,
) -> Response {
    use axum::response::IntoResponse;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok());
    let Some(host) = host else {
        return (axum::http::StatusCode::BAD_REQUEST, "no Host").into_response();
    };
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{}{port}{path}", host.host());
    match HeaderValue::from_str(&location) {
        Ok(location) => (
            axum::http::StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => (axum::http::StatusCode::BAD_REQUEST, "bad Host").into_response(),
    }
}

fn router(state: AppState) -> Router {
    let routes = generate_route_list(client::App);
    let pkg_dir = state.settings.site_root.join("pkg");
    let pkg = if state.embedded_site {
        Router::new().fallback(crate::site::pkg)
    } else {
        Router::new().fallback_service(
            ServeDir::new(pkg_dir)
                .precompressed_br()
                .precompressed_gzip(),
        )
    }
    .layer(middleware::from_fn(cache_by_name));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/livez", get(|| async { "ok" }))
        .route("/video", get(signaling::socket::upgrade))
        .merge(crate::auth::routes(state.clone()))
        .nest("/pkg", pkg)
        .leptos_routes_with_context(&state, routes, crate::headers::page_policy, {
            let options = state.leptos.clone();
            move || client::shell(options.clone())
        })
        .fallback(public_file_or_page)
        .layer(middleware::from_fn(crate::headers::security_headers))
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Ready to serve: the database answers, and so does Redis when one is configured. A load
/// balancer stops sending users to an instance that cannot reach them (`/livez` says only that
/// the process runs).
async fn healthz(State(state): State<AppState>) -> Response {
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(2);
    let not_ready = |what: &'static str| {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {what} does not answer"),
        )
            .into_response()
    };
    if let Err(error) = state.accounts.pool().check(LIMIT).await {
        tracing::warn!(%error, "not ready: the database does not answer");
        return not_ready("the database");
    }
    if let Some(redis) = &state.redis
        && let Err(error) = redis.check(LIMIT).await
    {
        tracing::warn!(%error, "not ready: Redis does not answer");
        return not_ready("Redis");
    }
    "ok".into_response()
}

/// `/metrics` on its own listener: what Duet counts (logins, connections, errors) is for the
/// operator's Prometheus, not for anyone who can reach the app.
fn serve_metrics(listener: TcpListener, metrics: Metrics, shutdown: CancellationToken) {
    tracing::info!(addr = ?listener.local_addr().ok(), "serving metrics");
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let text = metrics.render();
            std::future::ready((
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                text,
            ))
        }),
    );
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "the metrics listener stopped");
        }
    });
}

/// Cookies are `Secure` whenever the browser reached us over HTTPS: served by Duet itself, or
/// behind a TLS proxy listed in `--trusted-proxies` (`X-Forwarded-Proto: https`).
async fn secure_cookies_behind_https(request: Request, next: Next) -> Response {
    let https = request
        .extensions()
        .get::<crate::proxy::Client>()
        .is_some_and(|client| client.https);
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

/// A public file (`/favicon.svg`, …) from the embedded site, or what leptos makes of the path
/// (a file from the site root on disk, or the app's page).
async fn public_file_or_page(
    uri: axum::http::Uri,
    State(state): State<AppState>,
    request: Request,
) -> Response {
    if state.embedded_site
        && let Some(response) = crate::site::response(uri.path(), request.headers())
    {
        return response;
    }
    leptos_axum::file_and_error_handler_with_context::<AppState, _>(
        crate::headers::page_policy,
        client::shell,
    )(uri, State(state), request)
    .await
}

/// The embedded `hash.txt`, written to the data directory where leptos can read it (leptos
/// joins its name to the executable's folder: an absolute path replaces that).
fn embedded_hash_file(data_dir: &std::path::Path) -> (bool, Arc<str>) {
    let Some(hashes) = crate::site::hashes() else {
        return (false, "hash.txt".into());
    };
    let path = std::path::absolute(data_dir.join("site-hash.txt"));
    match path.and_then(|path| {
        std::fs::create_dir_all(data_dir)?;
        std::fs::write(&path, hashes)?;
        Ok(path)
    }) {
        Ok(path) => (true, path.to_string_lossy().into()),
        Err(error) => {
            tracing::warn!(%error, "cannot write the site's hash file; the page will not load");
            (false, "hash.txt".into())
        }
    }
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
