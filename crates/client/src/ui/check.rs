//! "Check camera and microphone": a preview, a level meter and a test sound, with the device
//! pickers, before calling anyone. Closing it releases every device it opened.

use leptos::prelude::*;
use send_wrapper::SendWrapper;

use crate::check::DeviceCheck;
use crate::devices::Kind;
use crate::phone::{Phone, SharedStream};
use crate::ui::Locale;
use crate::ui::call_view::{Video, focused_when_shown};
use crate::ui::devices::DevicePickers;

/// The button that opens the check, and the check while it is open.
#[component]
pub fn DeviceCheckButton() -> impl IntoView {
    let locale = Locale::use_context();
    let open = RwSignal::new(false);
    view! {
        <button
            type="button"
            class="btn secondary"
            data-testid="check-devices"
            hidden=move || open.get()
            on:click=move |_| open.set(true)
        >
            {move || locale.t().check_devices}
        </button>
        {move || {
            open.get().then(|| view! { <CheckPanel on_close=Callback::new(move |()| open.set(false))/> })
        }}
    }
}

#[component]
fn CheckPanel(on_close: Callback<()>) -> impl IntoView {
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    // The open check; disposed with the panel, which drops it (every device released).
    let check = StoredValue::new(None::<SendWrapper<DeviceCheck>>);
    // Which opening is current: a pick opens the devices anew, and an older opening that
    // finishes late is dropped at once.
    let opening = StoredValue::new(0u32);
    let stream = RwSignal::new(None::<SharedStream>);
    let level = RwSignal::new(0.0);
    let failed = RwSignal::new(false);

    let start = move || {
        // The devices in use stop before others (or the same, anew) open.
        check.set_value(None);
        stream.set(None);
        opening.update_value(|n| *n += 1);
        let this = opening.get_value();
        // Made in the click's turn, so the browser lets it play (see `DeviceCheck::open`).
        let Ok(audio) = web_sys::AudioContext::new() else {
            failed.set(true);
            return;
        };
        wasm_bindgen_futures::spawn_local(async move {
            let opened = DeviceCheck::open(audio).await;
            // Closed, or opened again, meanwhile: the devices stop here.
            if opening.try_get_value() != Some(this) {
                return;
            }
            match opened {
                Ok(opened) => {
                    stream.set(Some(SendWrapper::new(opened.stream())));
                    check.set_value(Some(SendWrapper::new(opened)));
                    failed.set(false);
                }
                Err(error) => {
                    web_sys::console::warn_1(&error.to_string().into());
                    failed.set(true);
                }
            }
        });
    };
    start();

    // The meter follows the microphone ten times a second while the panel is open.
    let tick = set_interval_with_handle(
        move || {
            let now = check
                .try_update_value(|check| check.as_mut().map(|check| check.level()))
                .flatten();
            if let Some(now) = now {
                level.set(now);
            }
        },
        std::time::Duration::from_millis(100),
    );
    on_cleanup(move || {
        if let Ok(tick) = tick {
            tick.clear();
        }
        check.try_set_value(None);
    });

    let play = move |_| {
        let speaker = phone.speaker().get_untracked();
        check.with_value(|check| {
            if let Some(check) = check {
                check.test_sound(speaker.as_deref());
            }
        });
    };
    let on_pick = Callback::new(move |kind: Kind| {
        if kind != Kind::Speaker {
            start();
        }
    });
    let label = Signal::derive(move || locale.t().you.to_owned());
    // The button that opened the check is gone: focus goes to the one that closes it.
    let done = focused_when_shown();
    view! {
        <div
            class="device-check"
            data-testid="device-check"
            role="group"
            aria-labelledby="device-check-title"
        >
            <h3 id="device-check-title">{move || locale.t().check_devices}</h3>
            <div class="check-preview">
                <Video testid="check-preview" label stream=stream.read_only() local=true/>
            </div>
            <p class="error" role="alert" hidden=move || !failed.get()>
                {move || locale.t().ended_media_denied}
            </p>
            <label class="field">
                <span>{move || locale.t().mic_level}</span>
                <meter data-testid="mic-level" min="0" max="1" low="0.1" prop:value=move || level.get()></meter>
            </label>
            <DevicePickers on_pick/>
            <div class="call-actions wrap">
                <button type="button" class="btn secondary" data-testid="test-sound" on:click=play>
                    {move || locale.t().test_sound}
                </button>
                <button
                    type="button"
                    class="btn primary"
                    data-testid="check-done"
                    node_ref=done
                    on:click=move |_| on_close.run(())
                >
                    {move || locale.t().done}
                </button>
            </div>
        </div>
    }
}
