//! Call quality: what one `getStats()` reading says ([`StatsSample`]), what two readings a
//! second apart mean for the people on the call ([`QualityReport`], [`Level`]), and how hard our
//! camera should push ([`Adaptation`]).
//!
//! Everything here is plain arithmetic so that it is tested natively; [`browser`] reads the
//! samples from and applies the profiles to a live `RTCPeerConnection`.
//!
//! # Levels
//!
//! A call is rated by its worst symptom:
//!
//! | symptom                         | Fair from | Poor from |
//! |---------------------------------|-----------|-----------|
//! | packet loss (either direction)  | 2 %       | 8 %       |
//! | round-trip time                 | 300 ms    | 500 ms    |
//! | jitter (incoming audio)         | 30 ms     | 100 ms    |
//! | incoming video, peer camera on  | —         | < 150 kbit/s or < 5 fps |
//!
//! Why these numbers:
//! - **Loss.** Opus (with in-band FEC, Chrome's default) and video NACK/FEC hide a percent or two
//!   completely; from a few percent video starts to smear and freeze and audio to warble, and
//!   at 8–10 % both are plainly broken. Jitsi and most VoIP monitors draw similar lines.
//! - **Round-trip time.** ITU-T G.114 puts the comfortable limit for conversation at 150 ms
//!   one way (300 ms round trip); past about 250 ms one way (500 ms round trip) people talk
//!   over each other. Relayed calls across a continent stay below 300 ms, so a TURN path alone
//!   does not make a call look worse.
//! - **Jitter.** Receivers' jitter buffers absorb some tens of milliseconds at the cost of
//!   delay; 30 ms is the usual VoIP planning figure, and at 100 ms the buffer either adds a
//!   tenth of a second of delay or drops audio. Audio's jitter is used because video packets of
//!   one frame share a timestamp and leave in bursts, which reads as jitter that is not there.
//! - **Starved video.** Below about 150 kbit/s even a 320×240 VP8 picture is blocky, and below
//!   5 fps motion turns into a slide show. Only counted while the peer says their camera is on
//!   (a disabled track still sends black frames at a trickle), see
//!   [`QualityReport::with_peer_camera`].
//!
//! # Adapting what we send
//!
//! [`Adaptation`] steps our video down a [`LADDER`] of send profiles after 3 s of Poor *sending*
//! ([`QualityReport::send_level`]: loss the peer reports and round-trip time, not what the peer
//! sends us) and back up one step after 10 s of Good, the wait doubling (up to 80 s) when a step
//! up is followed by trouble within 30 s, so a link that cannot carry the next step is not
//! probed every ten seconds. Audio is never limited: it is what keeps a bad call usable.

pub mod browser;

/// One `getStats()` reading, reduced to what quality needs. Fields are `None` when the
/// browser has no such entry (yet).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSample {
    /// The report's `timestamp` (ms since the epoch, fractional).
    pub timestamp_ms: f64,
    /// `outbound-rtp` `bytesSent` for our video (summed over encodings).
    pub video_bytes_sent: Option<u64>,
    /// `outbound-rtp` `bytesSent` for our audio.
    pub audio_bytes_sent: Option<u64>,
    /// `inbound-rtp` for the peer's video.
    pub video_in: Option<Inbound>,
    /// `inbound-rtp` for the peer's audio.
    pub audio_in: Option<Inbound>,
    /// `remote-inbound-rtp` for our video: how the peer receives it.
    pub video_remote_in: Option<RemoteInbound>,
    /// `remote-inbound-rtp` for our audio.
    pub audio_remote_in: Option<RemoteInbound>,
    /// The selected (nominated, succeeded) candidate pair.
    pub pair: Option<CandidatePair>,
}

