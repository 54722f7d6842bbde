//! Where covers live: a local directory or an S3 bucket.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use uuid::Uuid;

use crate::format::ImageFormat;

/// Why a storage operation failed. Messages never contain credentials (nor the storage
/// URL, which is not echoed since it could carry some).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The storage URL is malformed or refers to something unusable.
    #[error("invalid storage URL: {0}")]
    InvalidUrl(&'static str),
    /// The storage URL has a scheme other than `file` or `s3`.
    #[error("unsupported storage URL scheme `{0}` (expected file:// or s3://)")]
    UnsupportedScheme(String),
    /// An `s3://` URL, but this build of carrel-media lacks its `s3` feature.
    #[error("s3:// storage is not available: carrel-media was built without its `s3` feature")]
    S3NotCompiledIn,
    /// `put` was given something other than a processed cover: only JPEG and PNG are
    /// stored, and the bytes must be of the stated format.
    #[error("refusing to store: {0}")]
    InvalidContent(&'static str),
    /// A file-system operation of the `file://` backend failed.
    #[error("cover storage I/O error while {op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The underlying error (it never names a path).
        #[source]
        source: std::io::Error,
    },
    /// The object store (S3) reported an error. Any configured secret is redacted.
    #[error("object storage error: {0}")]
    Backend(String),
}

impl StorageError {
    /// Whether the file system ran out of space (or quota) for the write: the
    /// server answers 507 instead of 500.
    pub fn is_storage_full(&self) -> bool {
        match self {
            StorageError::Io { source, .. } => {
                source.kind() == std::io::ErrorKind::StorageFull
                    || source.kind() == std::io::ErrorKind::QuotaExceeded
            }
            _ => false,
        }
    }
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> StorageError {
    move |source| StorageError::Io { op, source }
}

/// Where covers live: `file://DIR` or `s3://bucket/prefix` (the server's
/// `CARREL_STORAGE_URL`).
///
/// Objects are named `<uuid v4>.<jpg|png>` by [`put`](Self::put); every other name is
/// refused by [`get`](Self::get) and [`delete`](Self::delete), so names from a request
/// can be passed straight through without any risk of path traversal.
#[derive(Clone)]
pub struct CoverStore {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    File(Arc<FileBackend>),
    #[cfg(feature = "s3")]
    S3(Arc<s3::S3Backend>),
}

impl fmt::Debug for CoverStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::File(file) => f
                .debug_struct("CoverStore")
                .field("kind", &"file")
                .field("dir", &file.dir)
                .finish(),
            #[cfg(feature = "s3")]
            Backend::S3(s3) => f
                .debug_struct("CoverStore")
                .field("kind", &"s3")
                .field("bucket", &s3.bucket)
                .field("prefix", &s3.prefix.as_ref())
                .finish(),
        }
    }
}

