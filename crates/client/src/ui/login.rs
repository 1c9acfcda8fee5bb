use leptos::prelude::*;
use protocol::{AuthErrorCode, normalize_username, validate_password};

use crate::api::{self, ApiError};
use crate::phone::Phone;
use crate::ringer::request_notification_permission;
use crate::ui::{Locale, Session};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    LogIn,
    Register,
}

/// What went wrong, kept as a kind so the message follows a language switch.
#[derive(Debug, Clone, PartialEq)]
enum Problem {
    Account(protocol::AccountError),
    /// The server said no for a reason the interface can put in the user's language.
    Refused {
        code: AuthErrorCode,
        retry_after_secs: Option<u64>,
    },
    /// The server said no in words of its own (a code this build does not know).
    Server(String),
    Network,
    Unknown,
}

#[component]
pub fn LoginForm() -> impl IntoView {
    let locale = Locale::use_context();
    let session = expect_context::<RwSignal<Session>>();
    let phone = expect_context::<Phone>();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let problem = RwSignal::new(None::<Problem>);
    let busy = RwSignal::new(false);

    let submit = move |intent: Intent| {
        if busy.get_untracked() {
            return;
        }
        // The same rules as the server, checked here first so mistakes show at once. Logging in
        // only needs a name: the server has the last word on existing accounts.
        let checked = normalize_username(&username.get_untracked()).and_then(|name| {
            if intent == Intent::Register {
                validate_password(&password.get_untracked())?;
            }
            Ok(name)
        });
        let name = match checked {
            Ok(name) => name,
            Err(error) => {
                problem.set(Some(Problem::Account(error)));
                return;
            }
        };
        problem.set(None);
        busy.set(true);
        // Clicking is the gesture browsers want before they allow sound and notifications.
        phone.unlock_audio();
        request_notification_permission();
        leptos::task::spawn_local(async move {
            let secret = password.get_untracked();
            let result = match intent {
                Intent::LogIn => api::login(&name, &secret).await,
                Intent::Register => api::register(&name, &secret).await,
            };
            // The server's spelling of the name is the one others see.
            let result = match result {
                Ok(()) => api::me().await,
                Err(error) => Err(error),
            };
            busy.set(false);
            match result {
                Ok(me) => {
                    password.set(String::new());
                    session.set(Session::SignedIn(me));
                }
                Err(error) => problem.set(Some(match error {
                    ApiError::Refused {
                        code: Some(code),
                        retry_after_secs,
                        ..
                    } if code != AuthErrorCode::Unknown => Problem::Refused {
                        code,
                        retry_after_secs,
                    },
                    ApiError::Refused { message, .. } if !message.is_empty() => {
                        Problem::Server(message)
                    }
                    ApiError::Network(_) => Problem::Network,
                    _ => Problem::Unknown,
                })),
            }
        });
    };

    let message = move || {
        let strings = locale.t();
        problem.get().map(|problem| match problem {
            Problem::Account(error) => strings.account_error(&error).to_owned(),
            Problem::Refused {
                code,
                retry_after_secs,
            } => strings.refusal(code, retry_after_secs),
            Problem::Server(message) => message,
            Problem::Network => strings.auth_network.to_owned(),
            Problem::Unknown => strings.auth_failed.to_owned(),
        })
    };

    view! {
        <form
            class="card auth"
            novalidate=true
            aria-busy=move || busy.get().to_string()
            on:submit=move |ev| {
                ev.prevent_default();
                submit(Intent::LogIn);
            }
        >
            <div class="auth-head">
                <span class="brand-mark large" aria-hidden="true"></span>
                <h1>"Duet"</h1>
                <p class="muted">{move || locale.t().tagline}</p>
            </div>
            <label class="field">
                <span>{move || locale.t().username}</span>
                <input
                    type="text"
                    name="username"
                    data-testid="username"
                    autocomplete="username"
                    autocapitalize="none"
                    spellcheck="false"
                    maxlength="64"
                    required=true
                    bind:value=username
                />
            </label>
            <label class="field">
                <span>{move || locale.t().password}</span>
                <input
                    type="password"
                    name="password"
                    data-testid="password"
                    autocomplete="current-password"
                    required=true
                    bind:value=password
                />
            </label>
            {move || {
                message()
                    .map(|text| {
                        view! {
                            <p class="form-error" role="alert" data-testid="auth-error">
                                {text}
                            </p>
                        }
                    })
            }}
            <div class="auth-actions">
                <button
                    type="submit"
                    class="btn primary"
                    data-testid="login"
                    disabled=move || busy.get()
                >
                    {move || if busy.get() { locale.t().working } else { locale.t().log_in }}
                </button>
                <button
                    type="button"
                    class="btn secondary"
                    data-testid="register"
                    disabled=move || busy.get()
                    on:click=move |_| submit(Intent::Register)
                >
                    {move || locale.t().register}
                </button>
            </div>
        </form>
    }
}