/// An `inbound-rtp` entry: what arrives from the peer for one kind of media.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Inbound {
    pub bytes_received: u64,
    pub packets_received: u64,
    /// Cumulative and signed: duplicates can make it go down.
    pub packets_lost: i64,
    /// RFC 3550 interarrival jitter, in seconds.
    pub jitter_s: Option<f64>,
    pub frame_width: Option<u32>,
    pub frame_height: Option<u32>,
    /// Chrome reports it; Firefox does not, then it is derived from `frames_decoded`.
    pub frames_per_second: Option<f64>,
    pub frames_decoded: Option<u64>,
    /// The frames are a screen capture (Chromium's `contentType: "screenshare"`).
    pub screen_share: bool,
}

/// A `remote-inbound-rtp` entry: the peer's RTCP receiver report on what we send.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RemoteInbound {
    /// Fraction (0–1) of our packets lost since the peer's previous report.
    pub fraction_lost: Option<f64>,
    pub round_trip_time_s: Option<f64>,
}

/// The candidate pair the media flows over.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CandidatePair {
    pub current_round_trip_time_s: Option<f64>,
    /// The browser's bandwidth estimate for sending, in bit/s.
    pub available_outgoing_bitrate_bps: Option<f64>,
    pub local_type: CandidateType,
    pub remote_type: CandidateType,
}

/// An ICE candidate's `candidateType`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CandidateType {
    Host,
    Srflx,
    Prflx,
    Relay,
    #[default]
    Unknown,
}

impl CandidateType {
    pub fn parse(text: &str) -> Self {
        match text {
            "host" => Self::Host,
            "srflx" => Self::Srflx,
            "prflx" => Self::Prflx,
            "relay" => Self::Relay,
            _ => Self::Unknown,
        }
    }
}

/// How a call is going, worst last (so `max` picks the worse).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    #[default]
    Good,
    Fair,
    Poor,
}

impl Level {
    /// For `data-level` and styles.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Fair => "fair",
            Self::Poor => "poor",
        }
    }

    /// `fair_from` and `poor_from` are the first bad values of a metric that is worse when higher.
    fn of(value: Option<f64>, fair_from: f64, poor_from: f64) -> Self {
        match value {
            Some(v) if v >= poor_from => Self::Poor,
            Some(v) if v >= fair_from => Self::Fair,
            _ => Self::Good,
        }
    }
}

pub const LOSS_FAIR_PCT: f64 = 2.0;
pub const LOSS_POOR_PCT: f64 = 8.0;
pub const RTT_FAIR_MS: f64 = 300.0;
pub const RTT_POOR_MS: f64 = 500.0;
pub const JITTER_FAIR_MS: f64 = 30.0;
pub const JITTER_POOR_MS: f64 = 100.0;
pub const VIDEO_STARVED_KBPS: f64 = 150.0;
pub const VIDEO_STARVED_FPS: f64 = 5.0;

/// What happened between two samples. Rates are `None` when they cannot be told: the first
/// sample of a stream, a counter that went backwards (a new peer connection or stream), or no
/// time between the samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityReport {
    /// Length of the interval, `None` when the samples are not in time order.
    pub interval_ms: Option<f64>,
    /// Audio and video we sent, kbit/s.
    pub send_kbps: Option<f64>,
    /// Audio and video we received, kbit/s.
    pub receive_kbps: Option<f64>,
    pub receive_video_kbps: Option<f64>,
    pub rtt_ms: Option<f64>,
    /// Share of the peer's packets that did not reach us in the interval.
    pub receive_loss_pct: Option<f64>,
    /// Share of our packets the peer last reported lost (the worse of audio and video).
    pub send_loss_pct: Option<f64>,
    pub jitter_ms: Option<f64>,
    /// Width and height of the peer's video as decoded here.
    pub resolution: Option<(u32, u32)>,
    pub fps: Option<f64>,
    /// The browser's estimate of what we could send, kbit/s. Shown, not rated: while our
    /// profile caps the video the estimate stops growing, which would keep us capped for good.
    pub available_send_kbps: Option<f64>,
    /// The media goes through a TURN relay.
    pub relayed: bool,
    /// The call as a whole, for the indicator.
    pub level: Level,
    /// How well what *we* send arrives, for [`Adaptation`]: the peer's trouble sending to us
    /// is not ours to fix.
    pub send_level: Level,
}

