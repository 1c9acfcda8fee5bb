use super::*;
use serde_json::json;

fn id(s: &str) -> CallId {
    s.to_owned()
}

fn peer(from: &str, message: PeerMessage) -> Event {
    Event::Peer {
        from: from.to_owned(),
        message,
    }
}

fn outgoing(call_id: &str) -> CallState {
    CallState::Outgoing {
        peer: "bob".into(),
        call_id: id(call_id),
        ringing: false,
        video: true,
        devices: Devices::Opening,
    }
}

/// Ringing, with our devices and peer connection already prepared.
fn outgoing_ready(call_id: &str) -> CallState {
    let (state, effects) = outgoing(call_id).on(Event::MediaReady {
        call_id: id(call_id),
        video: true,
    });
    assert!(effects.is_empty());
    state
}

fn incoming(call_id: &str) -> CallState {
    CallState::Incoming {
        peer: "bob".into(),
        call_id: id(call_id),
        video: true,
    }
}

/// Devices open, negotiating the first path.
fn active(role: Role) -> Active {
    Active {
        phase: Phase::Negotiating { restarted: false },
        ..Active::new("bob".into(), id("c1"), role, true, true)
    }
}

fn connecting(role: Role) -> CallState {
    CallState::Active(active(role))
}

fn in_call(role: Role) -> CallState {
    CallState::Active(Active {
        phase: Phase::Connected {
            started_at_ms: 1000.0,
            recovered: None,
        },
        ..active(role)
    })
}

fn phase(state: &CallState) -> Phase {
    match state {
        CallState::Active(call) => call.phase,
        other => panic!("not an active call: {other:?}"),
    }
}

fn link(report: LinkReport) -> Event {
    Event::Link {
        call_id: id("c1"),
        report,
        now_ms: 9000.0,
    }
}

fn fired(timer: Timer) -> Event {
    Event::Timeout {
        timer,
        call_id: id("c1"),
    }
}

fn started(timer: Timer, ms: u32) -> Effect {
    Effect::StartTimer {
        timer,
        call_id: id("c1"),
        ms,
    }
}

fn reason(state: &CallState) -> Option<EndReason> {
    match state {
        CallState::Ended { reason, .. } => Some(*reason),
        _ => None,
    }
}

