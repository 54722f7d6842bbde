//! Integration tests of the public API of `carrel-crypto`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod jwt;
mod properties;
mod secrets;
mod tokens;

use std::path::Path;

/// Asserts an error message names `path` and contains none of `secrets`.
pub fn assert_names_path_only(message: &str, path: &Path, secrets: &[&str]) {
    assert!(
        message.contains(&path.display().to_string()),
        "message {message:?} should name {}",
        path.display()
    );
    for secret in secrets {
        assert!(
            secret.is_empty() || !message.contains(secret),
            "message {message:?} leaks {secret:?}"
        );
    }
}

#[cfg(unix)]
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Names of the entries in `dir` (to check no temporary files are left behind).
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
