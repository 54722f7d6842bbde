use std::path::Path;

use super::*;

fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_pairs(pairs.iter().copied())
}

#[test]
fn defaults_match_the_contract() {
    let c = config(&[]).expect("defaults are valid");
    assert_eq!(c.env, Environment::Development);
    assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(c.database_url.expose_secret(), "sqlite://./data/carrel.db");
    assert_eq!(c.access_token_ttl, Duration::from_secs(900));
    assert_eq!(c.refresh_token_ttl, Duration::from_secs(30 * 86_400));
    assert_eq!(c.rate_limits["LOGIN"].to_string(), "5/min");
    assert_eq!(c.rate_limits["GLOBAL"].to_string(), "300/min");
    assert_eq!(c.mail_outbox, PathBuf::from("./data/outbox"));
    assert_eq!(c.log_format, LogFormat::Pretty);
    assert!(!c.secure_cookies());
    assert_eq!(c.client_ip_header, ClientIpHeader::XForwardedFor);
    assert_eq!(c.metrics_bind, None);
}

#[test]
fn the_client_ip_header_and_metrics_bind_are_read() {
    let c = config(&[
        ("CARREL_CLIENT_IP_HEADER", "Forwarded"),
        ("CARREL_METRICS_BIND", "127.0.0.1:9090"),
    ])
    .expect("valid");
    assert_eq!(c.client_ip_header, ClientIpHeader::Forwarded);
    assert_eq!(
        c.metrics_bind.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:9090")
    );
    let c = config(&[("CARREL_CLIENT_IP_HEADER", "x-real-ip")]).expect("valid");
    assert_eq!(c.client_ip_header, ClientIpHeader::XRealIp);
}

#[test]
fn a_bad_value_names_its_variable() {
    let cases = [
        ("CARREL_ACCESS_TOKEN_TTL", "fifteen"),
        ("CARREL_BIND", "localhost"),
        ("CARREL_DATABASE_MAX_CONNECTIONS", "0"),
        ("CARREL_RATE_LIMIT_LOGIN", "5/fortnight"),
        ("CARREL_TRUSTED_PROXIES", "10.0.0.0/99"),
        ("CARREL_CORS_ORIGINS", "https://a.example/path"),
        ("CARREL_ENV", "staging"),
        ("CARREL_MFA_REQUIRED_ROLES", "admin,root"),
        ("CARREL_CURRENCY", "dollars"),
        ("CARREL_AUTO_MIGRATE", "perhaps"),
        ("CARREL_CLIENT_IP_HEADER", "x-client-ip"),
        ("CARREL_METRICS_BIND", "localhost"),
    ];
    for (var, value) in cases {
        let err = config(&[(var, value)]).expect_err(var);
        assert_eq!(err.variable, var, "{err}");
        assert!(err.to_string().starts_with(var), "{err}");
    }
}