fn sent(effects: &[Effect]) -> Vec<(String, PeerMessage)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, message } => Some((to.clone(), message.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn dialing_sends_an_invite_and_arms_the_no_answer_timer() {
    let (state, effects) = CallState::Idle.on(Event::Dial {
        peer: "bob".into(),
        call_id: id("c1"),
        video: true,
    });
    assert_eq!(state, outgoing("c1"));
    assert_eq!(
        effects,
        vec![
            Effect::Send {
                to: "bob".into(),
                message: PeerMessage::Invite {
                    call_id: id("c1"),
                    video: true
                }
            },
            Effect::StartTimer {
                timer: Timer::NoAnswer,
                call_id: id("c1"),
                ms: NO_ANSWER_MS
            },
            // The caller prepares while it rings (the callee's devices wait for Accept).
            Effect::OpenMedia {
                call_id: id("c1"),
                video: true,
                polite: false
            },
        ]
    );
}

#[test]
fn devices_ready_while_ringing_are_remembered_and_stale_reports_ignored() {
    let state = outgoing_ready("c1");
    assert!(matches!(
        state,
        CallState::Outgoing {
            devices: Devices::Ready { video: true },
            ..
        }
    ));
    let (stale, effects) = outgoing("c1").on(Event::MediaReady {
        call_id: id("old"),
        video: true,
    });
    assert_eq!(stale, outgoing("c1"));
    assert!(effects.is_empty());
}

#[test]
fn every_way_an_outgoing_call_ends_releases_the_devices_opened_while_ringing() {
    let endings = [
        Event::Cancel,
        Event::Timeout {
            timer: Timer::NoAnswer,
            call_id: id("c1"),
        },
        Event::MediaFailed { call_id: id("c1") },
        Event::PeerOffline("bob".into()),
        Event::ServerError {
            code: ErrorCode::PeerOffline,
            call_id: Some(id("c1")),
        },
        peer("bob", PeerMessage::Decline { call_id: id("c1") }),
        peer("bob", PeerMessage::Busy { call_id: id("c1") }),
        peer("bob", PeerMessage::Hangup { call_id: id("c1") }),
    ];
    for event in endings {
        for start in [outgoing("c1"), outgoing_ready("c1")] {
            let (state, effects) = start.on(event.clone());
            assert!(state.is_free(), "{event:?} left {state:?}");
            assert!(effects.contains(&Effect::Release), "{event:?}: {effects:?}");
        }
    }
}

#[test]
fn every_way_a_ringing_call_ends_here_unanswered_releases_its_prepared_connection() {
    let endings = [
        Event::Decline,
        Event::PeerOffline("bob".into()),
        peer("bob", PeerMessage::Cancel { call_id: id("c1") }),
        // Answered or declined in another tab of ours.
        peer("bob", PeerMessage::Accept { call_id: id("c1") }),
        peer("bob", PeerMessage::Decline { call_id: id("c1") }),
        peer("bob", PeerMessage::Busy { call_id: id("c1") }),
    ];
    for event in endings {
        let (state, effects) = incoming("c1").on(event.clone());
        assert!(state.is_free(), "{event:?} left {state:?}");
        assert!(effects.contains(&Effect::Release), "{event:?}: {effects:?}");
        assert!(
            effects.contains(&Effect::Ring { from: None }),
            "{event:?}: {effects:?}"
        );
    }
}

#[test]
fn media_failing_while_ringing_cancels_the_invite() {
    let (state, effects) = outgoing("c1").on(Event::MediaFailed { call_id: id("c1") });
    assert_eq!(reason(&state), Some(EndReason::MediaDenied));
    assert_eq!(
        sent(&effects),
        vec![("bob".into(), PeerMessage::Cancel { call_id: id("c1") })]
    );
}

#[test]
fn dialing_works_straight_from_the_ended_card() {
    let ended = CallState::Ended {
        peer: "bob".into(),
        call_id: id("old"),
        reason: EndReason::Declined,
        video: true,
    };
    let (state, _) = ended.on(Event::Dial {
        peer: "carol".into(),
        call_id: id("new"),
        video: false,
    });
    assert_eq!(state.tag(), "outgoing");
    assert_eq!(state.peer(), Some("carol"));
}

#[test]
fn dialing_during_a_call_is_ignored() {
    let (state, effects) = in_call(Role::Caller).on(Event::Dial {
        peer: "carol".into(),
        call_id: id("c2"),
        video: true,
    });
    assert_eq!(state, in_call(Role::Caller));
    assert!(effects.is_empty());
}

#[test]
fn ringing_is_shown_to_the_caller() {
    let (state, _) = outgoing("c1").on(peer("bob", PeerMessage::Ringing { call_id: id("c1") }));
    assert!(matches!(state, CallState::Outgoing { ringing: true, .. }));
}

#[test]
fn cancelling_tells_the_callee_and_returns_to_idle() {
    let (state, effects) = outgoing("c1").on(Event::Cancel);
    assert_eq!(state, CallState::Idle);
    assert_eq!(
        sent(&effects),
        vec![("bob".into(), PeerMessage::Cancel { call_id: id("c1") })]
    );
}

#[test]
fn no_answer_cancels_the_invite() {
    let (state, effects) = outgoing("c1").on(Event::Timeout {
        timer: Timer::NoAnswer,
        call_id: id("c1"),
    });
    assert_eq!(reason(&state), Some(EndReason::NoAnswer));
    assert_eq!(
        sent(&effects),
        vec![("bob".into(), PeerMessage::Cancel { call_id: id("c1") })]
    );
}

#[test]
fn a_stale_no_answer_timer_is_ignored() {
    let (state, effects) = outgoing("c2").on(Event::Timeout {
        timer: Timer::NoAnswer,
        call_id: id("c1"),
    });
    assert_eq!(state, outgoing("c2"));
    assert!(effects.is_empty());
}

#[test]
fn decline_busy_and_offline_end_the_outgoing_call() {
    let cases = [
        (
            peer("bob", PeerMessage::Decline { call_id: id("c1") }),
            EndReason::Declined,
        ),
        (
            peer("bob", PeerMessage::Busy { call_id: id("c1") }),
            EndReason::Busy,
        ),
        (
            Event::ServerError {
                code: ErrorCode::PeerOffline,
                call_id: Some(id("c1")),
            },
            EndReason::PeerOffline,
        ),
        (
            Event::ServerError {
                code: ErrorCode::PeerOffline,
                call_id: None,
            },
            EndReason::PeerOffline,
        ),
        (Event::PeerOffline("bob".into()), EndReason::PeerOffline),
    ];
    for (event, expected) in cases {
        let (state, _) = outgoing("c1").on(event);
        assert_eq!(reason(&state), Some(expected));
    }
}

#[test]
fn replies_about_other_calls_or_from_others_are_ignored() {
    for event in [
        peer("bob", PeerMessage::Decline { call_id: id("c9") }),
        peer("carol", PeerMessage::Accept { call_id: id("c1") }),
        Event::PeerOffline("carol".into()),
        // A late error about a frame of an earlier call must not end this one.
        Event::ServerError {
            code: ErrorCode::PeerOffline,
            call_id: Some(id("c0")),
        },
    ] {
        let (state, _) = outgoing("c1").on(event);
        assert_eq!(state, outgoing("c1"));
    }
}

#[test]
fn accept_sends_what_the_prepared_caller_held_and_arms_the_connect_timer() {
    let (state, effects) =
        outgoing_ready("c1").on(peer("bob", PeerMessage::Accept { call_id: id("c1") }));
    let CallState::Active(call) = &state else {
        panic!("{state:?}")
    };
    assert_eq!(call.role, Role::Caller);
    assert_eq!(call.phase, Phase::Negotiating { restarted: false });
    assert_eq!(
        effects,
        vec![
            Effect::SendHeld,
            Effect::StartTimer {
                timer: Timer::Connect,
                call_id: id("c1"),
                ms: CONNECT_TIMEOUT_MS
            }
        ]
    );
}

#[test]
fn accept_before_the_callers_devices_are_open_waits_for_them() {
    let (state, effects) =
        outgoing("c1").on(peer("bob", PeerMessage::Accept { call_id: id("c1") }));
    assert_eq!(phase(&state), Phase::OpeningDevices);
    assert_eq!(effects, vec![Effect::SendHeld]);
    let (state, effects) = state.on(Event::MediaReady {
        call_id: id("c1"),
        video: true,
    });
    assert_eq!(phase(&state), Phase::Negotiating { restarted: false });
    assert!(effects.contains(&Effect::StartTimer {
        timer: Timer::Connect,
        call_id: id("c1"),
        ms: CONNECT_TIMEOUT_MS
    }));
}

#[test]
fn an_invite_rings_and_answers_ringing() {
    let (state, effects) = CallState::Idle.on(peer(
        "bob",
        PeerMessage::Invite {
            call_id: id("c1"),
            video: true,
        },
    ));
    assert_eq!(state, incoming("c1"));
    assert!(effects.contains(&Effect::Ring {
        from: Some("bob".into())
    }));
    assert_eq!(
        sent(&effects),
        vec![("bob".into(), PeerMessage::Ringing { call_id: id("c1") })]
    );
    // The connection is made while it rings, with no device: its offer waits for the accept.
    assert!(effects.contains(&Effect::PrepareLink { call_id: id("c1") }));
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::OpenMedia { .. }))
    );
}

