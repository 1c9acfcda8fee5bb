//! Reading fields of plain JavaScript objects (statistics reports, sender parameters) that
//! web-sys gives no typed binding for: a missing, `undefined` or `null` field is `None`. And
//! JSON: parsed by the browser's `JSON.parse` and walked into a [`Value`], so the bundle carries
//! no JSON parser of its own (serde_json's parser, its error messages and the derived decoders
//! were about a tenth of the bundle).

use js_sys::Reflect;
use serde_json::{Map, Number, Value};
use wasm_bindgen::{JsCast, JsValue};

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

/// JSON text as a [`Value`], parsed by the browser.
pub fn parse_json(text: &str) -> Option<Value> {
    to_json(&js_sys::JSON::parse(text).ok()?)
}

/// A JavaScript value as JSON data, as `JSON.stringify` would write it: an object's `toJSON`
/// is asked first, `undefined` members of objects are left out; functions and symbols are not
/// JSON (`None`).
pub fn to_json(value: &JsValue) -> Option<Value> {
    if value.is_null() || value.is_undefined() {
        Some(Value::Null)
    } else if let Some(flag) = value.as_bool() {
        Some(Value::Bool(flag))
    } else if let Some(number) = value.as_f64() {
        Some(json_number(number))
    } else if let Some(text) = value.as_string() {
        Some(Value::String(text))
    } else if js_sys::Array::is_array(value) {
        js_sys::Array::from(value)
            .iter()
            .map(|item| to_json(&item))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array)
    } else if let Some(object) = value.dyn_ref::<js_sys::Object>() {
        // Platform objects (an `RTCSessionDescription`) keep their fields as getters on the
        // prototype, which `Object.keys` does not list; `JSON.stringify` asks `toJSON` first.
        if let Some(to_json_fn) =
            get(value, "toJSON").and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        {
            return to_json(&to_json_fn.call0(value).ok()?);
        }
        let mut map = Map::new();
        for key in js_sys::Object::keys(object).iter() {
            let member = Reflect::get(value, &key).ok()?;
            if !member.is_undefined() {
                map.insert(key.as_string()?, to_json(&member)?);
            }
        }
        Some(Value::Object(map))
    } else {
        None
    }
}

/// A JavaScript number as serde_json reads the same digits: whole numbers as integers (so
/// `0` stays `0`, not `0.0`), others as floats; `NaN` and infinities (not JSON) as `null`.
fn json_number(number: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if number.fract() == 0.0 && number.abs() < EXACT {
        if number >= 0.0 {
            Value::from(number as u64)
        } else {
            Value::from(number as i64)
        }
    } else {
        Number::from_f64(number).map_or(Value::Null, Value::Number)
    }
}
