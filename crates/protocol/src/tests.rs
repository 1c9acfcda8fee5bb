use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// The four shapes the seed's page sends, byte for byte as its JavaScript builds them.
fn seed_frames() -> Vec<Value> {
    vec![
        json!({"type":"offer","sdp":{"type":"offer","sdp":"v=0\r\n"},"name":"bob","from":"alice"}),
        json!({"type":"answer","sdp":{"type":"answer","sdp":"v=0\r\n"},"name":"alice","from":"bob"}),
        json!({"type":"candidate","sdp":{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0},"name":"bob","from":"alice"}),
        json!({"type":"leave","name":"bob","from":"alice"}),
    ]
}

#[test]
fn seed_envelopes_are_relayed_unchanged_but_for_from() {
    for frame in seed_frames() {
        let text = frame.to_string();
        let request = RelayRequest::parse(&text).expect("seed frame parses");
        assert_eq!(request.to(), frame["name"]);
        let delivered: Value = serde_json::from_str(&request.deliver_as("mallory")).unwrap();
        let mut expected = frame.clone();
        expected["from"] = json!("mallory");
        assert_eq!(delivered, expected);
    }
}

#[test]
fn seed_envelopes_decode_as_typed_deliveries() {
    for frame in seed_frames() {
        let message = ServerMessage::from_json(&frame.to_string()).expect("decodes");
        let ServerMessage::Peer(Delivered { from, message }) = message else {
            panic!("not a peer message: {frame}");
        };
        assert_eq!(from, frame["from"]);
        assert_eq!(message.call_id(), None);
    }
}

#[test]
fn unknown_fields_survive_the_relay() {
    let text = r#"{"type":"invite","name":"bob","call_id":"c1","client":"duet/1","x":[1,2]}"#;
    let request = RelayRequest::parse(text).unwrap();
    assert_eq!(
        (request.kind(), request.call_id()),
        (PeerKind::Invite, Some("c1"))
    );
    let delivered: Value = serde_json::from_str(&request.deliver_as("alice")).unwrap();
    assert_eq!(delivered["x"], json!([1, 2]));
    assert_eq!(delivered["from"], json!("alice"));
}