impl CoverStore {
    /// Opens the store named by `url`:
    ///
    /// * `file://DIR`: the rest of the URL is a file-system path, absolute
    ///   (`file:///var/lib/carrel/covers`) or relative to the working directory
    ///   (`file://data/covers`); it is not percent-decoded. The directory is created
    ///   (mode 0755) if missing.
    /// * `s3://bucket/prefix` (the prefix is optional): region, credentials and endpoint
    ///   come from the standard `AWS_*` environment variables (object_store's
    ///   `AmazonS3Builder::from_env`: `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    ///   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, …), with `AWS_ENDPOINT` and
    ///   `AWS_ALLOW_HTTP=true` for S3-compatible servers such as MinIO. Credentials in the
    ///   URL itself are refused. Nothing is contacted until the first operation.
    ///
    /// # Errors
    ///
    /// A malformed URL, an unknown scheme, a directory that cannot be created, or an S3
    /// configuration that object_store rejects.
    pub fn from_url(url: &str) -> Result<Self, StorageError> {
        let (scheme, rest) = url.split_once("://").ok_or(StorageError::InvalidUrl(
            "expected file://DIR or s3://bucket/prefix",
        ))?;
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(StorageError::InvalidUrl(
                "expected file://DIR or s3://bucket/prefix",
            ));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "file" => FileBackend::open(rest).map(|file| Self {
                backend: Backend::File(Arc::new(file)),
            }),
            #[cfg(feature = "s3")]
            "s3" => s3::S3Backend::from_env(url).map(|s3| Self {
                backend: Backend::S3(Arc::new(s3)),
            }),
            #[cfg(not(feature = "s3"))]
            "s3" => Err(StorageError::S3NotCompiledIn),
            _ => Err(StorageError::UnsupportedScheme(scheme.to_owned())),
        }
    }

    /// `"file"` or `"s3"`.
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::File(_) => "file",
            #[cfg(feature = "s3")]
            Backend::S3(_) => "s3",
        }
    }

    /// Whether `name` is exactly `<uuid>.<jpg|png>` (lower-case hyphenated UUID), the only
    /// names this store ever creates or reads.
    pub fn is_valid_name(name: &str) -> bool {
        Self::format_of(name).is_some()
    }

    /// The format of a stored object, from its name; `None` unless
    /// [`is_valid_name`](Self::is_valid_name). Use it for the `Content-Type` when serving.
    pub fn format_of(name: &str) -> Option<ImageFormat> {
        let (stem, extension) = name.split_at_checked(36)?;
        let format = match extension {
            ".jpg" => ImageFormat::Jpeg,
            ".png" => ImageFormat::Png,
            _ => return None,
        };
        let well_formed = stem.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        });
        well_formed.then_some(format)
    }

    /// Stores under a fresh random name (`<uuid v4>.<ext>`; callers never choose names, so
    /// no path traversal is possible) and returns the name.
    ///
    /// Only processed covers are accepted: `format` must be JPEG or PNG and `bytes` must
    /// start with its signature (a guard against storing a raw upload by mistake).
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidContent`] for other content, else I/O or backend errors.
    pub async fn put(&self, bytes: Vec<u8>, format: ImageFormat) -> Result<String, StorageError> {
        if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png) {
            return Err(StorageError::InvalidContent(
                "only JPEG and PNG covers are stored",
            ));
        }
        if ImageFormat::sniff(&bytes) != Some(format) {
            return Err(StorageError::InvalidContent(
                "bytes are not of the stated format",
            ));
        }
        let name = format!("{}.{}", Uuid::new_v4(), format.extension());
        match &self.backend {
            Backend::File(file) => file.put(&name, bytes).await?,
            #[cfg(feature = "s3")]
            Backend::S3(s3) => s3.put(&name, bytes, format).await?,
        }
        tracing::debug!(store = self.kind(), %name, "cover stored");
        Ok(name)
    }

    /// The object's bytes; `None` if absent. Rejects any name that is not exactly
    /// `<uuid>.<jpg|png>` (defence in depth) by answering `None`: such an object cannot
    /// exist, and nothing outside the store is ever looked at.
    ///
    /// # Errors
    ///
    /// I/O or backend errors other than "not found".
    pub async fn get(&self, name: &str) -> Result<Option<Bytes>, StorageError> {
        if !Self::is_valid_name(name) {
            log_invalid_name("get", name);
            return Ok(None);
        }
        match &self.backend {
            Backend::File(file) => file.get(name).await,
            #[cfg(feature = "s3")]
            Backend::S3(s3) => s3.get(name).await,
        }
    }

    /// Deletes the object; absent is fine, and so is an invalid name (nothing is done).
    ///
    /// # Errors
    ///
    /// I/O or backend errors other than "not found".
    pub async fn delete(&self, name: &str) -> Result<(), StorageError> {
        if !Self::is_valid_name(name) {
            log_invalid_name("delete", name);
            return Ok(());
        }
        match &self.backend {
            Backend::File(file) => file.delete(name).await,
            #[cfg(feature = "s3")]
            Backend::S3(s3) => s3.delete(name).await,
        }
    }
}

fn log_invalid_name(op: &'static str, name: &str) {
    let shown: String = name.chars().take(80).collect();
    tracing::debug!(op, name = ?shown, "refused an invalid cover name");
}

/// `file://DIR`: one flat directory of `<uuid>.<ext>` files.
struct FileBackend {
    /// Canonical (absolute, symlink-free) path of the directory.
    dir: PathBuf,
}

impl FileBackend {
    fn open(path: &str) -> Result<Self, StorageError> {
        if path.is_empty() {
            return Err(StorageError::InvalidUrl("file:// needs a directory"));
        }
        if path.contains('\0') {
            return Err(StorageError::InvalidUrl("NUL in file:// path"));
        }
        let path = Path::new(path);
        if !path.exists() {
            create_dir(path)?;
        }
        let dir = std::fs::canonicalize(path).map_err(io("resolving the cover directory"))?;
        if !dir.is_dir() {
            return Err(StorageError::InvalidUrl("file:// path is not a directory"));
        }
        Ok(Self { dir })
    }

