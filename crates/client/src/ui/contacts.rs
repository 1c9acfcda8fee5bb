use leptos::prelude::*;
use protocol::{AuthErrorCode, CallsFrom, ContactAction, ContactBook, ContactState};

use crate::api::{self, ApiError};
use crate::i18n::{Strings, fill};
use crate::phone::Phone;
use crate::ui::{Avatar, Locale};

/// The user's contacts: requests to answer, who is online (choosing one calls them), who is not,
/// a way to add someone by name, and the book's management.
#[component]
pub fn ContactList() -> impl IntoView {
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    let online = phone.online();
    let call = phone.call();
    let down = phone.server_down();
    let filter = RwSignal::new(String::new());
    let book = RwSignal::new(ContactBook::default());
    // What the last action said (a request sent, or why it was refused).
    let notice = RwSignal::new(None::<String>);

    // The book, fetched whenever the server says it changed; an older answer arriving after a
    // newer one is dropped.
    let changed = phone.contacts_changed();
    Effect::new(move |_| {
        let generation = changed.get();
        leptos::task::spawn_local(async move {
            if let Ok(fetched) = api::contacts().await
                && changed.get_untracked() == generation
            {
                book.set(fetched);
            }
        });
    });
    let act = move |action: ContactAction, name: String| {
        leptos::task::spawn_local(async move {
            let result = api::contact(action, &name).await;
            let strings = locale.t();
            notice.set(match result {
                Ok(()) if action == ContactAction::Request => {
                    Some(fill(strings.request_sent, &name))
                }
                Ok(()) => None,
                Err(error) => Some(describe(strings, error)),
            });
            phone.contacts_touched();
        });
    };

    let of_state = move |state: ContactState| {
        book.with(|book| {
            book.contacts
                .iter()
                .filter(|contact| contact.state == state)
                .map(|contact| contact.username.clone())
                .collect::<Vec<_>>()
        })
    };
    let requests = Memo::new(move |_| of_state(ContactState::Incoming));
    let offline = Memo::new(move |_| {
        let mutual = of_state(ContactState::Mutual);
        online.with(|online| {
            mutual
                .into_iter()
                .filter(|name| !online.contains(name))
                .collect::<Vec<_>>()
        })
    });
    // Everyone in the book but requests to answer: contacts and requests sent.
    let managed = Memo::new(move |_| {
        book.with(|book| {
            book.contacts
                .iter()
                .filter(|contact| contact.state != ContactState::Incoming)
                .map(|contact| (contact.username.clone(), contact.state))
                .collect::<Vec<_>>()
        })
    });
    let blocked = Memo::new(move |_| book.with(|book| book.blocked.clone()));

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
    let new_contact = RwSignal::new(String::new());

    view! {
        <aside class="contacts card" aria-labelledby="contacts-heading">
            <div class="contacts-head">
                <h2 id="contacts-heading">{move || locale.t().contacts_heading}</h2>
                <span class="count" aria-hidden="true">{move || online.with(Vec::len)}</span>
            </div>
            <form
                class="add-contact"
                on:submit=move |ev| {
                    ev.prevent_default();
                    let name = new_contact.get_untracked().trim().to_owned();
                    if !name.is_empty() {
                        new_contact.set(String::new());
                        act(ContactAction::Request, name);
                    }
                }
            >
                <input
                    type="text"
                    data-testid="add-contact-name"
                    aria-label=move || locale.t().username
                    placeholder=move || locale.t().username
                    autocomplete="off"
                    autocapitalize="none"
                    bind:value=new_contact
                />
                <button type="submit" data-testid="add-contact">
                    {move || locale.t().add_contact}
                </button>
            </form>
            <p class="muted notice" data-testid="contact-notice" role="status" aria-live="polite">
                {move || notice.get()}
            </p>
            <Show when=move || !requests.with(Vec::is_empty)>
                <h3 class="contacts-sub">{move || locale.t().requests_heading}</h3>
                <ul class="contact-list" role="list">
                    <For each=move || requests.get() key=|name| name.clone() let:name>
                        <li class="request" data-testid="contact-request" data-user=name.clone()>
                            <Avatar name=name.clone()/>
                            <span class="contact-name">{name.clone()}</span>
                            <ActionButton name=name.clone() action=ContactAction::Accept act=act/>
                            <ActionButton name=name.clone() action=ContactAction::Decline act=act/>
                        </li>
                    </For>
                </ul>
            </Show>
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
                <For each=move || offline.get() key=|name| name.clone() let:name>
                    <li class="contact offline" data-testid="offline-contact" data-user=name.clone()>
                        <Avatar name=name.clone()/>
                        <span class="contact-name">{name.clone()}</span>
                        <span class="muted">{move || locale.t().offline_contact}</span>
                    </li>
                </For>
            </ul>
            {move || empty_text().map(|text| view! { <p class="muted empty">{text}</p> })}
            <details class="manage" data-testid="manage-contacts">
                <summary>{move || locale.t().manage_contacts}</summary>
                <ul class="contact-list" role="list">
                    <For each=move || managed.get() key=|entry| entry.clone() let:entry>
                        <li data-testid="managed-contact" data-user=entry.0.clone()>
                            <span class="contact-name">{entry.0.clone()}</span>
                            {(entry.1 == ContactState::Outgoing)
                                .then(|| view! {
                                    <span class="muted">{move || locale.t().pending_contact}</span>
                                })}
                            <ActionButton name=entry.0.clone() action=ContactAction::Remove act=act/>
                            <ActionButton name=entry.0.clone() action=ContactAction::Block act=act/>
                        </li>
                    </For>
                    <For each=move || blocked.get() key=|name| name.clone() let:name>
                        <li data-testid="blocked-contact" data-user=name.clone()>
                            <span class="contact-name">{name.clone()}</span>
                            <ActionButton name=name.clone() action=ContactAction::Unblock act=act/>
                        </li>
                    </For>
                </ul>
                <label class="calls-from">
                    {move || locale.t().calls_from_label}
                    <select
                        data-testid="calls-from"
                        prop:value=move || book.with(|book| book.calls_from.as_str())
                        on:change=move |ev| {
                            let Some(calls_from) = CallsFrom::parse(&event_target_value(&ev))
                            else {
                                return;
                            };
                            leptos::task::spawn_local(async move {
                                if let Err(error) = api::set_calls_from(calls_from).await {
                                    notice.set(Some(describe(locale.t(), error)));
                                }
                                phone.contacts_touched();
                            });
                        }
                    >
                        <option value="anyone">{move || locale.t().calls_from_anyone}</option>
                        <option value="contacts">{move || locale.t().calls_from_contacts}</option>
                    </select>
                </label>
            </details>
        </aside>
    }
}

