//! One declaration per setting: the [`settings!`] macro turns a struct whose
//! fields each name their variable, default, parser, checks and secrecy into
//! the struct itself, its reader (parsing and per-setting validation), its
//! redacted listing (`carrel config check`) and its rows of the docs table.
//! Nothing about a variable is written twice.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;
use url::Url;

use super::{ConfigError, Sources, format_duration};

/// One declared variable, as the docs table and the tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub var: String,
    /// The default as documented (a literal default is also what is parsed).
    pub default: String,
    /// Hidden in the redacted listing (wholly, or the password of a URL).
    pub secret: bool,
    pub doc: String,
}

/// A group of settings: a struct declared with [`settings!`] (or written by
/// hand, as the rate limits are).
pub trait Settings: Sized {
    /// Parses and checks every variable of the group.
    fn read(reader: &Reader<'_>) -> Result<Self, ConfigError>;
    /// Appends `(variable, value)` pairs, secrets redacted.
    fn show(&self, out: &mut Vec<(String, String)>);
    /// Appends the group's declarations, in order.
    fn declare(out: &mut Vec<Declared>);
}

/// Reads raw values out of [`Sources`], naming the variable in every error.
#[derive(Debug)]
pub struct Reader<'a> {
    sources: &'a Sources,
}

impl<'a> Reader<'a> {
    pub fn new(sources: &'a Sources) -> Self {
        Self { sources }
    }

    /// The trimmed value, if set and not empty.
    pub fn raw(&self, var: &str) -> Option<&str> {
        self.sources
            .get(var)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    pub fn is_set(&self, var: &str) -> bool {
        self.raw(var).is_some()
    }

    /// The parsed value, or `default` when unset.
    pub fn parse<T>(
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

    /// The parsed value, or the parsed `default` text when unset.
    pub fn parse_or<T>(
        &self,
        var: &str,
        default: &str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        f(self.raw(var).unwrap_or(default)).map_err(|m| ConfigError::new(var, m))
    }

    /// The parsed value, or `None` when unset.
    pub fn optional<T>(
        &self,
        var: &str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.raw(var)
            .map(|v| f(v).map_err(|m| ConfigError::new(var, m)))
            .transpose()
    }

    /// A further check of a parsed value.
    pub fn check<T>(
        &self,
        var: &str,
        value: &T,
        f: impl Fn(&T) -> Result<(), String>,
    ) -> Result<(), ConfigError> {
        f(value).map_err(|m| ConfigError::new(var, m))
    }
}

/// How a value is printed by `carrel config check`.
pub trait Show {
    fn show(&self) -> String;
}

macro_rules! show_display {
    ($($ty:ty),*) => {
        $(impl Show for $ty {
            fn show(&self) -> String {
                self.to_string()
            }
        })*
    };
}
show_display!(
    bool,
    u8,
    u32,
    u64,
    i64,
    usize,
    String,
    SocketAddr,
    Url,
    IpNet,
    super::Rate
);

impl Show for Duration {
    fn show(&self) -> String {
        format_duration(*self)
    }
}

impl Show for PathBuf {
    fn show(&self) -> String {
        self.display().to_string()
    }
}

impl Show for SecretString {
    fn show(&self) -> String {
        "[redacted]".to_owned()
    }
}

impl<T: Show> Show for Option<T> {
    fn show(&self) -> String {
        self.as_ref()
            .map_or_else(|| "(unset)".to_owned(), Show::show)
    }
}

impl<T: Show> Show for Vec<T> {
    fn show(&self) -> String {
        self.iter().map(Show::show).collect::<Vec<_>>().join(",")
    }
}

impl Show for carrel_core::calendar::Zone {
    fn show(&self) -> String {
        self.name().to_owned()
    }
}

impl Show for carrel_sip2::Encoding {
    fn show(&self) -> String {
        self.name().to_owned()
    }
}

impl Show for carrel_ratelimit::RedisFailure {
    fn show(&self) -> String {
        match self {
            carrel_ratelimit::RedisFailure::FallBackToMemory => "fallback",
            carrel_ratelimit::RedisFailure::Allow => "allow",
            carrel_ratelimit::RedisFailure::Deny => "deny",
        }
        .to_owned()
    }
}

/// Declares a settings struct. Each field is either `group` (a nested
/// [`Settings`] struct) or a variable:
///
/// ```text
/// /// What it does (becomes the field's doc and the docs table's line).
/// pub field: Type = { "CARREL_NAME", default: D, parse: P [, check: C] [, show: S] [, secret: true] }
///     [and flag],
/// ```
///
/// `D` is a string literal (parsed by `P` like a set value, so the documented
/// default is the default), `unset` (`Type` is an `Option`, `None` when unset)
/// or `{ "documented" => expression }` (computed; the expression may use the
/// fields declared above it). `P` turns the trimmed text into the value or a
/// message; `C` checks the value; `S` prints it (default: [`Show`]). `and flag`
/// adds a `bool` field telling whether the variable was set.
macro_rules! settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                pub $field:ident : $ty:ty = $how:tt $(and $flag:ident)?,
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
                $(
                    /// Whether the variable above was set (else its default applies).
                    pub $flag: bool,
                )?
            )*
        }

        impl $crate::config::settings::Settings for $name {
            #[allow(clippy::redundant_closure_call)]
            fn read(
                reader: &$crate::config::settings::Reader<'_>,
            ) -> Result<Self, $crate::config::ConfigError> {
                $(
                    let $field: $ty = $crate::config::settings::read_setting!(reader, $ty, $how);
                    $( let $flag = $crate::config::settings::setting_is_set!(reader, $how); )?
                )*
                Ok(Self { $( $field, $( $flag, )? )* })
            }

            #[allow(clippy::redundant_closure_call)]
            fn show(&self, out: &mut Vec<(String, String)>) {
                $( $crate::config::settings::show_setting!(out, &self.$field, $ty, $how); )*
            }

            fn declare(out: &mut Vec<$crate::config::settings::Declared>) {
                $(
                    $crate::config::settings::declare_setting!(
                        out, $ty, concat!("" $(, $doc)*), $how
                    );
                )*
            }
        }
    };
}
pub(crate) use settings;

