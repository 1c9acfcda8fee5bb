//! The site embedded in a release binary (see `build.rs`): the wasm, JS and CSS under `pkg/`
//! with their precompressed `.br` / `.gz` copies, and the public files. Used when no site root
//! exists on disk, so copying the one `duet` file to a server is a whole deployment.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_site.rs"));
}

/// Whether this binary carries a site.
pub fn available() -> bool {
    embedded::FILES
        .iter()
        .any(|(name, _)| name.starts_with("pkg/"))
}

/// The embedded `hash.txt` (hashed file names), if the site was built with hashes.
pub fn hashes() -> Option<&'static str> {
    embedded::HASHES
}

fn find(name: &str) -> Option<&'static [u8]> {
    embedded::FILES
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, bytes)| *bytes)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "wasm" => "application/wasm",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "html" => "text/html; charset=utf-8",
        "json" | "webmanifest" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The embedded file at `path` (e.g. `/pkg/duet.css`), precompressed when the browser accepts
/// it; `None` when there is no such file.
pub fn response(path: &str, headers: &HeaderMap) -> Option<Response> {
    let name = path.trim_start_matches('/');
    if name.is_empty() || name.split('/').any(|part| part == "..") {
        return None;
    }
    let plain = find(name)?;
    let accepts = |coding: &str| {
        headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|part| part.split(';').next().unwrap_or_default().trim() == coding)
    };
    let (bytes, encoding) = [("br", ".br"), ("gzip", ".gz")]
        .iter()
        .filter(|(coding, _)| accepts(coding))
        .find_map(|(coding, suffix)| find(&format!("{name}{suffix}")).map(|b| (b, Some(*coding))))
        .unwrap_or((plain, None));
    let mut response = Body::from(bytes).into_response();
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(coding) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    Some(response)
}

/// `/pkg/…` from the embedded site.
pub async fn pkg(uri: Uri, headers: HeaderMap) -> Response {
    response(&format!("/pkg{}", uri.path()), &headers)
        .unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("pkg/duet.0123.wasm"), "application/wasm");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
    }

    #[test]
    fn no_escape_from_the_site() {
        assert!(response("/../Cargo.toml", &HeaderMap::new()).is_none());
        assert!(response("/", &HeaderMap::new()).is_none());
    }
}
