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

/// Every `CARREL_*` name in `text` is declared, a prefix of a declared one
/// (`CARREL_PASSWORD_*`, `CARREL_RATE_LIMIT_<NAME>`), or one of `not_ours`.
fn undeclared_names(text: &str, not_ours: &[&str]) -> Vec<String> {
    let declared: Vec<String> = Config::declared().into_iter().map(|d| d.var).collect();
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("CARREL_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        let known = if name.ends_with('_') {
            declared.iter().any(|d| d.starts_with(&name))
        } else {
            declared.contains(&name)
        };
        if !known && !not_ours.contains(&name.as_str()) && !missing.contains(&name) {
            missing.push(name);
        }
    }
    missing
}

/// Variables the documents name that are not server settings: the config
/// file's own path, and the test and tooling switches of the README.
const NOT_OURS: &[&str] = &[
    "CARREL_CONFIG",
    "CARREL_TEST_POSTGRES_URL",
    "CARREL_TEST_REDIS_URL",
    "CARREL_CI_COVERAGE",
    "CARREL_BIN",
    "CARREL_FUZZ_MAX_TIME",
    "CARREL_FUZZ_SEED",
    "CARREL_FUZZ_KEEP",
    "CARREL_FUZZ_SECONDS",
    "CARREL_HARNESS_PORTS",
    "CARREL_COVERAGE_MIN_TOTAL",
    "CARREL_COVERAGE_MIN_AUTH",
    "CARREL_WEB_SCREENSHOTS",
    "CARREL_CONTRACT_DIR",
    "CARREL_SIP2_PYTHON",
];

#[test]
fn the_docs_table_lists_every_declared_setting_and_is_committed() {
    let declared = Config::declared();
    let table = Config::docs_table();
    let mut seen = std::collections::HashSet::new();
    for d in &declared {
        assert!(seen.insert(d.var.clone()), "{} is declared twice", d.var);
        assert!(
            table.contains(&format!("| `{}` | {} |", d.var, d.default)),
            "{} is missing from the docs table",
            d.var
        );
        assert!(!d.doc.is_empty(), "{} has no doc line", d.var);
    }
    assert_eq!(table.lines().count(), declared.len() + 2);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = format!("{DOCS_HEADER}{table}");
    if std::env::var_os("CARREL_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    } else {
        assert!(
            committed == generated,
            "docs/configuration.md is stale: run CARREL_UPDATE_DOCS=1 cargo test -p carrel-server --lib config"
        );
    }
}

const DOCS_HEADER: &str = "# Configuration reference\n\n\
Generated from the settings declared in `crates/carrel-server/src/config/mod.rs` (a test fails when this \
file is stale; `CARREL_UPDATE_DOCS=1 cargo test -p carrel-server --lib config` rewrites it). Secret settings \
are redacted by `carrel config check`.\n\n";

#[test]
fn every_carrel_variable_the_documents_name_is_declared() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert_eq!(undeclared_names(&readme, NOT_OURS), Vec::<String>::new());
    // The contract lives outside the repository; checked wherever it is.
    let contract = std::env::var("CARREL_CONTRACT_DIR").unwrap_or_else(|_| "/work/shared".into());
    match std::fs::read_to_string(Path::new(&contract).join("CONFIG.md")) {
        Ok(text) => assert_eq!(undeclared_names(&text, NOT_OURS), Vec::<String>::new()),
        Err(_) => eprintln!("NOTE: {contract}/CONFIG.md not found: contract names not checked"),
    }
    let interop =
        std::fs::read_to_string(Path::new(&contract).join("INTEROP.md")).unwrap_or_default();
    assert_eq!(undeclared_names(&interop, NOT_OURS), Vec::<String>::new());
    assert!(undeclared_names("CARREL_NO_SUCH_THING", NOT_OURS) == ["CARREL_NO_SUCH_THING"]);
}

#[test]
fn every_secret_setting_is_redacted() {
    // A value for each secret, holding the sentinel where a secret would be.
    let samples = [
        (
            "CARREL_DATABASE_URL",
            "postgres://carrel:SENTINEL@db:5432/carrel",
        ),
        ("CARREL_REDIS_URL", "redis://:SENTINEL@cache:6379"),
        ("CARREL_SMTP_URL", "smtp://mailer:SENTINEL@mail:587"),
        ("CARREL_STORAGE_URL", "s3://key:SENTINEL@bucket/prefix"),
        ("CARREL_BOOTSTRAP_ADMIN_PASSWORD", "SENTINEL-Pw-123!"),
    ];
    let secrets: Vec<String> = Config::declared()
        .into_iter()
        .filter(|d| d.secret)
        .map(|d| d.var)
        .collect();
    for var in &secrets {
        let Some((_, value)) = samples.iter().find(|(name, _)| name == var) else {
            panic!("{var} is secret: give it a sample value here");
        };
        let mut pairs = vec![(var.as_str(), *value)];
        if var == "CARREL_BOOTSTRAP_ADMIN_PASSWORD" {
            pairs.push(("CARREL_BOOTSTRAP_ADMIN_EMAIL", "admin@example.org"));
        }
        let c = config(&pairs).expect(var);
        let printed = c.redacted();
        let (_, shown) = printed.iter().find(|(name, _)| name == var).expect(var);
        assert!(!shown.contains("SENTINEL"), "{var} leaked: {shown}");
        assert!(shown.contains("redacted"), "{var}: {shown}");
    }
    assert_eq!(secrets.len(), samples.len());
    // Every declared setting is printed, once, in declaration order.
    let printed: Vec<String> = config(&[])
        .unwrap()
        .redacted()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let declared: Vec<String> = Config::declared().into_iter().map(|d| d.var).collect();
    assert_eq!(printed, declared);
}

#[test]
fn documented_defaults_are_the_defaults() {
    let c = config(&[]).unwrap();
    for (var, shown) in c.redacted() {
        let d = Config::declared()
            .into_iter()
            .find(|d| d.var == var)
            .unwrap();
        // A literal default is written `value` and parsed like a set value.
        let literal = d
            .default
            .strip_prefix('`')
            .and_then(|s| s.strip_suffix('`'))
            .filter(|l| !l.contains('<'));
        if let Some(literal) = literal {
            let again = config(&[(var.as_str(), literal)]).expect(&var);
            let again = again
                .redacted()
                .into_iter()
                .find(|(n, _)| *n == var)
                .unwrap()
                .1;
            assert_eq!(again, shown, "{var}");
        }
    }
    assert_eq!(c.argon2.memory_kib, Argon2Config::DEFAULT.memory_kib);
    assert_eq!(c.argon2.iterations, Argon2Config::DEFAULT.iterations);
    assert_eq!(c.argon2.parallelism, Argon2Config::DEFAULT.parallelism);
}