#[test]
fn a_bad_database_url_is_refused_without_echoing_it() {
    let err = config(&[("CARREL_DATABASE_URL", "mysql://root:hunter2@db/x")]).unwrap_err();
    assert_eq!(err.variable, "CARREL_DATABASE_URL");
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn production_refuses_unsafe_settings() {
    let safe = [
        ("CARREL_ENV", "production"),
        ("CARREL_JWT_PRIVATE_KEY_FILE", "/etc/carrel/jwt.pem"),
        ("CARREL_SECRETS_KEY_FILE", "/etc/carrel/secrets.key"),
        (
            "CARREL_SMTP_URL",
            "smtp://mailer:secret@mail.example.org:587",
        ),
        ("CARREL_PUBLIC_URL", "https://library.example.org"),
    ];
    let c = config(&safe).expect("SQLite, key files, SMTP and https are a valid production setup");
    assert!(c.secure_cookies());
    assert_eq!(c.log_format, LogFormat::Json);

    let mut cases: Vec<(&str, Vec<(&str, &str)>)> = Vec::new();
    for (i, (var, _)) in safe.iter().enumerate().skip(1) {
        let mut without: Vec<_> = safe.to_vec();
        without.remove(i);
        cases.push((var, without));
    }
    let mut http = safe.to_vec();
    http[4] = ("CARREL_PUBLIC_URL", "http://library.example.org");
    cases.push(("CARREL_PUBLIC_URL", http));
    let mut wildcard = safe.to_vec();
    wildcard.push(("CARREL_CORS_ORIGINS", "*"));
    cases.push(("CARREL_CORS_ORIGINS", wildcard));
    for (var, pairs) in cases {
        let err = config(&pairs).expect_err(var);
        assert_eq!(err.variable, var, "{err}");
    }
}

#[test]
fn redacted_output_hides_secrets() {
    let c = config(&[
        (
            "CARREL_DATABASE_URL",
            "postgres://carrel:s3cret-pw@db:5432/carrel",
        ),
        ("CARREL_SMTP_URL", "smtp://mailer:smtp-pw@mail:587"),
        ("CARREL_REDIS_URL", "redis://:redis-pw@cache:6379"),
        ("CARREL_BOOTSTRAP_ADMIN_EMAIL", "admin@example.org"),
        ("CARREL_BOOTSTRAP_ADMIN_PASSWORD", "Bootstrap-pw-123!"),
    ])
    .unwrap();
    let printed = format!("{:?}", c.redacted());
    for secret in ["s3cret-pw", "smtp-pw", "redis-pw", "Bootstrap-pw-123!"] {
        assert!(!printed.contains(secret), "{secret} leaked");
    }
    assert!(
        !format!("{c:?}").contains("s3cret-pw"),
        "Debug leaks the database password"
    );
    assert!(
        printed.contains("postgres://carrel:[redacted]@db:5432/carrel")
            || printed.contains("%5Bredacted%5D")
    );
}

#[test]
fn environment_beats_toml_beats_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    let toml_path = dir.path().join("custom.toml");
    std::fs::write(
        &toml_path,
        "max_active_loans = 3\ncurrency = \"EUR\"\ncors_origins = [\"https://a.example\", \"https://b.example\"]\n",
    )
    .unwrap();
    let dotenv = dir.path().join(".env");
    std::fs::write(
        &dotenv,
        format!(
            "CARREL_CONFIG={}\nCARREL_MAX_ACTIVE_LOANS=1\nCARREL_HOLD_PICKUP_DAYS=2\nUNRELATED=x\n",
            toml_path.display()
        ),
    )
    .unwrap();
    let env = [("CARREL_CURRENCY".to_owned(), "GBP".to_owned())]
        .into_iter()
        .collect();
    let sources = Sources::layered(&dotenv, env).unwrap();
    let c = Config::from_sources(&sources).unwrap();
    assert_eq!(c.max_active_loans, 3, "TOML beats .env");
    assert_eq!(c.hold_pickup_days, 2, ".env is read");
    assert_eq!(c.currency, "GBP", "environment beats TOML");
    assert_eq!(c.cors_origins, ["https://a.example", "https://b.example"]);
    assert!(sources.get("UNRELATED").is_none());
}

#[test]
fn a_missing_config_file_is_an_error_naming_carrel_config() {
    let env = [(
        "CARREL_CONFIG".to_owned(),
        "/nonexistent/carrel.toml".to_owned(),
    )]
    .into_iter()
    .collect();
    let err = Sources::layered(Path::new("/nonexistent/.env"), env).unwrap_err();
    assert_eq!(err.variable, "CARREL_CONFIG");
}

#[test]
fn the_test_payment_provider_is_refused_outside_test_mode() {
    let c = config(&[]).expect("defaults");
    assert_eq!(c.payment_provider, PaymentProviderKind::None);
    assert_eq!(c.max_active_holds, 20);
    for env in ["development", "production"] {
        let err =
            config(&[("CARREL_ENV", env), ("CARREL_PAYMENT_PROVIDER", "test")]).expect_err(env);
        assert_eq!(err.variable, "CARREL_PAYMENT_PROVIDER", "{err}");
    }
    let c = config(&[("CARREL_ENV", "test"), ("CARREL_PAYMENT_PROVIDER", "test")])
        .expect("test provider in test mode");
    assert_eq!(c.payment_provider, PaymentProviderKind::Test);
    let err = config(&[("CARREL_PAYMENT_PROVIDER", "stripe")]).unwrap_err();
    assert_eq!(err.variable, "CARREL_PAYMENT_PROVIDER");
    let err = config(&[("CARREL_MAX_ACTIVE_HOLDS", "-1")]).unwrap_err();
    assert_eq!(err.variable, "CARREL_MAX_ACTIVE_HOLDS");
}

#[test]
fn the_library_time_zone_is_an_iana_name() {
    let c = config(&[]).unwrap();
    assert_eq!(c.timezone.name(), "UTC");
    assert!(!c.fines_count_closed_days);
    let c = config(&[
        ("CARREL_TIMEZONE", "America/New_York"),
        ("CARREL_FINES_COUNT_CLOSED_DAYS", "true"),
    ])
    .unwrap();
    assert_eq!(c.timezone.name(), "America/New_York");
    assert!(c.fines_count_closed_days);
    let err = config(&[("CARREL_TIMEZONE", "Mars/Olympus_Mons")]).unwrap_err();
    assert_eq!(err.variable, "CARREL_TIMEZONE");
    assert!(err.message.contains("unknown time zone"), "{}", err.message);
}
