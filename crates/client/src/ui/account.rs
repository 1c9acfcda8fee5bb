//! "Account", from the header: change the password, log out of every device, delete the account.

use leptos::prelude::*;
use protocol::{AccountError, AuthErrorCode, validate_password};

use crate::api::{self, ApiError};
use crate::i18n::Strings;
use crate::phone::Phone;
use crate::ui::{Locale, Session};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    ChangePassword,
    LogOutEverywhere,
    Delete,
}

/// What the panel says, kept as a kind so the words follow a language switch.
#[derive(Debug, Clone, PartialEq)]
enum Note {
    Changed,
    Account(AccountError),
    Refused(AuthErrorCode, Option<u64>),
    Network,
    Failed,
}

/// The signed-in user's name, as the button that opens the panel (no room in a phone's header
/// for one more button).
#[component]
pub fn AccountMenu(name: String) -> impl IntoView {
    let locale = Locale::use_context();
    let session = expect_context::<RwSignal<Session>>();
    let phone = expect_context::<Phone>();
    let open = RwSignal::new(false);
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let note = RwSignal::new(None::<Note>);
    let busy = RwSignal::new(false);

    let act = move |action: Action| {
        if busy.get_untracked() {
            return;
        }
        if action == Action::ChangePassword
            && let Err(error) = validate_password(&new.get_untracked())
        {
            note.set(Some(Note::Account(error)));
            return;
        }
        note.set(None);
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result = match action {
                Action::ChangePassword => {
                    api::change_password(&current.get_untracked(), &new.get_untracked()).await
                }
                Action::LogOutEverywhere => api::logout_all().await,
                Action::Delete => api::delete_account(&confirm.get_untracked()).await,
            };
            busy.set(false);
            match result {
                // This browser stays signed in; the server ended the other logins.
                Ok(()) if action == Action::ChangePassword => {
                    current.set(String::new());
                    new.set(String::new());
                    note.set(Some(Note::Changed));
                }
                Ok(()) | Err(ApiError::Unauthorized) => {
                    phone.stop_and_wait().await;
                    session.set(Session::SignedOut);
                }
                Err(ApiError::Refused {
                    code: Some(code),
                    retry_after_secs,
                    ..
                }) => note.set(Some(Note::Refused(code, retry_after_secs))),
                Err(ApiError::Network(_)) => note.set(Some(Note::Network)),
                Err(_) => note.set(Some(Note::Failed)),
            }
        });
    };

    let message = move || {
        let strings = locale.t();
        note.get().map(|note| {
            let done = note == Note::Changed;
            let text = match note {
                Note::Changed => strings.password_changed.to_owned(),
                Note::Account(error) => strings.account_error(&error).to_owned(),
                Note::Refused(code, retry) => strings.refusal(code, retry),
                Note::Network => strings.auth_network.to_owned(),
                Note::Failed => strings.auth_failed.to_owned(),
            };
            view! {
                <p
                    class=if done { "muted" } else { "form-error" }
                    role=if done { "status" } else { "alert" }
                    data-testid=if done { "account-done" } else { "account-error" }
                >
                    {text}
                </p>
            }
        })
    };
    let password_field = move |label: fn(&Strings) -> &'static str,
                               value: RwSignal<String>,
                               testid: &'static str,
                               autocomplete: &'static str| {
        view! {
            <label class="field">
                <span>{move || label(locale.t())}</span>
                <input
                    type="password"
                    data-testid=testid
                    autocomplete=autocomplete
                    required=true
                    bind:value=value
                />
            </label>
        }
    };
    // A form whose heading is also its button's label.
    let form = move |action: Action,
                     title: fn(&Strings) -> &'static str,
                     fields: AnyView,
                     button_class: &'static str,
                     testid: &'static str| {
        view! {
            <form
                novalidate=true
                on:submit=move |ev| {
                    ev.prevent_default();
                    act(action);
                }
            >
                <h2>{move || title(locale.t())}</h2>
                {fields}
                <button
                    type="submit"
                    class=button_class
                    data-testid=testid
                    disabled=move || busy.get()
                >
                    {move || title(locale.t())}
                </button>
            </form>
        }
    };

    view! {
        <button
            type="button"
            class="me"
            data-testid="account-open"
            title=move || locale.t().account
            aria-expanded=move || open.get().to_string()
            on:click=move |_| {
                open.update(|open| *open = !*open);
                note.set(None);
            }
        >
            <span class="visually-hidden">{move || locale.t().signed_in_as}</span>
            <span data-testid="me">{name}</span>
        </button>
        <Show when=move || open.get()>
            <section
                class="card account-panel"
                data-testid="account-panel"
                aria-busy=move || busy.get().to_string()
            >
                {form(
                    Action::ChangePassword,
                    |t| t.change_password,
                    view! {
                        {password_field(
                            |t| t.current_password,
                            current,
                            "account-current",
                            "current-password",
                        )}
                        {password_field(|t| t.new_password, new, "account-new", "new-password")}
                    }
                        .into_any(),
                    "btn primary",
                    "account-change-password",
                )}
                {message}
                <button
                    type="button"
                    class="btn secondary"
                    data-testid="account-logout-all"
                    disabled=move || busy.get()
                    on:click=move |_| act(Action::LogOutEverywhere)
                >
                    {move || locale.t().log_out_everywhere}
                </button>
                {form(
                    Action::Delete,
                    |t| t.delete_account,
                    view! {
                        <p class="muted">{move || locale.t().delete_warning}</p>
                        {password_field(
                            |t| t.password,
                            confirm,
                            "account-delete-password",
                            "current-password",
                        )}
                    }
                        .into_any(),
                    "btn danger",
                    "account-delete",
                )}
            </section>
        </Show>
    }
}
