use leptos::prelude::*;
use protocol::{AuthErrorCode, CallsFrom, ContactAction, ContactBook, ContactState};

use crate::api::{self, ApiError};
use crate::i18n::{Strings, fill};
use crate::phone::Phone;
use crate::ui::icons::{CameraIcon, PhoneIcon};
use crate::ui::recent::RecentCalls;
use crate::ui::{Avatar, Locale};

/// The user's contacts: requests to answer, who is online (choosing one calls them), who is not,
/// a way to add someone by name, and the book's management.
#[component]
pub fn ContactList() -> impl IntoView {
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    let online = phone.online();
    let in_call = phone.in_call();
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
    // Every change to the book goes through here: an action on a name (`Some`), or who may call
    // me (`None`, with the setting).
    let act = move |action: Option<ContactAction>, name: String, calls_from: CallsFrom| {
        leptos::task::spawn_local(async move {
            let result = api::contact(action, &name, calls_from).await;
            let strings = locale.t();
            notice.set(match result {
                Ok(()) if action == Some(ContactAction::Request) => {
                    Some(fill(strings.request_sent, &name))
                }
                Ok(()) => None,
                Err(error) => Some(describe(strings, error)),
            });
            phone.contacts_touched();
        });
    };

    // Everyone in the book but the online contacts (listed as buttons that call): requests to
    // answer first, then contacts offline, then the book's management rows. One list, rebuilt
    // whole when it changes: it is short, and one list costs the bundle less than five.
    let rows = move || {
        book.with(|book| {
            online.with(|online| {
                // Requests first, then contacts who are offline (the book is sorted by name).
                [ContactState::Incoming, ContactState::Mutual]
                    .into_iter()
                    .flat_map(|state| {
                        book.contacts
                            .iter()
                            .filter(move |c| c.state == state && !online.contains(&c.username))
                    })
                    .map(|c| {
                        let row = match c.state {
                            ContactState::Incoming => Row::Request,
                            _ => Row::Offline,
                        };
                        (c.username.clone(), row)
                    })
                    .collect::<Vec<_>>()
            })
        })
    };
    let managed = move || {
        book.with(|book| {
            book.contacts
                .iter()
                .filter(|c| c.state != ContactState::Incoming)
                .map(|c| {
                    (
                        c.username.clone(),
                        Row::Managed(c.state == ContactState::Outgoing),
                    )
                })
                .chain(book.blocked.iter().map(|name| (name.clone(), Row::Blocked)))
                .collect::<Vec<_>>()
        })
    };
    let render = move |rows: Vec<(String, Row)>| {
        rows.into_iter()
            .map(|(name, row)| row_view(locale, name, row, act))
            .collect_view()
    };

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
    // No server to ring through, or a call already in progress.
    let cannot_dial = move |name: String| move || down.get() || !call.with(|c| c.can_dial(&name));
    // A dial button's accessible name says whether the contact is in a call, as the row shows.
    let dial_label = move |template: fn(&Strings) -> &'static str, name: String| {
        move || {
            let strings = locale.t();
            let label = fill(template(strings), &name);
            if in_call.with(|busy| busy.contains(&name)) {
                format!("{label} ({})", strings.in_a_call)
            } else {
                label
            }
        }
    };

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
                        act(Some(ContactAction::Request), name, CallsFrom::Anyone);
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
                <button type="submit" class="btn secondary" data-testid="add-contact">
                    {move || locale.t().add_contact}
                </button>
            </form>
            <p class="muted notice" data-testid="contact-notice" role="status" aria-live="polite">
                {move || notice.get()}
            </p>
            <ul class="contact-list" role="list">{move || render(rows())}</ul>
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
                    <li class="contact-row">
                        <button
                            type="button"
                            class="contact"
                            data-testid="contact"
                            data-user=name.clone()
                            aria-label=dial_label(|t| t.call_name, name.clone())
                            title=move || locale.t().video_call
                            disabled=cannot_dial(name.clone())
                            on:click={
                                let name = name.clone();
                                move |_| phone.dial(name.clone(), true)
                            }
                        >
                            <Avatar name=name.clone()/>
                            <span class="contact-name">{name.clone()}</span>
                            {
                                let name = name.clone();
                                move || {
                                    in_call
                                        .with(|busy| busy.contains(&name))
                                        .then(|| {
                                            view! {
                                                <span class="muted" data-testid="in-a-call">
                                                    {locale.t().in_a_call}
                                                </span>
                                            }
                                        })
                                }
                            }
                            <span class="presence-dot" aria-hidden="true"></span>
                            <CameraIcon off=false/>
                        </button>
                        <button
                            type="button"
                            class="btn ghost voice-call"
                            data-testid="voice-call"
                            data-user=name.clone()
                            title=move || locale.t().voice_call
                            aria-label=dial_label(|t| t.voice_call_name, name.clone())
                            disabled=cannot_dial(name.clone())
                            on:click={
                                let name = name.clone();
                                move |_| phone.dial(name.clone(), false)
                            }
                        >
                            <PhoneIcon/>
                        </button>
                    </li>
                </For>
            </ul>
            {move || empty_text().map(|text| view! { <p class="muted empty">{text}</p> })}
            <details class="manage" data-testid="manage-contacts">
                <summary>{move || locale.t().manage_contacts}</summary>
                <ul class="contact-list" role="list">{move || render(managed())}</ul>
                <label class="calls-from">
                    {move || locale.t().calls_from_label}
                    <select
                        data-testid="calls-from"
                        prop:value=move || book.with(|book| book.calls_from.as_str())
                        on:change=move |ev| {
                            if let Some(calls_from) = CallsFrom::parse(&event_target_value(&ev)) {
                                act(None, String::new(), calls_from);
                            }
                        }
                    >
                        <option value="anyone">{move || locale.t().calls_from_anyone}</option>
                        <option value="contacts">{move || locale.t().calls_from_contacts}</option>
                    </select>
                </label>
            </details>
            <RecentCalls/>
        </aside>
    }
}

