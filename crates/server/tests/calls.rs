//! Call history: written by the server from the frames it relayed, per user, paged; against a
//! real server with real WebSocket clients.

mod common;

use std::time::Duration;

use common::{Browser, Socket, json_answer, spawn_app};
use serde_json::{Value, json};

async fn history(browser: &Browser, query: &str) -> Value {
    let (status, body) = json_answer(browser.get(&format!("/calls{query}"))).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// `browser`'s history once it holds `count` calls (records are written as calls end, off the
/// relay's path: wait for them, for at most five seconds).
async fn calls(browser: &Browser, count: usize) -> Vec<Value> {
    for _ in 0..100 {
        let calls = history(browser, "").await["calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if calls.len() >= count {
            assert_eq!(calls.len(), count, "{calls:?}");
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{count} calls were not recorded");
}

async fn frame(from: &mut Socket, to: &mut Socket, kind: &str, name: &str, call_id: &str) {
    from.send(json!({"type": kind, "name": name, "call_id": call_id}))
        .await;
    assert_eq!(to.expect(kind).await["call_id"], call_id);
}

#[tokio::test]
async fn each_call_is_recorded_for_both_as_each_saw_it() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("Bob").await;
    let mut a = alice.socket().await.ready().await;
    let mut b = bob.socket().await.ready().await;

    // Answered, then hung up.
    frame(&mut a, &mut b, "invite", "bob", "c1").await;
    frame(&mut b, &mut a, "accept", "alice", "c1").await;
    frame(&mut a, &mut b, "hangup", "bob", "c1").await;
    // Both pages are told when it is written.
    a.expect("history").await;
    b.expect("history").await;
    let mine = calls(&alice, 1).await;
    assert_eq!(mine[0]["peer"], "Bob", "named as registered, not as typed");
    assert_eq!(mine[0]["outgoing"], true);
    assert_eq!(mine[0]["outcome"], "answered");
    assert!(mine[0]["duration_ms"].as_i64().is_some_and(|ms| ms >= 0));
    let theirs = calls(&bob, 1).await;
    assert_eq!(
        (theirs[0]["outgoing"].clone(), theirs[0]["outcome"].clone()),
        (json!(false), json!("answered"))
    );

    // Cancelled while ringing: missed for bob, who has not seen it yet.
    frame(&mut a, &mut b, "invite", "bob", "c2").await;
    frame(&mut a, &mut b, "cancel", "bob", "c2").await;
    let theirs = calls(&bob, 2).await;
    assert_eq!(theirs[0]["call_id"], "c2", "newest first");
    assert_eq!(theirs[0]["outcome"], "missed");
    assert_eq!(calls(&alice, 2).await[0]["outcome"], "cancelled");
    assert_eq!(history(&bob, "").await["missed_unseen"], 1);

    // Declined, and busy.
    frame(&mut b, &mut a, "invite", "alice", "c3").await;
    frame(&mut a, &mut b, "decline", "bob", "c3").await;
    frame(&mut a, &mut b, "invite", "bob", "c4").await;
    frame(&mut b, &mut a, "busy", "alice", "c4").await;
    let mine = calls(&alice, 4).await;
    let outcomes: Vec<&str> = mine.iter().filter_map(|c| c["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["busy", "declined", "cancelled", "answered"]);
    assert_eq!(calls(&bob, 4).await[0]["outcome"], "missed");
    assert_eq!(history(&bob, "").await["missed_unseen"], 2);

    // Seen: counted no more (on any device: it is the server's).
    let (status, _) = json_answer(bob.post("/calls/seen")).await;
    assert_eq!(status, 200);
    assert_eq!(history(&bob, "").await["missed_unseen"], 0);

    // A ringing call ends when the callee's last connection closes.
    frame(&mut a, &mut b, "invite", "bob", "c5").await;
    drop(b);
    let mine = calls(&alice, 5).await;
    assert_eq!(mine[0]["outcome"], "failed");
    assert_eq!(calls(&bob, 5).await[0]["outcome"], "missed");

    // Deleting my record leaves yours.
    let (status, _) = json_answer(bob.post("/calls/forget").json(&json!({"call_id": "c5"}))).await;
    assert_eq!(status, 200);
    assert_eq!(calls(&bob, 4).await[0]["call_id"], "c4");
    assert_eq!(calls(&alice, 5).await[0]["call_id"], "c5");

    // In pages.
    let first = history(&alice, "?limit=2").await;
    assert_eq!(first["calls"].as_array().map(Vec::len), Some(2));
    let before = first["next_before"].as_i64().expect("a next page");
    let rest = history(&alice, &format!("?limit=10&before={before}")).await;
    let ids: Vec<&str> = rest["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter_map(|c| c["call_id"].as_str())
        .collect();
    assert!(!ids.contains(&"c5") && ids.contains(&"c1"), "{ids:?}");
    assert!(rest.get("next_before").is_none());
}

#[tokio::test]
async fn frames_of_others_and_refused_calls_leave_no_record() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let mut a = alice.socket().await.ready().await;
    let mut b = bob.socket().await.ready().await;
    let mut c = carol.socket().await.ready().await;
    frame(&mut a, &mut b, "invite", "bob", "x1").await;
    // Carol cannot end a call that is not hers.
    frame(&mut c, &mut a, "decline", "alice", "x1").await;
    frame(&mut b, &mut a, "accept", "alice", "x1").await;
    frame(&mut b, &mut a, "hangup", "alice", "x1").await;
    assert_eq!(calls(&alice, 1).await[0]["outcome"], "answered");
    assert_eq!(history(&carol, "").await["calls"], json!([]));
    // An invite to nobody is refused, and recorded nowhere.
    a.send(json!({"type":"invite","name":"nobody_here","call_id":"x2"}))
        .await;
    assert_eq!(a.expect("error").await["call_id"], "x2");
    frame(&mut a, &mut b, "invite", "bob", "x3").await;
    frame(&mut a, &mut b, "cancel", "bob", "x3").await;
    let ids: Vec<String> = calls(&alice, 2)
        .await
        .iter()
        .filter_map(|c| c["call_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids, ["x3", "x1"]);
}

#[tokio::test]
async fn bad_history_requests_get_clear_errors() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    for query in ["?limit=0", "?limit=101", "?limit=many", "?before=yesterday"] {
        let (status, body) = json_answer(alice.get(&format!("/calls{query}"))).await;
        assert_eq!(
            (status.as_u16(), body["code"].clone()),
            (400, json!("bad_request")),
            "{query}"
        );
    }
    let (status, body) = json_answer(alice.post("/calls/forget").json(&json!({"id": 1}))).await;
    assert_eq!(
        (status.as_u16(), body["code"].clone()),
        (400, json!("bad_request"))
    );
    let stranger = app.browser();
    let (status, _) = json_answer(stranger.get("/calls")).await;
    assert_eq!(status, 401);
}
