//! Contacts: requests, presence only between contacts, blocks, and who may call whom; against a
//! real server with real WebSocket clients.

mod common;

use common::{Browser, Socket, TestApp, json_answer, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use server::signaling::PresenceScope;

async fn act(browser: &Browser, action: &str, name: &str) -> (u16, Value) {
    let (status, body) = json_answer(
        browser
            .post(&format!("/contacts/{action}"))
            .json(&json!({"username": name})),
    )
    .await;
    (status.as_u16(), body)
}

async fn ok(browser: &Browser, action: &str, name: &str) {
    assert_eq!(
        act(browser, action, name).await,
        (200, json!({"flag": true})),
        "{action} {name}"
    );
}

async fn book(browser: &Browser) -> Value {
    let (status, body) = json_answer(browser.get("/contacts")).await;
    assert_eq!(status, 200);
    body
}

/// The state of `name` in `browser`'s book, if it is there.
async fn state_of(browser: &Browser, name: &str) -> Option<String> {
    book(browser).await["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .find(|c| c["username"] == name)
        .map(|c| c["state"].as_str().expect("state").to_owned())
}

/// Registers `name`, opens its socket and reads its greeting; the presence list it was given.
async fn online(app: &TestApp, name: &str) -> (Browser, Socket, Value) {
    let browser = app.user(name).await;
    let mut socket = browser.socket().await;
    socket.expect("hello").await;
    let presence = socket.expect("presence").await["online"].clone();
    (browser, socket, presence)
}

/// The next frame `socket` reads is `marker` (sent by `from` just now): nothing came before it.
async fn nothing_before(socket: &mut Socket, from: &mut Socket, to: &str, marker: &str) {
    from.send(json!({"type":"ringing","name":to,"call_id":marker}))
        .await;
    // A `history` notice (a call of this user's was recorded) says nothing about others.
    let mut next = socket.expect_any().await;
    while next["type"] == "history" {
        next = socket.expect_any().await;
    }
    assert_eq!(
        next["call_id"], marker,
        "nothing came before the marker: {next}"
    );
}

#[tokio::test]
async fn presence_is_shared_by_contacts_only_and_follows_the_book() {
    let app = spawn_app().await;
    let (alice, mut alice_socket, presence) = online(&app, "alice").await;
    assert_eq!(presence, json!(["alice"]), "a newcomer sees only itself");
    let (bob, mut bob_socket, presence) = online(&app, "bob").await;
    assert_eq!(presence, json!(["bob"]), "strangers are not listed");
    let (_carol, mut carol_socket, _) = online(&app, "carol").await;

    ok(&alice, "request", "Bob").await;
    bob_socket.expect("contacts").await;
    // Her own tabs are told too, to show the request as sent.
    alice_socket.expect("contacts").await;
    assert_eq!(state_of(&alice, "bob").await.as_deref(), Some("outgoing"));
    assert_eq!(state_of(&bob, "alice").await.as_deref(), Some("incoming"));
    // A request alone shares nothing: alice's next frame is bob's marker, not his presence.
    nothing_before(&mut alice_socket, &mut bob_socket, "alice", "m1").await;

    ok(&bob, "accept", "alice").await;
    assert_eq!(alice_socket.expect("online").await["username"], "bob");
    assert_eq!(bob_socket.expect("online").await["username"], "alice");
    assert_eq!(state_of(&alice, "bob").await.as_deref(), Some("mutual"));
    // Carol heard nothing of either.
    nothing_before(&mut carol_socket, &mut alice_socket, "carol", "m2").await;

    // A new connection of bob's lists his contacts who are online.
    let mut bob_tab = bob.socket().await;
    bob_tab.expect("hello").await;
    assert_eq!(
        bob_tab.expect("presence").await["online"],
        json!(["alice", "bob"])
    );
    drop(bob_tab);

    drop(bob_socket);
    assert_eq!(alice_socket.expect("offline").await["username"], "bob");
    let (bob_socket, ..) = (bob.socket().await.ready().await,);
    assert_eq!(alice_socket.expect("online").await["username"], "bob");

    ok(&alice, "remove", "bob").await;
    assert_eq!(alice_socket.expect("offline").await["username"], "bob");
    assert_eq!(
        state_of(&bob, "alice").await,
        None,
        "removed from both books"
    );
    drop(bob_socket);
}

#[tokio::test]
async fn a_request_answers_alike_whoever_the_name_belongs_to() {
    let app = spawn_app().await;
    let (alice, mut alice_socket, _) = online(&app, "alice").await;
    let (bob, mut bob_socket, _) = online(&app, "bob").await;
    let (_mallory, _mallory_socket, _) = online(&app, "mallory").await;
    ok(&bob, "block", "mallory").await;
    bob_socket.expect("contacts").await;

    // No account by that name, or one that blocked you: the same answer as any sent request,
    // and it is listed as sent.
    ok(&alice, "request", "nobody_here").await;
    assert_eq!(
        state_of(&alice, "nobody_here").await.as_deref(),
        Some("outgoing")
    );
    let mallory = app.browser();
    mallory
        .post_json("/user/login", "mallory", "correct horse")
        .await;
    ok(&mallory, "request", "bob").await;
    assert_eq!(state_of(&mallory, "bob").await.as_deref(), Some("outgoing"));
    // Bob is not told, and does not see it.
    nothing_before(&mut bob_socket, &mut alice_socket, "bob", "m1").await;
    assert_eq!(state_of(&bob, "mallory").await, None);
    assert_eq!(book(&bob).await["blocked"], json!(["mallory"]));
    // Nothing lists users: there is no such endpoint.
    let (status, _) = json_answer(alice.get("/contacts?all=1")).await;
    assert_eq!(status, 200);
    assert_eq!(
        book(&alice).await["contacts"].as_array().map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn a_blocked_user_can_neither_reach_nor_see_the_blocker() {
    // Everyone sees everyone on this server, except across a block.
    let app = spawn_app_with(|s| s.presence = PresenceScope::Everyone).await;
    let (alice, mut alice_socket, _) = online(&app, "alice").await;
    let (bob, mut bob_socket, presence) = online(&app, "bob").await;
    assert_eq!(presence, json!(["alice", "bob"]));
    assert_eq!(alice_socket.expect("online").await["username"], "bob");
    common::befriend(&alice, "alice", &bob, "bob").await;

    ok(&bob, "block", "alice").await;
    assert_eq!(alice_socket.expect("offline").await["username"], "bob");
    assert_eq!(bob_socket.expect("offline").await["username"], "alice");
    assert_eq!(state_of(&alice, "bob").await, None, "the contact ended");

    // A call to bob is refused exactly as a call to someone offline.
    alice_socket
        .send(json!({"type":"invite","name":"bob","call_id":"c1"}))
        .await;
    let refused = alice_socket.expect("error").await;
    alice_socket
        .send(json!({"type":"invite","name":"nobody_here","call_id":"c2"}))
        .await;
    let offline = alice_socket.expect("error").await;
    assert_eq!(refused["code"], offline["code"]);
    assert_eq!(refused["code"], "peer_offline");
    assert_eq!(
        refused["message"].as_str().map(|m| m.replace("bob", "X")),
        offline["message"]
            .as_str()
            .map(|m| m.replace("nobody_here", "X"))
    );
    // A reconnecting alice does not see bob either.
    let mut again = alice.socket().await;
    again.expect("hello").await;
    assert_eq!(again.expect("presence").await["online"], json!(["alice"]));

    ok(&bob, "unblock", "alice").await;
    assert_eq!(again.expect("online").await["username"], "bob");
}

#[tokio::test]
async fn calls_from_contacts_only_refuses_strangers_as_if_offline() {
    let app = spawn_app().await;
    let (alice, mut alice_socket, _) = online(&app, "alice").await;
    let (bob, mut bob_socket, _) = online(&app, "bob").await;
    let (_carol, mut carol_socket, _) = online(&app, "carol").await;
    common::befriend(&alice, "alice", &bob, "bob").await;
    bob_socket.expect("online").await;

    // Anyone who knows the name may call, by default (the seed's pages call by typed name).
    carol_socket
        .send(json!({"type":"invite","name":"bob","call_id":"c0"}))
        .await;
    assert_eq!(bob_socket.expect("invite").await["from"], "carol");

    let (status, body) = json_answer(
        bob.post("/contacts/settings")
            .json(&json!({"calls_from": "contacts"})),
    )
    .await;
    assert_eq!((status.as_u16(), body), (200, json!({"flag": true})));
    assert_eq!(book(&bob).await["calls_from"], "contacts");

    carol_socket
        .send(json!({"type":"invite","name":"bob","call_id":"c1"}))
        .await;
    let refused = carol_socket.expect("error").await;
    assert_eq!(refused["code"], "peer_offline");
    assert_eq!(refused["call_id"], "c1");
    alice_socket
        .send(json!({"type":"invite","name":"bob","call_id":"c2"}))
        .await;
    assert_eq!(bob_socket.expect("invite").await["from"], "alice");

    // The setting holds for bob's next connection too (read from the database).
    drop(bob_socket);
    let mut bob_socket = bob.socket().await.ready().await;
    carol_socket
        .send(json!({"type":"invite","name":"bob","call_id":"c3"}))
        .await;
    assert_eq!(carol_socket.expect("error").await["call_id"], "c3");
    nothing_before(&mut bob_socket, &mut alice_socket, "bob", "m1").await;
}

#[tokio::test]
async fn bad_contact_requests_get_clear_errors() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.user("bob").await;
    let code =
        |answer: (u16, Value)| (answer.0, answer.1["code"].as_str().unwrap_or("").to_owned());

    assert_eq!(
        code(act(&alice, "befriend", "bob").await),
        (400, "bad_request".into())
    );
    assert_eq!(
        code(act(&alice, "request", "alice").await),
        (400, "contact_yourself".into())
    );
    assert_eq!(
        code(act(&alice, "request", "ALICE").await),
        (400, "contact_yourself".into()),
        "the same name in another case"
    );
    assert_eq!(
        code(act(&alice, "accept", "bob").await),
        (404, "no_request".into())
    );
    assert_eq!(
        code(act(&alice, "request", "").await),
        (400, "username_empty".into())
    );
    let (status, body) = json_answer(
        alice
            .post("/contacts/request")
            .body("{")
            .header("content-type", "application/json"),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].clone()),
        (400, json!("bad_request"))
    );
    let (status, body) = json_answer(
        alice
            .post("/contacts/settings")
            .json(&json!({"calls_from": "martians"})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].clone()),
        (400, json!("bad_request"))
    );

    let stranger = app.browser();
    assert_eq!(code(act(&stranger, "request", "bob").await).0, 401);
    let (status, _) = json_answer(stranger.get("/contacts")).await;
    assert_eq!(status, 401);
    let (status, body) = json_answer(
        alice
            .post("/contacts/request")
            .header("origin", "http://evil.example")
            .json(&json!({"username": "bob"})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].clone()),
        (403, json!("cross_site"))
    );
    assert_eq!(state_of(&alice, "bob").await, None, "nothing was stored");
}

