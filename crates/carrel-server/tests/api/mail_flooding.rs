//! Mail flooding: `/auth/resend-verification` is limited per client IP and per
//! address typed (the security lane of the mail queue is tested in carrel-mail).

use std::net::Ipv4Addr;

use carrel_core::roles::Role;
use serde_json::json;

use crate::helpers::{TestApp, assert_error, backend_tests_with};

backend_tests_with!(
    vec![
        ("CARREL_RATE_LIMITS_ENABLED", "true".to_owned()),
        ("CARREL_RATE_LIMIT_GLOBAL", "10000/min".to_owned()),
        ("CARREL_TRUSTED_PROXIES", "127.0.0.1/32".to_owned()),
    ]
        => resend_verification_is_limited_per_ip_and_per_address
);

/// A fresh client address (believed because 127.0.0.1 is a trusted proxy).
fn client_ip() -> String {
    let n = uuid::Uuid::new_v4().as_u128();
    Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8).to_string()
}

async fn resend(app: &TestApp, ip: &str, email: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/resend-verification"))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap()
}

async fn resend_verification_is_limited_per_ip_and_per_address(app: TestApp) {
    carrel_server::accounts::create_account(
        &app.state,
        carrel_server::accounts::NewAccount {
            email: "ada@example.org".to_owned(),
            username: "ada".to_owned(),
            full_name: None,
            role: Role::Patron,
            password: Some(secrecy::SecretString::from(
                crate::helpers::PASSWORD.to_owned(),
            )),
            email_verified: false,
            card_number: None,
            category: None,
        },
    )
    .await
    .unwrap();
    let first = client_ip();
    for _ in 0..3 {
        assert_eq!(resend(&app, &first, "ada@example.org").await.status(), 202);
    }
    let limited = resend(&app, &first, "ada@example.org").await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_error(limited, 429, "RATE_LIMIT_EXCEEDED").await;

    // The address has its own budget: another client cannot go on flooding it,
    // however it spells the address...
    let second = client_ip();
    for typed in ["ada@example.org", " ADA@Example.org "] {
        assert_error(
            resend(&app, &second, typed).await,
            429,
            "RATE_LIMIT_EXCEEDED",
        )
        .await;
    }
    // ...while that client may still ask for another address.
    assert_eq!(resend(&app, &second, "bob@example.org").await.status(), 202);
    // Unknown addresses count too (the limit reveals nothing about accounts).
    let third = client_ip();
    for n in 0..3 {
        assert_eq!(
            resend(&app, &third, &format!("nobody{n}@example.org"))
                .await
                .status(),
            202
        );
    }
    assert_error(
        resend(&app, &third, "nobody9@example.org").await,
        429,
        "RATE_LIMIT_EXCEEDED",
    )
    .await;

    let mails = app
        .outbox()
        .await
        .into_iter()
        .filter(|m| m.to.contains("ada@example.org"))
        .count();
    assert_eq!(mails, 3, "three verification emails, no more");

    // An hour later the address may be asked for again.
    app.clock.advance(time::Duration::hours(1));
    assert_eq!(
        resend(&app, &client_ip(), "ada@example.org").await.status(),
        202
    );
}
