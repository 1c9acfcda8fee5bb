//! Which site a browser's request comes from: the signaling handshake and the account forms
//! refuse pages of other sites.

use axum::http::{HeaderMap, Uri, header};

/// A browser always sends `Origin`; it must be this server's own (same host, and the scheme the
/// browser really used) or explicitly allowed. Non-browser clients (no `Origin`) cannot be
/// hijacked cross-site and are let through.
///
/// The server's own host is the `Host` header, or over HTTP/2 (which has no `Host`: browsers
/// send the `:authority` pseudo-header, which becomes the URI's authority) the request URI's.
pub fn allowed(headers: &HeaderMap, uri: &Uri, extra: &[String], https: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if extra.iter().any(|a| a.trim_end_matches('/') == origin) {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    let origin_host = origin.strip_prefix(if https { "https://" } else { "http://" });
    matches!((host, origin_host), (Some(h), Some(o)) if h.eq_ignore_ascii_case(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, value.parse().unwrap());
        headers
    }

    #[test]
    fn over_http2_the_authority_stands_for_the_missing_host() {
        // HTTP/2 (what browsers negotiate with `--tls-*`) has `:authority`, not `Host`.
        let uri: Uri = "https://127.0.0.1:8443/user/login".parse().unwrap();
        assert!(allowed(&origin("https://127.0.0.1:8443"), &uri, &[], true));
        assert!(!allowed(&origin("https://evil.example"), &uri, &[], true));
        assert!(
            !allowed(&origin("http://127.0.0.1:8443"), &uri, &[], true),
            "scheme too"
        );
        let mut with_host = origin("http://duet.example");
        with_host.insert(header::HOST, "duet.example".parse().unwrap());
        assert!(allowed(
            &with_host,
            &Uri::from_static("/user/login"),
            &[],
            false
        ));
        assert!(!allowed(
            &origin("http://duet.example"),
            &Uri::from_static("/x"),
            &[],
            false
        ));
    }
}