macro_rules! read_setting {
    ($r:ident, $ty:ty, group) => {
        <$ty as $crate::config::settings::Settings>::read($r)?
    };
    ($r:ident, $ty:ty, {
        $var:literal, default: $default:tt, parse: $parse:expr
        $(, check: $check:expr)? $(, show: $show:expr)? $(, secret: $secret:literal)?
    }) => {{
        let value = $crate::config::settings::read_default!($r, $var, $default, $parse);
        $( $r.check($var, &value, $check)?; )?
        value
    }};
}
pub(crate) use read_setting;

macro_rules! read_default {
    ($r:ident, $var:literal, unset, $parse:expr) => {
        $r.optional($var, $parse)?
    };
    ($r:ident, $var:literal, $default:literal, $parse:expr) => {
        $r.parse_or($var, $default, $parse)?
    };
    ($r:ident, $var:literal, { $doc:literal => $value:expr }, $parse:expr) => {
        $r.parse($var, $value, $parse)?
    };
}
pub(crate) use read_default;

macro_rules! setting_is_set {
    ($r:ident, { $var:literal, $($rest:tt)* }) => {
        $r.is_set($var)
    };
}
pub(crate) use setting_is_set;

macro_rules! show_setting {
    ($out:ident, $value:expr, $ty:ty, group) => {
        <$ty as $crate::config::settings::Settings>::show($value, $out)
    };
    ($out:ident, $value:expr, $ty:ty, {
        $var:literal, default: $default:tt, parse: $parse:expr
        $(, check: $check:expr)?, show: $show:expr $(, secret: $secret:literal)?
    }) => {
        $out.push(($var.to_owned(), ($show)($value)))
    };
    ($out:ident, $value:expr, $ty:ty, {
        $var:literal, default: $default:tt, parse: $parse:expr
        $(, check: $check:expr)? $(, secret: $secret:literal)?
    }) => {
        $out.push((
            $var.to_owned(),
            $crate::config::settings::Show::show($value),
        ))
    };
}
pub(crate) use show_setting;

macro_rules! declare_setting {
    ($out:ident, $ty:ty, $doc:expr, group) => {
        <$ty as $crate::config::settings::Settings>::declare($out)
    };
    ($out:ident, $ty:ty, $doc:expr, {
        $var:literal, default: $default:tt, parse: $parse:expr
        $(, check: $check:expr)? $(, show: $show:expr)? $(, secret: $secret:literal)?
    }) => {
        $out.push($crate::config::settings::Declared {
            var: $var.to_owned(),
            default: $crate::config::settings::default_text!($default).to_owned(),
            secret: $crate::config::settings::flag!($($secret)?),
            doc: $doc.trim().to_owned(),
        })
    };
}
pub(crate) use declare_setting;

macro_rules! flag {
    () => {
        false
    };
    ($value:literal) => {
        $value
    };
}
pub(crate) use flag;

macro_rules! default_text {
    (unset) => {
        "unset"
    };
    ($default:literal) => {
        concat!("`", $default, "`")
    };
    ({ $doc:literal => $value:expr }) => {
        $doc
    };
}
pub(crate) use default_text;

/// The Markdown table of every setting of `S`.
pub fn docs_table<S: Settings>() -> String {
    let mut declared = Vec::new();
    S::declare(&mut declared);
    let mut table = String::from("| variable | default | secret | meaning |\n|---|---|---|---|\n");
    for d in declared {
        let secret = if d.secret { "yes" } else { "" };
        let doc = d.doc.split_whitespace().collect::<Vec<_>>().join(" ");
        table.push_str(&format!(
            "| `{}` | {} | {secret} | {} |\n",
            d.var,
            d.default,
            doc.replace('|', "\\|")
        ));
    }
    table
}
