//! Presence, calls and logouts across instances through Redis (issue #17): two real servers on
//! loopback ports share the test run's database and a private `redis-server`; real WebSocket
//! clients on each.

mod common;

use std::time::Duration;

use common::{Browser, Socket, TestApp, json_answer, start, test_settings};
use futures::StreamExt;
use serde_json::{Value, json};
use server::signaling::PresenceScope;
use tokio_tungstenite::tungstenite::Message;

/// Two instances on one database and one Redis, each with `configure` applied.
async fn linked_instances(
    dir: &std::path::Path,
    redis: &common::redis::RedisServer,
    configure: impl Fn(&mut server::config::Settings),
) -> (TestApp, TestApp) {
    let instance = || {
        let mut settings = test_settings(dir);
        settings.redis_url = Some(redis.url());
        configure(&mut settings);
        start(settings)
    };
    let first = instance().await;
    let second = instance().await;
    (first, second)
}

/// The same browser (its cookies) talking to `app`: cookies are per host, not per port, as
/// behind a balancer.
fn same_browser_on(browser: &Browser, app: &TestApp) -> Browser {
    Browser {
        http: browser.http.clone(),
        jar: browser.jar.clone(),
        base: app.url(""),
    }
}

/// The next frame of `kind` whose fields match `wanted`, within `limit` (frames of other kinds
/// or fields are skipped).
async fn wait_for(socket: &mut Socket, kind: &str, wanted: Value, limit: Duration) -> Value {
    let matches = |frame: &Value| {
        wanted
            .as_object()
            .is_some_and(|fields| fields.iter().all(|(k, v)| &frame[k] == v))
    };
    // Read directly: the socket helper's own wait gives up after 5 s of silence.
    tokio::time::timeout(limit, async {
        loop {
            let frame = match socket.stream.next().await {
                Some(Ok(Message::Text(text))) => {
                    serde_json::from_str::<Value>(&text).expect("JSON from server")
                }
                Some(Ok(_)) => continue,
                other => panic!("connection ended while waiting for {kind}: {other:?}"),
            };
            if frame["type"] == kind && matches(&frame) {
                return frame;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind} {wanted} within {limit:?}"))
}

/// Waits, a real condition, until `count_query` reads `expected` in the database.
async fn wait_for_rows(app: &TestApp, count_query: &str, expected: i64) {
    for _ in 0..100 {
        if app.db_number(count_query).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.db_number(count_query).await, expected, "{count_query}");
}

/// Contacts on different instances see each other come online, call each other, see each other
/// in a call, and the call is recorded once for each of them.
#[tokio::test]
async fn contacts_on_two_instances_see_and_call_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let redis = common::redis::RedisServer::start().await;
    let (first, second) = linked_instances(dir.path(), &redis, |_| {}).await;
    let ann = first.user("ann").await;
    let bob = second.user("bob").await;
    common::befriend(&ann, "ann", &bob, "bob").await;
    let stranger = second.user("stranger").await;

    let mut ann_tab = ann.socket().await.ready().await;
    let mut bob_tab = bob.socket().await.ready().await;
    let mut stranger_tab = stranger.socket().await.ready().await;
    let within = Duration::from_secs(10);
    wait_for(&mut ann_tab, "online", json!({"username": "bob"}), within).await;

    ann_tab
        .send(json!({"type":"invite","name":"bob","call_id":"x1"}))
        .await;
    let invite = wait_for(&mut bob_tab, "invite", json!({"call_id": "x1"}), within).await;
    assert_eq!(invite["from"], "ann");
    bob_tab
        .send(json!({"type":"accept","name":"ann","call_id":"x1"}))
        .await;
    let accept = wait_for(&mut ann_tab, "accept", json!({"call_id": "x1"}), within).await;
    assert_eq!(accept["from"], "bob");
    // Bob's instance counts his call and tells ann's.
    wait_for(
        &mut ann_tab,
        "status",
        json!({"username": "bob", "in_call": true}),
        within,
    )
    .await;
    ann_tab
        .send(json!({"type":"hangup","name":"bob","call_id":"x1"}))
        .await;
    wait_for(&mut bob_tab, "hangup", json!({"call_id": "x1"}), within).await;
    // Both instances saw the call end; each user has it once in their history.
    wait_for_rows(
        &first,
        "SELECT COUNT(*) FROM call_records WHERE call_id = 'x1' AND outcome = 'answered'",
        2,
    )
    .await;

    // A stranger on bob's instance may ring ann by name (calls from anyone, the default)...
    stranger_tab
        .send(json!({"type":"invite","name":"ann","call_id":"s1"}))
        .await;
    wait_for(&mut ann_tab, "invite", json!({"call_id": "s1"}), within).await;
    // ...until she blocks them on her instance: then, on theirs, she is offline to them.
    let (status, answer) = json_answer(
        ann.post("/contacts/block")
            .json(&json!({"username": "stranger"})),
    )
    .await;
    assert!(status.is_success(), "{status} {answer}");
    let refused = tokio::time::timeout(within, async {
        loop {
            stranger_tab
                .send(json!({"type":"invite","name":"ann","call_id":"s2"}))
                .await;
            let answer = stranger_tab.expect_any().await;
            if answer["type"] == "error" {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("refused once the block reaches the other instance");
    assert_eq!(refused["code"], "peer_offline", "{refused}");

    drop(bob_tab);
    wait_for(&mut ann_tab, "offline", json!({"username": "bob"}), within).await;
}

/// Logging out through one instance closes that login's socket on the other at once (not at
/// the other's next look at the session).
#[tokio::test]
async fn logging_out_on_one_instance_closes_the_socket_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let redis = common::redis::RedisServer::start().await;
    let (first, second) = linked_instances(dir.path(), &redis, |_| {}).await;
    let cleo = first.user("cleo").await;
    let cleo_there = same_browser_on(&cleo, &second);
    let mut tab = cleo_there.socket().await.ready().await;
    wait_for_link(&redis).await;

    let (status, answer) = json_answer(cleo.post("/user/logout")).await;
    assert!(status.is_success(), "{status} {answer}");
    let closed = tokio::time::timeout(Duration::from_secs(3), tab.expect_close())
        .await
        .expect("the socket on the other instance closes at once");
    assert_eq!(closed, 4001, "session ended");
}

/// Waits until both instances are subscribed to each other: Redis counts the subscribers of
/// the channel every instance listens on.
async fn wait_for_link(redis: &common::redis::RedisServer) {
    for _ in 0..100 {
        if subscribers(&redis.url()).await >= 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the instances did not link through Redis");
}

async fn subscribers(url: &str) -> i64 {
    let Ok(client) = redis::Client::open(url) else {
        return 0;
    };
    let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
        return 0;
    };
    let answer: redis::RedisResult<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("duet:all")
        .query_async(&mut connection)
        .await;
    answer.map(|(_, count)| count).unwrap_or(0)
}

/// Redis stopped for a while: users of one instance keep calling each other, a frame for a
/// user of the other instance is answered with an error, and once Redis is back each sees the
/// other's users again within seconds.
#[tokio::test]
async fn without_redis_each_instance_keeps_its_own_calls_and_presence_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = common::redis::RedisServer::start().await;
    let (first, second) =
        linked_instances(dir.path(), &redis, |s| s.presence = PresenceScope::Everyone).await;
    let mut dee = first.user("dee").await.socket().await.ready().await;
    let mut eli = first.user("eli").await.socket().await.ready().await;
    let mut fay = second.user("fay").await.socket().await.ready().await;
    let within = Duration::from_secs(10);
    wait_for(&mut dee, "online", json!({"username": "fay"}), within).await;

    redis.stop();
    wait_for_unready(&first).await;
    dee.send(json!({"type":"invite","name":"eli","call_id":"local"}))
        .await;
    wait_for(&mut eli, "invite", json!({"call_id": "local"}), within).await;
    dee.send(json!({"type":"invite","name":"fay","call_id":"remote"}))
        .await;
    let refused = wait_for(&mut dee, "error", json!({"call_id": "remote"}), within).await;
    assert_eq!(refused["code"], "peer_offline", "{refused}");
    // Unheard from, the other instance's users go offline.
    wait_for(&mut dee, "offline", json!({"username": "fay"}), within).await;

    redis.restart().await;
    wait_for(
        &mut dee,
        "online",
        json!({"username": "fay"}),
        Duration::from_secs(5),
    )
    .await;
    wait_for(
        &mut fay,
        "online",
        json!({"username": "dee"}),
        Duration::from_secs(5),
    )
    .await;
    dee.send(json!({"type":"invite","name":"fay","call_id":"again"}))
        .await;
    wait_for(&mut fay, "invite", json!({"call_id": "again"}), within).await;
}

/// Until `app` says it is not ready (its Redis does not answer).
async fn wait_for_unready(app: &TestApp) {
    for _ in 0..100 {
        let status = reqwest::get(app.url("/healthz"))
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if status == 503 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("still ready without Redis");
}

/// A user with tabs on two instances: a call rings in both, and answering in one tells the
/// other (so it stops ringing), across instances.
#[tokio::test]
async fn answering_on_one_instance_stops_the_ringing_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let redis = common::redis::RedisServer::start().await;
    let (first, second) =
        linked_instances(dir.path(), &redis, |s| s.presence = PresenceScope::Everyone).await;
    let gus = first.user("gus").await;
    let mut gus_here = gus.socket().await.ready().await;
    // Hal, on the other instance, sees gus's tab on the first: listed, or announced soon after.
    let mut hal = second.user("hal").await.socket().await;
    hal.expect("hello").await;
    let listed = hal.expect("presence").await;
    let within = Duration::from_secs(10);
    if !listed["online"]
        .as_array()
        .is_some_and(|names| names.contains(&json!("gus")))
    {
        wait_for(&mut hal, "online", json!({"username": "gus"}), within).await;
    }
    let mut gus_there = same_browser_on(&gus, &second).socket().await.ready().await;

    hal.send(json!({"type":"invite","name":"gus","call_id":"t1"}))
        .await;
    wait_for(&mut gus_here, "invite", json!({"call_id": "t1"}), within).await;
    wait_for(&mut gus_there, "invite", json!({"call_id": "t1"}), within).await;
    gus_here
        .send(json!({"type":"accept","name":"hal","call_id":"t1"}))
        .await;
    wait_for(&mut hal, "accept", json!({"call_id": "t1"}), within).await;
    let echo = wait_for(&mut gus_there, "accept", json!({"call_id": "t1"}), within).await;
    assert_eq!(echo["from"], "gus", "its own answer, from the other tab");
}
