use leptos::prelude::*;
use leptos_meta::HashedStylesheet;

use crate::api;
use crate::i18n::Lang;
use crate::phone::Phone;
use crate::ui::{Header, Home, Locale, LoginForm, OfflineBanner, Session};

/// Where the chosen language is remembered.
const LANG_KEY: &str = "duet.lang";

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                // Written here rather than with leptos_meta's `<Title>`: the title never changes
                // but while a call rings (`crate::ringer`), and leptos_meta's context in the
                // browser cost 2 kB of the bundle.
                <title>Duet</title>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HashedStylesheet options=options.clone() id="duet"/>
                // Only under `cargo leptos watch` (LEPTOS_WATCH): reloads the page after a rebuild.
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The whole app: one page whose view follows the session and the call.
///
/// The server renders the neutral "loading" state (it knows neither the user nor the browser's
/// language); effects — which only run in the browser — then ask who is signed in and pick the
/// language, so the hydrated page starts out identical to the server's.
#[component]
pub fn App() -> impl IntoView {
    let lang = RwSignal::new(Lang::En);
    let session = RwSignal::new(Session::Checking);
    let phone = Phone::new();
    provide_context(Locale::new(lang));
    provide_context(session);
    provide_context(phone);

    Effect::new(move |_| {
        // Tests wait for this before they interact.
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("data-hydrated", "");
        }
        lang.set(initial_lang());
        leptos::task::spawn_local(async move {
            session.set(match api::me().await {
                Ok(username) => Session::SignedIn(username),
                Err(_) => Session::SignedOut,
            });
        });
        // Audio may only start after a gesture; any click unlocks the ring tone for later.
        let unlock = window_event_listener(leptos::ev::pointerdown, move |_| phone.unlock_audio());
        let unlock_keys = window_event_listener(leptos::ev::keydown, move |event| {
            phone.unlock_audio();
            if event.default_prevented() || crate::shortcuts::typing(&event) {
                return;
            }
            let action = phone
                .call()
                .with_untracked(|state| crate::shortcuts::action(&event.key(), state));
            if let Some(action) = action {
                event.prevent_default();
                phone.act(action);
            }
        });
        // Closing the tab says goodbye, so the peer sees "hung up" at once instead of waiting
        // for the media path to time out.
        let leave = window_event_listener(leptos::ev::pagehide, move |_| phone.stop());
        // A page restored from the back-forward cache has no phone any more: start afresh.
        let restore = window_event_listener(leptos::ev::pageshow, move |event| {
            if event.persisted() {
                let _ = window().location().reload();
            }
        });
        on_cleanup(move || {
            unlock.remove();
            unlock_keys.remove();
            leave.remove();
            restore.remove();
        });
    });

    Effect::new(move |_| {
        let lang = lang.get();
        if let Some(root) = document().document_element() {
            let _ = root.set_attribute("lang", lang.tag());
        }
    });

    let user = Memo::new(move |_| session.with(|s| s.username().map(str::to_owned)));
    Effect::new(move |_| match user.get() {
        Some(_) => phone.start(lang.into(), move || session.set(Session::SignedOut)),
        None => phone.stop(),
    });

    let view_of_session = move || match session.get() {
        Session::Checking => view! {
            <p class="loading" role="status">{move || Locale::use_context().t().loading}</p>
        }
        .into_any(),
        Session::SignedOut => view! { <LoginForm/> }.into_any(),
        Session::SignedIn(_) => view! { <Home/> }.into_any(),
    };

    view! {
        <div class="app">
            <Header/>
            <OfflineBanner/>
            <main class="main">{view_of_session}</main>
        </div>
    }
}

/// The stored choice, else the browser's language.
fn initial_lang() -> Lang {
    let stored = window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|storage| storage.get_item(LANG_KEY).ok().flatten());
    match stored {
        Some(tag) => Lang::from_tag(&tag),
        None => Lang::from_tag(&window().navigator().language().unwrap_or_default()),
    }
}

/// Remembers the language the user picked.
pub fn store_lang(lang: Lang) {
    if let Ok(Some(storage)) = window().local_storage() {
        let _ = storage.set_item(LANG_KEY, lang.tag());
    }
}