/// Bytes over an interval as kbit/s; `None` when the counter is missing or went backwards.
fn kbps(prev: Option<u64>, cur: Option<u64>, interval_ms: Option<f64>) -> Option<f64> {
    let delta = cur?.checked_sub(prev?)?;
    Some(delta as f64 * 8.0 / interval_ms?)
}

/// The sum of the rates that are known; `None` when none is.
fn sum(rates: [Option<f64>; 2]) -> Option<f64> {
    rates.into_iter().flatten().reduce(|a, b| a + b)
}

/// The larger of the values that are known.
fn worst(values: [Option<f64>; 2]) -> Option<f64> {
    values.into_iter().flatten().reduce(f64::max)
}

/// Counter deltas of one inbound stream; `None` after a reset.
fn inbound_delta(prev: Option<&Inbound>, cur: Option<&Inbound>) -> Option<(u64, u64)> {
    let (prev, cur) = (prev?, cur?);
    let received = cur.packets_received.checked_sub(prev.packets_received)?;
    // Duplicates lower the cumulative loss; a negative delta is "no loss", not a reset.
    let lost = cur.packets_lost.saturating_sub(prev.packets_lost).max(0) as u64;
    Some((received, lost))
}

fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite() && *v >= 0.0)
}

impl QualityReport {
    /// Compares two samples of the same call, `prev` taken before `cur`. The level does not yet
    /// account for starved video; see [`with_peer_camera`](Self::with_peer_camera).
    pub fn between(prev: &StatsSample, cur: &StatsSample) -> Self {
        let interval_ms =
            Some(cur.timestamp_ms - prev.timestamp_ms).filter(|ms| ms.is_finite() && *ms > 0.0);
        let video_in = cur.video_in.as_ref();
        let audio_in = cur.audio_in.as_ref();
        let bytes_in = |s: Option<&Inbound>| s.map(|s| s.bytes_received);

        let receive_video_kbps = kbps(
            bytes_in(prev.video_in.as_ref()),
            bytes_in(video_in),
            interval_ms,
        );
        let receive_audio_kbps = kbps(
            bytes_in(prev.audio_in.as_ref()),
            bytes_in(audio_in),
            interval_ms,
        );
        let send_kbps = sum([
            kbps(prev.video_bytes_sent, cur.video_bytes_sent, interval_ms),
            kbps(prev.audio_bytes_sent, cur.audio_bytes_sent, interval_ms),
        ]);

        let deltas = [
            inbound_delta(prev.video_in.as_ref(), video_in),
            inbound_delta(prev.audio_in.as_ref(), audio_in),
        ];
        let (received, lost) = deltas
            .into_iter()
            .flatten()
            .fold((0, 0), |(r, l), (dr, dl)| (r + dr, l + dl));
        let receive_loss_pct = deltas
            .iter()
            .any(Option::is_some)
            .then_some(received + lost)
            .filter(|expected| *expected > 0)
            .map(|expected| lost as f64 * 100.0 / expected as f64);

        let remote_in = [cur.video_remote_in, cur.audio_remote_in];
        let send_loss_pct =
            finite(worst(remote_in.map(|r| {
                r.and_then(|r| r.fraction_lost).map(|f| f.min(1.0) * 100.0)
            })));
        let pair = cur.pair.unwrap_or_default();
        let rtt_s = finite(pair.current_round_trip_time_s).or_else(|| {
            finite(worst(
                remote_in.map(|r| r.and_then(|r| r.round_trip_time_s)),
            ))
        });
        let rtt_ms = rtt_s.map(|s| s * 1000.0);
        let jitter_ms = finite(
            audio_in
                .and_then(|s| s.jitter_s)
                .or_else(|| video_in.and_then(|s| s.jitter_s)),
        )
        .map(|s| s * 1000.0);

        let resolution = video_in.and_then(|s| match (s.frame_width?, s.frame_height?) {
            (0, _) | (_, 0) => None,
            size => Some(size),
        });
        let fps = finite(video_in.and_then(|s| s.frames_per_second)).or_else(|| {
            let decoded = video_in?
                .frames_decoded?
                .checked_sub(prev.video_in.as_ref()?.frames_decoded?)?;
            Some(decoded as f64 * 1000.0 / interval_ms?)
        });

        let send_level = Level::of(send_loss_pct, LOSS_FAIR_PCT, LOSS_POOR_PCT).max(Level::of(
            rtt_ms,
            RTT_FAIR_MS,
            RTT_POOR_MS,
        ));
        let level = send_level
            .max(Level::of(receive_loss_pct, LOSS_FAIR_PCT, LOSS_POOR_PCT))
            .max(Level::of(jitter_ms, JITTER_FAIR_MS, JITTER_POOR_MS));

        Self {
            interval_ms,
            send_kbps,
            receive_kbps: sum([receive_video_kbps, receive_audio_kbps]),
            receive_video_kbps,
            rtt_ms,
            receive_loss_pct,
            send_loss_pct,
            jitter_ms,
            resolution,
            fps,
            available_send_kbps: finite(pair.available_outgoing_bitrate_bps).map(|b| b / 1000.0),
            relayed: pair.local_type == CandidateType::Relay
                || pair.remote_type == CandidateType::Relay,
            level,
            send_level,
        }
    }