#[test]
fn accepting_sends_accept_then_the_prepared_offer_and_opens_the_devices_meanwhile() {
    let (state, effects) = incoming("c1").on(Event::Accept);
    assert!(effects.contains(&Effect::Ring { from: None }));
    assert!(effects.contains(&Effect::OpenMedia {
        call_id: id("c1"),
        video: true,
        polite: true
    }));
    assert_eq!(
        sent(&effects),
        vec![("bob".into(), PeerMessage::Accept { call_id: id("c1") })],
        "our offer travels while our camera opens"
    );
    let accept = effects
        .iter()
        .position(|e| matches!(e, Effect::Send { .. }));
    let held = effects.iter().position(|e| *e == Effect::SendHeld);
    assert!(
        accept < held && accept.is_some(),
        "the offer follows the accept: {effects:?}"
    );
    let (state, effects) = state.on(Event::MediaReady {
        call_id: id("c1"),
        video: true,
    });
    assert_eq!(state.tag(), "connecting");
    assert!(sent(&effects).is_empty(), "accept is not sent twice");
}

#[test]
fn an_audio_only_side_announces_its_camera_is_off() {
    let (state, _) = incoming("c1").on(Event::Accept);
    let (state, effects) = state.on(Event::MediaReady {
        call_id: id("c1"),
        video: false,
    });
    assert!(sent(&effects).contains(&(
        "bob".into(),
        PeerMessage::Media {
            call_id: id("c1"),
            audio: true,
            video: false
        }
    )));
    assert!(!state.active().unwrap().local.video);
}

#[test]
fn calling_the_person_who_rings_answers_them() {
    let (state, effects) = incoming("c1").on(Event::Dial {
        peer: "bob".into(),
        call_id: id("c2"),
        video: true,
    });
    assert_eq!(state.tag(), "connecting");
    assert_eq!(state.call_id(), Some("c1"));
    assert!(effects.contains(&Effect::OpenMedia {
        call_id: id("c1"),
        video: true,
        polite: true
    }));
    assert!(incoming("c1").can_dial("bob"));
    assert!(!incoming("c1").can_dial("carol"));
    let (state, _) = incoming("c1").on(Event::Dial {
        peer: "carol".into(),
        call_id: id("c2"),
        video: true,
    });
    assert_eq!(state, incoming("c1"));
}

#[test]
fn declining_stops_the_ring() {
    let (state, effects) = incoming("c1").on(Event::Decline);
    assert_eq!(state, CallState::Idle);
    assert_eq!(effects[0], Effect::Ring { from: None });
    assert_eq!(
        sent(&effects),
        vec![("bob".into(), PeerMessage::Decline { call_id: id("c1") })]
    );
}

#[test]
fn the_caller_cancelling_shows_a_missed_call() {
    let (state, effects) =
        incoming("c1").on(peer("bob", PeerMessage::Cancel { call_id: id("c1") }));
    assert_eq!(reason(&state), Some(EndReason::Cancelled));
    assert!(effects.contains(&Effect::Ring { from: None }));
}

#[test]
fn another_tab_answering_silences_this_one() {
    for message in [
        PeerMessage::Accept { call_id: id("c1") },
        PeerMessage::Decline { call_id: id("c1") },
        PeerMessage::Busy { call_id: id("c1") },
    ] {
        let (state, effects) = incoming("c1").on(peer("me", message));
        assert_eq!(state, CallState::Idle);
        assert_eq!(effects, vec![Effect::Ring { from: None }, Effect::Release]);
    }
}

#[test]
fn a_second_caller_gets_busy() {
    for state in [incoming("c1"), in_call(Role::Callee), outgoing("c1")] {
        let (after, effects) = state.clone().on(peer(
            "carol",
            PeerMessage::Invite {
                call_id: id("c7"),
                video: true,
            },
        ));
        assert_eq!(after, state);
        assert_eq!(
            sent(&effects),
            vec![("carol".into(), PeerMessage::Busy { call_id: id("c7") })]
        );
    }
}

