//! The camera, microphone and speaker pickers, before a call (on the idle pane and in the
//! pre-call check) and during one (in the controls).

use leptos::html;
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
    let speaker = devices::can_choose_speaker();
    view! {
        <div class="device-pickers">
            <Picker kind=Kind::Camera on_pick/>
            <Picker kind=Kind::Microphone on_pick/>
            {speaker.then(|| view! { <Picker kind=Kind::Speaker on_pick/> })}
        </div>
    }
}

#[component]
fn Picker(kind: Kind, on_pick: Option<Callback<Kind>>) -> impl IntoView {
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    let changed = phone.devices_changed();
    let select = NodeRef::<html::Select>::new();
    // Listed again when devices come or go, on a switch of language (the names of unlabelled
    // devices), and after a pick (labels appear once the page may use a device). The options
    // are written straight into the list: a reactive view per option cost more of the bundle
    // than the whole picker otherwise does.
    let picked = RwSignal::new(0u32);
    Effect::new(move |_| {
        changed.track();
        picked.track();
        let name = kind_name(locale.t(), kind);
        if let Some(select) = select.get() {
            wasm_bindgen_futures::spawn_local(async move {
                let listed = devices::list(kind).await;
                fill(&select, &listed, devices::preferred(kind).as_deref(), name);
            });
        }
    });
    view! {
        // The list inside its label: named by it without ids to keep unique.
        <label class="field">
            <span>{move || kind_name(locale.t(), kind)}</span>
            <select
                node_ref=select
                data-testid=testid(kind)
                on:change=move |event| {
                    phone.use_device(kind, event_target_value(&event));
                    picked.update(|n| *n += 1);
                    if let Some(on_pick) = on_pick {
                        on_pick.run(kind);
                    }
                }
            ></select>
        </label>
    }
}

/// Puts one option per device in `select`, `chosen` selected.
fn fill(
    select: &web_sys::HtmlSelectElement,
    listed: &[devices::Device],
    chosen: Option<&str>,
    name: &str,
) {
    select.set_text_content(None);
    for (index, device) in listed.iter().enumerate() {
        let selected = chosen == Some(device.id.as_str());
        let text = devices::name(device, name, index);
        if let Ok(option) =
            web_sys::HtmlOptionElement::new_with_text_and_value_and_default_selected_and_selected(
                &text, &device.id, selected, selected,
            )
        {
            let _ = select.append_child(&option);
        }
    }
}
