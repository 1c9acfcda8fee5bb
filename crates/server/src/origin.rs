//! Which site a browser's request comes from: the signaling handshake and the account forms
//! refuse pages of other sites.

use axum::http::{HeaderMap, header};

/// A browser always sends `Origin`; it must be this server's own (same host, and the scheme the
/// browser really used) or explicitly allowed. Non-browser clients (no `Origin`) cannot be
/// hijacked cross-site and are let through.
pub fn allowed(headers: &HeaderMap, extra: &[String], https: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if extra.iter().any(|a| a.trim_end_matches('/') == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.strip_prefix(if https { "https://" } else { "http://" });
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}