    /// Rates starved incoming video as Poor when the peer's camera is on. Only the call knows
    /// that (from the peer's media message): with the camera off the stats look the same.
    pub fn with_peer_camera(mut self, camera_on: bool) -> Self {
        let starved = |value: Option<f64>, below: f64| value.is_some_and(|v| v < below);
        // Rates that cannot be told (a reset) are no evidence of starvation.
        if camera_on
            && (starved(self.receive_video_kbps, VIDEO_STARVED_KBPS)
                || starved(self.fps, VIDEO_STARVED_FPS))
        {
            self.level = Level::Poor;
        }
        self
    }

    /// The worse of the two loss figures, for a one-number summary.
    pub fn loss_pct(&self) -> Option<f64> {
        worst([self.receive_loss_pct, self.send_loss_pct])
    }
}

/// How the video sender is limited: `maxBitrate` and `scaleResolutionDownBy` of its encoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendProfile {
    /// `None`: no cap, the browser's own congestion control decides.
    pub max_bitrate_bps: Option<u32>,
    pub scale_resolution_down_by: f64,
}

/// The steps, best first. A smaller picture at a low bitrate looks better than a large one
/// smeared by the encoder, so the resolution drops with the cap.
pub const LADDER: [SendProfile; 4] = [
    SendProfile {
        max_bitrate_bps: None,
        scale_resolution_down_by: 1.0,
    },
    SendProfile {
        max_bitrate_bps: Some(500_000),
        scale_resolution_down_by: 1.0,
    },
    SendProfile {
        max_bitrate_bps: Some(250_000),
        scale_resolution_down_by: 2.0,
    },
    SendProfile {
        max_bitrate_bps: Some(120_000),
        scale_resolution_down_by: 4.0,
    },
];

/// Consecutive Poor reports before a step down.
pub const POOR_REPORTS_TO_STEP_DOWN: u32 = 3;
/// Consecutive Good reports before a step up, at first.
pub const GOOD_REPORTS_TO_STEP_UP: u32 = 10;
/// The longest wait for a step up after repeated failed ones.
pub const MAX_GOOD_REPORTS_TO_STEP_UP: u32 = 80;
/// Trouble this soon after a step up means the step was too much.
pub const STEP_UP_PROBATION_REPORTS: u32 = 30;
/// Poor reports (Fair ones in between do not break the run) before offering to turn the
/// camera off.
pub const POOR_REPORTS_FOR_A_WHILE: u32 = 10;