#[test]
fn glare_the_smaller_call_id_wins_on_both_sides() {
    // Alice invited with "a", Bob with "b": "a" < "b".
    let alice = CallState::Outgoing {
        peer: "bob".into(),
        call_id: id("a"),
        ringing: false,
        video: true,
        devices: Devices::Opening,
    };
    let bob = CallState::Outgoing {
        peer: "alice".into(),
        call_id: id("b"),
        ringing: false,
        video: true,
        devices: Devices::Ready { video: true },
    };
    let (alice, alice_effects) = alice.on(peer(
        "bob",
        PeerMessage::Invite {
            call_id: id("b"),
            video: true,
        },
    ));
    let (bob, bob_effects) = bob.on(peer(
        "alice",
        PeerMessage::Invite {
            call_id: id("a"),
            video: true,
        },
    ));
    assert_eq!(alice.tag(), "outgoing", "alice's call survives");
    assert!(alice_effects.is_empty());
    let CallState::Active(call) = &bob else {
        panic!("{bob:?}")
    };
    assert_eq!((call.call_id.as_str(), call.role), ("a", Role::Callee));
    assert_eq!(
        sent(&bob_effects),
        vec![
            ("alice".into(), PeerMessage::Cancel { call_id: id("b") }),
            ("alice".into(), PeerMessage::Accept { call_id: id("a") })
        ]
    );
    // What Bob prepared as a caller goes; he opens his devices anew as the polite callee.
    let release = bob_effects.iter().position(|e| *e == Effect::Release);
    let open = bob_effects.iter().position(|e| {
        *e == Effect::OpenMedia {
            call_id: id("a"),
            video: true,
            polite: true,
        }
    });
    assert!(matches!((release, open), (Some(r), Some(o)) if r < o));
    // Bob's cancel of "b" does not disturb Alice; his accept of "a" connects her.
    let (alice, _) = alice.on(peer("bob", PeerMessage::Cancel { call_id: id("b") }));
    assert_eq!(alice.tag(), "outgoing");
    let (alice, _) = alice.on(peer("bob", PeerMessage::Accept { call_id: id("a") }));
    assert_eq!(alice.tag(), "connecting");
}

#[test]
fn the_link_coming_up_starts_the_call_timer() {
    let (state, _) = connecting(Role::Caller).on(Event::Link {
        call_id: id("c1"),
        report: LinkReport::Connected,
        now_ms: 5000.0,
    });
    assert_eq!(
        phase(&state),
        Phase::Connected {
            started_at_ms: 5000.0,
            recovered: None
        }
    );
    assert_eq!(state.tag(), "in-call");
}

#[test]
fn a_disconnect_waits_the_grace_time_before_restarting() {
    let (state, effects) = in_call(Role::Caller).on(link(LinkReport::Interrupted));
    assert_eq!(
        phase(&state),
        Phase::Reconnecting {
            started_at_ms: 1000.0,
            episode: 1,
            recovery: Recovery::Grace
        }
    );
    assert!(
        !effects.contains(&Effect::RestartIce),
        "not yet: it may come back by itself"
    );
    assert!(effects.contains(&started(
        Timer::DisconnectGrace { episode: 1 },
        DISCONNECT_GRACE_MS
    )));
    assert!(effects.contains(&started(Timer::GiveUp { episode: 1 }, RECONNECT_GIVE_UP_MS)));
    assert_eq!(
        state.tag(),
        "in-call",
        "the call goes on (the view says reconnecting)"
    );

    let (state, effects) = state.on(fired(Timer::DisconnectGrace { episode: 1 }));
    assert_eq!(
        effects,
        vec![
            Effect::RestartIce,
            started(
                Timer::RestartRetry {
                    episode: 1,
                    attempt: 1
                },
                RESTART_RETRY_MS
            )
        ]
    );
    assert!(matches!(
        phase(&state),
        Phase::Reconnecting {
            recovery: Recovery::Restarting { attempt: 1 },
            ..
        }
    ));
}

#[test]
fn a_disconnect_that_recovers_by_itself_needs_no_restart_and_keeps_the_timer() {
    let (state, _) = in_call(Role::Caller).on(link(LinkReport::Interrupted));
    let (state, effects) = state.on(link(LinkReport::Connected));
    assert_eq!(
        effects,
        vec![Effect::RefreshVideo],
        "the peer's decoder needs a key frame"
    );
    assert_eq!(
        phase(&state),
        Phase::Connected {
            started_at_ms: 1000.0,
            recovered: Some(Recovered {
                episode: 1,
                at_ms: 9000.0
            })
        }
    );
    // The old loss's timers are stale now.
    let (after, effects) = state
        .clone()
        .on(fired(Timer::DisconnectGrace { episode: 1 }));
    assert_eq!((after, effects), (state.clone(), vec![]));
    let (after, effects) = state.clone().on(fired(Timer::GiveUp { episode: 1 }));
    assert_eq!((after, effects), (state, vec![]));
}

#[test]
fn ice_failure_restarts_at_once() {
    let (state, effects) = in_call(Role::Caller).on(link(LinkReport::Failed));
    assert_eq!(effects[0], Effect::RestartIce);
    assert!(effects.contains(&started(Timer::GiveUp { episode: 1 }, RECONNECT_GIVE_UP_MS)));
    assert!(matches!(
        phase(&state),
        Phase::Reconnecting {
            recovery: Recovery::Restarting { attempt: 1 },
            ..
        }
    ));
    // Failing again tries again (the budget is time, not attempts).
    let (state, effects) = state.on(link(LinkReport::Failed));
    assert_eq!(effects[0], Effect::RestartIce);
    assert!(matches!(
        phase(&state),
        Phase::Reconnecting {
            recovery: Recovery::Restarting { attempt: 2 },
            ..
        }
    ));
}

