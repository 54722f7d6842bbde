//! CoverStore: the file backend round trip, server-chosen names, refusal of every other
//! name, URL parsing, and an S3 store that is built without contacting anything and whose
//! Debug shows no secret.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::path::Path;

use carrel_media::{CoverLimits, CoverStore, ImageFormat, StorageError, process_cover};
use image::codecs::jpeg::JpegEncoder;
use image::{ImageBuffer, Rgb};

fn cover_jpeg() -> Vec<u8> {
    let image = ImageBuffer::from_fn(40, 30, |x, y| Rgb([x as u8 * 6, y as u8 * 8, 77]));
    let mut upload = Vec::new();
    JpegEncoder::new(&mut upload).encode_image(&image).unwrap();
    process_cover(&upload, &CoverLimits::default())
        .unwrap()
        .full
}

fn cover_png() -> Vec<u8> {
    let image = ImageBuffer::from_fn(20, 20, |x, y| Rgb([x as u8, y as u8, 0]));
    let mut upload = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_with_encoder(image::codecs::png::PngEncoder::new(&mut upload))
        .unwrap();
    process_cover(&upload, &CoverLimits::default())
        .unwrap()
        .full
}

fn file_store(dir: &Path) -> CoverStore {
    CoverStore::from_url(&format!("file://{}", dir.display())).unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn file_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data").join("covers");
    let store = file_store(&dir);
    assert_eq!(store.kind(), "file");
    assert!(dir.is_dir());
    #[cfg(unix)]
    assert_eq!(mode(&dir), 0o755);

    let jpeg = cover_jpeg();
    let name = store.put(jpeg.clone(), ImageFormat::Jpeg).await.unwrap();
    assert!(name.ends_with(".jpg"), "{name}");
    assert!(CoverStore::is_valid_name(&name));
    assert_eq!(CoverStore::format_of(&name), Some(ImageFormat::Jpeg));
    let file = dir.join(&name);
    assert_eq!(std::fs::read(&file).unwrap(), jpeg);
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o644);

    assert_eq!(
        store.get(&name).await.unwrap().unwrap().as_ref(),
        jpeg.as_slice()
    );

    let png = cover_png();
    let png_name = store.put(png.clone(), ImageFormat::Png).await.unwrap();
    assert!(png_name.ends_with(".png"));
    assert_eq!(CoverStore::format_of(&png_name), Some(ImageFormat::Png));
    assert_eq!(
        store.get(&png_name).await.unwrap().unwrap().as_ref(),
        png.as_slice()
    );

    store.delete(&name).await.unwrap();
    assert!(!file.exists());
    assert_eq!(store.get(&name).await.unwrap(), None);
    // Absent is fine.
    store.delete(&name).await.unwrap();
    // The other cover is untouched.
    assert!(store.get(&png_name).await.unwrap().is_some());
}

#[tokio::test]
async fn names_are_random_well_formed_and_leave_no_temp_files() {
    let tmp = tempfile::tempdir().unwrap();
    let store = file_store(tmp.path());
    let jpeg = cover_jpeg();
    let mut names = HashSet::new();
    for _ in 0..20 {
        let name = store.put(jpeg.clone(), ImageFormat::Jpeg).await.unwrap();
        assert_eq!(name.len(), 40, "{name}");
        let uuid = uuid::Uuid::parse_str(&name[..36]).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
        assert_eq!(uuid.hyphenated().to_string(), name[..36]);
        assert!(names.insert(name));
    }
    let on_disk: HashSet<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(on_disk, names, "only the covers, no temp files");
}

