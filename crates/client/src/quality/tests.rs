use super::*;

/// A healthy one-second step: 1 Mbit/s of video and 40 kbit/s of audio each way, no loss.
fn sample(seconds: u64) -> StatsSample {
    let video_bytes = seconds * 125_000;
    let audio_bytes = seconds * 5_000;
    StatsSample {
        timestamp_ms: 1_700_000_000_000.0 + seconds as f64 * 1000.0,
        video_bytes_sent: Some(video_bytes),
        audio_bytes_sent: Some(audio_bytes),
        video_in: Some(Inbound {
            bytes_received: video_bytes,
            packets_received: seconds * 100,
            packets_lost: 0,
            jitter_s: Some(0.040),
            frame_width: Some(1280),
            frame_height: Some(720),
            frames_per_second: Some(30.0),
            frames_decoded: Some(seconds * 30),
            screen_share: false,
        }),
        audio_in: Some(Inbound {
            bytes_received: audio_bytes,
            packets_received: seconds * 50,
            packets_lost: 0,
            jitter_s: Some(0.005),
            ..Inbound::default()
        }),
        video_remote_in: Some(RemoteInbound {
            fraction_lost: Some(0.0),
            round_trip_time_s: Some(0.05),
        }),
        audio_remote_in: Some(RemoteInbound {
            fraction_lost: Some(0.0),
            round_trip_time_s: Some(0.05),
        }),
        pair: Some(CandidatePair {
            current_round_trip_time_s: Some(0.04),
            available_outgoing_bitrate_bps: Some(2_000_000.0),
            local_type: CandidateType::Host,
            remote_type: CandidateType::Srflx,
        }),
    }
}

fn healthy() -> QualityReport {
    QualityReport::between(&sample(10), &sample(11))
}

fn close(actual: Option<f64>, expected: f64) {
    let actual = actual.unwrap_or(f64::NAN);
    assert!((actual - expected).abs() < 1e-6, "{actual} != {expected}");
}

fn video_in(s: &mut StatsSample) -> &mut Inbound {
    s.video_in.get_or_insert_with(Inbound::default)
}

fn audio_in(s: &mut StatsSample) -> &mut Inbound {
    s.audio_in.get_or_insert_with(Inbound::default)
}

// ---------- reports ----------

#[test]
fn rates_are_kilobits_per_second_over_the_interval() {
    let report = healthy();
    close(report.interval_ms, 1000.0);
    close(report.send_kbps, 1040.0);
    close(report.receive_kbps, 1040.0);
    close(report.receive_video_kbps, 1000.0);
    close(report.available_send_kbps, 2000.0);

    // Two seconds apart: the same bytes per second.
    close(
        QualityReport::between(&sample(10), &sample(12)).send_kbps,
        1040.0,
    );
}

#[test]
fn a_healthy_call_is_good() {
    let report = healthy().with_peer_camera(true);
    assert_eq!(report.level, Level::Good);
    assert_eq!(report.send_level, Level::Good);
    close(report.receive_loss_pct, 0.0);
    close(report.send_loss_pct, 0.0);
    assert!(!report.relayed);
}

#[test]
fn receive_loss_counts_both_kinds_over_the_interval() {
    let prev = sample(10);
    let mut cur = sample(11);
    // 100 video + 50 audio packets arrived; 10 more video ones are now missing.
    video_in(&mut cur).packets_lost = 10;
    let report = QualityReport::between(&prev, &cur);
    close(report.receive_loss_pct, 10.0 * 100.0 / 160.0);

    // Loss that happened before the interval does not count.
    let mut later = sample(12);
    video_in(&mut later).packets_lost = 10;
    close(QualityReport::between(&cur, &later).receive_loss_pct, 0.0);
}

#[test]
fn duplicates_lowering_the_loss_counter_read_as_no_loss() {
    let mut prev = sample(10);
    video_in(&mut prev).packets_lost = 20;
    let mut cur = sample(11);
    video_in(&mut cur).packets_lost = 15;
    close(QualityReport::between(&prev, &cur).receive_loss_pct, 0.0);
}

#[test]
fn nothing_received_is_no_loss_figure() {
    let prev = sample(10);
    let mut cur = sample(11);
    cur.video_in = prev.video_in;
    cur.audio_in = prev.audio_in;
    assert_eq!(QualityReport::between(&prev, &cur).receive_loss_pct, None);
}