/// Counts how long a call has been Poor. Fair reports in between neither count nor break the
/// run, so a link hovering at the edge is still noticed; a Good report ends it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoorStreak {
    poor_reports: u32,
}

impl PoorStreak {
    /// Takes one report's level; returns whether the call has now been poor for a while.
    pub fn observe(&mut self, level: Level) -> bool {
        match level {
            Level::Poor => self.poor_reports = self.poor_reports.saturating_add(1),
            Level::Fair => {}
            Level::Good => self.poor_reports = 0,
        }
        self.poor_for_a_while()
    }

    pub fn poor_for_a_while(&self) -> bool {
        self.poor_reports >= POOR_REPORTS_FOR_A_WHILE
    }
}

/// Chooses the video send profile, one [`QualityReport`] a second, from its
/// [`send_level`](QualityReport::send_level): down a step after 3 Poor reports (Fair ones in
/// between neither count nor break the run), up a step after 10 Good ones in a row (any other
/// report restarts the count), the wait for a step up doubling, up to 80, each time the previous
/// step up failed within 30 reports. After a new peer connection, apply
/// [`current`](Self::current) to its sender (or start a new `Adaptation`): parameters live on
/// the sender.
#[derive(Debug, Clone, PartialEq)]
pub struct Adaptation {
    step: usize,
    poor_reports: u32,
    good_reports: u32,
    good_needed: u32,
    /// Reports since the last step up, while it is on probation.
    since_step_up: Option<u32>,
    call: PoorStreak,
}

impl Default for Adaptation {
    fn default() -> Self {
        Self::new()
    }
}

impl Adaptation {
    pub fn new() -> Self {
        Self {
            step: 0,
            poor_reports: 0,
            good_reports: 0,
            good_needed: GOOD_REPORTS_TO_STEP_UP,
            since_step_up: None,
            call: PoorStreak::default(),
        }
    }

    pub fn current(&self) -> SendProfile {
        LADDER[self.step]
    }

    /// Whether the call has been Poor for a while (offer to turn the camera off).
    pub fn poor_for_a_while(&self) -> bool {
        self.call.poor_for_a_while()
    }

    /// Takes the last second's report; returns the new profile when it should change.
    pub fn observe(&mut self, report: &QualityReport) -> Option<SendProfile> {
        self.call.observe(report.level);
        self.since_step_up = self
            .since_step_up
            .map(|n| n + 1)
            .filter(|n| *n <= STEP_UP_PROBATION_REPORTS);
        match report.send_level {
            Level::Poor => {
                self.good_reports = 0;
                self.poor_reports = self.poor_reports.saturating_add(1);
                if self.poor_reports < POOR_REPORTS_TO_STEP_DOWN || self.step + 1 == LADDER.len() {
                    return None;
                }
                self.poor_reports = 0;
                self.step += 1;
                self.good_needed = if self.since_step_up.take().is_some() {
                    (self.good_needed * 2).min(MAX_GOOD_REPORTS_TO_STEP_UP)
                } else {
                    GOOD_REPORTS_TO_STEP_UP
                };
                Some(self.current())
            }
            Level::Fair => {
                // Not bad enough to step down, not good enough to risk more.
                self.good_reports = 0;
                None
            }
            Level::Good => {
                self.poor_reports = 0;
                self.good_reports = self.good_reports.saturating_add(1);
                if self.good_reports < self.good_needed || self.step == 0 {
                    return None;
                }
                self.good_reports = 0;
                self.step -= 1;
                self.since_step_up = Some(0);
                Some(self.current())
            }
        }
    }
}

#[cfg(test)]
mod tests;
