//! HTTPS served by Duet itself (`--tls-self-signed`), HSTS, `Secure` cookies, and the redirect
//! listener.

mod common;

use common::test_settings;
use server::startup::Application;

fn https_client() -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn self_signed_https_with_hsts_secure_cookies_and_a_redirect() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(dir.path());
    settings.tls_self_signed = true;
    settings.tls_names = vec!["localhost".into(), "127.0.0.1".into()];
    settings.http_redirect_addr = Some("127.0.0.1:0".parse().expect("addr"));
    let app = Application::build(settings).await.expect("app builds");
    let addr = app.local_addr();
    let redirect = app.redirect_addr().expect("redirect listener");
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run());

    // The pair is kept in the data directory, for the next start.
    let (cert, key) = server::tls::self_signed_paths(dir.path());
    assert!(cert.is_file() && key.is_file());

    let client = https_client();
    let health = client
        .get(format!("https://{addr}/healthz"))
        .send()
        .await
        .expect("HTTPS answers");
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let register = client
        .post(format!("https://{addr}/user/register"))
        .form(&[("username", "alice"), ("password", "correct horse")])
        .send()
        .await
        .expect("register");
    let cookie = register.headers()["set-cookie"].to_str().expect("ascii");
    assert!(cookie.contains("Secure"), "{cookie}");

    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let moved = plain
        .get(format!("http://{redirect}/some/page?x=1"))
        .header("host", "duet.test")
        .send()
        .await
        .expect("redirect answers");
    assert_eq!(moved.status(), 301);
    assert_eq!(
        moved.headers()["location"],
        format!("https://duet.test:{}/some/page?x=1", addr.port()).as_str()
    );

    shutdown.cancel();
    let _ = server.await;

    // A second start reuses the kept certificate.
    let before = std::fs::read(&cert).expect("cert");
    let mut settings = test_settings(dir.path());
    settings.tls_self_signed = true;
    let again = Application::build(settings)
        .await
        .expect("app builds again");
    drop(again);
    assert_eq!(std::fs::read(&cert).expect("cert"), before);
}

#[tokio::test]
async fn a_cert_without_a_key_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(dir.path());
    settings.tls_cert = Some(dir.path().join("cert.pem"));
    assert!(Application::build(settings).await.is_err());
}