#[test]
fn counters_that_go_backwards_give_no_rates() {
    // A new peer connection: every counter starts again from zero.
    let prev = sample(100);
    let mut cur = sample(1);
    cur.timestamp_ms = sample(101).timestamp_ms;
    let report = QualityReport::between(&prev, &cur);
    assert_eq!(report.send_kbps, None);
    assert_eq!(report.receive_kbps, None);
    assert_eq!(report.receive_video_kbps, None);
    assert_eq!(report.receive_loss_pct, None);
    // Frame rate and size come straight from the current sample.
    close(report.fps, 30.0);
    assert_eq!(report.resolution, Some((1280, 720)));
    // Nothing nonsensical makes the call look worse than it is.
    assert_eq!(report.with_peer_camera(true).level, Level::Good);
}

#[test]
fn one_stream_resetting_leaves_the_other_counted() {
    let prev = sample(100);
    let mut cur = sample(101);
    cur.video_bytes_sent = Some(10);
    *video_in(&mut cur) = Inbound {
        bytes_received: 10,
        packets_received: 1,
        ..Inbound::default()
    };
    let report = QualityReport::between(&prev, &cur);
    close(report.send_kbps, 40.0);
    close(report.receive_kbps, 40.0);
    assert_eq!(report.receive_video_kbps, None);
    close(report.receive_loss_pct, 0.0);
}

#[test]
fn missing_entries_give_no_rates_not_spikes() {
    // The previous reading had no video yet (or lost it for a moment).
    let mut prev = sample(10);
    prev.video_bytes_sent = None;
    prev.video_in = None;
    let report = QualityReport::between(&prev, &sample(11));
    close(report.send_kbps, 40.0);
    assert_eq!(report.receive_video_kbps, None);

    let empty = QualityReport::between(&StatsSample::default(), &StatsSample::default());
    assert_eq!(empty.send_kbps, None);
    assert_eq!(empty.rtt_ms, None);
    assert_eq!(empty.resolution, None);
    assert_eq!(empty.level, Level::Good);
}

#[test]
fn samples_out_of_order_give_no_rates() {
    for (a, b) in [(11, 10), (10, 10)] {
        let report = QualityReport::between(&sample(a), &sample(b));
        assert_eq!(report.interval_ms, None, "{a} {b}");
        assert_eq!(report.send_kbps, None);
        assert_eq!(report.receive_kbps, None);
    }
    let mut cur = sample(11);
    cur.timestamp_ms = f64::NAN;
    assert_eq!(QualityReport::between(&sample(10), &cur).send_kbps, None);
}

#[test]
fn round_trip_time_prefers_the_candidate_pair() {
    close(healthy().rtt_ms, 40.0);

    let mut cur = sample(11);
    cur.pair = None;
    cur.audio_remote_in = Some(RemoteInbound {
        fraction_lost: None,
        round_trip_time_s: Some(0.07),
    });
    close(QualityReport::between(&sample(10), &cur).rtt_ms, 70.0);

    cur.video_remote_in = None;
    cur.audio_remote_in = None;
    assert_eq!(QualityReport::between(&sample(10), &cur).rtt_ms, None);
}

#[test]
fn send_loss_is_the_worse_of_what_the_peer_reports() {
    let mut cur = sample(11);
    cur.video_remote_in = Some(RemoteInbound {
        fraction_lost: Some(0.1),
        round_trip_time_s: None,
    });
    cur.audio_remote_in = Some(RemoteInbound {
        fraction_lost: Some(0.02),
        round_trip_time_s: None,
    });
    let report = QualityReport::between(&sample(10), &cur);
    close(report.send_loss_pct, 10.0);
    close(report.loss_pct(), 10.0);
    assert_eq!(report.send_level, Level::Poor);
}

#[test]
fn jitter_is_the_audio_one_when_there_is_audio() {
    close(healthy().jitter_ms, 5.0);
    let mut cur = sample(11);
    cur.audio_in = None;
    close(QualityReport::between(&sample(10), &cur).jitter_ms, 40.0);
}

#[test]
fn resolution_and_frame_rate_of_the_incoming_video() {
    let report = healthy();
    assert_eq!(report.resolution, Some((1280, 720)));
    close(report.fps, 30.0);

    // Firefox: no framesPerSecond, derived from frames decoded.
    let mut prev = sample(10);
    let mut cur = sample(12);
    video_in(&mut prev).frames_per_second = None;
    video_in(&mut cur).frames_per_second = None;
    close(QualityReport::between(&prev, &cur).fps, 30.0);

    // Before the first frame the size is 0×0: no size rather than a silly one.
    video_in(&mut cur).frame_width = Some(0);
    assert_eq!(QualityReport::between(&prev, &cur).resolution, None);
}