#[test]
fn a_restart_without_an_answer_is_retried_and_only_its_own_retry_counts() {
    let (state, _) = in_call(Role::Caller).on(link(LinkReport::Failed));
    let (state, effects) = state.on(fired(Timer::RestartRetry {
        episode: 1,
        attempt: 1,
    }));
    assert_eq!(effects[0], Effect::RestartIce);
    // Attempt 1's timer again (stale now: attempt 2 is running).
    let (same, effects) = state.clone().on(fired(Timer::RestartRetry {
        episode: 1,
        attempt: 1,
    }));
    assert_eq!((same, effects), (state, vec![]));
}

#[test]
fn a_loss_that_lasts_too_long_ends_the_call() {
    let (state, _) = in_call(Role::Caller).on(link(LinkReport::Interrupted));
    let (state, effects) = state.on(fired(Timer::GiveUp { episode: 1 }));
    assert_eq!(reason(&state), Some(EndReason::ConnectionLost));
    assert!(effects.contains(&Effect::Release));
    assert_eq!(
        sent(&effects),
        vec![("bob".into(), PeerMessage::Hangup { call_id: id("c1") })]
    );
}

fn link_at(report: LinkReport, now_ms: f64) -> Event {
    Event::Link {
        call_id: id("c1"),
        report,
        now_ms,
    }
}

#[test]
fn a_path_that_flickers_back_for_a_moment_keeps_the_same_give_up_time() {
    let (state, _) = in_call(Role::Caller).on(link_at(LinkReport::Interrupted, 9000.0));
    let (state, _) = state.on(link_at(LinkReport::Connected, 9010.0));
    let (state, effects) = state.on(link_at(LinkReport::Interrupted, 9020.0));
    assert!(matches!(
        phase(&state),
        Phase::Reconnecting { episode: 1, .. }
    ));
    assert!(
        !effects.iter().any(|e| matches!(
            e,
            Effect::StartTimer {
                timer: Timer::GiveUp { .. },
                ..
            }
        )),
        "no fresh budget: {effects:?}"
    );
    let (state, _) = state.on(fired(Timer::GiveUp { episode: 1 }));
    assert_eq!(reason(&state), Some(EndReason::ConnectionLost));
}

#[test]
fn a_second_loss_gets_its_own_time_budget() {
    let (state, _) = in_call(Role::Caller).on(link_at(LinkReport::Interrupted, 9000.0));
    let (state, _) = state.on(link_at(LinkReport::Connected, 9500.0));
    let (state, _) = state.on(link_at(LinkReport::Interrupted, 9500.0 + FLAP_MS + 1.0));
    assert!(matches!(
        phase(&state),
        Phase::Reconnecting { episode: 2, .. }
    ));
    // The first loss's give-up timer fires during the second loss: stale.
    let (state, effects) = state.on(fired(Timer::GiveUp { episode: 1 }));
    assert!(effects.is_empty());
    assert!(state.active().is_some_and(Active::is_reconnecting));
}

#[test]
fn a_restart_waits_for_the_signaling_socket() {
    let (state, _) = in_call(Role::Caller).on(Event::Signaling(false));
    let (state, _) = state.on(link(LinkReport::Interrupted));
    let (state, effects) = state.on(fired(Timer::DisconnectGrace { episode: 1 }));
    assert!(
        effects.is_empty(),
        "an offer now would be lost: {effects:?}"
    );
    assert!(matches!(
        phase(&state),
        Phase::Reconnecting {
            recovery: Recovery::AwaitingSignaling,
            ..
        }
    ));
    let (state, effects) = state.on(Event::Signaling(true));
    assert_eq!(effects[0], Effect::RestartIce);
    assert!(matches!(
        phase(&state),
        Phase::Reconnecting {
            recovery: Recovery::Restarting { attempt: 1 },
            ..
        }
    ));
}

#[test]
fn signaling_lost_during_a_restart_restarts_again_once_back() {
    let (state, _) = in_call(Role::Caller).on(link(LinkReport::Failed));
    let (state, effects) = state.on(Event::Signaling(false));
    assert!(effects.is_empty());
    assert!(matches!(
        phase(&state),
        Phase::Reconnecting {
            recovery: Recovery::AwaitingSignaling,
            ..
        }
    ));
    // The running attempt's retry timer no longer applies.
    let (state, effects) = state.on(fired(Timer::RestartRetry {
        episode: 1,
        attempt: 1,
    }));
    assert!(effects.is_empty());
    let (state, effects) = state.on(Event::Signaling(true));
    assert_eq!(effects[0], Effect::RestartIce);
    assert!(state.active().is_some_and(Active::is_reconnecting));
}

