//! Where configuration values come from, in order of precedence: the process
//! environment, then the TOML file, then `.env`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// Raw `CARREL_*` values, already merged by precedence.
#[derive(Default)]
pub struct Sources {
    values: HashMap<String, String>,
}

// Values may be secrets: never print them.
impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<_> = self.values.keys().collect();
        keys.sort();
        f.debug_struct("Sources").field("keys", &keys).finish()
    }
}

impl Sources {
    /// Explicit values only; nothing is read from the process or the disk.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let values = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Self { values }
    }

    /// `.env` (lowest), then the TOML file, then the environment (highest).
    pub fn from_process() -> Result<Self, ConfigError> {
        Self::layered(Path::new(".env"), std::env::vars().collect())
    }

    /// The merge behind [`Sources::from_process`], with its inputs made explicit.
    pub(super) fn layered(
        dotenv: &Path,
        env: HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut values = HashMap::new();
        if dotenv.exists() {
            let entries = dotenvy::from_path_iter(dotenv)
                .map_err(|e| ConfigError::new(".env", e.to_string()))?;
            for entry in entries {
                let (key, value) = entry.map_err(|e| ConfigError::new(".env", e.to_string()))?;
                if key.starts_with("CARREL_") {
                    values.insert(key, value);
                }
            }
        }
        let from_env = |key: &str| env.get(key).cloned().or_else(|| values.get(key).cloned());
        let (toml_path, required) = match from_env("CARREL_CONFIG") {
            Some(path) => (PathBuf::from(path), true),
            None => (PathBuf::from("carrel.toml"), false),
        };
        if required || toml_path.exists() {
            values.extend(read_toml(&toml_path)?);
        }
        for (key, value) in env {
            if key.starts_with("CARREL_") {
                values.insert(key, value);
            }
        }
        Ok(Self { values })
    }

    /// The value of `var`, if any source set it.
    pub fn get(&self, var: &str) -> Option<&str> {
        self.values.get(var).map(String::as_str)
    }
}

/// Reads `key = value` pairs; `database_url` becomes `CARREL_DATABASE_URL`.
fn read_toml(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "CARREL_CONFIG",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let table: toml::Table = text.parse().map_err(|e| {
        ConfigError::new(
            "CARREL_CONFIG",
            format!("{} is not valid TOML: {e}", path.display()),
        )
    })?;
    let mut values = HashMap::new();
    for (key, value) in table {
        let var = format!("CARREL_{}", key.to_ascii_uppercase());
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s),
                    other => Err(ConfigError::new(
                        &var,
                        format!("list items must be strings, found {other}"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            _ => {
                return Err(ConfigError::new(
                    &var,
                    "must be a string, number, boolean or list of strings",
                ));
            }
        };
        values.insert(var, text);
    }
    Ok(values)
}
