//! Unicode case mapping for names (sorting, filtering, initials).
//!
//! In the browser the JS engine's own mapping is used: Rust's case tables would add about 5 kB
//! (brotli) to the bundle for the same result. The server renders the same views with Rust's; both
//! follow Unicode's default, locale-independent mapping, so the hydrated page agrees with the HTML.

#[cfg(target_arch = "wasm32")]
pub fn lowercase(s: &str) -> String {
    js_sys::JsString::from(s).to_lower_case().into()
}

#[cfg(not(target_arch = "wasm32"))]
pub fn lowercase(s: &str) -> String {
    s.to_lowercase()
}

#[cfg(target_arch = "wasm32")]
pub fn uppercase(s: &str) -> String {
    js_sys::JsString::from(s).to_upper_case().into()
}

#[cfg(not(target_arch = "wasm32"))]
pub fn uppercase(s: &str) -> String {
    s.to_uppercase()
}