#[test]
fn a_relay_on_either_end_is_a_relayed_path() {
    for (local, remote, relayed) in [
        (CandidateType::Relay, CandidateType::Host, true),
        (CandidateType::Srflx, CandidateType::Relay, true),
        (CandidateType::Prflx, CandidateType::Srflx, false),
        (CandidateType::Unknown, CandidateType::Unknown, false),
    ] {
        let mut cur = sample(11);
        cur.pair = Some(CandidatePair {
            local_type: local,
            remote_type: remote,
            ..CandidatePair::default()
        });
        assert_eq!(
            QualityReport::between(&sample(10), &cur).relayed,
            relayed,
            "{local:?} {remote:?}"
        );
    }
}

#[test]
fn candidate_types_are_parsed() {
    assert_eq!(CandidateType::parse("host"), CandidateType::Host);
    assert_eq!(CandidateType::parse("srflx"), CandidateType::Srflx);
    assert_eq!(CandidateType::parse("prflx"), CandidateType::Prflx);
    assert_eq!(CandidateType::parse("relay"), CandidateType::Relay);
    assert_eq!(CandidateType::parse("RELAY"), CandidateType::Unknown);
}

/// The level of a healthy report with one thing changed.
fn level_with(change: impl Fn(&mut StatsSample)) -> (Level, Level) {
    let mut cur = sample(11);
    change(&mut cur);
    let report = QualityReport::between(&sample(10), &cur);
    (report.level, report.send_level)
}

#[test]
fn round_trip_thresholds() {
    let rtt = |seconds: f64| {
        level_with(move |s| {
            s.pair
                .get_or_insert_with(CandidatePair::default)
                .current_round_trip_time_s = Some(seconds)
        })
    };
    assert_eq!(rtt(0.299), (Level::Good, Level::Good));
    assert_eq!(rtt(0.300), (Level::Fair, Level::Fair));
    assert_eq!(rtt(0.499), (Level::Fair, Level::Fair));
    assert_eq!(rtt(0.500), (Level::Poor, Level::Poor));
}

#[test]
fn receive_loss_thresholds_rate_the_call_not_our_sending() {
    // 100 + 50 packets arrive; `lost` more went missing.
    let loss = |lost: i64| level_with(move |s| video_in(s).packets_lost = lost);
    assert_eq!(loss(3), (Level::Good, Level::Good)); // 1.96 %
    assert_eq!(loss(4), (Level::Fair, Level::Good)); // 2.6 %
    assert_eq!(loss(13), (Level::Fair, Level::Good)); // 7.97 %
    assert_eq!(loss(14), (Level::Poor, Level::Good)); // 8.5 %
}

#[test]
fn send_loss_thresholds() {
    let loss = |fraction: f64| {
        level_with(move |s| {
            s.video_remote_in = Some(RemoteInbound {
                fraction_lost: Some(fraction),
                round_trip_time_s: None,
            })
        })
    };
    assert_eq!(loss(0.019), (Level::Good, Level::Good));
    assert_eq!(loss(0.02), (Level::Fair, Level::Fair));
    assert_eq!(loss(0.08), (Level::Poor, Level::Poor));
    // Out-of-range fractions are clamped, not trusted.
    assert_eq!(loss(3.0), (Level::Poor, Level::Poor));
}

#[test]
fn jitter_thresholds_rate_the_call_not_our_sending() {
    let jitter = |seconds: f64| level_with(move |s| audio_in(s).jitter_s = Some(seconds));
    assert_eq!(jitter(0.029), (Level::Good, Level::Good));
    assert_eq!(jitter(0.030), (Level::Fair, Level::Good));
    assert_eq!(jitter(0.100), (Level::Poor, Level::Good));
}

#[test]
fn values_that_make_no_sense_are_ignored() {
    let (level, _) = level_with(|s| {
        audio_in(s).jitter_s = Some(f64::INFINITY);
        let pair = s.pair.get_or_insert_with(CandidatePair::default);
        pair.current_round_trip_time_s = Some(-1.0);
        pair.available_outgoing_bitrate_bps = Some(f64::NAN);
        s.video_remote_in = None;
        s.audio_remote_in = None;
    });
    assert_eq!(level, Level::Good);
}

