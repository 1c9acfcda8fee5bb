//! Reading fields of plain JavaScript objects (statistics reports, sender parameters) that
//! web-sys gives no typed binding for: a missing, `undefined` or `null` field is `None`.

use js_sys::Reflect;
use wasm_bindgen::JsValue;

pub fn get(value: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(value, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

pub fn text(value: &JsValue, key: &str) -> Option<String> {
    get(value, key)?.as_string()
}

/// A finite number (statistics may hold `NaN` or infinities).
pub fn number(value: &JsValue, key: &str) -> Option<f64> {
    get(value, key)?.as_f64().filter(|n| n.is_finite())
}
