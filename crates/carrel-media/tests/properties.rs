//! Property tests of everything that reads an upload or a name from outside: arbitrary and
//! mutated bytes never panic, stay within small limits (so each case is fast and its memory
//! bounded), and only the four allowed formats are ever accepted; generated images of every
//! format round-trip; only server-made names are ever read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use carrel_media::{CoverError, CoverLimits, CoverStore, ImageFormat, process_cover};
use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, Frame, ImageBuffer, Rgba, RgbaImage};
use proptest::prelude::*;

/// At most 64 × 64 pixels and 64 KiB decoded: every case decodes at most that much.
const SMALL: CoverLimits = CoverLimits {
    max_bytes: 16 * 1024,
    max_width: 64,
    max_height: 64,
    max_alloc: 64 * 64 * 16,
};

/// Far above what a few kilobytes take to process; a hang or a quadratic blow-up shows.
const PER_CASE: Duration = Duration::from_secs(5);

const FORMATS: [ImageFormat; 4] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::Gif,
    ImageFormat::Webp,
];

fn encode(image: &RgbaImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    let dynamic = DynamicImage::ImageRgba8(image.clone());
    match format {
        ImageFormat::Jpeg => dynamic
            .to_rgb8()
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, 90))
            .unwrap(),
        ImageFormat::Png => dynamic
            .write_with_encoder(PngEncoder::new(&mut out))
            .unwrap(),
        ImageFormat::Gif => GifEncoder::new(&mut out)
            .encode_frames([Frame::new(image.clone())])
            .unwrap(),
        ImageFormat::Webp => dynamic
            .write_with_encoder(WebPEncoder::new_lossless(&mut out))
            .unwrap(),
    }
    out
}

/// A 12 × 9 image of each format, to mutate.
static SEEDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let image = ImageBuffer::from_fn(12, 9, |x, y| {
        Rgba([(x * 20) as u8, (y * 28) as u8, ((x ^ y) * 16) as u8, 255])
    });
    FORMATS.iter().map(|f| encode(&image, *f)).collect()
});

/// Processes `bytes` under [`SMALL`] and checks what every answer must satisfy.
fn check_any(bytes: &[u8]) -> Result<(), TestCaseError> {
    let started = Instant::now();
    let result = process_cover(bytes, &SMALL);
    prop_assert!(started.elapsed() < PER_CASE, "took {:?}", started.elapsed());
    let sniffed = ImageFormat::sniff(bytes);
    match result {
        Ok(cover) => {
            // Only an allowed type, and only ever re-encoded as JPEG or PNG.
            let input = sniffed.expect("accepted bytes that are none of the four types");
            let expected = if input == ImageFormat::Jpeg {
                ImageFormat::Jpeg
            } else {
                ImageFormat::Png
            };
            prop_assert_eq!(cover.format, expected);
            prop_assert!(cover.width >= 1 && cover.width <= SMALL.max_width);
            prop_assert!(cover.height >= 1 && cover.height <= SMALL.max_height);
            prop_assert_eq!(ImageFormat::sniff(&cover.full), Some(expected));
            prop_assert_eq!(ImageFormat::sniff(&cover.thumb), Some(expected));
            // What was stored is itself a valid upload of the same size.
            let again = process_cover(&cover.full, &SMALL).unwrap();
            prop_assert_eq!(
                (again.format, again.width, again.height),
                (expected, cover.width, cover.height)
            );
        }
        Err(CoverError::Unsupported) => prop_assert!(sniffed.is_none()),
        Err(CoverError::TooLarge) => {
            prop_assert!(sniffed.is_some() || bytes.len() > SMALL.max_bytes);
        }
        Err(CoverError::Corrupt) => prop_assert!(sniffed.is_some()),
    }
    Ok(())
}

fn signature() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![
        vec![0xFF, 0xD8, 0xFF],
        b"\x89PNG\r\n\x1a\n".to_vec(),
        b"GIF87a".to_vec(),
        b"GIF89a".to_vec(),
        b"RIFF\x20\0\0\0WEBPVP8L".to_vec(),
        b"RIFF\x20\0\0\0WEBPVP8X".to_vec(),
        b"RIFF\x20\0\0\0WEBPVP8 ".to_vec(),
    ])
}