#[test]
fn the_peer_coming_back_online_gets_a_fresh_restart_offer() {
    let (state, _) = in_call(Role::Caller).on(link(LinkReport::Failed));
    let (state, effects) = state.on(Event::PeerOnline("bob".into()));
    assert_eq!(effects[0], Effect::RestartIce);
    assert!(matches!(
        phase(&state),
        Phase::Reconnecting {
            recovery: Recovery::Restarting { attempt: 2 },
            ..
        }
    ));
    // Someone else coming online changes nothing; neither does bob while the call is fine.
    let (_, effects) = state.on(Event::PeerOnline("carol".into()));
    assert!(effects.is_empty());
    let (_, effects) = in_call(Role::Caller).on(Event::PeerOnline("bob".into()));
    assert!(effects.is_empty());
}

#[test]
fn a_network_change_renews_signaling_then_restarts_ice_without_interrupting_a_working_call() {
    let (state, effects) = in_call(Role::Callee).on(Event::NetworkChanged);
    assert!(
        effects.is_empty(),
        "the old socket may be dead: wait for the new one"
    );
    assert_eq!(
        phase(&state),
        phase(&in_call(Role::Callee)),
        "still connected"
    );
    // The renewal itself takes the old socket down first.
    let (state, effects) = state.on(Event::Signaling(false));
    assert!(effects.is_empty());
    let (state, effects) = state.on(Event::Signaling(true));
    assert_eq!(effects, vec![Effect::RestartIce]);
    assert_eq!(state.active().map(|c| c.signaling), Some(SignalingLink::Up));
    // A socket that merely came back (a server restart) owes no restart.
    let (state, _) = state.on(Event::Signaling(false));
    let (_, effects) = state.on(Event::Signaling(true));
    assert!(effects.is_empty());
}

#[test]
fn a_network_change_while_reconnecting_restarts_once_signaling_is_renewed() {
    let (state, _) = in_call(Role::Callee).on(link(LinkReport::Interrupted));
    let (state, effects) = state.on(Event::NetworkChanged);
    assert!(effects.is_empty());
    assert!(matches!(
        phase(&state),
        Phase::Reconnecting {
            recovery: Recovery::AwaitingSignaling,
            ..
        }
    ));
    let (state, _) = state.on(Event::Signaling(false));
    let (_, effects) = state.on(Event::Signaling(true));
    assert_eq!(effects[0], Effect::RestartIce);
}

#[test]
fn before_the_first_path_a_network_change_only_renews_signaling() {
    let (state, effects) = connecting(Role::Callee).on(Event::NetworkChanged);
    assert!(effects.is_empty());
    let (state, _) = state.on(Event::Signaling(false));
    let (_, effects) = state.on(Event::Signaling(true));
    assert!(effects.is_empty());
}

#[test]
fn restarts_that_cross_are_left_to_perfect_negotiation() {
    // Both sides restarted at once: the peer's restart offer reaches us mid-restart. It goes to
    // the peer connection (which yields or ignores by politeness); the call neither errs nor ends.
    let (state, _) = in_call(Role::Caller).on(link(LinkReport::Failed));
    let offer = PeerMessage::Offer {
        sdp: json!({"type": "offer", "sdp": "v=0"}),
        call_id: Some(id("c1")),
    };
    let (after, effects) = state.clone().on(peer("bob", offer.clone()));
    assert_eq!(effects, vec![Effect::Negotiate(offer)]);
    assert_eq!(after, state);
}

#[test]
fn a_first_negotiation_failure_restarts_once_then_ends_the_call() {
    let (state, effects) = connecting(Role::Caller).on(link(LinkReport::Failed));
    assert_eq!(effects, vec![Effect::RestartIce]);
    assert_eq!(phase(&state), Phase::Negotiating { restarted: true });
    let (state, effects) = state.on(link(LinkReport::Failed));
    assert_eq!(reason(&state), Some(EndReason::ConnectionLost));
    assert!(effects.contains(&Effect::Release));
}

#[test]
fn the_connect_timeout_only_applies_before_media_flows() {
    let timeout = fired(Timer::Connect);
    let (state, _) = connecting(Role::Caller).on(timeout.clone());
    assert_eq!(reason(&state), Some(EndReason::ConnectionLost));
    let (state, _) = in_call(Role::Caller).on(timeout);
    assert_eq!(state.tag(), "in-call");
}

#[test]
fn hanging_up_releases_media_and_tells_the_peer() {
    let (state, effects) = in_call(Role::Callee).on(Event::HangUp);
    assert_eq!(reason(&state), Some(EndReason::HungUp { by_me: true }));
    assert!(effects.contains(&Effect::Release));
    assert_eq!(
        sent(&effects),
        vec![("bob".into(), PeerMessage::Hangup { call_id: id("c1") })]
    );
}

#[test]
fn a_callee_hanging_up_while_its_devices_open_hangs_up() {
    // `accept` already went out, so the caller is connecting: `hangup` is what it understands.
    let (state, _) = incoming("c1").on(Event::Accept);
    let (_, effects) = state.on(Event::HangUp);
    assert_eq!(
        sent(&effects),
        vec![("bob".into(), PeerMessage::Hangup { call_id: id("c1") })]
    );
}

#[test]
fn the_peer_hanging_up_ends_the_call_without_echo() {
    for message in [
        PeerMessage::Hangup { call_id: id("c1") },
        PeerMessage::Leave { call_id: None },
    ] {
        let (state, effects) = in_call(Role::Caller).on(peer("bob", message));
        assert_eq!(reason(&state), Some(EndReason::HungUp { by_me: false }));
        assert!(sent(&effects).is_empty());
        assert!(effects.contains(&Effect::Release));
    }
}