/// What a row outside the online list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    /// They asked to be a contact: accept or decline.
    Request,
    /// A contact who is not online.
    Offline,
    /// In the management list: a contact, or (`true`) a request of mine still waiting.
    Managed(bool),
    Blocked,
}

fn row_view(
    locale: Locale,
    name: String,
    row: Row,
    act: impl Fn(Option<ContactAction>, String, CallsFrom) + Copy + Send + Sync + 'static,
) -> AnyView {
    let (testid, actions): (&str, &[ContactAction]) = match row {
        Row::Request => (
            "contact-request",
            &[ContactAction::Accept, ContactAction::Decline],
        ),
        Row::Offline => ("offline-contact", &[]),
        Row::Managed(_) => (
            "managed-contact",
            &[ContactAction::Remove, ContactAction::Block],
        ),
        Row::Blocked => ("blocked-contact", &[ContactAction::Unblock]),
    };
    let note = move || {
        let strings = locale.t();
        match row {
            Row::Offline => strings.offline_contact,
            Row::Managed(true) => strings.pending_contact,
            _ => "",
        }
    };
    let buttons = actions
        .iter()
        .map(|&action| {
            let name = name.clone();
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
                    class="btn secondary small"
                    data-testid=format!("{}-contact", action.as_str())
                    on:click=move |_| act(Some(action), name.clone(), CallsFrom::Anyone)
                >
                    {label}
                </button>
            }
        })
        .collect_view();
    let user = name.clone();
    view! {
        <li class="row" class:offline=row == Row::Offline data-testid=testid data-user=user>
            <Avatar name=name.clone()/>
            <span class="contact-name">{name}</span>
            <span class="muted">{note}</span>
            {buttons}
        </li>
    }
    .into_any()
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
