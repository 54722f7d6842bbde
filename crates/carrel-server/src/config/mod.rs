//! Configuration: one typed struct, read from the environment, an optional
//! `carrel.toml` and a `.env` file (environment wins, then the TOML file, then
//! `.env`), and validated at start-up. Every error names the variable.

mod parse;
pub mod settings;
mod sources;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub use parse::{Rate, format_duration};
pub use settings::{Declared, Settings};
pub use sources::Sources;

use settings::{Reader, Show, settings};

/// Which mode the server runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Local work: pretty logs, cookies without `Secure`.
    Development,
    /// Automated tests: enables the test-clock endpoint.
    Test,
    /// Refuses unsafe settings.
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Test => "test",
            Environment::Production => "production",
        }
    }
}

/// Which [`crate::circulation::payments::PaymentProvider`] takes online payments
/// (`CARREL_PAYMENT_PROVIDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentProviderKind {
    /// No provider: online payments are refused (403 ONLINE_PAYMENTS_DISABLED).
    None,
    /// Approves fixed test tokens; only with `CARREL_ENV=test`.
    Test,
}

impl PaymentProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentProviderKind::None => "none",
            PaymentProviderKind::Test => "test",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The names of the configurable rate limits (`CARREL_RATE_LIMIT_<NAME>`), with
/// the defaults of the API contract.
pub const RATE_LIMIT_DEFAULTS: &[(&str, &str)] = &[
    ("LOGIN", "5/min"),
    ("REGISTER", "10/hour"),
    ("PASSWORD_FORGOT", "3/hour"),
    // Per client IP and, separately, per email address typed.
    ("RESEND_VERIFICATION", "3/hour"),
    ("MFA_VERIFY", "5/min"),
    ("REFRESH", "30/min"),
    ("PROFILE_UPDATE", "5/min"),
    ("COVER_UPLOAD", "10/hour"),
    ("PAYMENTS", "3/min"),
    ("ACCOUNT_DELETION", "3/hour"),
    ("SIP2_LOGIN", "5/min"),
    ("GLOBAL", "300/min"),
];