#[tokio::test]
async fn put_refuses_anything_but_processed_jpeg_and_png() {
    let tmp = tempfile::tempdir().unwrap();
    let store = file_store(tmp.path());
    let cases = [
        (b"<?php echo 1; ?>".to_vec(), ImageFormat::Png),
        (b"<?php echo 1; ?>".to_vec(), ImageFormat::Jpeg),
        (cover_jpeg(), ImageFormat::Png),
        (cover_png(), ImageFormat::Jpeg),
        (b"GIF89a....".to_vec(), ImageFormat::Gif),
        (b"RIFF\0\0\0\0WEBPVP8L".to_vec(), ImageFormat::Webp),
        (Vec::new(), ImageFormat::Png),
    ];
    for (bytes, format) in cases {
        let error = store.put(bytes, format).await.unwrap_err();
        assert!(matches!(error, StorageError::InvalidContent(_)), "{error}");
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn only_well_formed_names_are_read_or_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("secret.txt");
    std::fs::write(&outside, b"top secret").unwrap();
    let dir = tmp.path().join("covers");
    let store = file_store(&dir);

    let name = store.put(cover_png(), ImageFormat::Png).await.unwrap();
    let uuid = &name[..36];
    // Files planted in the directory under names the store never creates.
    for planted in [
        format!("{uuid}.svg"),
        format!("{uuid}.php"),
        "x.php".to_owned(),
    ] {
        std::fs::write(dir.join(planted), b"<svg><script>alert(1)</script></svg>").unwrap();
    }
    std::fs::write(dir.join(format!("{}.png", uuid.to_uppercase())), b"x").unwrap();

    let refused = [
        "../secret.txt".to_owned(),
        "../../etc/passwd".to_owned(),
        "/etc/passwd".to_owned(),
        "x.php".to_owned(),
        format!("{uuid}.svg"),
        format!("{uuid}.php"),
        format!("{uuid}.gif"),
        format!("{uuid}.webp"),
        format!("{}.png", uuid.to_uppercase()),
        format!("{uuid}.PNG"),
        format!("{uuid}.png/"),
        format!("{uuid}.png\0"),
        format!("./{uuid}.png"),
        format!("{{{uuid}}}.png"),
        format!("{}.png", uuid.replace('-', "")),
        format!("../covers/{name}"),
        format!("{uuid}..png"),
        format!("{}/../{name}", &uuid[..8]),
        String::new(),
        ".".to_owned(),
        "..".to_owned(),
        "é".repeat(20),
    ];
    for bad in &refused {
        assert!(!CoverStore::is_valid_name(bad), "{bad:?}");
        assert_eq!(store.get(bad).await.unwrap(), None, "{bad:?}");
        store.delete(bad).await.unwrap();
    }
    // Nothing was deleted by the refused names.
    assert_eq!(std::fs::read(&outside).unwrap(), b"top secret");
    assert!(dir.join(format!("{uuid}.svg")).exists());
    assert!(dir.join("x.php").exists());
    assert!(store.get(&name).await.unwrap().is_some());
}

#[test]
fn bad_urls_are_refused() {
    for url in [
        "",
        "covers",
        "/var/lib/carrel/covers",
        "file://",
        "file:/tmp/x",
        "://x",
        "ftp://example.com/covers",
        "http://example.com/covers",
        "https://bucket.s3.amazonaws.com/covers",
        "gs://bucket/covers",
        "s3://",
        "s3://user:pass@bucket/prefix",
    ] {
        let error = CoverStore::from_url(url).unwrap_err();
        assert!(!error.to_string().contains("pass"), "{error}");
    }
}

#[test]
fn a_file_where_the_directory_should_be_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    assert!(CoverStore::from_url(&format!("file://{}", file.display())).is_err());
}

#[test]
fn existing_directory_is_used_as_is() {
    let tmp = tempfile::tempdir().unwrap();
    let store = file_store(tmp.path());
    let debug = format!("{store:?}");
    assert!(debug.contains("file"), "{debug}");
}

#[cfg(feature = "s3")]
#[tokio::test]
async fn s3_store_builds_without_network() {
    let store = CoverStore::from_url("s3://carrel-covers/covers/prod").unwrap();
    assert_eq!(store.kind(), "s3");
    let debug = format!("{store:?}");
    assert!(
        debug.contains("carrel-covers") && debug.contains("covers/prod"),
        "{debug}"
    );
    // Names are still validated before anything would be sent.
    assert_eq!(store.get("../../etc/passwd").await.unwrap(), None);
    store.delete("x.php").await.unwrap();
}

#[cfg(not(feature = "s3"))]
#[test]
fn s3_without_the_feature_says_so() {
    assert!(matches!(
        CoverStore::from_url("s3://carrel-covers/covers"),
        Err(StorageError::S3NotCompiledIn)
    ));
}

/// S3 configuration from the environment, checked in a child process.
#[cfg(feature = "s3")]
mod s3_env {
    use carrel_media::CoverStore;

    const CHILD_ENV: &str = "CARREL_MEDIA_S3_DEBUG_CHILD";
    const DUMMY_SECRET: &str = "dummySecretKey/ShouldNeverBePrinted+0123456789";
    const DUMMY_KEY_ID: &str = "AKIADUMMYNEVERPRINTED";

    /// Runs in a child process (below) whose environment carries dummy AWS credentials, so the
    /// test process's own environment is never modified.
    #[test]
    fn s3_debug_child() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        assert_eq!(
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap(),
            DUMMY_SECRET
        );
        let store = CoverStore::from_url("s3://carrel-covers/covers").unwrap();
        println!("STORE-DEBUG<{store:?}>");
        let error = CoverStore::from_url("s3://k:s@carrel-covers/covers").unwrap_err();
        println!("URL-ERROR<{error}> <{error:?}>");
    }

    #[test]
    fn s3_debug_contains_no_credentials_from_the_environment() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "s3_env::s3_debug_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .env("AWS_ACCESS_KEY_ID", DUMMY_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
            .env("AWS_REGION", "eu-central-1")
            .env("AWS_ENDPOINT", "http://127.0.0.1:9")
            .env("AWS_ALLOW_HTTP", "true")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("STORE-DEBUG<CoverStore"), "{stdout}");
        assert!(stdout.contains("URL-ERROR<"), "{stdout}");
        for secret in [DUMMY_SECRET, DUMMY_KEY_ID] {
            assert!(!stdout.contains(secret), "{stdout}");
            assert!(!stderr.contains(secret), "{stderr}");
        }
    }
}
