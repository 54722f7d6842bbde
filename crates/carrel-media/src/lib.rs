//! Carrel cover images.
//!
//! Uploaded covers are never stored as received. [`process_cover`] turns untrusted bytes
//! into a *clean* image, and [`CoverStore`] keeps it under a name the server chooses:
//!
//! 1. **Sniff** the real type from the leading magic bytes ([`ImageFormat::sniff`]). The
//!    file name and the declared `Content-Type` are never consulted, so `malicious.php`
//!    sent as `image/png` is refused unless its *content* is a JPEG, PNG, GIF or WebP.
//!    The four signatures are matched by hand (a dozen lines, no dependency): the
//!    allow-list is exactly what is written in [`ImageFormat::sniff`], rather than
//!    whatever a general-purpose detector happens to recognise.
//! 2. **Check the header** dimensions, and the size of the decoded buffer they imply,
//!    against [`CoverLimits`] *before* any pixel buffer is allocated: a 100000×100000 PNG
//!    of a few hundred bytes (a decompression bomb) is refused with
//!    [`CoverError::TooLarge`] after reading its header.
//! 3. **Decode** with the format's own decoder (never a guessed one) under
//!    [`image::Limits`] (width, height and allocation limits), after a structural check of
//!    the container (a JPEG must reach its end-of-image marker; a WebP's chunk sizes must
//!    fit in the file).
//! 4. **Re-encode** from pixels: JPEG in → JPEG out (quality 85), PNG/GIF/WebP in → PNG
//!    out (GIF and animated WebP/PNG: first frame). Nothing of the original file survives:
//!    no EXIF/GPS, comments, text chunks, ICC profiles, trailing bytes or appended
//!    payloads (polyglots). The EXIF orientation is applied to the pixels first, so
//!    photos stay upright once their metadata is gone.
//! 5. **Thumbnail**: fit within 300×300, aspect ratio kept, never upscaled, same format.
//!
//! [`CoverStore`] writes the result under `<uuid v4>.<jpg|png>` either in a directory
//! (`file://DIR`) or in an S3 bucket (`s3://bucket/prefix`, cargo feature `s3`, on by
//! default). Callers never choose names, and [`CoverStore::get`] refuses every name that
//! is not exactly of that form, so no path traversal is possible.
//!
//! Processing is CPU-bound (0.1–0.35 s for a 2000×3000 image in a release build, and up to
//! 2–3 × [`CoverLimits::max_alloc`] of memory at the limits): run [`process_cover`] on the
//! blocking pool (`tokio::task::spawn_blocking`), and bound how many run at once.
//!
//! # The `s3` feature and rustls
//!
//! `s3` uses object_store's `aws` feature, whose HTTP client is reqwest with rustls and the
//! `aws-lc-rs` provider (aws-lc-sys builds from bundled C sources with the system C
//! compiler: no cmake, no download). The rest of the workspace uses rustls with `ring`.
//! In a binary that links both, rustls has two providers compiled in, and any code calling
//! `rustls::ClientConfig::builder()` *without* naming a provider (redis' `rediss://`
//! support does) panics unless the binary first installs a process default, e.g.
//! `rustls::crypto::ring::default_provider().install_default()` at startup. Code that
//! names its provider (lettre, sqlx, reqwest, object_store) is unaffected.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod container;
mod format;
mod process;
mod store;

pub use format::ImageFormat;
pub use process::{CoverError, CoverLimits, ProcessedCover, THUMBNAIL_MAX_SIDE, process_cover};
pub use store::{CoverStore, StorageError};
