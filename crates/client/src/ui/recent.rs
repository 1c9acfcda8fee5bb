use leptos::prelude::*;
use protocol::{CallHistory, CallOutcome};

use crate::api;
use crate::phone::Phone;
use crate::ui::{Locale, format_duration};

/// The user's recent calls, newest first, with missed calls counted until the list is opened
/// (the server keeps what was seen, so the count holds across reloads and devices).
#[component]
pub fn RecentCalls() -> impl IntoView {
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    let call = phone.call();
    let down = phone.server_down();
    let history = RwSignal::new(CallHistory::default());
    let open = RwSignal::new(false);

    // Fetched afresh whenever the server recorded a call of ours (or the connection came back);
    // seen when shown.
    let recorded = phone.history_changed();
    let changed = phone.contacts_changed();
    Effect::new(move |_| {
        recorded.track();
        changed.track();
        let shown = open.get();
        leptos::task::spawn_local(async move {
            if shown && history.with_untracked(|h| h.missed_unseen > 0) {
                let _ = api::calls_seen().await;
            }
            if let Ok(fetched) = api::calls().await {
                history.set(fetched);
            }
        });
    });

    let rows = move || {
        let lang = locale.lang().get();
        history.with(|history| {
            history
                .calls
                .iter()
                .map(|record| {
                    let peer = record.peer.clone();
                    let dialable = peer.clone();
                    let when = js_sys::Date::new(&(record.started_at as f64).into())
                        .to_locale_string(lang.tag(), &wasm_bindgen::JsValue::UNDEFINED);
                    let what = match record.duration_ms {
                        Some(ms) => format!(
                            "{} · {}",
                            locale.t().outcome(record.outcome),
                            format_duration(ms as f64)
                        ),
                        None => locale.t().outcome(record.outcome).to_owned(),
                    };
                    view! {
                        <li
                            class="row"
                            class:missed=record.outcome == CallOutcome::Missed
                            data-testid="recent-call"
                            data-user=peer.clone()
                            data-outcome=record.outcome.as_str()
                        >
                            <span aria-hidden="true">{if record.outgoing { "↗" } else { "↙" }}</span>
                            <span class="contact-name">{peer.clone()}</span>
                            <span class="muted">{what} " · " {String::from(when)}</span>
                            <button
                                type="button"
                                class="btn secondary small"
                                data-testid="call-back"
                                disabled=move || down.get() || !call.with(|c| c.can_dial(&dialable))
                                on:click={
                                    let peer = record.peer.clone();
                                    move |_| phone.dial(peer.clone(), true)
                                }
                            >
                                {move || locale.t().call_back}
                            </button>
                        </li>
                    }
                })
                .collect_view()
        })
    };

    view! {
        <details
            class="manage"
            data-testid="recent"
            on:toggle=move |ev| {
                open.set(event_target::<web_sys::HtmlDetailsElement>(&ev).open())
            }
        >
            <summary>
                {move || locale.t().recent_heading}
                {move || {
                    let missed = history.with(|h| h.missed_unseen);
                    (missed > 0)
                        .then(|| view! { <span class="count missed" data-testid="missed-badge">{missed}</span> })
                }}
            </summary>
            <ul class="contact-list" role="list">{rows}</ul>
            {move || {
                history
                    .with(|h| h.calls.is_empty())
                    .then(|| view! { <p class="muted empty">{move || locale.t().no_calls_yet}</p> })
            }}
        </details>
    }
}
