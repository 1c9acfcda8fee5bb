use leptos::prelude::*;

use crate::api;
use crate::app::store_lang;
use crate::phone::Phone;
use crate::ui::{AccountMenu, Locale, Session};

#[component]
pub fn Header() -> impl IntoView {
    let locale = Locale::use_context();
    let session = expect_context::<RwSignal<Session>>();
    let phone = expect_context::<Phone>();
    let username = move || session.with(|s| s.username().map(str::to_owned));

    let switch_language = move |_| {
        let next = locale.lang().get_untracked().other();
        locale.lang().set(next);
        store_lang(next);
    };
    let log_out = move |_| {
        leptos::task::spawn_local(async move {
            // Hang up first: the logout closes this session's sockets on the server at once.
            phone.stop_and_wait().await;
            if let Err(error) = api::logout().await {
                leptos::logging::warn!("log out: {error}");
            }
            session.set(Session::SignedOut);
        });
    };

    view! {
        <header class="topbar">
            <span class="brand">
                <span class="brand-mark" aria-hidden="true"></span>
                "Duet"
            </span>
            <div class="topbar-actions">
                <button
                    type="button"
                    class="btn ghost small"
                    data-testid="lang-switch"
                    aria-label=move || locale.t().switch_language
                    title=move || locale.t().switch_language
                    lang=move || locale.lang().get().other().tag()
                    on:click=switch_language
                >
                    {move || locale.lang().get().other().strings().language_name}
                </button>
                {move || {
                    username()
                        .map(|name| {
                            view! {
                                // The signed-in name, which opens "Account".
                                <AccountMenu name/>
                                <button
                                    type="button"
                                    class="btn ghost small"
                                    data-testid="logout"
                                    on:click=log_out
                                >
                                    {move || locale.t().log_out}
                                </button>
                            }
                        })
                }}
            </div>
        </header>
    }
}

/// Shown only while the signaling socket is down; calls in progress carry on regardless.
#[component]
pub fn OfflineBanner() -> impl IntoView {
    let locale = Locale::use_context();
    let phone = expect_context::<Phone>();
    let down = phone.server_down();
    view! {
        <Show when=move || down.get()>
            <div class="banner" role="status" data-testid="offline-banner">
                <span class="spinner" aria-hidden="true"></span>
                {move || locale.t().offline_banner}
            </div>
        </Show>
    }
}