/// Which forwarding header names the client when the peer is a trusted proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, …`
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1;proto=https, …`
    Forwarded,
    /// `X-Real-IP: client`
    XRealIp,
}

impl ClientIpHeader {
    /// The header name (and the configuration value).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientIpHeader::XForwardedFor => "x-forwarded-for",
            ClientIpHeader::Forwarded => "forwarded",
            ClientIpHeader::XRealIp => "x-real-ip",
        }
    }
}

/// A configuration problem, naming the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

impl ConfigError {
    fn new(variable: &str, message: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            message: message.into(),
        }
    }
}

settings! {
    /// The durable outbox's sender (`CARREL_OUTBOX_*`).
    #[derive(Debug, Clone, Copy)]
    pub struct OutboxConfig {
        /// Delivery attempts before a message is dead-lettered.
        pub max_attempts: u32 = { "CARREL_OUTBOX_MAX_ATTEMPTS", default: "8", parse: parse::number(1..=100) },
        /// Wait after the first failed attempt; doubled after each further one.
        pub backoff: Duration = { "CARREL_OUTBOX_BACKOFF", default: "30s", parse: parse::duration,
            check: parse::at_least(Duration::from_secs(1), "must be at least 1s") },
        /// Upper bound of that wait (at least `CARREL_OUTBOX_BACKOFF`).
        pub backoff_max: Duration = { "CARREL_OUTBOX_BACKOFF_MAX", default: "1h", parse: parse::duration },
        /// How long a claimed message belongs to the instance sending it; a
        /// crashed sender's messages are claimable again after it.
        pub lease: Duration = { "CARREL_OUTBOX_LEASE", default: "2m", parse: parse::duration,
            check: parse::at_least(Duration::from_secs(1), "must be at least 1s") },
        /// How often the sender looks for due messages when nothing wakes it
        /// (retries coming due, messages enqueued by other instances).
        pub poll_interval: Duration = { "CARREL_OUTBOX_POLL_INTERVAL", default: "5s", parse: parse::duration,
            check: parse::at_least(Duration::from_secs(1), "must be at least 1s") },
        /// Sent and dead messages are deleted this long after their last change.
        pub retention: Duration = { "CARREL_OUTBOX_RETENTION", default: "7d", parse: parse::duration },
    }
}

settings! {
    /// Password-policy switches (each rule can be turned off).
    #[derive(Debug, Clone)]
    pub struct PasswordPolicyConfig {
        /// Shortest password accepted (at most `CARREL_PASSWORD_MAX_LENGTH`).
        pub min_length: usize = { "CARREL_PASSWORD_MIN_LENGTH", default: "8", parse: parse::number(1..=1024) },
        /// Longest password accepted.
        pub max_length: usize = { "CARREL_PASSWORD_MAX_LENGTH", default: "128", parse: parse::number(8..=4096) },
        /// A password needs an upper-case letter.
        pub require_uppercase: bool = { "CARREL_PASSWORD_REQUIRE_UPPERCASE", default: "true", parse: parse::boolean },
        /// A password needs a lower-case letter.
        pub require_lowercase: bool = { "CARREL_PASSWORD_REQUIRE_LOWERCASE", default: "true", parse: parse::boolean },
        /// A password needs a digit.
        pub require_digit: bool = { "CARREL_PASSWORD_REQUIRE_DIGIT", default: "true", parse: parse::boolean },
        /// A password needs a symbol.
        pub require_symbol: bool = { "CARREL_PASSWORD_REQUIRE_SYMBOL", default: "true", parse: parse::boolean },
        /// A password may not contain the account's name or email.
        pub forbid_personal_info: bool = { "CARREL_PASSWORD_FORBID_PERSONAL_INFO", default: "true", parse: parse::boolean },
        /// zxcvbn score 0..=4; 0 disables the check.
        pub min_strength: u8 = { "CARREL_PASSWORD_MIN_STRENGTH", default: "3", parse: parse::number(0..=4) },
        /// How many passwords (the current one included) may not be reused.
        pub history: u32 = { "CARREL_PASSWORD_HISTORY", default: "5", parse: parse::number(0..=50) },
    }
}

settings! {
    /// Argon2id cost parameters.
    #[derive(Debug, Clone, Copy)]
    pub struct Argon2Config {
        /// Argon2id memory cost in KiB.
        pub memory_kib: u32 = { "CARREL_ARGON2_MEMORY_KIB",
            default: { "`19456`" => Argon2Config::DEFAULT.memory_kib }, parse: parse::number(8..=4_194_304) },
        /// Argon2id iterations.
        pub iterations: u32 = { "CARREL_ARGON2_ITERATIONS",
            default: { "`2`" => Argon2Config::DEFAULT.iterations }, parse: parse::number(1..=100) },
        /// Argon2id lanes.
        pub parallelism: u32 = { "CARREL_ARGON2_PARALLELISM",
            default: { "`1`" => Argon2Config::DEFAULT.parallelism }, parse: parse::number(1..=64) },
    }
}

impl Argon2Config {
    /// The defaults of CONFIG.md (OWASP's Argon2id recommendation).
    pub const DEFAULT: Self = Self {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
}

settings! {
    /// The SIP2 listener (`CARREL_SIP2_*`); off unless `bind` is set.
    #[derive(Debug, Clone)]
    pub struct Sip2Config {
        /// The SIP2 listener's address; SIP2 is off when unset.
        pub bind: Option<SocketAddr> = { "CARREL_SIP2_BIND", default: unset, parse: parse::address("127.0.0.1:6001") },
        /// TLS certificate chain (PEM); with `CARREL_SIP2_TLS_KEY_FILE`, both or neither.
        pub tls_cert_file: Option<PathBuf> = { "CARREL_SIP2_TLS_CERT_FILE", default: unset, parse: parse::path },
        /// TLS private key (PEM).
        pub tls_key_file: Option<PathBuf> = { "CARREL_SIP2_TLS_KEY_FILE", default: unset, parse: parse::path },
        /// `utf-8`, `cp850` or `latin1`.
        pub encoding: carrel_sip2::Encoding = { "CARREL_SIP2_ENCODING", default: "utf-8", parse: |v: &str| {
            v.parse()
                .map_err(|_| format!("`{v}` is not one of utf-8, cp850, latin1"))
        } },
        /// A connection silent this long is closed.
        pub idle_timeout: Duration = { "CARREL_SIP2_IDLE_TIMEOUT", default: "5m", parse: parse::duration,
            check: parse::at_least(Duration::from_secs(1), "must be at least 1s") },
        /// Connections beyond this are closed at once.
        pub max_connections: usize = { "CARREL_SIP2_MAX_CONNECTIONS", default: "64", parse: parse::number(1..=100_000) },
    }
}

/// The configurable rate limits (`CARREL_RATE_LIMIT_<NAME>` for each name of
/// [`RATE_LIMIT_DEFAULTS`]), by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits(BTreeMap<&'static str, Rate>);

impl std::ops::Deref for RateLimits {
    type Target = BTreeMap<&'static str, Rate>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Settings for RateLimits {
    fn read(reader: &Reader<'_>) -> Result<Self, ConfigError> {
        let mut limits = BTreeMap::new();
        for (name, default) in RATE_LIMIT_DEFAULTS {
            let var = format!("CARREL_RATE_LIMIT_{name}");
            limits.insert(*name, reader.parse_or(&var, default, parse::rate)?);
        }
        Ok(Self(limits))
    }

    fn show(&self, out: &mut Vec<(String, String)>) {
        for (name, _) in RATE_LIMIT_DEFAULTS {
            if let Some(rate) = self.0.get(name) {
                out.push((format!("CARREL_RATE_LIMIT_{name}"), rate.to_string()));
            }
        }
    }

    fn declare(out: &mut Vec<Declared>) {
        for (name, default) in RATE_LIMIT_DEFAULTS {
            out.push(Declared {
                var: format!("CARREL_RATE_LIMIT_{name}"),
                default: format!("`{default}`"),
                secret: false,
                doc: "requests per period (`5/min`; periods `s`, `min`, `hour`, `day`); see API.md"
                    .to_owned(),
            });
        }
    }
}

settings! {
    /// The whole validated configuration.
    #[derive(Debug, Clone)]
    pub struct Config {
        /// `development`, `test` or `production`.
        pub env: Environment = { "CARREL_ENV", default: "development", parse: |v: &str| match v {
            "development" => Ok(Environment::Development),
            "test" => Ok(Environment::Test),
            "production" => Ok(Environment::Production),
            other => Err(format!("`{other}` is not one of development, test, production")),
        } },
        /// Listen address (loopback by default).
        pub bind: SocketAddr = { "CARREL_BIND", default: "127.0.0.1:8080", parse: parse::address("127.0.0.1:8080") },
        /// Base of links in emails; an http:// or https:// URL.
        pub public_url: Url = { "CARREL_PUBLIC_URL", default: "http://127.0.0.1:8080", parse: |v: &str| {
            let url = Url::parse(v).map_err(|e| format!("`{v}` is not a URL ({e})"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(format!("`{v}` must be an http:// or https:// URL"));
            }
            Ok(url)
        } },
        /// Embedded database, generated keys, uploads, mail outbox.
        pub data_dir: PathBuf = { "CARREL_DATA_DIR", default: "./data", parse: parse::path },
        /// `sqlite://…` or `postgres://…` (the password is redacted when printed).
        pub database_url: SecretString = { "CARREL_DATABASE_URL",
            default: { "`sqlite://<data dir>/carrel.db`" =>
                SecretString::from(format!("sqlite://{}", data_dir.join("carrel.db").display())) },
            parse: |v: &str| match carrel_store::Backend::from_url(v) {
                Some(_) => Ok(SecretString::from(v.to_owned())),
                None => Err("must start with sqlite:// or postgres:// (the value is not shown: it may hold a password)".to_owned()),
            },
            show: |url: &SecretString| redact_url_password(url.expose_secret()),
            secret: true },
        /// Pool size.
        pub database_max_connections: u32 = { "CARREL_DATABASE_MAX_CONNECTIONS", default: "10", parse: parse::number(1..=1000) },
        /// How long a request waits for a database connection before a 503.
        pub database_acquire_timeout: Duration = { "CARREL_DATABASE_ACQUIRE_TIMEOUT", default: "5s", parse: parse::duration },
        /// Apply migrations at start-up.
        pub auto_migrate: bool = { "CARREL_AUTO_MIGRATE", default: "true", parse: parse::boolean },
        /// When set, rate-limit state is shared through Redis (several instances).
        pub redis_url: Option<SecretString> = { "CARREL_REDIS_URL", default: unset,
            parse: |v: &str| Ok(SecretString::from(v.to_owned())), secret: true },
        /// JSON body limit.
        pub body_max_bytes: usize = { "CARREL_BODY_MAX_BYTES", default: "1048576", parse: parse::number(1_024..=1_073_741_824) },
        /// A request running longer gets a 503.
        pub request_timeout: Duration = { "CARREL_REQUEST_TIMEOUT", default: "30s", parse: parse::duration,
            check: |d: &Duration| if d.is_zero() { Err("must be longer than 0s".to_owned()) } else { Ok(()) } },
        /// Password hashes computed at once.
        pub hash_concurrency: usize = { "CARREL_HASH_CONCURRENCY",
            default: { "number of cores" => std::thread::available_parallelism().map_or(2, |n| n.get()) },
            parse: parse::number(1..=1024) },
        /// 32 random bytes, base64; encrypts TOTP secrets at rest and keys the CSRF HMAC (required in production).
        pub secrets_key_file: PathBuf = { "CARREL_SECRETS_KEY_FILE",
            default: { "generated into the data dir outside production" => data_dir.join("secrets.key") },
            parse: parse::path } and secrets_key_file_configured,
        /// Window in which a just-rotated refresh token may be presented again (several browser tabs).
        pub refresh_reuse_grace: Duration = { "CARREL_REFRESH_REUSE_GRACE", default: "0s", parse: parse::duration },
        /// Roles that must use MFA, e.g. `admin,librarian`.
        pub mfa_required_roles: Vec<String> = { "CARREL_MFA_REQUIRED_ROLES", default: { "empty" => Vec::new() },
            parse: |v: &str| {
                let roles = parse::list(v);
                match roles.iter().find(|r| !matches!(r.as_str(), "patron" | "librarian" | "admin")) {
                    Some(bad) => Err(format!("`{bad}` is not a role (patron, librarian, admin)")),
                    None => Ok(roles),
                }
            } },
        /// Open loans one patron may have.
        pub max_active_loans: u32 = { "CARREL_MAX_ACTIVE_LOANS", default: "10", parse: parse::number(0..=10_000) },
        /// Days a ready hold waits on the shelf.
        pub hold_pickup_days: u32 = { "CARREL_HOLD_PICKUP_DAYS", default: "7", parse: parse::number(1..=365) },
        /// Unpaid fines (in cents) that block borrowing.
        pub fine_block_threshold_cents: i64 = { "CARREL_FINE_BLOCK_THRESHOLD_CENTS", default: "1000",
            parse: parse::number(0..=i64::from(i32::MAX)) },
        /// Waiting plus ready holds one patron may have.
        pub max_active_holds: u32 = { "CARREL_MAX_ACTIVE_HOLDS", default: "20", parse: parse::number(0..=10_000) },
        /// The library's IANA time zone (a branch may set its own).
        pub timezone: carrel_core::calendar::Zone = { "CARREL_TIMEZONE",
            default: { "`UTC`" => carrel_core::calendar::Zone::utc() },
            parse: |v: &str| carrel_core::calendar::Zone::named(v).map_err(|e| e.to_string()) },
        /// Whether closed days count as days late.
        pub fines_count_closed_days: bool = { "CARREL_FINES_COUNT_CLOSED_DAYS", default: "false", parse: parse::boolean },
        /// Who takes online payments: `none` or `test` (only with `CARREL_ENV=test`).
        pub payment_provider: PaymentProviderKind = { "CARREL_PAYMENT_PROVIDER", default: "none", parse: |v: &str| match v {
            "none" => Ok(PaymentProviderKind::None),
            "test" => Ok(PaymentProviderKind::Test),
            other => Err(format!("`{other}` is not none or test")),
        } },
        /// Returned loans are anonymised after this.
        pub loan_history_retention: Duration = { "CARREL_LOAN_HISTORY_RETENTION", default: "30d", parse: parse::duration },
        /// Background jobs (hold expiry, notices, anonymisation) run this often.
        pub jobs_interval: Duration = { "CARREL_JOBS_INTERVAL", default: "60s", parse: parse::duration,
            check: parse::at_least(Duration::from_secs(1), "must be at least 1s") },
        /// Ed25519 private key (PEM) signing access tokens (required in production).
        pub jwt_private_key_file: PathBuf = { "CARREL_JWT_PRIVATE_KEY_FILE",
            default: { "generated into the data dir outside production" => data_dir.join("jwt-ed25519.pem") },
            parse: parse::path } and jwt_private_key_file_configured,
        /// Retired signing keys still accepted for verification (key rotation).
        pub jwt_previous_key_files: Vec<PathBuf> = { "CARREL_JWT_PREVIOUS_KEY_FILES", default: { "empty" => Vec::new() },
            parse: parse::paths },
        /// Access tokens live this long (1s to 1d).
        pub access_token_ttl: Duration = { "CARREL_ACCESS_TOKEN_TTL", default: "15m", parse: parse::duration,
            check: |d: &Duration| if d.is_zero() || *d > Duration::from_secs(86_400) {
                Err("must be between 1s and 1d".to_owned())
            } else {
                Ok(())
            } },
        /// Refresh tokens (and sessions) live this long.
        pub refresh_token_ttl: Duration = { "CARREL_REFRESH_TOKEN_TTL", default: "30d", parse: parse::duration },
        /// New accounts must verify their email before signing in.
        pub require_email_verification: bool = { "CARREL_REQUIRE_EMAIL_VERIFICATION", default: "true", parse: parse::boolean },
        /// The password rules.
        pub password: PasswordPolicyConfig = group,
        /// Argon2id costs.
        pub argon2: Argon2Config = group,
        /// Failed sign-ins that lock an account.
        pub lockout_threshold: u32 = { "CARREL_LOCKOUT_THRESHOLD", default: "5", parse: parse::number(1..=1_000) },
        /// How long a lock lasts.
        pub lockout_duration: Duration = { "CARREL_LOCKOUT_DURATION", default: "15m", parse: parse::duration },
        /// Rate limits on or off.
        pub rate_limits_enabled: bool = { "CARREL_RATE_LIMITS_ENABLED", default: "true", parse: parse::boolean },
        /// What the limiter does while Redis is unreachable: `fallback`, `allow` or `deny`.
        pub redis_failure: carrel_ratelimit::RedisFailure = { "CARREL_RATE_LIMIT_REDIS_FAILURE", default: "fallback",
            parse: |v: &str| match v {
                "fallback" => Ok(carrel_ratelimit::RedisFailure::FallBackToMemory),
                "allow" => Ok(carrel_ratelimit::RedisFailure::Allow),
                "deny" => Ok(carrel_ratelimit::RedisFailure::Deny),
                other => Err(format!("`{other}` is not fallback, allow or deny")),
            } },
        /// The rate limits.
        pub rate_limits: RateLimits = group,
        /// CIDRs whose forwarding header is believed.
        pub trusted_proxies: Vec<IpNet> = { "CARREL_TRUSTED_PROXIES", default: { "empty" => Vec::new() },
            parse: |v: &str| {
                parse::list(v)
                    .iter()
                    .map(|cidr| {
                        cidr.parse::<IpNet>()
                            .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from))
                            .map_err(|_| format!("`{cidr}` is not a CIDR like 10.0.0.0/8"))
                    })
                    .collect()
            } },
        /// The one forwarding header believed from a trusted proxy: `x-forwarded-for`, `forwarded` or `x-real-ip`.
        pub client_ip_header: ClientIpHeader = { "CARREL_CLIENT_IP_HEADER", default: "x-forwarded-for",
            parse: |v: &str| match v.to_ascii_lowercase().as_str() {
                "x-forwarded-for" => Ok(ClientIpHeader::XForwardedFor),
                "forwarded" => Ok(ClientIpHeader::Forwarded),
                "x-real-ip" => Ok(ClientIpHeader::XRealIp),
                _ => Err(format!("`{v}` is not one of x-forwarded-for, forwarded, x-real-ip")),
            } },
        /// When set, `/metrics` is served on this address only (404 on `bind`).
        pub metrics_bind: Option<SocketAddr> = { "CARREL_METRICS_BIND", default: unset,
            parse: parse::address("127.0.0.1:9090") },
        /// Allowed browser origins; empty means no cross-origin access.
        pub cors_origins: Vec<String> = { "CARREL_CORS_ORIGINS", default: { "empty" => Vec::new() },
            parse: |v: &str| parse::list(v).into_iter().map(validate_origin).collect() },
        /// `smtp://user:pass@host:587` (STARTTLS) or `smtps://…`; unset means the file outbox.
        pub smtp_url: Option<SecretString> = { "CARREL_SMTP_URL", default: unset,
            parse: |v: &str| match Url::parse(v) {
                Ok(url) if matches!(url.scheme(), "smtp" | "smtps") && url.host().is_some() => {
                    Ok(SecretString::from(v.to_owned()))
                }
                _ => Err("must be smtp://host:port or smtps://host:port (the value is not shown)".to_owned()),
            },
            secret: true },
        /// The sender of every email.
        pub mail_from: String = { "CARREL_MAIL_FROM", default: "Carrel <no-reply@localhost>", parse: parse::text },
        /// Without SMTP, each email is written here as one `.eml` file.
        pub mail_outbox: PathBuf = { "CARREL_MAIL_OUTBOX",
            default: { "`<data dir>/outbox`" => data_dir.join("outbox") }, parse: parse::path },
        /// The durable outbox's sender.
        pub outbox: OutboxConfig = group,
        /// Upload limit for covers.
        pub upload_max_bytes: usize = { "CARREL_UPLOAD_MAX_BYTES", default: "5242880",
            parse: parse::number(1_024..=1_073_741_824) },
        /// Upload limit for catalog imports (`POST /api/v1/imports`).
        pub import_max_bytes: u64 = { "CARREL_IMPORT_MAX_BYTES", default: "536870912",
            parse: parse::number(1_024..=1_099_511_627_776) },
        /// `file://PATH` or `s3://bucket/prefix` (a password in it is redacted when printed).
        pub storage_url: String = { "CARREL_STORAGE_URL",
            default: { "`file://<data dir>/uploads`" => format!("file://{}", data_dir.join("uploads").display()) },
            parse: |v: &str| match v.split_once("://") {
                Some(("file", path)) if !path.is_empty() => Ok(v.to_owned()),
                Some(("s3", bucket)) if !bucket.is_empty() => Ok(v.to_owned()),
                _ => Err(format!("`{v}` must be file://PATH or s3://BUCKET/PREFIX")),
            },
            show: |url: &String| redact_url_password(url),
            secret: true },
        /// ISO 4217 code of amounts.
        pub currency: String = { "CARREL_CURRENCY", default: "USD", parse: |v: &str| {
            if v.len() == 3 && v.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(v.to_owned())
            } else {
                Err(format!("`{v}` is not an ISO 4217 code like USD"))
            }
        } },
        /// `pretty` or `json`.
        pub log_format: LogFormat = { "CARREL_LOG_FORMAT",
            default: { "`pretty` in development, `json` otherwise" => if env == Environment::Development {
                LogFormat::Pretty
            } else {
                LogFormat::Json
            } },
            parse: |v: &str| match v {
                "pretty" => Ok(LogFormat::Pretty),
                "json" => Ok(LogFormat::Json),
                other => Err(format!("`{other}` is not pretty or json")),
            } },
        /// On start with no admin, create this one (with `CARREL_BOOTSTRAP_ADMIN_PASSWORD`).
        pub bootstrap_admin_email: Option<String> = { "CARREL_BOOTSTRAP_ADMIN_EMAIL", default: unset, parse: parse::text },
        /// The bootstrap admin's password.
        pub bootstrap_admin_password: Option<SecretString> = { "CARREL_BOOTSTRAP_ADMIN_PASSWORD", default: unset,
            parse: |v: &str| Ok(SecretString::from(v.to_owned())), secret: true },
        /// New patrons without a card number get `<prefix><10 digits>`.
        pub card_number_prefix: Option<String> = { "CARREL_CARD_NUMBER_PREFIX", default: unset, parse: |v: &str| {
            if v.len() <= 20 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                Ok(v.to_ascii_uppercase())
            } else {
                Err(format!("`{v}` must be at most 20 characters of A-Z, 0-9 and -"))
            }
        } },
        /// The SIP2 listener.
        pub sip2: Sip2Config = group,
    }
}

