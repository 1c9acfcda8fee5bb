//! Duet's accounts over HTTP: registering the users, making them contacts, and the login burst.
//! All of it goes through the first target: instances of one service share their database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::cli::{Args, Flavour};
use crate::shared::{Shared, now_ns};

const PASSWORD: &str = "loadgen-password-1";

pub fn user_name(prefix: &str, index: usize) -> String {
    format!("{prefix}{index}")
}

/// The HTTP client and each user's session cookie (none but for Duet), and what setting them
/// up took.
pub struct Accounts {
    pub http: reqwest::Client,
    pub cookies: Vec<Option<HeaderValue>>,
    pub register_secs: f64,
    pub contacts_secs: f64,
}

/// Registers `users` users and, with `--contacts`, makes them contacts (Duet only).
pub async fn set_up(args: &Args, users: usize, deadline: Instant) -> Result<Accounts, String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.register_concurrency)
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let mut cookies: Vec<Option<HeaderValue>> = vec![None; users];
    let register_started = Instant::now();
    if args.flavour == Flavour::Duet {
        cookies = register_all(&http, args, users, deadline).await?;
    }
    let register_secs = register_started.elapsed().as_secs_f64();
    let contacts_started = Instant::now();
    if args.contacts > 0 {
        befriend_ring(&http, args, &cookies, deadline).await?;
    }
    let contacts_secs = contacts_started.elapsed().as_secs_f64();
    Ok(Accounts {
        http,
        cookies,
        register_secs,
        contacts_secs,
    })
}

fn session_cookie(response: &reqwest::Response) -> Option<HeaderValue> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("duet_session="))
        .and_then(|v| v.split(';').next())
        .and_then(|v| HeaderValue::from_str(v).ok())
}

async fn account_request(
    http: &reqwest::Client,
    target: SocketAddr,
    path: &str,
    user: &str,
) -> Result<HeaderValue, String> {
    let response = http
        .post(format!("http://{target}{path}"))
        .json(&json!({"username": user, "password": PASSWORD}))
        .send()
        .await
        .map_err(|e| format!("{path} {user}: {e}"))?;
    let cookie = session_cookie(&response);
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| format!("{path} {user}: {e}"))?;
    if body["flag"] != true {
        return Err(format!("{path} {user}: {body}"));
    }
    cookie.ok_or_else(|| format!("{path} {user}: no duet_session cookie"))
}

async fn register_all(
    http: &reqwest::Client,
    args: &Args,
    users: usize,
    deadline: Instant,
) -> Result<Vec<Option<HeaderValue>>, String> {
    let next = Arc::new(AtomicU64::new(0));
    let results = Arc::new(std::sync::Mutex::new(vec![None; users]));
    let mut tasks = Vec::new();
    for _ in 0..args.register_concurrency.max(1) {
        let next = next.clone();
        let results = results.clone();
        let http = http.clone();
        let prefix = args.prefix.clone();
        let target = args.target[0];
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= users || Instant::now() > deadline {
                    return Ok::<(), String>(());
                }
                let name = user_name(&prefix, i);
                let cookie = account_request(&http, target, "/user/register", &name).await?;
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(cookie);
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let results = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    if results.iter().any(Option::is_none) {
        return Err("registration did not finish before the setup deadline".into());
    }
    Ok(results)
}

/// Makes user i and user i+d (mod the number of users) mutual contacts for d in 1..=K/2: i
/// asks, the other accepts. Every user ends with K contacts (fewer when there are few users).
async fn befriend_ring(
    http: &reqwest::Client,
    args: &Args,
    cookies: &[Option<HeaderValue>],
    deadline: Instant,
) -> Result<(), String> {
    let users = cookies.len();
    let reach = (args.contacts / 2).min(users.saturating_sub(1) / 2);
    let pairs: Vec<(usize, usize)> = (0..users)
        .flat_map(|i| (1..=reach).map(move |d| (i, (i + d) % users)))
        .collect();
    let pairs = Arc::new(pairs);
    let cookies: Arc<Vec<Option<HeaderValue>>> = Arc::new(cookies.to_vec());
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.contact_concurrency.max(1) {
        let (pairs, cookies, next) = (pairs.clone(), cookies.clone(), next.clone());
        let (http, prefix, target) = (http.clone(), args.prefix.clone(), args.target[0]);
        tasks.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(&(asker, asked)) = pairs.get(k) else {
                    return Ok::<(), String>(());
                };
                if Instant::now() > deadline {
                    return Err("contacts were not set up before the setup deadline".into());
                }
                for (by, about, action) in [(asker, asked, "request"), (asked, asker, "accept")] {
                    let cookie = cookies[by].clone().ok_or("a user without a session")?;
                    contact_action(&http, target, cookie, action, &user_name(&prefix, about))
                        .await?;
                }
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

async fn contact_action(
    http: &reqwest::Client,
    target: SocketAddr,
    cookie: HeaderValue,
    action: &str,
    about: &str,
) -> Result<(), String> {
    let path = format!("/contacts/{action}");
    let body: serde_json::Value = http
        .post(format!("http://{target}{path}"))
        .header(reqwest::header::COOKIE, cookie)
        .json(&json!({ "username": about }))
        .send()
        .await
        .map_err(|e| format!("{path} {about}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{path} {about}: {e}"))?;
    if body["flag"] != true {
        return Err(format!("{path} {about}: {body}"));
    }
    Ok(())
}

/// `login_burst` logins at once (users 0.. are registered already); records when they ran.
pub async fn login_burst(shared: &Shared, http: &reqwest::Client) {
    let args = &shared.args;
    shared.burst_from.store(now_ns(), Ordering::Relaxed);
    let mut tasks = Vec::new();
    for i in 0..args.login_burst {
        let http = http.clone();
        let name = user_name(&args.prefix, i);
        let target = args.target[0];
        tasks.push(tokio::spawn(async move {
            account_request(&http, target, "/user/login", &name).await
        }));
    }
    for task in tasks {
        match task.await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => shared.error(format!("login burst: {error}")),
            Err(error) => shared.error(format!("login burst: {error}")),
        }
    }
    shared.burst_to.store(now_ns(), Ordering::Relaxed);
}