#[test]
fn starved_video_is_poor_only_while_the_peer_camera_is_on() {
    let mut prev = sample(10);
    let mut cur = sample(11);
    // 100 kbit/s of video arrives.
    video_in(&mut prev).bytes_received = 0;
    video_in(&mut cur).bytes_received = 12_500;
    let report = QualityReport::between(&prev, &cur);
    assert_eq!(report.level, Level::Good);
    assert_eq!(report.clone().with_peer_camera(false).level, Level::Good);
    assert_eq!(report.clone().with_peer_camera(true).level, Level::Poor);
    assert_eq!(
        report.with_peer_camera(true).send_level,
        Level::Good,
        "the peer's uplink is not ours to fix"
    );

    // Frozen video: enough bits, too few frames.
    let mut cur = sample(11);
    video_in(&mut cur).frames_per_second = Some(4.0);
    let report = QualityReport::between(&sample(10), &cur);
    assert_eq!(report.with_peer_camera(true).level, Level::Poor);

    let mut cur = sample(11);
    video_in(&mut cur).frames_per_second = Some(5.0);
    let report = QualityReport::between(&sample(10), &cur);
    assert_eq!(report.with_peer_camera(true).level, Level::Good);
}

// ---------- adaptation ----------

fn report(level: Level, send_level: Level) -> QualityReport {
    QualityReport {
        level,
        send_level,
        ..QualityReport::default()
    }
}

fn sending(level: Level) -> QualityReport {
    report(level, level)
}

/// Feeds `n` reports; returns the profile changes.
fn feed(adaptation: &mut Adaptation, level: Level, n: u32) -> Vec<SendProfile> {
    (0..n)
        .filter_map(|_| adaptation.observe(&sending(level)))
        .collect()
}

#[test]
fn the_ladder_gets_smaller_and_starts_unlimited() {
    assert_eq!(Adaptation::new().current(), LADDER[0]);
    assert_eq!(LADDER[0].max_bitrate_bps, None);
    assert_eq!(LADDER[0].scale_resolution_down_by, 1.0);
    for pair in LADDER.windows(2) {
        let cap = |p: &SendProfile| p.max_bitrate_bps.unwrap_or(u32::MAX);
        assert!(cap(&pair[1]) < cap(&pair[0]));
        assert!(pair[1].scale_resolution_down_by >= pair[0].scale_resolution_down_by);
    }
}

#[test]
fn three_poor_seconds_step_down_two_do_not() {
    let mut adaptation = Adaptation::new();
    assert!(feed(&mut adaptation, Level::Poor, 2).is_empty());
    assert_eq!(adaptation.observe(&sending(Level::Poor)), Some(LADDER[1]));
    assert_eq!(adaptation.current(), LADDER[1]);
}

#[test]
fn each_step_down_needs_its_own_three_seconds_and_stops_at_the_bottom() {
    let mut adaptation = Adaptation::new();
    assert_eq!(
        feed(&mut adaptation, Level::Poor, 9),
        LADDER[1..].to_vec(),
        "one step per three seconds"
    );
    assert!(feed(&mut adaptation, Level::Poor, 30).is_empty());
    assert_eq!(adaptation.current(), LADDER[3]);
}

#[test]
fn a_good_second_breaks_a_poor_run_and_a_fair_one_does_not() {
    let mut adaptation = Adaptation::new();
    feed(&mut adaptation, Level::Poor, 2);
    feed(&mut adaptation, Level::Good, 1);
    assert!(feed(&mut adaptation, Level::Poor, 2).is_empty());

    let mut adaptation = Adaptation::new();
    feed(&mut adaptation, Level::Poor, 2);
    feed(&mut adaptation, Level::Fair, 1);
    assert_eq!(feed(&mut adaptation, Level::Poor, 1), vec![LADDER[1]]);
}

#[test]
fn ten_good_seconds_step_up_one() {
    let mut adaptation = Adaptation::new();
    feed(&mut adaptation, Level::Poor, 6);
    assert_eq!(adaptation.current(), LADDER[2]);
    assert!(feed(&mut adaptation, Level::Good, 9).is_empty());
    assert_eq!(adaptation.observe(&sending(Level::Good)), Some(LADDER[1]));
    assert_eq!(feed(&mut adaptation, Level::Good, 10), vec![LADDER[0]]);
    assert!(
        feed(&mut adaptation, Level::Good, 100).is_empty(),
        "nothing above unlimited"
    );
}

#[test]
fn fair_or_poor_seconds_restart_the_wait_for_a_step_up() {
    for interruption in [Level::Fair, Level::Poor] {
        let mut adaptation = Adaptation::new();
        feed(&mut adaptation, Level::Poor, 3);
        feed(&mut adaptation, Level::Good, 9);
        feed(&mut adaptation, interruption, 1);
        assert!(
            feed(&mut adaptation, Level::Good, 9).is_empty(),
            "{interruption:?}"
        );
        assert_eq!(feed(&mut adaptation, Level::Good, 1), vec![LADDER[0]]);
    }
}