    async fn put(&self, name: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        // A dot-name can never pass `is_valid_name`, so a temp file is never served, and a
        // fresh UUID cannot collide with another writer's.
        let temp = self.dir.join(format!(".{}.tmp", Uuid::new_v4()));
        let result = write_then_rename(&temp, &self.dir.join(name), &bytes).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result?;
        // Make the rename durable; failure here does not undo a completed put.
        if let Ok(dir) = tokio::fs::File::open(&self.dir).await
            && let Err(error) = dir.sync_all().await
        {
            tracing::warn!(%error, "could not sync the cover directory");
        }
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<Bytes>, StorageError> {
        match tokio::fs::read(self.dir.join(name)).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::Io {
                op: "reading a cover",
                source: e,
            }),
        }
    }

    async fn delete(&self, name: &str) -> Result<(), StorageError> {
        match tokio::fs::remove_file(self.dir.join(name)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::Io {
                op: "deleting a cover",
                source: e,
            }),
        }
    }
}

#[cfg(unix)]
fn create_dir(path: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(io("creating the cover directory"))?;
    // The umask may have removed bits; the leaf is ours, so set it exactly.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(io("setting the cover directory's mode"))
}

#[cfg(not(unix))]
fn create_dir(path: &Path) -> Result<(), StorageError> {
    std::fs::create_dir_all(path).map_err(io("creating the cover directory"))
}

async fn write_then_rename(temp: &Path, target: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    use tokio::io::AsyncWriteExt;

    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o644);
    let mut file = options
        .open(temp)
        .await
        .map_err(io("creating a cover file"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Exactly 0644 whatever the umask.
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .await
            .map_err(io("setting a cover file's mode"))?;
    }
    file.write_all(bytes)
        .await
        .map_err(io("writing a cover file"))?;
    // tokio writes in the background: a failed write (ENOSPC) is reported by
    // the next flush, and `sync_all` alone would drop it and keep an empty file.
    file.flush().await.map_err(io("writing a cover file"))?;
    file.sync_all().await.map_err(io("syncing a cover file"))?;
    drop(file);
    tokio::fs::rename(temp, target)
        .await
        .map_err(io("renaming a cover file into place"))
}

#[cfg(feature = "s3")]
mod s3 {
    use std::sync::Arc;