#[test]
fn media_denied_ends_the_call_and_releases() {
    let (state, _) = outgoing("c1").on(peer("bob", PeerMessage::Accept { call_id: id("c1") }));
    let (state, effects) = state.on(Event::MediaFailed { call_id: id("c1") });
    assert_eq!(reason(&state), Some(EndReason::MediaDenied));
    assert!(effects.contains(&Effect::Release));
    assert_eq!(
        sent(&effects),
        vec![("bob".into(), PeerMessage::Hangup { call_id: id("c1") })]
    );
}

#[test]
fn toggles_flip_local_tracks_and_tell_the_peer() {
    let (state, effects) = in_call(Role::Caller).on(Event::ToggleMic);
    let flags = MediaFlags {
        audio: false,
        video: true,
    };
    assert_eq!(state.active().unwrap().local, flags);
    assert_eq!(effects[0], Effect::SetLocalMedia(flags));
    assert_eq!(
        sent(&effects),
        vec![(
            "bob".into(),
            PeerMessage::Media {
                call_id: id("c1"),
                audio: false,
                video: true
            }
        )]
    );
    let (state, _) = state.on(Event::ToggleCamera);
    assert_eq!(
        state.active().unwrap().local,
        MediaFlags {
            audio: false,
            video: false
        }
    );
}

#[test]
fn sharing_a_screen_changes_the_sender_only_and_says_nothing_to_the_peer() {
    let call = in_call(Role::Caller);
    let (state, effects) = call.clone().on(Event::ToggleShare);
    assert_eq!(state, call, "the call itself does not change");
    assert_eq!(effects, vec![Effect::ToggleShare]);
    let ringing = CallState::Incoming {
        peer: "bob".into(),
        call_id: id("c1"),
        video: true,
    };
    assert_eq!(ringing.clone().on(Event::ToggleShare), (ringing, vec![]));
}

#[test]
fn remote_media_flags_follow_the_peer() {
    let (state, _) = in_call(Role::Caller).on(peer(
        "bob",
        PeerMessage::Media {
            call_id: id("c1"),
            audio: false,
            video: true,
        },
    ));
    assert!(!state.active().unwrap().remote.audio);
}

#[test]
fn negotiation_messages_reach_the_peer_connection_only_for_this_call() {
    let offer = PeerMessage::Offer {
        sdp: json!({"type":"offer","sdp":"v=0"}),
        call_id: Some(id("c1")),
    };
    let (_, effects) = in_call(Role::Callee).on(peer("bob", offer.clone()));
    assert_eq!(effects, vec![Effect::Negotiate(offer)]);
    let stale = PeerMessage::Candidate {
        sdp: json!(null),
        call_id: Some(id("old")),
    };
    let (_, effects) = in_call(Role::Callee).on(peer("bob", stale));
    assert!(effects.is_empty());
    let foreign = PeerMessage::Answer {
        sdp: json!({}),
        call_id: Some(id("c1")),
    };
    let (_, effects) = in_call(Role::Callee).on(peer("mallory", foreign));
    assert!(effects.is_empty());
}

#[test]
fn a_peer_going_offline_does_not_end_an_established_call() {
    let (state, effects) = in_call(Role::Caller).on(Event::PeerOffline("bob".into()));
    assert_eq!(state, in_call(Role::Caller));
    assert!(effects.is_empty());
}

#[test]
fn the_ended_card_leaves_by_button_or_timer() {
    let ended = CallState::Ended {
        peer: "bob".into(),
        call_id: id("c1"),
        reason: EndReason::Busy,
        video: true,
    };
    assert_eq!(ended.clone().on(Event::Dismiss).0, CallState::Idle);
    let timeout = |call_id: &str| Event::Timeout {
        timer: Timer::EndedLinger,
        call_id: id(call_id),
    };
    assert_eq!(ended.clone().on(timeout("c1")).0, CallState::Idle);
    assert_eq!(ended.clone().on(timeout("c0")).0, ended);
}

#[test]
fn late_media_for_a_finished_call_changes_nothing() {
    let (state, effects) = CallState::Idle.on(Event::MediaReady {
        call_id: id("c1"),
        video: true,
    });
    assert_eq!(state, CallState::Idle);
    assert!(effects.is_empty());
}

#[test]
fn reason_tags_match_the_test_hooks() {
    let tags: Vec<_> = [
        EndReason::Declined,
        EndReason::Busy,
        EndReason::NoAnswer,
        EndReason::HungUp { by_me: false },
        EndReason::ConnectionLost,
        EndReason::PeerOffline,
        EndReason::MediaDenied,
        EndReason::Cancelled,
    ]
    .iter()
    .map(|r| r.tag())
    .collect();
    assert_eq!(
        tags,
        [
            "declined",
            "busy",
            "no-answer",
            "hangup",
            "connection-lost",
            "peer-offline",
            "media-denied",
            "cancelled"
        ]
    );
}

#[test]
fn a_refusing_relay_ends_the_call_with_its_own_reason() {
    let connecting = connecting(Role::Callee);
    let (state, effects) = connecting.on(Event::Link {
        call_id: id("c1"),
        report: LinkReport::RelayRefused,
        now_ms: 0.0,
    });
    assert_eq!(reason(&state), Some(EndReason::RelayRefused));
    assert_eq!(EndReason::RelayRefused.tag(), "relay-refused");
    assert!(effects.contains(&Effect::Release));
    assert_eq!(
        sent(&effects),
        vec![("bob".into(), PeerMessage::Hangup { call_id: id("c1") })],
        "the peer is told, so it does not wait for a path that cannot come"
    );
}

