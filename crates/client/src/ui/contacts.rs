use leptos::prelude::*;

use crate::i18n::fill;
use crate::phone::Phone;
use crate::ui::{Avatar, Locale};

/// Everyone else who is online; choosing one calls them.
#[component]
pub fn ContactList() -> impl IntoView {
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    let online = phone.online();
    let call = phone.call();
    let down = phone.server_down();
    let filter = RwSignal::new(String::new());

    let shown = Memo::new(move |_| {
        let needle = crate::text::lowercase(filter.get().trim());
        online.with(|names| {
            names
                .iter()
                .filter(|name| crate::text::lowercase(name).contains(&needle))
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    // The one person a filter leaves, if calling them is possible now.
    let only_match = move || {
        let names = shown.get_untracked();
        match names.as_slice() {
            [only] if !down.get_untracked() && call.with_untracked(|c| c.can_dial(only)) => {
                Some(only.clone())
            }
            _ => None,
        }
    };
    let empty_text = move || {
        if online.with(Vec::is_empty) {
            Some(locale.t().nobody_online)
        } else if shown.with(Vec::is_empty) {
            Some(locale.t().no_match)
        } else {
            None
        }
    };

    view! {
        <aside class="contacts card" aria-labelledby="contacts-heading">
            <div class="contacts-head">
                <h2 id="contacts-heading">{move || locale.t().contacts_heading}</h2>
                <span class="count" aria-hidden="true">{move || online.with(Vec::len)}</span>
            </div>
            <input
                type="search"
                class="filter"
                data-testid="contact-filter"
                aria-label=move || locale.t().filter_label
                placeholder=move || locale.t().filter_label
                autocomplete="off"
                bind:value=filter
                on:keydown=move |ev| {
                    // Enter on a filter that leaves one person calls them.
                    if ev.key() == "Enter"
                        && let Some(name) = only_match()
                    {
                        phone.dial(name, true);
                    }
                }
            />
            <ul class="contact-list" role="list">
                <For each=move || shown.get() key=|name| name.clone() let:name>
                    <li>
                        <button
                            type="button"
                            class="contact"
                            data-testid="contact"
                            data-user=name.clone()
                            aria-label={
                                let name = name.clone();
                                move || fill(locale.t().call_name, &name)
                            }
                            disabled={
                                let name = name.clone();
                                // No server to ring through, or a call already in progress.
                                move || down.get() || !call.with(|c| c.can_dial(&name))
                            }
                            on:click={
                                let name = name.clone();
                                move |_| phone.dial(name.clone(), true)
                            }
                        >
                            <Avatar name=name.clone()/>
                            <span class="contact-name">{name.clone()}</span>
                            <span class="presence-dot" aria-hidden="true"></span>
                        </button>
                    </li>
                </For>
            </ul>
            {move || empty_text().map(|text| view! { <p class="muted empty">{text}</p> })}
        </aside>
    }
}
