//! The camera, microphone and speaker pickers, before a call (on the idle pane and in the
//! pre-call check) and during one (in the controls).

use leptos::prelude::*;

use crate::devices::{self, Kind};
use crate::i18n::Strings;
use crate::phone::Phone;
use crate::ui::Locale;

fn kind_name(strings: &'static Strings, kind: Kind) -> &'static str {
    match kind {
        Kind::Camera => strings.camera,
        Kind::Microphone => strings.microphone,
        Kind::Speaker => strings.speaker,
    }
}

fn testid(kind: Kind) -> &'static str {
    match kind {
        Kind::Camera => "pick-camera",
        Kind::Microphone => "pick-microphone",
        Kind::Speaker => "pick-speaker",
    }
}

/// A disclosure ("Devices") holding the pickers: one click away, out of the way otherwise.
#[component]
pub fn DeviceMenu() -> impl IntoView {
    let locale = Locale::use_context();
    view! {
        <details class="devices" data-testid="devices">
            <summary>{move || locale.t().devices}</summary>
            <DevicePickers/>
        </details>
    }
}

/// One labelled list per kind of device. A pick is remembered for later calls and, during a
/// call, swapped in at once; `on_pick` hears of it too (the pre-call check opens it).
#[component]
pub fn DevicePickers(#[prop(optional)] on_pick: Option<Callback<Kind>>) -> impl IntoView {
    // The speaker can be chosen only where media elements have `setSinkId` (not Firefox before
    // 116, nor Safari).
    let kinds: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|kind| *kind != Kind::Speaker || devices::can_choose_speaker())
        .collect();
    view! {
        <div class="device-pickers">
            {kinds.into_iter().map(|kind| view! { <Picker kind on_pick/> }).collect_view()}
        </div>
    }
}

#[component]
fn Picker(kind: Kind, on_pick: Option<Callback<Kind>>) -> impl IntoView {
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    let changed = phone.devices_changed();
    // Listed again when devices come or go, and when a pick opened one (labels appear once the
    // page may use a device).
    let picked = RwSignal::new(devices::preferred(kind));
    let listed = LocalResource::new(move || {
        changed.track();
        picked.track();
        devices::list(kind)
    });
    let options = move || {
        let name = kind_name(locale.t(), kind);
        let chosen = picked.get();
        listed.get().map(|list| {
            list.iter()
                .enumerate()
                .map(|(index, device)| {
                    let selected = chosen.as_deref() == Some(device.id.as_str());
                    view! {
                        <option value=device.id.clone() selected=selected>
                            {devices::name(device, name, index)}
                        </option>
                    }
                })
                .collect_view()
        })
    };
    view! {
        // The list inside its label: named by it without ids to keep unique.
        <label class="field">
            <span>{move || kind_name(locale.t(), kind)}</span>
            <select
                data-testid=testid(kind)
                on:change=move |event| {
                    let chosen = event_target_value(&event);
                    picked.set(Some(chosen.clone()));
                    phone.use_device(kind, chosen);
                    if let Some(on_pick) = on_pick {
                        on_pick.run(kind);
                    }
                }
            >
                {options}
            </select>
        </label>
    }
}
