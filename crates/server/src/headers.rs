//! Security headers on every answer. The app's page runs exactly its own script: the wasm and
//! its loader from this origin, and the one inline bootstrap that Leptos writes with a fresh
//! nonce per page; nothing else runs, and no other site may frame the page.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;

/// Everything but `script-src`: the page's own origin, and nothing from anywhere else.
/// `style-src 'unsafe-inline'` lets the avatars' colours be set as a `style` attribute; CSS
/// cannot run script, and no user text ever reaches a style.
const BASE_POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data: blob:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// `'wasm-unsafe-eval'` compiles the app's wasm; it allows no JavaScript `eval`.
fn policy(nonce: Option<&str>) -> String {
    let mut script = String::from("script-src 'self' 'wasm-unsafe-eval'");
    if let Some(nonce) = nonce {
        script.push_str(&format!(" 'nonce-{nonce}'"));
    }
    let mut connect = String::from("connect-src 'self'");
    // `cargo leptos watch` reloads the page over a WebSocket on its own port.
    if std::env::var_os("LEPTOS_WATCH").is_some() {
        connect.push_str(" ws: wss:");
    }
    format!("{BASE_POLICY}; {script}; {connect}")
}

/// Runs inside every page's render (leptos_axum provides a fresh nonce per response, and writes
/// it on the inline bootstrap script): the page's policy allows that nonce.
pub fn page_policy() {
    let nonce = leptos::nonce::use_nonce().map(|nonce| nonce.to_string());
    if let Some(response) = use_context::<ResponseOptions>()
        && let Ok(value) = HeaderValue::from_str(&policy(nonce.as_deref()))
    {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Adds the headers every answer carries; a page's own policy (with its nonce) stays.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY)
        && let Ok(value) = HeaderValue::from_str(&policy(None))
    {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    let fixed: [(HeaderName, &'static str); 4] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(self), microphone=(self), display-capture=(self), geolocation=(), \
             payment=(), usb=()",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
