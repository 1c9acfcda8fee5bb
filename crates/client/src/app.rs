use leptos::prelude::*;
use leptos_meta::*;

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let count = RwSignal::new(0);
    view! {
        <Stylesheet id="duet" href="/pkg/duet.css"/>
        <Title text="Duet"/>
        <main>
            <button data-testid="counter" on:click=move |_| count.update(|c| *c += 1)>
                {move || format!("clicked {}", count.get())}
            </button>
        </main>
    }
}