#[test]
fn a_link_flickering_between_good_and_poor_does_not_flap() {
    let mut adaptation = Adaptation::new();
    for _ in 0..100 {
        assert_eq!(adaptation.observe(&sending(Level::Poor)), None);
        assert_eq!(adaptation.observe(&sending(Level::Good)), None);
    }
    // Two poor seconds in three: down, but never straight back up.
    let mut changes = Vec::new();
    for _ in 0..100 {
        changes.extend(feed(&mut adaptation, Level::Poor, 2));
        changes.extend(feed(&mut adaptation, Level::Fair, 1));
    }
    assert_eq!(changes, LADDER[1..].to_vec());
}

#[test]
fn a_failed_step_up_doubles_the_next_wait() {
    let mut adaptation = Adaptation::new();
    feed(&mut adaptation, Level::Poor, 6); // at LADDER[2]
    feed(&mut adaptation, Level::Good, 10); // up to LADDER[1]
    assert_eq!(feed(&mut adaptation, Level::Poor, 3), vec![LADDER[2]]);
    assert!(feed(&mut adaptation, Level::Good, 19).is_empty());
    assert_eq!(feed(&mut adaptation, Level::Good, 1), vec![LADDER[1]]);

    // Failing again: 40 s, and so on up to the limit.
    feed(&mut adaptation, Level::Poor, 3);
    assert!(feed(&mut adaptation, Level::Good, 39).is_empty());
    assert_eq!(feed(&mut adaptation, Level::Good, 1), vec![LADDER[1]]);
    for _ in 0..5 {
        feed(&mut adaptation, Level::Poor, 3);
        assert_eq!(feed(&mut adaptation, Level::Good, 80).len(), 1);
    }
    feed(&mut adaptation, Level::Poor, 3);
    assert!(feed(&mut adaptation, Level::Good, 79).is_empty());
}

#[test]
fn trouble_long_after_a_step_up_resets_the_wait() {
    let mut adaptation = Adaptation::new();
    feed(&mut adaptation, Level::Poor, 6);
    feed(&mut adaptation, Level::Good, 10);
    feed(&mut adaptation, Level::Poor, 3); // failed: the next wait is 20 s
    feed(&mut adaptation, Level::Good, 20); // up to LADDER[1]
    feed(&mut adaptation, Level::Fair, STEP_UP_PROBATION_REPORTS); // it held
    assert_eq!(feed(&mut adaptation, Level::Poor, 3), vec![LADDER[2]]);
    assert_eq!(feed(&mut adaptation, Level::Good, 10), vec![LADDER[1]]);
}

#[test]
fn adaptation_follows_our_sending_not_the_whole_call() {
    let mut adaptation = Adaptation::new();
    for _ in 0..20 {
        assert_eq!(
            adaptation.observe(&report(Level::Poor, Level::Good)),
            None,
            "the peer's trouble"
        );
    }
    assert_eq!(adaptation.current(), LADDER[0]);
    // …but the whole call is what the user is offered to help.
    assert!(adaptation.poor_for_a_while());
}

#[test]
fn poor_for_a_while_after_ten_poor_seconds() {
    let mut streak = PoorStreak::default();
    for _ in 0..9 {
        assert!(!streak.observe(Level::Poor));
    }
    // A fair second in between neither counts nor breaks the run.
    assert!(!streak.observe(Level::Fair));
    assert!(streak.observe(Level::Poor));
    assert!(streak.observe(Level::Fair));
    assert!(!streak.observe(Level::Good));
    assert!(!streak.poor_for_a_while());
}

#[test]
fn adaptation_reports_poor_for_a_while() {
    let mut adaptation = Adaptation::new();
    feed(&mut adaptation, Level::Poor, 9);
    assert!(!adaptation.poor_for_a_while());
    feed(&mut adaptation, Level::Poor, 1);
    assert!(adaptation.poor_for_a_while());
    feed(&mut adaptation, Level::Good, 1);
    assert!(!adaptation.poor_for_a_while());
}

#[test]
fn levels_have_tags_and_order() {
    assert!(Level::Good < Level::Fair && Level::Fair < Level::Poor);
    assert_eq!(
        [Level::Good, Level::Fair, Level::Poor].map(Level::tag),
        ["good", "fair", "poor"]
    );
}
