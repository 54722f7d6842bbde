//! Configuration: one typed struct, read from the environment, an optional
//! `carrel.toml` and a `.env` file (environment wins, then the TOML file, then
//! `.env`), and validated at start-up. Every error names the variable.

mod parse;
mod sources;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub use parse::{Rate, format_duration};
pub use sources::Sources;

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

/// The durable outbox's sender (`CARREL_OUTBOX_*`).
#[derive(Debug, Clone, Copy)]
pub struct OutboxConfig {
    /// Delivery attempts before a message is dead-lettered.
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubled after each further one.
    pub backoff: Duration,
    /// Upper bound of that wait.
    pub backoff_max: Duration,
    /// How long a claimed message belongs to the instance sending it; a
    /// crashed sender's messages are claimable again after it.
    pub lease: Duration,
    /// How often the sender looks for due messages when nothing wakes it
    /// (retries coming due, messages enqueued by other instances).
    pub poll_interval: Duration,
    /// Sent and dead messages are deleted this long after their last change.
    pub retention: Duration,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Password-policy switches (each rule can be turned off).
#[derive(Debug, Clone)]
pub struct PasswordPolicyConfig {
    pub min_length: usize,
    pub max_length: usize,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_digit: bool,
    pub require_symbol: bool,
    pub forbid_personal_info: bool,
    /// zxcvbn score 0..=4; 0 disables the check.
    pub min_strength: u8,
    /// How many passwords (the current one included) may not be reused.
    pub history: u32,
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Argon2Config {
    /// The defaults of CONFIG.md (OWASP's Argon2id recommendation).
    pub const DEFAULT: Self = Self {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
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

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub env: Environment,
    pub bind: SocketAddr,
    pub public_url: Url,
    pub data_dir: PathBuf,
    pub database_url: SecretString,
    pub database_max_connections: u32,
    pub database_acquire_timeout: Duration,
    pub auto_migrate: bool,
    pub redis_url: Option<SecretString>,
    pub body_max_bytes: usize,
    pub request_timeout: Duration,
    pub hash_concurrency: usize,
    pub secrets_key_file: PathBuf,
    pub secrets_key_file_configured: bool,
    pub refresh_reuse_grace: Duration,
    pub mfa_required_roles: Vec<String>,
    pub max_active_loans: u32,
    pub hold_pickup_days: u32,
    pub fine_block_threshold_cents: i64,
    /// Waiting plus ready holds one patron may have.
    pub max_active_holds: u32,
    /// `CARREL_TIMEZONE`: the library's IANA zone (a branch may set its own).
    pub timezone: carrel_core::calendar::Zone,
    /// `CARREL_FINES_COUNT_CLOSED_DAYS`: whether closed days count as days late.
    pub fines_count_closed_days: bool,
    pub payment_provider: PaymentProviderKind,
    pub loan_history_retention: Duration,
    pub jobs_interval: Duration,
    pub jwt_private_key_file: PathBuf,
    pub jwt_private_key_file_configured: bool,
    /// Retired signing keys still accepted for verification (key rotation).
    pub jwt_previous_key_files: Vec<PathBuf>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub require_email_verification: bool,
    pub password: PasswordPolicyConfig,
    pub argon2: Argon2Config,
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
    pub rate_limits_enabled: bool,
    /// What the limiter does while Redis is unreachable.
    pub redis_failure: carrel_ratelimit::RedisFailure,
    pub rate_limits: BTreeMap<&'static str, Rate>,
    pub trusted_proxies: Vec<IpNet>,
    /// The one forwarding header believed from a trusted proxy.
    pub client_ip_header: ClientIpHeader,
    /// When set, `/metrics` is served on this address only (404 on `bind`).
    pub metrics_bind: Option<SocketAddr>,
    pub cors_origins: Vec<String>,
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    pub mail_outbox: PathBuf,
    /// The durable outbox's sender (`CARREL_OUTBOX_*`).
    pub outbox: OutboxConfig,
    pub upload_max_bytes: usize,
    /// Upload limit for catalog imports (`POST /api/v1/imports`).
    pub import_max_bytes: u64,
    pub storage_url: String,
    pub currency: String,
    pub log_format: LogFormat,
    pub bootstrap_admin_email: Option<String>,
    pub bootstrap_admin_password: Option<SecretString>,
    /// New patrons without a card number get `<prefix><10 digits>`.
    pub card_number_prefix: Option<String>,
    pub sip2: Sip2Config,
}

/// The SIP2 listener (`CARREL_SIP2_*`); off unless `bind` is set.
#[derive(Debug, Clone)]
pub struct Sip2Config {
    pub bind: Option<SocketAddr>,
    /// TLS certificate chain and private key (PEM), both or neither.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub encoding: carrel_sip2::Encoding,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// Connections beyond this are closed at once.
    pub max_connections: usize,
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

/// Reads typed values out of [`Sources`], remembering the variable name for errors.
struct Reader<'a> {
    sources: &'a Sources,
}

impl Reader<'_> {
    fn raw(&self, var: &str) -> Option<&str> {
        self.sources
            .get(var)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    fn parse<T>(
        &self,
        var: &str,
        default: T,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        match self.raw(var) {
            Some(value) => f(value).map_err(|m| ConfigError::new(var, m)),
            None => Ok(default),
        }
    }

    fn string(&self, var: &str, default: &str) -> String {
        self.raw(var).unwrap_or(default).to_owned()
    }

    fn duration(&self, var: &str, default: &str) -> Result<Duration, ConfigError> {
        let default = parse::duration(default).map_err(|m| ConfigError::new(var, m))?;
        self.parse(var, default, parse::duration)
    }

    fn boolean(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        self.parse(var, default, parse::boolean)
    }

    fn number<T>(
        &self,
        var: &str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let value = self.parse(var, default, |v| {
            v.parse::<T>()
                .map_err(|_| format!("`{v}` is not a whole number"))
        })?;
        if !range.contains(&value) {
            return Err(ConfigError::new(
                var,
                format!(
                    "{value} is out of range ({}..={})",
                    range.start(),
                    range.end()
                ),
            ));
        }
        Ok(value)
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

    /// Parses and validates every variable.
    pub fn from_sources(sources: &Sources) -> Result<Self, ConfigError> {
        let r = Reader { sources };
        let env = r.parse("CARREL_ENV", Environment::Development, |v| match v {
            "development" => Ok(Environment::Development),
            "test" => Ok(Environment::Test),
            "production" => Ok(Environment::Production),
            other => Err(format!(
                "`{other}` is not one of development, test, production"
            )),
        })?;
        let bind = r.parse(
            "CARREL_BIND",
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            |v| {
                v.parse()
                    .map_err(|_| format!("`{v}` is not an address like 127.0.0.1:8080"))
            },
        )?;
        let default_public_url = Url::parse("http://127.0.0.1:8080")
            .map_err(|e| ConfigError::new("CARREL_PUBLIC_URL", format!("default: {e}")))?;
        let public_url = r.parse("CARREL_PUBLIC_URL", default_public_url, |v| {
            let url = Url::parse(v).map_err(|e| format!("`{v}` is not a URL ({e})"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(format!("`{v}` must be an http:// or https:// URL"));
            }
            Ok(url)
        })?;
        let data_dir = PathBuf::from(r.string("CARREL_DATA_DIR", "./data"));
        let database_url = match r.raw("CARREL_DATABASE_URL") {
            Some(url) => {
                if carrel_store::Backend::from_url(url).is_none() {
                    return Err(ConfigError::new(
                        "CARREL_DATABASE_URL",
                        "must start with sqlite:// or postgres:// (the value is not shown: it may hold a password)",
                    ));
                }
                url.to_owned()
            }
            None => format!("sqlite://{}", data_dir.join("carrel.db").display()),
        };
        let hash_default = std::thread::available_parallelism().map_or(2, |n| n.get());
        let password = PasswordPolicyConfig {
            min_length: r.number("CARREL_PASSWORD_MIN_LENGTH", 8, 1..=1024)?,
            max_length: r.number("CARREL_PASSWORD_MAX_LENGTH", 128, 8..=4096)?,
            require_uppercase: r.boolean("CARREL_PASSWORD_REQUIRE_UPPERCASE", true)?,
            require_lowercase: r.boolean("CARREL_PASSWORD_REQUIRE_LOWERCASE", true)?,
            require_digit: r.boolean("CARREL_PASSWORD_REQUIRE_DIGIT", true)?,
            require_symbol: r.boolean("CARREL_PASSWORD_REQUIRE_SYMBOL", true)?,
            forbid_personal_info: r.boolean("CARREL_PASSWORD_FORBID_PERSONAL_INFO", true)?,
            min_strength: r.number("CARREL_PASSWORD_MIN_STRENGTH", 3, 0..=4)?,
            history: r.number("CARREL_PASSWORD_HISTORY", 5, 0..=50)?,
        };
        if password.min_length > password.max_length {
            return Err(ConfigError::new(
                "CARREL_PASSWORD_MIN_LENGTH",
                format!(
                    "{} is larger than CARREL_PASSWORD_MAX_LENGTH ({})",
                    password.min_length, password.max_length
                ),
            ));
        }
        let mut rate_limits = BTreeMap::new();
        for (name, default) in RATE_LIMIT_DEFAULTS {
            let var = format!("CARREL_RATE_LIMIT_{name}");
            let default = parse::rate(default).map_err(|m| ConfigError::new(&var, m))?;
            rate_limits.insert(*name, r.parse(&var, default, parse::rate)?);
        }
        let secrets_key_file = r.raw("CARREL_SECRETS_KEY_FILE").map(PathBuf::from);
        let jwt_private_key_file = r.raw("CARREL_JWT_PRIVATE_KEY_FILE").map(PathBuf::from);

        let config = Config {
            env,
            bind,
            database_url: SecretString::from(database_url),
            database_max_connections: r.number("CARREL_DATABASE_MAX_CONNECTIONS", 10, 1..=1000)?,
            database_acquire_timeout: r.duration("CARREL_DATABASE_ACQUIRE_TIMEOUT", "5s")?,
            auto_migrate: r.boolean("CARREL_AUTO_MIGRATE", true)?,
            redis_url: r
                .raw("CARREL_REDIS_URL")
                .map(|v| SecretString::from(v.to_owned())),
            body_max_bytes: r.number("CARREL_BODY_MAX_BYTES", 1_048_576, 1_024..=1_073_741_824)?,
            request_timeout: r.duration("CARREL_REQUEST_TIMEOUT", "30s")?,
            hash_concurrency: r.number("CARREL_HASH_CONCURRENCY", hash_default, 1..=1024)?,
            secrets_key_file_configured: secrets_key_file.is_some(),
            secrets_key_file: secrets_key_file.unwrap_or_else(|| data_dir.join("secrets.key")),
            refresh_reuse_grace: r.duration("CARREL_REFRESH_REUSE_GRACE", "0s")?,
            mfa_required_roles: r.parse("CARREL_MFA_REQUIRED_ROLES", Vec::new(), |v| {
                let roles = parse::list(v);
                match roles
                    .iter()
                    .find(|r| !matches!(r.as_str(), "patron" | "librarian" | "admin"))
                {
                    Some(bad) => Err(format!("`{bad}` is not a role (patron, librarian, admin)")),
                    None => Ok(roles),
                }
            })?,
            max_active_loans: r.number("CARREL_MAX_ACTIVE_LOANS", 10, 0..=10_000)?,
            hold_pickup_days: r.number("CARREL_HOLD_PICKUP_DAYS", 7, 1..=365)?,
            fine_block_threshold_cents: r.number(
                "CARREL_FINE_BLOCK_THRESHOLD_CENTS",
                1_000,
                0..=i64::from(i32::MAX),
            )?,
            max_active_holds: r.number("CARREL_MAX_ACTIVE_HOLDS", 20, 0..=10_000)?,
            timezone: r.parse("CARREL_TIMEZONE", carrel_core::calendar::Zone::utc(), |v| {
                carrel_core::calendar::Zone::named(v).map_err(|e| e.to_string())
            })?,
            fines_count_closed_days: r.boolean("CARREL_FINES_COUNT_CLOSED_DAYS", false)?,
            payment_provider: r.parse(
                "CARREL_PAYMENT_PROVIDER",
                PaymentProviderKind::None,
                |v| match v {
                    "none" => Ok(PaymentProviderKind::None),
                    "test" => Ok(PaymentProviderKind::Test),
                    other => Err(format!("`{other}` is not none or test")),
                },
            )?,
            loan_history_retention: r.duration("CARREL_LOAN_HISTORY_RETENTION", "30d")?,
            jobs_interval: r.duration("CARREL_JOBS_INTERVAL", "60s")?,
            jwt_private_key_file_configured: jwt_private_key_file.is_some(),
            jwt_private_key_file: jwt_private_key_file
                .unwrap_or_else(|| data_dir.join("jwt-ed25519.pem")),
            jwt_previous_key_files: r
                .raw("CARREL_JWT_PREVIOUS_KEY_FILES")
                .map(|v| parse::list(v).into_iter().map(PathBuf::from).collect())
                .unwrap_or_default(),
            access_token_ttl: r.duration("CARREL_ACCESS_TOKEN_TTL", "15m")?,
            refresh_token_ttl: r.duration("CARREL_REFRESH_TOKEN_TTL", "30d")?,
            require_email_verification: r.boolean("CARREL_REQUIRE_EMAIL_VERIFICATION", true)?,
            password,
            argon2: Argon2Config {
                memory_kib: r.number(
                    "CARREL_ARGON2_MEMORY_KIB",
                    Argon2Config::DEFAULT.memory_kib,
                    8..=4_194_304,
                )?,
                iterations: r.number(
                    "CARREL_ARGON2_ITERATIONS",
                    Argon2Config::DEFAULT.iterations,
                    1..=100,
                )?,
                parallelism: r.number(
                    "CARREL_ARGON2_PARALLELISM",
                    Argon2Config::DEFAULT.parallelism,
                    1..=64,
                )?,
            },
            lockout_threshold: r.number("CARREL_LOCKOUT_THRESHOLD", 5, 1..=1_000)?,
            lockout_duration: r.duration("CARREL_LOCKOUT_DURATION", "15m")?,
            rate_limits_enabled: r.boolean("CARREL_RATE_LIMITS_ENABLED", true)?,
            redis_failure: r.parse(
                "CARREL_RATE_LIMIT_REDIS_FAILURE",
                carrel_ratelimit::RedisFailure::FallBackToMemory,
                |v| match v {
                    "fallback" => Ok(carrel_ratelimit::RedisFailure::FallBackToMemory),
                    "allow" => Ok(carrel_ratelimit::RedisFailure::Allow),
                    "deny" => Ok(carrel_ratelimit::RedisFailure::Deny),
                    other => Err(format!("`{other}` is not fallback, allow or deny")),
                },
            )?,
            rate_limits,
            trusted_proxies: r.parse("CARREL_TRUSTED_PROXIES", Vec::new(), |v| {
                parse::list(v)
                    .iter()
                    .map(|cidr| {
                        cidr.parse::<IpNet>()
                            .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from))
                            .map_err(|_| format!("`{cidr}` is not a CIDR like 10.0.0.0/8"))
                    })
                    .collect()
            })?,
            client_ip_header: r.parse(
                "CARREL_CLIENT_IP_HEADER",
                ClientIpHeader::XForwardedFor,
                |v| match v.to_ascii_lowercase().as_str() {
                    "x-forwarded-for" => Ok(ClientIpHeader::XForwardedFor),
                    "forwarded" => Ok(ClientIpHeader::Forwarded),
                    "x-real-ip" => Ok(ClientIpHeader::XRealIp),
                    _ => Err(format!(
                        "`{v}` is not one of x-forwarded-for, forwarded, x-real-ip"
                    )),
                },
            )?,
            metrics_bind: r.parse("CARREL_METRICS_BIND", None, |v| {
                v.parse()
                    .map(Some)
                    .map_err(|_| format!("`{v}` is not an address like 127.0.0.1:9090"))
            })?,
            cors_origins: r.parse("CARREL_CORS_ORIGINS", Vec::new(), |v| {
                parse::list(v).into_iter().map(validate_origin).collect()
            })?,
            smtp_url: r
                .parse("CARREL_SMTP_URL", None, |v| match Url::parse(v) {
                    Ok(url) if matches!(url.scheme(), "smtp" | "smtps") && url.host().is_some() => {
                        Ok(Some(v.to_owned()))
                    }
                    _ => Err(
                        "must be smtp://host:port or smtps://host:port (the value is not shown)"
                            .to_owned(),
                    ),
                })?
                .map(SecretString::from),
            mail_from: r.string("CARREL_MAIL_FROM", "Carrel <no-reply@localhost>"),
            mail_outbox: r
                .raw("CARREL_MAIL_OUTBOX")
                .map_or_else(|| data_dir.join("outbox"), PathBuf::from),
            outbox: OutboxConfig {
                max_attempts: r.number("CARREL_OUTBOX_MAX_ATTEMPTS", 8, 1..=100)?,
                backoff: r.duration("CARREL_OUTBOX_BACKOFF", "30s")?,
                backoff_max: r.duration("CARREL_OUTBOX_BACKOFF_MAX", "1h")?,
                lease: r.duration("CARREL_OUTBOX_LEASE", "2m")?,
                poll_interval: r.duration("CARREL_OUTBOX_POLL_INTERVAL", "5s")?,
                retention: r.duration("CARREL_OUTBOX_RETENTION", "7d")?,
            },
            upload_max_bytes: r.number(
                "CARREL_UPLOAD_MAX_BYTES",
                5_242_880,
                1_024..=1_073_741_824,
            )?,
            import_max_bytes: r.number(
                "CARREL_IMPORT_MAX_BYTES",
                536_870_912,
                1_024..=1_099_511_627_776,
            )?,
            storage_url: r.parse(
                "CARREL_STORAGE_URL",
                format!("file://{}", data_dir.join("uploads").display()),
                |v| match v.split_once("://") {
                    Some(("file", path)) if !path.is_empty() => Ok(v.to_owned()),
                    Some(("s3", bucket)) if !bucket.is_empty() => Ok(v.to_owned()),
                    _ => Err(format!("`{v}` must be file://PATH or s3://BUCKET/PREFIX")),
                },
            )?,
            currency: r.parse("CARREL_CURRENCY", "USD".to_owned(), |v| {
                if v.len() == 3 && v.bytes().all(|b| b.is_ascii_uppercase()) {
                    Ok(v.to_owned())
                } else {
                    Err(format!("`{v}` is not an ISO 4217 code like USD"))
                }
            })?,
            log_format: r.parse(
                "CARREL_LOG_FORMAT",
                if env == Environment::Development {
                    LogFormat::Pretty
                } else {
                    LogFormat::Json
                },
                |v| match v {
                    "pretty" => Ok(LogFormat::Pretty),
                    "json" => Ok(LogFormat::Json),
                    other => Err(format!("`{other}` is not pretty or json")),
                },
            )?,
            bootstrap_admin_email: r.raw("CARREL_BOOTSTRAP_ADMIN_EMAIL").map(str::to_owned),
            bootstrap_admin_password: r
                .raw("CARREL_BOOTSTRAP_ADMIN_PASSWORD")
                .map(|v| SecretString::from(v.to_owned())),
            card_number_prefix: r.parse("CARREL_CARD_NUMBER_PREFIX", None, |v| {
                if v.len() <= 20 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    Ok(Some(v.to_ascii_uppercase()))
                } else {
                    Err(format!(
                        "`{v}` must be at most 20 characters of A-Z, 0-9 and -"
                    ))
                }
            })?,
            sip2: Sip2Config {
                bind: r.parse("CARREL_SIP2_BIND", None, |v| {
                    v.parse()
                        .map(Some)
                        .map_err(|_| format!("`{v}` is not an address like 127.0.0.1:6001"))
                })?,
                tls_cert_file: r.raw("CARREL_SIP2_TLS_CERT_FILE").map(PathBuf::from),
                tls_key_file: r.raw("CARREL_SIP2_TLS_KEY_FILE").map(PathBuf::from),
                encoding: r.parse("CARREL_SIP2_ENCODING", carrel_sip2::Encoding::Utf8, |v| {
                    v.parse()
                        .map_err(|_| format!("`{v}` is not one of utf-8, cp850, latin1"))
                })?,
                idle_timeout: r.duration("CARREL_SIP2_IDLE_TIMEOUT", "5m")?,
                max_connections: r.number("CARREL_SIP2_MAX_CONNECTIONS", 64, 1..=100_000)?,
            },
            public_url,
            data_dir,
        };
        config.validate()?;
        Ok(config)
    }

    /// Cross-field checks, and the settings production refuses.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap_admin_email.is_some() != self.bootstrap_admin_password.is_some() {
            return Err(ConfigError::new(
                "CARREL_BOOTSTRAP_ADMIN_PASSWORD",
                "set both CARREL_BOOTSTRAP_ADMIN_EMAIL and CARREL_BOOTSTRAP_ADMIN_PASSWORD, or neither",
            ));
        }
        if self.access_token_ttl.is_zero() || self.access_token_ttl > Duration::from_secs(86_400) {
            return Err(ConfigError::new(
                "CARREL_ACCESS_TOKEN_TTL",
                "must be between 1s and 1d",
            ));
        }
        if self.refresh_token_ttl < self.access_token_ttl {
            return Err(ConfigError::new(
                "CARREL_REFRESH_TOKEN_TTL",
                "must not be shorter than CARREL_ACCESS_TOKEN_TTL",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(ConfigError::new(
                "CARREL_REQUEST_TIMEOUT",
                "must be longer than 0s",
            ));
        }
        if self.sip2.tls_cert_file.is_some() != self.sip2.tls_key_file.is_some() {
            return Err(ConfigError::new(
                "CARREL_SIP2_TLS_KEY_FILE",
                "set both CARREL_SIP2_TLS_CERT_FILE and CARREL_SIP2_TLS_KEY_FILE, or neither",
            ));
        }
        if self.sip2.idle_timeout < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "CARREL_SIP2_IDLE_TIMEOUT",
                "must be at least 1s",
            ));
        }
        for (var, value) in [
            ("CARREL_OUTBOX_BACKOFF", self.outbox.backoff),
            ("CARREL_OUTBOX_LEASE", self.outbox.lease),
            ("CARREL_OUTBOX_POLL_INTERVAL", self.outbox.poll_interval),
        ] {
            if value < Duration::from_secs(1) {
                return Err(ConfigError::new(var, "must be at least 1s"));
            }
        }
        if self.outbox.backoff_max < self.outbox.backoff {
            return Err(ConfigError::new(
                "CARREL_OUTBOX_BACKOFF_MAX",
                "must be at least CARREL_OUTBOX_BACKOFF",
            ));
        }
        if self.jobs_interval < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "CARREL_JOBS_INTERVAL",
                "must be at least 1s",
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
        let secret = |s: &Option<SecretString>| match s {
            Some(_) => "[redacted]".to_owned(),
            None => "(unset)".to_owned(),
        };
        let d = |d: Duration| format_duration(d);
        let mut out: Vec<(String, String)> = vec![
            ("CARREL_ENV".into(), self.env.as_str().into()),
            ("CARREL_BIND".into(), self.bind.to_string()),
            ("CARREL_PUBLIC_URL".into(), self.public_url.to_string()),
            (
                "CARREL_DATA_DIR".into(),
                self.data_dir.display().to_string(),
            ),
            (
                "CARREL_DATABASE_URL".into(),
                redact_url_password(self.database_url.expose_secret()),
            ),
            (
                "CARREL_DATABASE_MAX_CONNECTIONS".into(),
                self.database_max_connections.to_string(),
            ),
            (
                "CARREL_DATABASE_ACQUIRE_TIMEOUT".into(),
                d(self.database_acquire_timeout),
            ),
            ("CARREL_AUTO_MIGRATE".into(), self.auto_migrate.to_string()),
            ("CARREL_REDIS_URL".into(), secret(&self.redis_url)),
            (
                "CARREL_BODY_MAX_BYTES".into(),
                self.body_max_bytes.to_string(),
            ),
            ("CARREL_REQUEST_TIMEOUT".into(), d(self.request_timeout)),
            (
                "CARREL_HASH_CONCURRENCY".into(),
                self.hash_concurrency.to_string(),
            ),
            (
                "CARREL_SECRETS_KEY_FILE".into(),
                self.secrets_key_file.display().to_string(),
            ),
            (
                "CARREL_REFRESH_REUSE_GRACE".into(),
                d(self.refresh_reuse_grace),
            ),
            (
                "CARREL_MFA_REQUIRED_ROLES".into(),
                self.mfa_required_roles.join(","),
            ),
            (
                "CARREL_MAX_ACTIVE_LOANS".into(),
                self.max_active_loans.to_string(),
            ),
            (
                "CARREL_HOLD_PICKUP_DAYS".into(),
                self.hold_pickup_days.to_string(),
            ),
            (
                "CARREL_FINE_BLOCK_THRESHOLD_CENTS".into(),
                self.fine_block_threshold_cents.to_string(),
            ),
            (
                "CARREL_MAX_ACTIVE_HOLDS".into(),
                self.max_active_holds.to_string(),
            ),
            ("CARREL_TIMEZONE".into(), self.timezone.name().to_owned()),
            (
                "CARREL_FINES_COUNT_CLOSED_DAYS".into(),
                self.fines_count_closed_days.to_string(),
            ),
            (
                "CARREL_PAYMENT_PROVIDER".into(),
                self.payment_provider.as_str().into(),
            ),
            (
                "CARREL_LOAN_HISTORY_RETENTION".into(),
                d(self.loan_history_retention),
            ),
            ("CARREL_JOBS_INTERVAL".into(), d(self.jobs_interval)),
            (
                "CARREL_OUTBOX_MAX_ATTEMPTS".into(),
                self.outbox.max_attempts.to_string(),
            ),
            ("CARREL_OUTBOX_BACKOFF".into(), d(self.outbox.backoff)),
            (
                "CARREL_OUTBOX_BACKOFF_MAX".into(),
                d(self.outbox.backoff_max),
            ),
            ("CARREL_OUTBOX_LEASE".into(), d(self.outbox.lease)),
            (
                "CARREL_OUTBOX_POLL_INTERVAL".into(),
                d(self.outbox.poll_interval),
            ),
            ("CARREL_OUTBOX_RETENTION".into(), d(self.outbox.retention)),
            (
                "CARREL_JWT_PRIVATE_KEY_FILE".into(),
                self.jwt_private_key_file.display().to_string(),
            ),
            (
                "CARREL_JWT_PREVIOUS_KEY_FILES".into(),
                self.jwt_previous_key_files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("CARREL_ACCESS_TOKEN_TTL".into(), d(self.access_token_ttl)),
            ("CARREL_REFRESH_TOKEN_TTL".into(), d(self.refresh_token_ttl)),
            (
                "CARREL_REQUIRE_EMAIL_VERIFICATION".into(),
                self.require_email_verification.to_string(),
            ),
            (
                "CARREL_PASSWORD_MIN_LENGTH".into(),
                self.password.min_length.to_string(),
            ),
            (
                "CARREL_PASSWORD_MAX_LENGTH".into(),
                self.password.max_length.to_string(),
            ),
            (
                "CARREL_PASSWORD_REQUIRE_UPPERCASE".into(),
                self.password.require_uppercase.to_string(),
            ),
            (
                "CARREL_PASSWORD_REQUIRE_LOWERCASE".into(),
                self.password.require_lowercase.to_string(),
            ),
            (
                "CARREL_PASSWORD_REQUIRE_DIGIT".into(),
                self.password.require_digit.to_string(),
            ),
            (
                "CARREL_PASSWORD_REQUIRE_SYMBOL".into(),
                self.password.require_symbol.to_string(),
            ),
            (
                "CARREL_PASSWORD_FORBID_PERSONAL_INFO".into(),
                self.password.forbid_personal_info.to_string(),
            ),
            (
                "CARREL_PASSWORD_MIN_STRENGTH".into(),
                self.password.min_strength.to_string(),
            ),
            (
                "CARREL_PASSWORD_HISTORY".into(),
                self.password.history.to_string(),
            ),
            (
                "CARREL_ARGON2_MEMORY_KIB".into(),
                self.argon2.memory_kib.to_string(),
            ),
            (
                "CARREL_ARGON2_ITERATIONS".into(),
                self.argon2.iterations.to_string(),
            ),
            (
                "CARREL_ARGON2_PARALLELISM".into(),
                self.argon2.parallelism.to_string(),
            ),
            (
                "CARREL_LOCKOUT_THRESHOLD".into(),
                self.lockout_threshold.to_string(),
            ),
            ("CARREL_LOCKOUT_DURATION".into(), d(self.lockout_duration)),
            (
                "CARREL_RATE_LIMITS_ENABLED".into(),
                self.rate_limits_enabled.to_string(),
            ),
        ];
        for (name, rate) in &self.rate_limits {
            out.push((format!("CARREL_RATE_LIMIT_{name}"), rate.to_string()));
        }
        let proxies: Vec<String> = self
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        out.extend([
            ("CARREL_TRUSTED_PROXIES".into(), proxies.join(",")),
            (
                "CARREL_CLIENT_IP_HEADER".into(),
                self.client_ip_header.as_str().into(),
            ),
            (
                "CARREL_METRICS_BIND".into(),
                self.metrics_bind
                    .map_or_else(|| "(unset)".to_owned(), |a| a.to_string()),
            ),
            ("CARREL_CORS_ORIGINS".into(), self.cors_origins.join(",")),
            ("CARREL_SMTP_URL".into(), secret(&self.smtp_url)),
            ("CARREL_MAIL_FROM".into(), self.mail_from.clone()),
            (
                "CARREL_MAIL_OUTBOX".into(),
                self.mail_outbox.display().to_string(),
            ),
            (
                "CARREL_UPLOAD_MAX_BYTES".into(),
                self.upload_max_bytes.to_string(),
            ),
            (
                "CARREL_IMPORT_MAX_BYTES".into(),
                self.import_max_bytes.to_string(),
            ),
            (
                "CARREL_STORAGE_URL".into(),
                redact_url_password(&self.storage_url),
            ),
            ("CARREL_CURRENCY".into(), self.currency.clone()),
            (
                "CARREL_LOG_FORMAT".into(),
                format!("{:?}", self.log_format).to_lowercase(),
            ),
            (
                "CARREL_BOOTSTRAP_ADMIN_EMAIL".into(),
                self.bootstrap_admin_email
                    .clone()
                    .unwrap_or_else(|| "(unset)".into()),
            ),
            (
                "CARREL_BOOTSTRAP_ADMIN_PASSWORD".into(),
                secret(&self.bootstrap_admin_password),
            ),
            (
                "CARREL_CARD_NUMBER_PREFIX".into(),
                self.card_number_prefix
                    .clone()
                    .unwrap_or_else(|| "(unset)".into()),
            ),
            (
                "CARREL_SIP2_BIND".into(),
                self.sip2
                    .bind
                    .map_or_else(|| "(unset)".into(), |b| b.to_string()),
            ),
            (
                "CARREL_SIP2_TLS_CERT_FILE".into(),
                self.sip2
                    .tls_cert_file
                    .as_ref()
                    .map_or_else(|| "(unset)".into(), |p| p.display().to_string()),
            ),
            (
                "CARREL_SIP2_TLS_KEY_FILE".into(),
                self.sip2
                    .tls_key_file
                    .as_ref()
                    .map_or_else(|| "(unset)".into(), |p| p.display().to_string()),
            ),
            (
                "CARREL_SIP2_ENCODING".into(),
                self.sip2.encoding.name().into(),
            ),
            ("CARREL_SIP2_IDLE_TIMEOUT".into(), d(self.sip2.idle_timeout)),
            (
                "CARREL_SIP2_MAX_CONNECTIONS".into(),
                self.sip2.max_connections.to_string(),
            ),
        ]);
        out
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
