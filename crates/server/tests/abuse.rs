//! `/user/*` under abuse: concurrent guessing, junk input, registration sprays, hash floods,
//! cross-site forms — each against a real server, over real HTTP.

mod common;

use common::{json_answer, spawn_app_with};
use futures::future::join_all;
use serde_json::{Value, json};

/// `(status, body, Retry-After)` of one request.
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value, Option<u64>) {
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, retry_after)
}

fn credentials(username: &str, password: &str) -> Value {
    json!({"username": username, "password": password})
}

#[tokio::test]
async fn concurrent_wrong_passwords_get_no_more_checks_than_the_limit() {
    let app = spawn_app_with(|s| {
        s.login_failures = 3;
        s.hash_queue = 1_000;
    })
    .await;
    app.user("victim").await;
    let attacker = app.browser();
    let guesses = (0..200).map(|i| {
        answer(
            attacker
                .post("/user/login")
                .json(&credentials("victim", &format!("guess number {i}"))),
        )
    });
    let answers = join_all(guesses).await;
    let checked = answers
        .iter()
        .filter(|(_, body, _)| body["code"] == "wrong_credentials")
        .count();
    let throttled = answers
        .iter()
        .filter(|(status, body, retry)| {
            *status == 429 && body["code"] == "throttled" && retry.is_some()
        })
        .count();
    assert_eq!(
        (checked, throttled),
        (3, 197),
        "every guess past the third is refused before its check"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("duet_logins_total{outcome=\"failed\"} 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_correct_password_does_not_use_up_the_address_allowance() {
    let app = spawn_app_with(|s| s.login_failures = 2).await;
    let office = app.user("ivan").await;
    for _ in 0..5 {
        let answer = office
            .post_json("/user/login", "ivan", "correct horse")
            .await;
        assert_eq!(answer, json!({"flag": true}));
    }
}

#[tokio::test]
async fn junk_usernames_are_refused_before_any_password_check() {
    let app = spawn_app_with(|s| s.login_failures = 1).await;
    let browser = app.browser();
    let huge = "x".repeat(2 * 1024 * 1024);
    let (status, body, _) = answer(
        browser
            .post("/user/login")
            .json(&credentials(&huge, "whatever")),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "bad_request", "{body}");
    let long = "y".repeat(200);
    for _ in 0..3 {
        let (status, body, _) = answer(
            browser
                .post("/user/login")
                .json(&credentials(&long, "whatever")),
        )
        .await;
        assert_eq!(status, 400, "never throttled: it never reached a check");
        assert_eq!(body["code"], "username_too_long", "{body}");
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("duet_logins_total{outcome=\"failed\"} 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn registrations_are_limited_per_address() {
    let app = spawn_app_with(|s| {
        s.register_limit = 3;
        s.trusted_proxies = vec!["127.0.0.1/32".parse().expect("cidr")];
    })
    .await;
    let browser = app.browser();
    let register = |name: &str, from: &str| {
        browser
            .post("/user/register")
            .header("x-forwarded-for", from)
            .json(&credentials(name, "correct horse"))
    };
    for name in ["reg1", "reg2", "reg3"] {
        let (status, body, _) = answer(register(name, "198.51.100.7")).await;
        assert_eq!((status, body), (200, json!({"flag": true})));
    }
    let (status, body, retry) = answer(register("reg4", "198.51.100.7")).await;
    assert_eq!(status, 429);
    assert_eq!(body["code"], "too_many_registrations", "{body}");
    assert!(retry.is_some_and(|secs| secs > 0 && secs <= 3600));
    assert!(body["error"].as_str().unwrap().contains("new accounts"));
    // Invalid input costs no allowance, and another address has its own.
    let (status, _, _) = answer(register("", "198.51.100.8")).await;
    assert_eq!(status, 400);
    let (status, _, _) = answer(register("reg5", "198.51.100.8")).await;
    assert_eq!(status, 200);
    // An IPv6 client cannot take a fresh allowance from each address of its /64.
    for (i, from) in ["2001:db8:7::1", "2001:db8:7::2", "2001:db8:7::3"]
        .iter()
        .enumerate()
    {
        let (status, _, _) = answer(register(&format!("six{i}"), from)).await;
        assert_eq!(status, 200);
    }
    let (status, _, _) = answer(register("six3", "2001:db8:7::ffff")).await;
    assert_eq!(status, 429, "same /64");
}

#[tokio::test]
async fn a_full_password_queue_answers_busy_at_once() {
    let app = spawn_app_with(|s| {
        s.hash_concurrency = 1;
        s.hash_queue = 2;
    })
    .await;
    let browser = app.browser();
    let burst = (0..24).map(|i| {
        answer(
            browser
                .post("/user/register")
                .json(&credentials(&format!("burst{i}"), "correct horse")),
        )
    });
    let answers = join_all(burst).await;
    let registered = answers.iter().filter(|(status, ..)| *status == 200).count();
    let busy: Vec<_> = answers
        .iter()
        .filter(|(status, ..)| *status == 503)
        .collect();
    assert_eq!(registered + busy.len(), 24, "{answers:?}");
    assert!(registered >= 3, "one hashing and two waiting: {answers:?}");
    assert!(!busy.is_empty(), "the queue holds two: {answers:?}");
    for (_, body, retry) in &busy {
        assert_eq!(body["code"], "busy", "{body}");
        assert!(retry.is_some());
    }
    // A refused registration took nothing: the name is free, and the server answers again.
    let first_busy = answers
        .iter()
        .position(|(status, ..)| *status == 503)
        .expect("one was busy");
    let (status, _, _) = answer(
        browser
            .post("/user/register")
            .json(&credentials(&format!("burst{first_busy}"), "correct horse")),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn forms_posted_from_another_site_are_refused() {
    let app = spawn_app_with(|_| {}).await;
    app.user("judy").await;
    let browser = app.browser();
    let own = format!("http://{}", app.addr);
    let login = |headers: &[(&str, &str)]| {
        let mut request = browser
            .post("/user/login")
            .form(&[("username", "judy"), ("password", "correct horse")]);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    };
    for refused in [
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
    ] {
        let (status, body, _) = answer(login(&refused)).await;
        assert_eq!(status, 403, "{refused:?}");
        assert_eq!(body["code"], "cross_site", "{body}");
        assert_eq!(body["flag"], false);
    }
    let (status, body) = json_answer(
        browser
            .post("/user/logout")
            .header("origin", "https://evil.example"),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &body["code"]),
        (403, &json!("cross_site"))
    );
    // The seed's own form, posted from this server's page, still logs in.
    for allowed in [
        vec![("origin", own.as_str()), ("sec-fetch-site", "same-origin")],
        vec![],
    ] {
        let (status, body, _) = answer(login(&allowed)).await;
        assert_eq!((status, body), (200, json!({"flag": true})), "{allowed:?}");
    }
}

/// Opens a raw TCP connection to the app.
async fn tcp(app: &common::TestApp) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect")
}

/// Sends a bare request on `stream` and returns the status line of the answer.
async fn status_line(mut stream: tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: duet\r\nconnection: close\r\n\r\n")
        .await
        .expect("request written");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("answered within 5 s")
    .expect("read");
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn connections_past_the_caps_are_turned_away_and_places_come_back() {
    let app = spawn_app_with(|s| {
        s.max_connections_per_ip = 3;
        s.max_connections = 5;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tcp(&app).await);
    }
    assert!(status_line(tcp(&app).await).await.contains("429"));
    // A place given back is a place to take.
    drop(held.pop());
    let mut answered = String::new();
    for _ in 0..50 {
        answered = status_line(tcp(&app).await).await;
        if answered.contains("200") {
            break;
        }
        // The server notices the close when it next polls that socket.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(answered.contains("200"), "{answered}");
}

#[tokio::test]
async fn the_total_cap_answers_503() {
    let app = spawn_app_with(|s| s.max_connections = 2).await;
    let _held = [tcp(&app).await, tcp(&app).await];
    assert!(status_line(tcp(&app).await).await.contains("503"));
}

#[tokio::test]
async fn headers_sent_a_byte_at_a_time_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|s| s.request_timeout_secs = 1).await;
    let mut slow = tcp(&app).await;
    let started = std::time::Instant::now();
    let trickle = async {
        for byte in b"GET /healthz HTTP/1.1\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    };
    trickle.await;
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        slow.read_to_end(&mut rest),
    )
    .await;
    assert!(
        ended.is_ok(),
        "the server closed the connection ({:?} after the first byte)",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    // About the SQLite file Duet makes: on SQLite whatever the test run's database.
    let app = spawn_app_with(|s| {
        s.data_dir = s.data_dir.join("fresh");
        s.database_url = None;
    })
    .await;
    app.user("pat").await;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&app.data_dir), 0o700);
    let db = app.data_dir.join("duet.db");
    assert_eq!(mode(&db), 0o600);
    assert_eq!(
        mode(&app.data_dir.join("duet.db-wal")),
        0o600,
        "SQLite copies it"
    );
}

#[tokio::test]
async fn look_alike_usernames_cannot_pass_for_an_existing_one() {
    let app = spawn_app_with(|_| {}).await;
    app.user("alice").await;
    let browser = app.browser();
    let register = |name: &str| {
        browser
            .post("/user/register")
            .json(&credentials(name, "correct horse"))
    };
    // Fullwidth letters are the same name.
    let (status, body, _) = answer(register("ａｌｉｃｅ")).await;
    assert_eq!(
        (status, &body["code"]),
        (409, &json!("username_taken")),
        "{body}"
    );
    // A Cyrillic "а" among Latin letters is refused, in words the user can act on.
    let (status, body, _) = answer(register("\u{430}lice")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "username_mixed_scripts");
    assert!(body["error"].as_str().unwrap().contains("Cyrillic"));
    // Latin with Han, kana or Hangul is a fine name; so is one script alone.
    for fine in ["张伟_li", "さくら.sato", "김민준-kim", "Ирина", "Ελένη"] {
        let (status, body, _) = answer(register(fine)).await;
        assert_eq!(status, 200, "{fine}: {body}");
    }
    // Logging in with the fullwidth form reaches the same account.
    let login = browser
        .post_json("/user/login", "ＡＬＩＣＥ", "correct horse")
        .await;
    assert_eq!(login, json!({"flag": true}));
}

#[tokio::test]
async fn names_stored_before_width_mapping_are_re_keyed_and_still_log_in() {
    // Old rows are written into the SQLite file directly, as an earlier Duet left them.
    let app = spawn_app_with(|s| s.database_url = None).await;
    app.user("bob").await;
    let dir = app.stop().await.expect("data dir");
    // As an earlier Duet stored it: the fullwidth name, its key only lower-cased.
    let url = format!("sqlite://{}", dir.path().join("duet.db").display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&url)
        .await
        .expect("db");
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username_key = 'bob'")
            .fetch_one(&pool)
            .await
            .expect("bob");
    for (name, key) in [("ｃａｒｌ", "ｃａｒｌ"), ("ｂｏｂ", "ｂｏｂ")] {
        sqlx::query("INSERT INTO users (username, username_key, password_hash) VALUES (?, ?, ?)")
            .bind(name)
            .bind(key)
            .bind(&hash)
            .execute(&pool)
            .await
            .expect("old row");
    }
    pool.close().await;
    let app = common::start(common::sqlite_settings(dir.path())).await;
    let browser = app.browser();
    for name in ["carl", "ｃａｒｌ"] {
        let login = browser
            .post_json("/user/login", name, "correct horse")
            .await;
        assert_eq!(login, json!({"flag": true}), "{name}");
    }
    // `ｂｏｂ` cannot become `bob` (taken): it keeps its old key, and `bob` is still bob.
    let (_, me) = json_answer(browser.get("/user/me")).await;
    assert_eq!(me["username"], "carl");
    let bob = browser
        .post_json("/user/login", "bob", "correct horse")
        .await;
    assert_eq!(bob, json!({"flag": true}));
    let (_, me) = json_answer(browser.get("/user/me")).await;
    assert_eq!(me["username"], "bob");
}

#[tokio::test]
async fn people_behind_one_address_logging_in_at_once_are_not_throttled() {
    let app = spawn_app_with(|s| {
        s.login_failures = 3;
        s.hash_queue = 1_000;
    })
    .await;
    let office: Vec<String> = (0..30).map(|i| format!("clerk{i}")).collect();
    for name in &office {
        app.user(name).await;
    }
    let logins = office.iter().map(|name| {
        answer(
            app.browser()
                .post("/user/login")
                .json(&credentials(name, "correct horse")),
        )
    });
    for (status, body, _) in join_all(logins).await {
        assert_eq!((status, body), (200, json!({"flag": true})));
    }
}
