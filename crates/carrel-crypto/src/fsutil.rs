//! Randomness and key-file I/O shared by the key types.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::KeyError;

/// Key files are tiny; anything larger is refused before it is read into memory.
const MAX_KEY_FILE_LEN: u64 = 16 * 1024;

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn try_fill_random(buf: &mut [u8]) -> Result<(), KeyError> {
    getrandom::fill(buf)
        .map_err(|e| KeyError::Crypto(format!("operating system random number generator: {e}")))
}

/// Fills `buf` from the operating system's CSPRNG, for the infallible constructors
/// (`OpaqueToken::generate`, `SecretsKey::seal`, ...).
///
/// If the OS RNG fails there is no safe value to return (a predictable token or nonce would be
/// a silent security failure), so this is the crate's single deliberate panic site.
#[allow(clippy::panic)]
pub(crate) fn fill_random(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        panic!("operating system random number generator unavailable: {e}");
    }
}

/// Reads a key file (at most [`MAX_KEY_FILE_LEN`] bytes) into a buffer wiped on drop.
/// Errors keep the `NotFound` kind so callers can decide to generate.
pub(crate) fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let file = File::open(path).map_err(|e| KeyError::io(path, e))?;
    let mut buf = Zeroizing::new(Vec::with_capacity(256));
    file.take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut buf)
        .map_err(|e| KeyError::io(path, e))?;
    if buf.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(KeyError::invalid(
            path,
            &format!("file is larger than {MAX_KEY_FILE_LEN} bytes"),
        ));
    }
    Ok(buf)
}

pub(crate) fn is_not_found(err: &KeyError) -> bool {
    matches!(err, KeyError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
}

/// Result of [`write_new_key_file`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Published {
    /// Our content is now at the path.
    Created,
    /// Another process created the file between our "missing" check and our publish; its
    /// content was kept and ours discarded. The caller should load the file.
    AlreadyExisted,
}

/// Creates `path` holding `contents`, atomically and readable only by the owner.
///
/// Parent directories are created (mode 0700 on unix for the ones created). The content is
/// written to a temporary file in the same directory (created with mode 0600, fsynced), then
/// published: by `hard_link` where supported, which never replaces a file that appeared
/// concurrently, else by `rename`. The directory is fsynced afterwards (best effort).
pub(crate) fn write_new_key_file(path: &Path, contents: &[u8]) -> Result<Published, KeyError> {
    let file_name = path
        .file_name()
        .ok_or_else(|| KeyError::invalid(path, "key path has no file name"))?;
    let dir: PathBuf = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_dir_all_private(&dir).map_err(|e| KeyError::io(&dir, e))?;

    let mut suffix = [0u8; 8];
    try_fill_random(&mut suffix)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        hex(&suffix)
    ));

    let result = write_tmp(&tmp, contents)
        .map_err(|e| KeyError::io(&tmp, e))
        .and_then(|()| publish(&tmp, path));
    // The temporary name is removed in every case (after a hard link or on error); after a
    // successful rename it no longer exists and the error is ignored.
    let _ = fs::remove_file(&tmp);
    if result.is_ok() {
        sync_dir(&dir);
    }
    result
}

fn write_tmp(tmp: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(tmp)?;
    #[cfg(unix)]
    {
        // `mode` above is filtered by the umask; make the final mode exact.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)?;
    file.sync_all()
}

fn publish(tmp: &Path, path: &Path) -> Result<Published, KeyError> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(Published::Created),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Published::AlreadyExisted),
        // File systems without hard links: fall back to rename (atomic, but last writer wins).
        Err(_) => fs::rename(tmp, path)
            .map(|()| Published::Created)
            .map_err(|e| KeyError::io(path, e)),
    }
}

fn create_dir_all_private(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