#[test]
fn bad_frames_get_the_documented_codes() {
    let cases = [
        ("not json", ErrorCode::Malformed),
        ("[1,2]", ErrorCode::Malformed),
        (r#"{"name":"bob"}"#, ErrorCode::Malformed),
        (r#"{"type":7,"name":"bob"}"#, ErrorCode::Malformed),
        (
            r#"{"type":"teleport","name":"bob"}"#,
            ErrorCode::UnknownType,
        ),
        (r#"{"type":"offer","name":"bob"}"#, ErrorCode::Malformed),
        (r#"{"type":"invite","name":"bob"}"#, ErrorCode::Malformed),
        (
            r#"{"type":"invite","name":"bob","call_id":"c","video":"no"}"#,
            ErrorCode::Malformed,
        ),
        (
            r#"{"type":"invite","name":"bob","call_id":"c","video":null}"#,
            ErrorCode::Malformed,
        ),
        (r#"{"type":"offer","sdp":{}}"#, ErrorCode::InvalidTarget),
        (
            r#"{"type":"offer","sdp":{},"name":"  "}"#,
            ErrorCode::InvalidTarget,
        ),
    ];
    for (text, code) in cases {
        let error = RelayRequest::parse(text).expect_err(text);
        assert_eq!(error.code(), code, "{text}: {error}");
    }
    let huge = format!(
        r#"{{"type":"offer","name":"bob","sdp":"{}"}}"#,
        "a".repeat(MAX_FRAME_BYTES)
    );
    assert_eq!(
        RelayRequest::parse(&huge).unwrap_err().code(),
        ErrorCode::TooLarge
    );
}

#[test]
fn an_invite_says_whether_it_is_a_voice_call_and_an_older_one_asks_for_video() {
    let voice: PeerMessage =
        serde_json::from_str(r#"{"type":"invite","call_id":"c","video":false}"#).unwrap();
    assert_eq!(
        voice,
        PeerMessage::Invite {
            call_id: "c".into(),
            video: false
        }
    );
    let older: PeerMessage = serde_json::from_str(r#"{"type":"invite","call_id":"c"}"#).unwrap();
    assert_eq!(
        older,
        PeerMessage::Invite {
            call_id: "c".into(),
            video: true
        }
    );
    for text in [
        r#"{"type":"invite","name":"bob","call_id":"c","video":false}"#,
        r#"{"type":"invite","name":"bob","call_id":"c"}"#,
    ] {
        let request = RelayRequest::parse(text).expect(text);
        assert_eq!(request.kind(), PeerKind::Invite);
    }
}

#[test]
fn every_peer_message_round_trips() {
    let id = || "call-1".to_owned();
    let messages = vec![
        PeerMessage::Offer {
            sdp: json!({"type":"offer","sdp":"v=0"}),
            call_id: Some(id()),
        },
        PeerMessage::Answer {
            sdp: json!({"type":"answer","sdp":"v=0"}),
            call_id: None,
        },
        PeerMessage::Candidate {
            sdp: Value::Null,
            call_id: Some(id()),
        },
        PeerMessage::Leave { call_id: None },
        PeerMessage::Invite {
            call_id: id(),
            video: true,
        },
        PeerMessage::Invite {
            call_id: id(),
            video: false,
        },
        PeerMessage::Ringing { call_id: id() },
        PeerMessage::Accept { call_id: id() },
        PeerMessage::Decline { call_id: id() },
        PeerMessage::Cancel { call_id: id() },
        PeerMessage::Busy { call_id: id() },
        PeerMessage::Hangup { call_id: id() },
        PeerMessage::Media {
            call_id: id(),
            audio: false,
            video: true,
        },
    ];
    for message in messages {
        let frame = ClientFrame {
            name: "bob".into(),
            message: message.clone(),
        };
        let text = frame.to_json();
        assert_eq!(serde_json::from_str::<ClientFrame>(&text).unwrap(), frame);
        let sent: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(sent["type"], message.kind().as_str());
        let relayed = RelayRequest::parse(&text).unwrap();
        assert_eq!(
            (relayed.kind(), relayed.call_id()),
            (message.kind(), message.call_id())
        );
        let delivered = ServerMessage::from_json(&relayed.deliver_as("alice")).unwrap();
        assert_eq!(
            delivered,
            ServerMessage::Peer(Delivered {
                from: "alice".into(),
                message
            })
        );
    }
}

#[test]
fn server_events_round_trip() {
    let events = vec![
        ServerEvent::Hello {
            username: "张伟".into(),
            ice_servers: json!([{"urls":"stun:127.0.0.1:3478"}]),
            ice_transport_policy: IceTransportPolicy::All,
        },
        ServerEvent::Hello {
            username: "bob".into(),
            ice_servers: json!([{"urls":["turn:127.0.0.1:3478"],"username":"1700000000:bob","credential":"x"}]),
            ice_transport_policy: IceTransportPolicy::Relay,
        },
        ServerEvent::Ice {
            ice_servers: json!([]),
        },
        ServerEvent::Presence {
            online: vec!["a".into(), "b".into()],
            more: false,
            in_call: vec![],
        },
        ServerEvent::Presence {
            online: vec!["c".into(), "d".into()],
            more: true,
            in_call: vec!["d".into()],
        },
        ServerEvent::Status {
            username: "d".into(),
            in_call: true,
        },
        ServerEvent::Online {
            username: "a".into(),
        },
        ServerEvent::Offline {
            username: "a".into(),
        },
        ServerEvent::error(ErrorCode::PeerOffline, "bob is not online"),
        ServerEvent::call_error(ErrorCode::PeerOffline, "bob is not online", Some("k3j9")),
    ];
    for event in events {
        let text = event.to_json();
        assert_eq!(
            ServerMessage::from_json(&text).unwrap(),
            ServerMessage::Event(event)
        );
    }
    assert_eq!(
        serde_json::to_value(ServerEvent::error(ErrorCode::TooLarge, "x")).unwrap(),
        json!({"type":"error","code":"too_large","message":"x"})
    );
    assert_eq!(
        serde_json::to_value(ServerEvent::call_error(
            ErrorCode::PeerOffline,
            "x",
            Some("c1")
        ))
        .unwrap(),
        json!({"type":"error","code":"peer_offline","message":"x","call_id":"c1"})
    );
    for code in ErrorCode::ALL {
        assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
    }
}

#[test]
fn usernames_follow_the_rules() {
    assert_eq!(normalize_username(" 张伟 ").unwrap(), "张伟");
    assert_eq!(normalize_username("a.b-c_9").unwrap(), "a.b-c_9");
    // "é" typed as e + combining accent is the same account as the precomposed one.
    assert_eq!(normalize_username("e\u{301}").unwrap(), "\u{e9}");
    assert_eq!(username_key("Bob"), username_key("bOB"));
    assert_eq!(normalize_username(""), Err(AccountError::UsernameEmpty));
    assert_eq!(
        normalize_username(&"x".repeat(33)),
        Err(AccountError::UsernameTooLong)
    );
    assert!(normalize_username(&"张".repeat(32)).is_ok());
    assert_eq!(
        normalize_username("a b"),
        Err(AccountError::UsernameCharacters)
    );
    assert_eq!(
        normalize_username("<script>"),
        Err(AccountError::UsernameCharacters)
    );
    assert_eq!(
        validate_password("short"),
        Err(AccountError::PasswordTooShort)
    );
    assert!(validate_password("long enough").is_ok());
    assert_eq!(
        validate_password(&"p".repeat(129)),
        Err(AccountError::PasswordTooLong)
    );
}

proptest! {
    #[test]
    fn the_decoder_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = RelayRequest::parse(&text);
        let _ = ServerMessage::from_json(&text);
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            let _ = ServerMessage::from_value(value);
        }
    }

    #[test]
    fn the_decoder_never_panics_on_json(
        kind in prop_oneof![Just("offer".to_owned()), Just("invite".to_owned()), Just("media".to_owned()), "[a-z]{0,8}"],
        name in proptest::option::of("\\PC{0,40}"),
        sdp in proptest::option::of(any::<i64>()),
        call_id in proptest::option::of(any::<bool>()),
    ) {
        let mut object = serde_json::Map::new();
        object.insert("type".into(), json!(kind));
        if let Some(name) = &name { object.insert("name".into(), json!(name)); }
        if let Some(sdp) = sdp { object.insert("sdp".into(), json!(sdp)); }
        if let Some(flag) = call_id { object.insert("call_id".into(), if flag { json!("c") } else { json!(1) }); }
        let text = Value::Object(object).to_string();
        if let Ok(request) = RelayRequest::parse(&text) {
            prop_assert_eq!(Some(request.to()), name.as_deref());
            let delivered: Value = serde_json::from_str(&request.deliver_as("z")).unwrap();
            prop_assert_eq!(&delivered["type"], &json!(kind));
        }
    }
}

#[test]
fn from_is_set_once_whether_or_not_the_sender_wrote_one() {
    for text in [
        r#"  {"type":"hangup","name":"bob","call_id":"c"}"#,
        r#"{"type":"hangup","name":"bob","call_id":"c","from":null}"#,
        r#"{"from":"bob","type":"hangup","name":"bob","call_id":"c"}"#,
    ] {
        let delivered = RelayRequest::parse(text).unwrap().deliver_as("al\"ice");
        assert_eq!(delivered.matches("\"from\"").count(), 1, "{delivered}");
        let value: Value = serde_json::from_str(&delivered).unwrap();
        assert_eq!(value["from"], "al\"ice");
        assert_eq!(value["call_id"], "c");
    }
}

#[test]
fn account_refusals_carry_a_code_the_client_can_translate() {
    let answer = FlagAnswer::refused(
        AuthErrorCode::WrongCredentials,
        "wrong username or password",
    );
    assert_eq!(
        serde_json::to_value(&answer).unwrap(),
        json!({"flag":false,"error":"wrong username or password","code":"wrong_credentials"})
    );
    assert_eq!(
        serde_json::to_value(FlagAnswer::ok()).unwrap(),
        json!({"flag":true})
    );
    // The seed's own answer shape still reads, and a newer server's codes do not break older clients.
    let seed: FlagAnswer = serde_json::from_value(json!({"flag":false})).unwrap();
    assert_eq!((seed.flag, seed.code), (false, None));
    let newer: FlagAnswer =
        serde_json::from_value(json!({"flag":false,"error":"x","code":"from_the_future"})).unwrap();
    assert_eq!(newer.code, Some(AuthErrorCode::Unknown));
    for error in [
        AccountError::UsernameEmpty,
        AccountError::UsernameTooLong,
        AccountError::UsernameCharacters,
        AccountError::PasswordTooShort,
        AccountError::PasswordTooLong,
    ] {
        assert_eq!(AuthErrorCode::from(&error).account_error(), Some(error));
    }
    assert_eq!(AuthErrorCode::Throttled.account_error(), None);
}

#[test]
fn hello_names_the_policy_only_in_relay_mode() {
    let all = ServerEvent::Hello {
        username: "alice".into(),
        ice_servers: json!([]),
        ice_transport_policy: IceTransportPolicy::All,
    };
    assert_eq!(
        all.to_json(),
        r#"{"type":"hello","username":"alice","ice_servers":[]}"#
    );
    let relay: ServerEvent = serde_json::from_str(
        r#"{"type":"hello","username":"alice","ice_servers":[],"ice_transport_policy":"relay"}"#,
    )
    .unwrap();
    assert!(matches!(
        relay,
        ServerEvent::Hello {
            ice_transport_policy: IceTransportPolicy::Relay,
            ..
        }
    ));
    let ice: ServerEvent = serde_json::from_str(r#"{"type":"ice","ice_servers":[]}"#).unwrap();
    assert_eq!(
        ice,
        ServerEvent::Ice {
            ice_servers: json!([])
        }
    );
}

/// What serde derives for the same shapes: `ServerMessage`'s decoder before `decode.rs`, kept
/// here as the reference the flat decoder must agree with.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum DerivedServerMessage {
    Event(ServerEvent),
    Peer(Delivered),
}

impl From<DerivedServerMessage> for ServerMessage {
    fn from(derived: DerivedServerMessage) -> Self {
        match derived {
            DerivedServerMessage::Event(event) => Self::Event(event),
            DerivedServerMessage::Peer(delivered) => Self::Peer(delivered),
        }
    }
}

/// Each field a server frame may have, with values of the right type, the wrong type and null.
fn field_pools() -> Vec<(&'static str, Vec<Value>)> {
    let text = vec![json!("bob"), json!(""), json!(1), Value::Null];
    let object = vec![
        json!({"type": "offer", "sdp": "v=0"}),
        json!([]),
        Value::Null,
        json!("x"),
    ];
    let flag = vec![json!(true), json!(false), json!("yes"), Value::Null];
    vec![
        ("from", text.clone()),
        ("name", text.clone()),
        ("username", text.clone()),
        ("message", text.clone()),
        ("call_id", text),
        ("sdp", object.clone()),
        ("ice_servers", object),
        ("audio", flag.clone()),
        ("video", flag),
        (
            "ice_transport_policy",
            vec![json!("relay"), json!("all"), json!("none")],
        ),
        (
            "online",
            vec![
                json!(["a", "b"]),
                json!([]),
                json!([1]),
                json!("a"),
                Value::Null,
            ],
        ),
        (
            "more",
            vec![json!(true), json!(false), json!(0), Value::Null],
        ),
        (
            "in_call",
            vec![
                json!(["a"]),
                json!([]),
                json!(true),
                json!(false),
                Value::Null,
            ],
        ),
        (
            "code",
            vec![
                json!("malformed"),
                json!("peer_offline"),
                json!("nope"),
                Value::Null,
            ],
        ),
    ]
}

const FRAME_TYPES: [&str; 21] = [
    "hello",
    "ice",
    "presence",
    "online",
    "offline",
    "status",
    "error",
    "offer",
    "answer",
    "candidate",
    "leave",
    "invite",
    "ringing",
    "accept",
    "decline",
    "cancel",
    "busy",
    "hangup",
    "media",
    "nope",
    "",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn the_flat_decoder_agrees_with_the_derived_one(
        kind in proptest::option::of(0..FRAME_TYPES.len()),
        picks in proptest::collection::vec(proptest::option::of(0usize..5), 14),
    ) {
        let mut object = serde_json::Map::new();
        if let Some(kind) = kind {
            object.insert("type".into(), json!(FRAME_TYPES[kind]));
        }
        for ((field, pool), pick) in field_pools().into_iter().zip(picks) {
            if let Some(pick) = pick {
                object.insert(field.into(), pool[pick % pool.len()].clone());
            }
        }
        let text = Value::Object(object).to_string();
        let derived = serde_json::from_str::<DerivedServerMessage>(&text).map(ServerMessage::from);
        let flat = ServerMessage::from_json(&text);
        // The browser's path: parsed first (by `JSON.parse`), then decoded from the value.
        let parsed = ServerMessage::from_value(serde_json::from_str(&text).unwrap());
        prop_assert_eq!(flat.as_ref().ok(), parsed.as_ref().ok(), "{}", text);
        match derived {
            Ok(expected) => prop_assert_eq!(flat.ok(), Some(expected), "{}", text),
            Err(_) => prop_assert!(flat.is_err(), "{} decoded as {:?}", text, flat),
        }
    }
}

#[test]
fn a_trickle_end_keeps_its_null_and_a_missing_sdp_is_refused() {
    let end = ServerMessage::from_json(r#"{"type":"candidate","from":"bob","sdp":null}"#);
    assert_eq!(
        end.ok(),
        Some(ServerMessage::Peer(Delivered {
            from: "bob".into(),
            message: PeerMessage::Candidate {
                sdp: Value::Null,
                call_id: None
            },
        }))
    );
    let error = ServerMessage::from_json(r#"{"type":"candidate","from":"bob"}"#).unwrap_err();
    assert!(error.to_string().contains("missing field `sdp`"), "{error}");
    let error = ServerMessage::from_json(r#"{"type":"teleport","from":"bob"}"#).unwrap_err();
    assert!(
        error.to_string().contains("unknown frame type `teleport`"),
        "{error}"
    );
}