#[test]
fn the_callee_connects_while_its_devices_still_open() {
    let (state, effects) = incoming("c1").on(Event::Accept);
    assert_eq!(phase(&state), Phase::OpeningDevices);
    // Its connection offers at once, so the connect timer runs from the accept.
    assert!(effects.contains(&Effect::StartTimer {
        timer: Timer::Connect,
        call_id: id("c1"),
        ms: CONNECT_TIMEOUT_MS
    }));
    // The caller is seen and heard before our camera is up: the call timer starts then.
    let (state, _) = state.on(link(LinkReport::Connected));
    assert_eq!(
        phase(&state),
        Phase::Connected {
            started_at_ms: 9000.0,
            recovered: None
        }
    );
    // Our devices join the working call; nothing restarts, no second timer.
    let (state, effects) = state.on(Event::MediaReady {
        call_id: id("c1"),
        video: true,
    });
    assert!(matches!(phase(&state), Phase::Connected { .. }));
    assert!(effects.is_empty(), "{effects:?}");
}

#[test]
fn a_callee_path_that_fails_before_the_devices_open_restarts_once() {
    let (state, _) = incoming("c1").on(Event::Accept);
    let (state, effects) = state.on(link(LinkReport::Failed));
    assert_eq!(phase(&state), Phase::Negotiating { restarted: true });
    assert_eq!(effects, vec![Effect::RestartIce]);
    let (state, effects) = state.on(Event::MediaReady {
        call_id: id("c1"),
        video: true,
    });
    assert_eq!(phase(&state), Phase::Negotiating { restarted: true });
    assert!(effects.is_empty(), "{effects:?}");
    let (state, _) = state.on(link(LinkReport::Failed));
    assert!(matches!(state, CallState::Ended { .. }), "{state:?}");
}

#[test]
fn a_callee_whose_devices_never_open_is_bounded_by_the_connect_timer() {
    let (state, _) = incoming("c1").on(Event::Accept);
    let (state, _) = state.on(fired(Timer::Connect));
    assert!(
        matches!(
            state,
            CallState::Ended {
                reason: EndReason::ConnectionLost,
                ..
            }
        ),
        "{state:?}"
    );
}

/// The devices an effect list opens: `Some(video)` when it opens any.
fn opens_camera(effects: &[Effect]) -> Option<bool> {
    effects.iter().find_map(|effect| match effect {
        Effect::OpenMedia { video, .. } => Some(*video),
        _ => None,
    })
}

#[test]
fn a_voice_call_says_so_in_its_invite_and_opens_no_camera_on_either_side() {
    let (_, effects) = CallState::Idle.on(Event::Dial {
        peer: "bob".into(),
        call_id: id("c1"),
        video: false,
    });
    let invite = PeerMessage::Invite {
        call_id: id("c1"),
        video: false,
    };
    assert_eq!(sent(&effects)[0], ("bob".into(), invite.clone()));
    assert_eq!(opens_camera(&effects), Some(false));

    let (ringing, _) = CallState::Idle.on(peer("alice", invite));
    assert!(matches!(ringing, CallState::Incoming { video: false, .. }));
    // Answering it "with video" cannot turn it into a video call.
    let (state, effects) = ringing.on(Event::Accept);
    assert_eq!(opens_camera(&effects), Some(false));
    let call = state.active().expect("answered");
    assert!(!call.local.video && !call.remote.video);
}

#[test]
fn a_video_call_can_be_answered_with_voice_only() {
    let (state, effects) = incoming("c1").on(Event::AcceptVoice);
    assert_eq!(opens_camera(&effects), Some(false));
    assert!(sent(&effects).contains(&("bob".into(), PeerMessage::Accept { call_id: id("c1") })));
    let call = state.active().expect("answered");
    // The caller's camera is on; ours never opens.
    assert!(!call.local.video && call.remote.video);
    // Once the microphone is open, the caller is told not to expect our picture.
    let (_, effects) = state.on(Event::MediaReady {
        call_id: id("c1"),
        video: false,
    });
    assert!(
        sent(&effects)
            .iter()
            .any(|(_, message)| matches!(message, PeerMessage::Media { video: false, .. }))
    );
}

#[test]
fn calling_someone_who_rings_us_with_voice_answers_with_voice() {
    let (state, effects) = incoming("c1").on(Event::Dial {
        peer: "bob".into(),
        call_id: id("c2"),
        video: false,
    });
    assert_eq!(opens_camera(&effects), Some(false));
    assert!(!state.active().expect("answered").local.video);
}

#[test]
fn crossing_invites_keep_voice_if_either_side_placed_a_voice_call() {
    let (state, effects) = outgoing("c9").on(peer(
        "bob",
        PeerMessage::Invite {
            call_id: id("c1"),
            video: false,
        },
    ));
    assert_eq!(opens_camera(&effects), Some(false));
    let call = state.active().expect("their call goes on");
    assert_eq!(call.call_id, id("c1"));
    assert!(!call.local.video && !call.remote.video);
}
