//! Which camera, microphone and speaker the user chose: remembered in the browser
//! (`localStorage`), so the next call opens them, and listed for the pickers
//! (`enumerateDevices`).
//!
//! Opening them is `rtc`'s; this module only names and remembers them.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::MediaDeviceInfo;

/// A kind of device the user picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Camera,
    Microphone,
    Speaker,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Camera, Kind::Microphone, Kind::Speaker];

    /// `MediaDeviceInfo.kind` for this kind.
    fn browser_kind(self) -> &'static str {
        match self {
            Self::Camera => "videoinput",
            Self::Microphone => "audioinput",
            Self::Speaker => "audiooutput",
        }
    }

    /// `MediaStreamTrack.kind` of what it captures (a speaker captures nothing).
    pub fn track_kind(self) -> Option<&'static str> {
        match self {
            Self::Camera => Some("video"),
            Self::Microphone => Some("audio"),
            Self::Speaker => None,
        }
    }

    /// The capturing kind of a track's `kind`.
    pub fn of_track(kind: &str) -> Option<Self> {
        match kind {
            "video" => Some(Self::Camera),
            "audio" => Some(Self::Microphone),
            _ => None,
        }
    }

    fn storage_key(self) -> &'static str {
        match self {
            Self::Camera => "duet.camera",
            Self::Microphone => "duet.microphone",
            Self::Speaker => "duet.speaker",
        }
    }
}

/// One device as the pickers show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    /// Empty until the page may use a device of its kind (the browser hides labels before).
    pub label: String,
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The device of `kind` the user chose last, if any.
pub fn preferred(kind: Kind) -> Option<String> {
    storage()?
        .get_item(kind.storage_key())
        .ok()
        .flatten()
        .filter(|id| !id.is_empty())
}

/// Remembers `id` as the device of `kind` for this and later calls.
pub fn remember(kind: Kind, id: &str) {
    if let Some(storage) = storage() {
        let _ = storage.set_item(kind.storage_key(), id);
    }
}

/// The devices of `kind` the browser lists now (none where it cannot list them).
pub async fn list(kind: Kind) -> Vec<Device> {
    let Some(promise) = crate::rtc::media_devices()
        .ok()
        .and_then(|devices| devices.enumerate_devices().ok())
    else {
        return Vec::new();
    };
    let Ok(all) = JsFuture::from(promise).await else {
        return Vec::new();
    };
    js_sys::Array::from(&all)
        .iter()
        .filter_map(|info| info.dyn_into::<MediaDeviceInfo>().ok())
        .filter(|info| crate::js_fields::text(info, "kind").as_deref() == Some(kind.browser_kind()))
        .map(|info| Device {
            id: info.device_id(),
            label: info.label(),
        })
        .collect()
}

/// Whether media elements can play through a chosen speaker (`setSinkId`).
pub fn can_choose_speaker() -> bool {
    web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w, &"HTMLMediaElement".into()).ok())
        .and_then(|class| js_sys::Reflect::get(&class, &"prototype".into()).ok())
        .is_some_and(|prototype| {
            js_sys::Reflect::has(&prototype, &"setSinkId".into()).unwrap_or(false)
        })
}

/// Plays `target` (a media element, or an `AudioContext`) through the speaker `id`, where the
/// browser can choose one (`setSinkId`, which web-sys binds only as an unstable API, and only
/// for media elements).
pub fn play_through(target: &JsValue, id: &str) {
    let Some(set_sink_id) = crate::js_fields::get(target, "setSinkId")
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    else {
        return;
    };
    let Ok(promise) = set_sink_id.call1(target, &id.into()) else {
        return;
    };
    wasm_bindgen_futures::spawn_local(async move {
        // A speaker unplugged since it was chosen: the sound stays where it was.
        if let Err(error) = JsFuture::from(js_sys::Promise::resolve(&promise)).await {
            web_sys::console::warn_1(&error);
        }
    });
}

/// The camera and microphone the user chose, for `getUserMedia`.
pub fn choice() -> crate::rtc::Choice {
    crate::rtc::Choice {
        camera: preferred(Kind::Camera),
        microphone: preferred(Kind::Microphone),
    }
}

/// Hears `devicechange` (a device plugged in or out) while it lives.
pub struct Watch {
    devices: Option<web_sys::MediaDevices>,
    _handler: Closure<dyn FnMut()>,
}

impl Watch {
    pub fn new(on_change: impl FnMut() + 'static) -> Self {
        let handler = Closure::<dyn FnMut()>::new(on_change);
        let devices = crate::rtc::media_devices().ok();
        if let Some(devices) = &devices {
            devices.set_ondevicechange(Some(handler.as_ref().unchecked_ref()));
        }
        Self {
            devices,
            _handler: handler,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(devices) = &self.devices {
            devices.set_ondevicechange(None);
        }
    }
}

/// Which device to open when the one in use (`lost`) went away: the user's choice if it is still
/// there and is not the lost one, else the first other one.
pub fn fallback<'a>(devices: &'a [Device], lost: &str, chosen: Option<&str>) -> Option<&'a Device> {
    let others = || devices.iter().filter(|d| d.id != lost && d.id != "default");
    others()
        .find(|d| Some(d.id.as_str()) == chosen)
        .or_else(|| others().next())
}

/// The name a picker shows: the label, or "Camera 2" while the browser hides labels.
pub fn name(device: &Device, kind_name: &str, index: usize) -> String {
    if device.label.is_empty() {
        format!("{kind_name} {}", index + 1)
    } else {
        device.label.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(ids: &[&str]) -> Vec<Device> {
        ids.iter()
            .map(|id| Device {
                id: (*id).into(),
                label: format!("cam {id}"),
            })
            .collect()
    }

    #[test]
    fn a_lost_device_falls_back_to_the_choice_or_another() {
        let list = devices(&["default", "a", "b", "c"]);
        assert_eq!(
            fallback(&list, "a", Some("c")).map(|d| &d.id[..]),
            Some("c")
        );
        // The choice was the lost device: the first other one, never the lost one again.
        assert_eq!(
            fallback(&list, "a", Some("a")).map(|d| &d.id[..]),
            Some("b")
        );
        assert_eq!(fallback(&list, "b", None).map(|d| &d.id[..]), Some("a"));
        assert_eq!(fallback(&devices(&["a"]), "a", None), None);
    }

    #[test]
    fn hidden_labels_get_a_numbered_name() {
        let hidden = Device {
            id: "x".into(),
            label: String::new(),
        };
        assert_eq!(name(&hidden, "Camera", 1), "Camera 2");
        assert_eq!(name(&devices(&["a"])[0], "Camera", 0), "cam a");
    }
}