/// One button acting on one name (accept, decline, remove, block, unblock).
#[component]
fn ActionButton(
    name: String,
    action: ContactAction,
    act: impl Fn(ContactAction, String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let locale = Locale::use_context();
    let label = move || {
        let strings = locale.t();
        match action {
            ContactAction::Accept => strings.accept_contact,
            ContactAction::Decline => strings.decline_contact,
            ContactAction::Remove => strings.remove_contact,
            ContactAction::Block => strings.block_contact,
            ContactAction::Unblock => strings.unblock_contact,
            ContactAction::Request => strings.add_contact,
        }
    };
    view! {
        <button
            type="button"
            class="small"
            data-testid=format!("{}-contact", action.as_str())
            on:click=move |_| act(action, name.clone())
        >
            {label}
        </button>
    }
}

/// Why a contact action did not work, in the user's language.
fn describe(strings: &Strings, error: ApiError) -> String {
    match error {
        ApiError::Refused {
            code: Some(code),
            retry_after_secs,
            ..
        } if code != AuthErrorCode::Unknown => strings.refusal(code, retry_after_secs),
        ApiError::Refused { message, .. } if !message.is_empty() => message,
        ApiError::Network(_) => strings.auth_network.to_owned(),
        _ => strings.auth_failed.to_owned(),
    }
}