impl Show for Environment {
    fn show(&self) -> String {
        self.as_str().to_owned()
    }
}

impl Show for PaymentProviderKind {
    fn show(&self) -> String {
        self.as_str().to_owned()
    }
}

impl Show for ClientIpHeader {
    fn show(&self) -> String {
        self.as_str().to_owned()
    }
}

impl Show for LogFormat {
    fn show(&self) -> String {
        match self {
            LogFormat::Pretty => "pretty",
            LogFormat::Json => "json",
        }
        .to_owned()
    }
}

impl Config {
    /// Loads from the process environment, `CARREL_CONFIG` (or `./carrel.toml` if
    /// present) and `./.env`, then validates.
    pub fn load() -> Result<Self, ConfigError> {
        let sources = Sources::from_process()?;
        Self::from_sources(&sources)
    }

    /// Builds and validates a configuration from explicit variables only (tests,
    /// embedding). Keys are full variable names such as `CARREL_ENV`.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        Self::from_sources(&Sources::from_pairs(pairs))
    }

    /// Parses and checks every declared variable, then the cross-field rules.
    pub fn from_sources(sources: &Sources) -> Result<Self, ConfigError> {
        let config = Self::read(&Reader::new(sources))?;
        config.validate()?;
        Ok(config)
    }

    /// Cross-field checks, and the settings production refuses (each
    /// variable's own checks are in its declaration).
    fn validate(&self) -> Result<(), ConfigError> {
        if self.password.min_length > self.password.max_length {
            return Err(ConfigError::new(
                "CARREL_PASSWORD_MIN_LENGTH",
                format!(
                    "{} is larger than CARREL_PASSWORD_MAX_LENGTH ({})",
                    self.password.min_length, self.password.max_length
                ),
            ));
        }
        if self.bootstrap_admin_email.is_some() != self.bootstrap_admin_password.is_some() {
            return Err(ConfigError::new(
                "CARREL_BOOTSTRAP_ADMIN_PASSWORD",
                "set both CARREL_BOOTSTRAP_ADMIN_EMAIL and CARREL_BOOTSTRAP_ADMIN_PASSWORD, or neither",
            ));
        }
        if self.refresh_token_ttl < self.access_token_ttl {
            return Err(ConfigError::new(
                "CARREL_REFRESH_TOKEN_TTL",
                "must not be shorter than CARREL_ACCESS_TOKEN_TTL",
            ));
        }
        if self.sip2.tls_cert_file.is_some() != self.sip2.tls_key_file.is_some() {
            return Err(ConfigError::new(
                "CARREL_SIP2_TLS_KEY_FILE",
                "set both CARREL_SIP2_TLS_CERT_FILE and CARREL_SIP2_TLS_KEY_FILE, or neither",
            ));
        }
        if self.outbox.backoff_max < self.outbox.backoff {
            return Err(ConfigError::new(
                "CARREL_OUTBOX_BACKOFF_MAX",
                "must be at least CARREL_OUTBOX_BACKOFF",
            ));
        }
        if self.payment_provider == PaymentProviderKind::Test && self.env != Environment::Test {
            return Err(ConfigError::new(
                "CARREL_PAYMENT_PROVIDER",
                "`test` approves fixed test tokens without taking money; it is allowed only with CARREL_ENV=test",
            ));
        }
        if self.env != Environment::Production {
            return Ok(());
        }
        let refuse = |var: &str, why: &str| {
            Err(ConfigError::new(
                var,
                format!("{why} (refused in production)"),
            ))
        };
        if !self.jwt_private_key_file_configured {
            return refuse("CARREL_JWT_PRIVATE_KEY_FILE", "no signing key configured");
        }
        if !self.secrets_key_file_configured {
            return refuse("CARREL_SECRETS_KEY_FILE", "no secrets key configured");
        }
        if self.smtp_url.is_none() {
            return refuse("CARREL_SMTP_URL", "mail would go to the file outbox");
        }
        if self.public_url.scheme() != "https" {
            return refuse("CARREL_PUBLIC_URL", "the public URL must be https");
        }
        if self.cors_origins.iter().any(|o| o == "*") {
            return refuse(
                "CARREL_CORS_ORIGINS",
                "a wildcard origin lets any site call the API",
            );
        }
        Ok(())
    }

    /// Cookies carry `Secure` everywhere but development (plain-http localhost).
    pub fn secure_cookies(&self) -> bool {
        self.env != Environment::Development
    }

    /// The password rules as the domain layer reads them.
    pub fn password_policy(&self) -> carrel_core::password_policy::PasswordPolicy {
        let p = &self.password;
        carrel_core::password_policy::PasswordPolicy {
            min_length: p.min_length,
            max_length: p.max_length,
            require_uppercase: p.require_uppercase,
            require_lowercase: p.require_lowercase,
            require_digit: p.require_digit,
            require_symbol: p.require_symbol,
            forbid_personal_info: p.forbid_personal_info,
            min_strength: p.min_strength,
        }
    }

    /// Lockout threshold and duration.
    pub fn lockout_policy(&self) -> carrel_core::lockout::LockoutPolicy {
        carrel_core::lockout::LockoutPolicy {
            threshold: self.lockout_threshold,
            duration: to_time(self.lockout_duration),
        }
    }

    /// The `iss` claim of access tokens: the public origin.
    pub fn token_issuer(&self) -> String {
        self.own_origin()
    }

    /// The server's own origin (`scheme://host[:port]`), always allowed for CSRF checks.
    pub fn own_origin(&self) -> String {
        self.public_url.origin().ascii_serialization()
    }

    /// Every setting as `CARREL_NAME = value`, secrets redacted, for `carrel config check`.
    pub fn redacted(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        self.show(&mut out);
        out
    }

    /// Every declared setting, in order (the docs table and the tests read it).
    pub fn declared() -> Vec<Declared> {
        let mut out = Vec::new();
        Self::declare(&mut out);
        out
    }

    /// The Markdown table of every setting (`docs/configuration.md`).
    pub fn docs_table() -> String {
        settings::docs_table::<Self>()
    }
}

/// Converts a configured duration for the `time` crate (saturating).
pub fn to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// The `aud` claim of access tokens.
pub const TOKEN_AUDIENCE: &str = "carrel-api";

/// `scheme://host[:port]` with nothing after it, or `*`.
fn validate_origin(origin: String) -> Result<String, String> {
    if origin == "*" {
        return Ok(origin);
    }
    let url = Url::parse(&origin)
        .map_err(|_| format!("`{origin}` is not an origin like https://app.example.org"))?;
    let canonical = url.origin().ascii_serialization();
    if canonical == "null"
        || url.path() != "/"
        || url.query().is_some()
        || origin.trim_end_matches('/') != canonical
    {
        return Err(format!(
            "`{origin}` is not an origin like https://app.example.org (no path)"
        ));
    }
    Ok(canonical)
}

/// Hides the password of `scheme://user:password@host/...` URLs.
fn redact_url_password(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("[redacted]"));
            url.to_string()
        }
        Ok(_) => raw.to_owned(),
        Err(_) => "[unparseable, redacted]".to_owned(),
    }
}

#[cfg(test)]
mod tests;