/// One change to an encoded image.
#[derive(Debug, Clone)]
enum Mutation {
    Xor(prop::sample::Index, u8),
    Set(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Insert(prop::sample::Index, Vec<u8>),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Xor(i, m)),
        2 => (any::<prop::sample::Index>(), prop::sample::select(vec![0u8, 0xFF, 0x7F, 0x80, 0x01]))
            .prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => (any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Append),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match mutation {
        Mutation::Xor(at, mask) => {
            let at = at.index(bytes.len());
            bytes[at] ^= mask;
        }
        Mutation::Set(at, value) => {
            let at = at.index(bytes.len());
            bytes[at] = *value;
        }
        Mutation::Truncate(at) => bytes.truncate(at.index(bytes.len())),
        Mutation::Insert(at, extra) => {
            let at = at.index(bytes.len());
            bytes.splice(at..at, extra.iter().copied());
        }
        Mutation::Append(extra) => bytes.extend_from_slice(extra),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes: refused as not an image, never a panic.
    #[test]
    fn arbitrary_bytes_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_any(&bytes)?;
    }

    /// Arbitrary bytes behind each allowed signature reach the container checks and the
    /// decoders: an answer within the limits, never a panic.
    #[test]
    fn bytes_behind_a_signature_never_panic(
        sig in signature(),
        rest in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = sig;
        bytes.extend_from_slice(&rest);
        check_any(&bytes)?;
    }

    /// Only `<lower-case uuid>.<jpg|png>` is ever a stored name: nothing else is read
    /// (no path traversal), and every such name is.
    #[test]
    fn only_server_made_names_are_read(
        raw in "\\PC{0,48}|[0-9a-f./-]{36,44}",
        id in any::<u128>(),
        jpg in any::<bool>(),
    ) {
        if let Some(format) = CoverStore::format_of(&raw) {
            prop_assert_eq!(raw.len(), 40);
            prop_assert!(!raw.contains('/') && !raw.contains(".."));
            let parsed = uuid::Uuid::parse_str(&raw[..36]).unwrap();
            prop_assert_eq!(parsed.hyphenated().to_string(), &raw[..36]);
            prop_assert_eq!(&raw[36..], if format == ImageFormat::Jpeg { ".jpg" } else { ".png" });
        }
        let name = format!("{}.{}", uuid::Uuid::from_u128(id).hyphenated(), if jpg { "jpg" } else { "png" });
        let expected = if jpg { ImageFormat::Jpeg } else { ImageFormat::Png };
        prop_assert_eq!(CoverStore::format_of(&name), Some(expected));
        prop_assert_eq!(CoverStore::format_of(&name.to_uppercase()), None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Valid images of every format with a few bytes changed, cut, inserted or appended:
    /// an answer within the limits, never a panic.
    #[test]
    fn mutated_images_never_panic(
        format in 0..FORMATS.len(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let mut bytes = SEEDS[format].clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_any(&bytes)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any small image of any allowed format is accepted at its size; a lossless one
    /// (PNG, lossless WebP) keeps every pixel; one pixel over a limit is refused.
    #[test]
    fn generated_images_round_trip(
        format in 0..FORMATS.len(),
        width in 1u32..=64,
        height in 1u32..=64,
        seed in any::<u64>(),
        opaque in any::<bool>(),
    ) {
        let format = FORMATS[format];
        let image: RgbaImage = ImageBuffer::from_fn(width, height, |x, y| {
            let v = seed.rotate_left(x * 7 + y * 13).to_le_bytes();
            Rgba([v[0], v[1], v[2], if opaque { 255 } else { v[3] | 1 }])
        });
        let upload = encode(&image, format);
        check_any(&upload)?;
        let cover = process_cover(&upload, &SMALL).unwrap();
        prop_assert_eq!((cover.width, cover.height), (width, height));
        if matches!(format, ImageFormat::Png | ImageFormat::Webp) {
            let decoded = image::load_from_memory_with_format(&cover.full, image::ImageFormat::Png)
                .unwrap()
                .to_rgba8();
            prop_assert!(decoded == image, "pixels changed");
        }
        let narrower = CoverLimits { max_width: width - 1, ..SMALL };
        let lower = CoverLimits { max_height: height - 1, ..SMALL };
        prop_assert_eq!(process_cover(&upload, &narrower).unwrap_err(), CoverError::TooLarge);
        prop_assert_eq!(process_cover(&upload, &lower).unwrap_err(), CoverError::TooLarge);
    }
}