    use bytes::Bytes;
    use object_store::aws::AmazonS3Builder;
    use object_store::path::Path as ObjectPath;
    use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutPayload};

    use super::StorageError;
    use crate::format::ImageFormat;

    /// Environment variables whose values must never appear in an error message.
    const SECRET_VARS: [&str; 3] = [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ACCESS_KEY_ID",
    ];

    pub(super) struct S3Backend {
        pub(super) bucket: String,
        pub(super) prefix: ObjectPath,
        store: Arc<dyn ObjectStore>,
        /// Configured secrets, redacted from error messages (never printed).
        secrets: Vec<String>,
    }

    impl S3Backend {
        pub(super) fn from_env(url: &str) -> Result<Self, StorageError> {
            let secrets = SECRET_VARS
                .iter()
                .filter_map(|var| std::env::var(var).ok())
                .collect();
            Self::with_builder(url, AmazonS3Builder::from_env(), secrets)
        }

        pub(super) fn with_builder(
            url: &str,
            builder: AmazonS3Builder,
            secrets: Vec<String>,
        ) -> Result<Self, StorageError> {
            let parsed = url::Url::parse(url)
                .map_err(|_| StorageError::InvalidUrl("s3:// URL does not parse"))?;
            if !parsed.username().is_empty() || parsed.password().is_some() {
                return Err(StorageError::InvalidUrl(
                    "credentials in the s3:// URL are not accepted; use the AWS_* environment variables",
                ));
            }
            if parsed.query().is_some() || parsed.fragment().is_some() || parsed.port().is_some() {
                return Err(StorageError::InvalidUrl(
                    "s3:// URL takes only a bucket and a prefix",
                ));
            }
            let bucket = parsed
                .host_str()
                .filter(|b| !b.is_empty())
                .ok_or(StorageError::InvalidUrl("s3:// URL needs a bucket"))?
                .to_owned();
            let prefix = ObjectPath::parse(parsed.path().trim_matches('/'))
                .map_err(|_| StorageError::InvalidUrl("invalid prefix in s3:// URL"))?;
            let secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
            let store = builder
                .with_bucket_name(&bucket)
                .build()
                .map_err(|e| backend_error(&e, &secrets))?;
            Ok(Self {
                bucket,
                prefix,
                store: Arc::new(store),
                secrets,
            })
        }

        fn path(&self, name: &str) -> ObjectPath {
            self.prefix.clone().join(name)
        }

        pub(super) async fn put(
            &self,
            name: &str,
            bytes: Vec<u8>,
            format: ImageFormat,
        ) -> Result<(), StorageError> {
            let attributes = Attributes::from_iter([(
                Attribute::ContentType,
                object_store::AttributeValue::from(format.content_type()),
            )]);
            self.store
                .put_opts(&self.path(name), PutPayload::from(bytes), attributes.into())
                .await
                .map(drop)
                .map_err(|e| backend_error(&e, &self.secrets))
        }

        pub(super) async fn get(&self, name: &str) -> Result<Option<Bytes>, StorageError> {
            let result = match self.store.get(&self.path(name)).await {
                Ok(result) => result,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(backend_error(&e, &self.secrets)),
            };
            match result.bytes().await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(backend_error(&e, &self.secrets)),
            }
        }

        pub(super) async fn delete(&self, name: &str) -> Result<(), StorageError> {
            match self.store.delete(&self.path(name)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(backend_error(&e, &self.secrets)),
            }
        }
    }

    fn backend_error(error: &object_store::Error, secrets: &[String]) -> StorageError {
        StorageError::Backend(redact(&error.to_string(), secrets))
    }

    pub(super) fn redact(message: &str, secrets: &[String]) -> String {
        secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(message.to_owned(), |m, s| {
                m.replace(s.as_str(), "[REDACTED]")
            })
    }

    #[cfg(test)]
    mod tests {
        #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

        use std::sync::Arc;

        use object_store::aws::AmazonS3Builder;

        use super::{S3Backend, redact};
        use crate::store::{Backend, CoverStore};

        const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYDUMMYSECRET";

        #[test]
        fn explicit_credentials_stay_out_of_debug() {
            let builder = AmazonS3Builder::new()
                .with_region("eu-west-1")
                .with_access_key_id("AKIADUMMYKEYID")
                .with_secret_access_key(SECRET)
                .with_token("DUMMY-SESSION-TOKEN")
                .with_endpoint("http://127.0.0.1:9")
                .with_allow_http(true);
            let backend = S3Backend::with_builder(
                "s3://covers-bucket/carrel/covers",
                builder,
                vec![SECRET.to_owned()],
            )
            .unwrap();
            let store = CoverStore {
                backend: Backend::S3(Arc::new(backend)),
            };
            let debug = format!("{store:?}");
            assert!(debug.contains("covers-bucket"), "{debug}");
            assert!(debug.contains("carrel/covers"), "{debug}");
            for secret in [SECRET, "AKIADUMMYKEYID", "DUMMY-SESSION-TOKEN"] {
                assert!(!debug.contains(secret), "{debug}");
            }
            assert_eq!(store.kind(), "s3");
        }

        #[test]
        fn redacts_every_secret() {
            let secrets = vec![SECRET.to_owned(), "TOKEN123".to_owned()];
            let message = format!("failed: key={SECRET} token=TOKEN123 again {SECRET}");
            let redacted = redact(&message, &secrets);
            assert!(!redacted.contains(SECRET));
            assert!(!redacted.contains("TOKEN123"));
            assert!(redacted.contains("[REDACTED]"));
        }

        #[test]
        fn refuses_credentials_and_extras_in_the_url() {
            for url in [
                "s3://key:secret@bucket/prefix",
                "s3://key@bucket",
                "s3://bucket/prefix?x=1",
                "s3://bucket:9000/prefix",
                "s3:///prefix",
            ] {
                let error = S3Backend::with_builder(url, AmazonS3Builder::new(), vec![])
                    .err()
                    .unwrap_or_else(|| panic!("{url} accepted"));
                assert!(!error.to_string().contains("secret"), "{error}");
            }
        }
    }
}
