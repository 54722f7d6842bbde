//! The Redis URL may hold a password: it must never show up in `Debug`, errors or logs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use carrel_ratelimit::{Limiter, LimiterError, Quota, RedisFailure};
use common::*;

#[test]
fn debug_output_has_no_password() {
    let l = Limiter::with_redis(
        "redis://:s3cret@127.0.0.1:6379",
        "carrel:rl:",
        RedisFailure::FallBackToMemory,
    )
    .unwrap();
    for text in [format!("{l:?}"), format!("{l:#?}")] {
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("127.0.0.1:6379"), "{text}");
        assert!(text.contains("***"), "{text}");
    }
    // User name and password, percent-encoded, and a password in the query string.
    let l = Limiter::with_redis(
        "redis://admin:p%40ssw0rd@127.0.0.1:6379/3?password=hunter2",
        "",
        RedisFailure::Deny,
    )
    .unwrap();
    let text = format!("{l:?}");
    for secret in ["admin", "p%40ssw0rd", "p@ssw0rd", "hunter2"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn bad_url_error_has_no_password() {
    let err = Limiter::with_redis("redis://:s3cret@[bad", "", RedisFailure::default())
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(err, LimiterError::InvalidRedisUrl { .. }),
        "{err:?}"
    );
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("s3cret"), "{text}");
    }
    assert!(err.to_string().contains("invalid Redis URL"), "{err}");

    for url in [
        "not a url",
        "http://:s3cret@127.0.0.1:6379",
        "redis://u:s3cret@host:notaport",
    ] {
        let err = Limiter::with_redis(url, "", RedisFailure::default())
            .map(|_| ())
            .unwrap_err();
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("s3cret"), "{url}: {text}");
        }
    }
}

#[cfg(not(feature = "tls"))]
#[test]
fn tls_url_without_the_feature_is_a_clear_error() {
    let err = Limiter::with_redis(
        "rediss://:s3cret@cache.example:6380",
        "",
        RedisFailure::Deny,
    )
    .map(|_| ())
    .unwrap_err();
    assert!(matches!(err, LimiterError::TlsNotEnabled { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("tls") && !text.contains("s3cret"), "{text}");
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn tls_url_is_accepted_with_the_feature() {
    // A server that accepts and hangs up: the TLS handshake fails and the check falls back
    // (building the rustls config must not panic even with several crypto providers linked).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let url = format!("rediss://:s3cret@{addr}");
    let l = Limiter::with_redis(&url, "", RedisFailure::FallBackToMemory).unwrap();
    assert!(!format!("{l:?}").contains("s3cret"));
    let started = Instant::now();
    assert!(l.check("k", Quota::per_second(1), T0).await.allowed);
    assert!(started.elapsed() < Duration::from_millis(300));
    assert_eq!(l.last_backend(), "memory");
    server.abort();
}

#[tokio::test]
async fn failure_warnings_are_rate_limited_and_have_no_password() {
    let (logs, _guard) = Logs::capture();
    let l = Limiter::with_redis(
        "redis://:s3cret@127.0.0.1:1",
        "rl:",
        RedisFailure::FallBackToMemory,
    )
    .unwrap();
    let q = Quota::per_minute(100);
    let started = Instant::now();
    let mut now = T0;
    // Long enough for Redis to be retried (and to fail) three times.
    while started.elapsed() < Duration::from_millis(2_600) {
        now += 50;
        assert!(l.check("k", q, now).await.allowed);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = logs.text();
    assert!(!text.contains("s3cret"), "{text}");
    let warnings = logs.lines_with("WARN");
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("***@127.0.0.1:1"), "{text}");
    assert_eq!(l.last_backend(), "memory");
}