#[tokio::test]
async fn a_deleted_account_leaves_no_contact_behind_for_its_name() {
    let app = spawn_app().await;
    let (alice, mut alice_socket, _) = online(&app, "alice").await;
    let (bob, mut bob_socket, _) = online(&app, "bob").await;
    common::befriend(&alice, "alice", &bob, "bob").await;
    assert_eq!(alice_socket.expect("online").await["username"], "bob");
    bob_socket.expect("online").await;

    let (status, _) = json_answer(
        bob.post("/user/delete")
            .json(&json!({"password": "correct horse"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(alice_socket.expect("offline").await["username"], "bob");
    assert_eq!(state_of(&alice, "bob").await, None);

    // Someone new takes the name: a stranger to alice.
    let (new_bob, mut new_bob_socket, presence) = online(&app, "bob").await;
    assert_eq!(presence, json!(["bob"]));
    assert_eq!(book(&new_bob).await["contacts"], json!([]));
    nothing_before(&mut alice_socket, &mut new_bob_socket, "alice", "m1").await;
}

/// Many people adding and accepting contacts at the same moment: every action succeeds (SQLite
/// once answered some of them "database is locked", a 500, when two transactions that began as
/// readers both tried to write), and every book ends complete.
#[tokio::test]
async fn contact_actions_at_the_same_moment_all_succeed() {
    let app = spawn_app().await;
    const USERS: usize = 10;
    const REACH: usize = 3;
    let mut people = Vec::new();
    for i in 0..USERS {
        people.push(app.user(&format!("ring{i}")).await);
    }
    let pairs: Vec<(usize, usize)> = (0..USERS)
        .flat_map(|i| (1..=REACH).map(move |d| (i, (i + d) % USERS)))
        .collect();
    for (action, by_asker) in [("request", true), ("accept", false)] {
        let answers = futures::future::join_all(pairs.iter().map(|&(asker, asked)| {
            let (by, about) = if by_asker {
                (asker, asked)
            } else {
                (asked, asker)
            };
            let person = &people[by];
            async move {
                (
                    act(person, action, &format!("ring{about}")).await,
                    by,
                    about,
                )
            }
        }))
        .await;
        for ((status, body), by, about) in answers {
            assert_eq!(
                (status, body),
                (200, json!({"flag": true})),
                "ring{by} {action} ring{about}"
            );
        }
    }
    for (i, person) in people.iter().enumerate() {
        let contacts = book(person).await["contacts"].clone();
        let contacts = contacts.as_array().expect("contacts");
        assert_eq!(contacts.len(), 2 * REACH, "ring{i}: {contacts:?}");
        assert!(
            contacts.iter().all(|c| c["state"] == "mutual"),
            "ring{i}: {contacts:?}"
        );
    }
}

/// Contacts see who is in a call (an answered one): live, and in a new connection's first list;
/// it ends with the call; a stranger learns nothing of it.
#[tokio::test]
async fn contacts_see_who_is_in_a_call_and_strangers_do_not() {
    let app = spawn_app().await;
    let [alice, bob, carol, dave] = [
        app.user("alice").await,
        app.user("bob").await,
        app.user("carol").await,
        app.user("dave").await,
    ];
    common::befriend(&alice, "alice", &carol, "carol").await;
    common::befriend(&bob, "bob", &carol, "carol").await;
    let mut a = alice.socket().await.ready().await;
    let mut b = bob.socket().await.ready().await;
    let mut c = carol.socket().await;
    c.expect("hello").await;
    assert_eq!(
        c.expect("presence").await,
        json!({"type":"presence","online":["alice","bob","carol"]}),
        "nobody in a call yet"
    );
    let mut d = dave.socket().await.ready().await;

    // Ringing is not a call yet: the status changes when bob answers.
    a.send(json!({"type":"invite","name":"bob","call_id":"k1"}))
        .await;
    b.expect("invite").await;
    nothing_before(&mut c, &mut a, "carol", "before-accept").await;
    b.send(json!({"type":"accept","name":"alice","call_id":"k1"}))
        .await;
    a.expect("accept").await;
    for name in ["alice", "bob"] {
        assert_eq!(
            c.expect("status").await,
            json!({"type":"status","username":name,"in_call":true})
        );
    }
    nothing_before(&mut d, &mut a, "dave", "stranger").await;

    // A page opened now is told in its first presence list.
    let mut later = carol.socket().await;
    later.expect("hello").await;
    let presence = later.expect("presence").await;
    assert_eq!(presence["online"], json!(["alice", "bob", "carol"]));
    assert_eq!(presence["in_call"], json!(["alice", "bob"]));

    a.send(json!({"type":"hangup","name":"bob","call_id":"k1"}))
        .await;
    for socket in [&mut c, &mut later] {
        for name in ["alice", "bob"] {
            assert_eq!(
                socket.expect("status").await,
                json!({"type":"status","username":name,"in_call":false})
            );
        }
    }
    nothing_before(&mut d, &mut a, "dave", "after").await;
}
