//! The call quality indicator, its details panel, and the "poor connection" offer.
//!
//! Numbers are formatted with integer arithmetic only: float formatting would add several
//! kilobytes to the wasm bundle for a tenth of a percent.

use leptos::prelude::*;

use crate::i18n::fill;
use crate::quality::QualityReport;
use crate::ui::Locale;

/// What the panel shows for a figure that cannot be told (yet).
const UNKNOWN: &str = "—";

fn rounded(value: Option<f64>) -> Option<u64> {
    value
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v.round() as u64)
}

/// `"1234 kbit/s"`, `"80 ms"`: a whole number and its unit.
fn whole(value: Option<f64>, unit: &str) -> String {
    rounded(value).map_or_else(|| UNKNOWN.to_owned(), |n| format!("{n} {unit}"))
}

/// `"2.5 %"`: loss reads in tenths, where 0.4 % and 0 % are different calls.
fn percent(value: Option<f64>) -> String {
    rounded(value.map(|v| v * 10.0)).map_or_else(
        || UNKNOWN.to_owned(),
        |tenths| format!("{}.{} %", tenths / 10, tenths % 10),
    )
}

fn resolution(size: Option<(u32, u32)>) -> String {
    size.map_or_else(|| UNKNOWN.to_owned(), |(w, h)| format!("{w}×{h}"))
}

/// Three bars, lit by the stylesheet according to the button's `data-level`.
#[component]
fn SignalBars() -> impl IntoView {
    view! {
        <svg
            class="icon quality-bars"
            viewBox="0 0 24 24"
            width="20"
            height="20"
            fill="currentColor"
            aria-hidden="true"
            focusable="false"
        >
            <rect x="3" y="14" width="5" height="7" rx="1"></rect>
            <rect x="9.5" y="9" width="5" height="12" rx="1"></rect>
            <rect x="16" y="3" width="5" height="18" rx="1"></rect>
        </svg>
    }
}

/// A signal-bars button naming the call's quality; it opens a panel with the figures behind
/// it. Nothing is shown while `report` is `None`.
///
/// Place it in a positioned box (such as the call view's `.call-info`): the panel hangs below
/// that box, aligned to its right edge.
#[component]
pub fn QualityIndicator(#[prop(into)] report: Signal<Option<QualityReport>>) -> impl IntoView {
    let locale = Locale::use_context();
    let open = RwSignal::new(false);
    let level = Memo::new(move |_| report.with(|r| r.as_ref().map(|r| r.level)));
    let name = move || {
        let strings = locale.t();
        let level = level.get().unwrap_or_default();
        fill(strings.quality_name, strings.quality_level(level))
    };
    let figure = move |read: fn(&QualityReport) -> String| {
        move || report.with(|r| r.as_ref().map(read).unwrap_or_default())
    };
    let path = move || {
        let strings = locale.t();
        if report.with(|r| r.as_ref().is_some_and(|r| r.relayed)) {
            strings.quality_relayed
        } else {
            strings.quality_direct
        }
    };
    view! {
        <Show when=move || level.get().is_some()>
            <div
                class="quality"
                on:keydown=move |ev| {
                    if ev.key() == "Escape" {
                        open.set(false);
                    }
                }
            >
                <button
                    type="button"
                    class="quality-button"
                    data-testid="quality"
                    data-level=move || level.get().unwrap_or_default().tag()
                    aria-label=name
                    title=name
                    aria-expanded=move || open.get().to_string()
                    aria-controls="quality-details"
                    on:click=move |_| open.update(|open| *open = !*open)
                >
                    <SignalBars/>
                </button>
                <Show when=move || open.get()>
                    <div
                        id="quality-details"
                        class="quality-details"
                        role="region"
                        aria-label=move || locale.t().quality_details
                        data-testid="quality-details"
                    >
                        <dl>
                            <dt>{move || locale.t().quality_sending}</dt>
                            <dd data-metric="send">{figure(|r| whole(r.send_kbps, "kbit/s"))}</dd>
                            <dt>{move || locale.t().quality_receiving}</dt>
                            <dd data-metric="receive">
                                {figure(|r| whole(r.receive_kbps, "kbit/s"))}
                            </dd>
                            <dt>{move || locale.t().quality_round_trip}</dt>
                            <dd data-metric="rtt">{figure(|r| whole(r.rtt_ms, "ms"))}</dd>
                            <dt>{move || locale.t().quality_loss_in}</dt>
                            <dd data-metric="loss">{figure(|r| percent(r.receive_loss_pct))}</dd>
                            <dt>{move || locale.t().quality_loss_out}</dt>
                            <dd data-metric="send-loss">{figure(|r| percent(r.send_loss_pct))}</dd>
                            <dt>{move || locale.t().quality_jitter}</dt>
                            <dd data-metric="jitter">{figure(|r| whole(r.jitter_ms, "ms"))}</dd>
                            <dt>{move || locale.t().quality_resolution}</dt>
                            <dd data-metric="resolution">{figure(|r| resolution(r.resolution))}</dd>
                            <dt>{move || locale.t().quality_frame_rate}</dt>
                            <dd data-metric="fps">{figure(|r| whole(r.fps, "fps"))}</dd>
                            <dt>{move || locale.t().quality_path}</dt>
                            <dd data-metric="path">{path}</dd>
                        </dl>
                    </div>
                </Show>
            </div>
        </Show>
    }
}

/// Offers to turn the camera off after the call has been poor for a while
/// ([`Adaptation::poor_for_a_while`](crate::quality::Adaptation::poor_for_a_while)); shown
/// until the user answers either way.
#[component]
pub fn PoorConnectionBanner(#[prop(into)] on_camera_off: Callback<()>) -> impl IntoView {
    let locale = Locale::use_context();
    let answered = RwSignal::new(false);
    view! {
        <Show when=move || !answered.get()>
            <div class="poor-connection" role="status" data-testid="poor-connection">
                <p>{move || locale.t().poor_connection}</p>
                <div class="poor-connection-actions">
                    <button
                        type="button"
                        class="btn small primary"
                        data-testid="poor-connection-camera-off"
                        on:click=move |_| {
                            answered.set(true);
                            on_camera_off.run(());
                        }
                    >
                        {move || locale.t().camera_off}
                    </button>
                    <button
                        type="button"
                        class="btn small ghost"
                        data-testid="poor-connection-dismiss"
                        on:click=move |_| answered.set(true)
                    >
                        {move || locale.t().not_now}
                    </button>
                </div>
            </div>
        </Show>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_with_units() {
        assert_eq!(whole(Some(1234.4), "kbit/s"), "1234 kbit/s");
        assert_eq!(whole(Some(79.5), "ms"), "80 ms");
        assert_eq!(whole(None, "ms"), UNKNOWN);
        assert_eq!(whole(Some(f64::NAN), "ms"), UNKNOWN);
        assert_eq!(whole(Some(-1.0), "ms"), UNKNOWN);
    }

    #[test]
    fn percentages_in_tenths() {
        assert_eq!(percent(Some(0.0)), "0.0 %");
        assert_eq!(percent(Some(0.44)), "0.4 %");
        assert_eq!(percent(Some(12.96)), "13.0 %");
        assert_eq!(percent(Some(100.0)), "100.0 %");
        assert_eq!(percent(None), UNKNOWN);
    }

    #[test]
    fn resolutions() {
        assert_eq!(resolution(Some((1280, 720))), "1280×720");
        assert_eq!(resolution(None), UNKNOWN);
    }
}
