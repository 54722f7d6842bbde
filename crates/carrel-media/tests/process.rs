//! process_cover: allowed formats round-trip, metadata and payloads are stripped, anything
//! else is refused, and decompression bombs are refused before allocation.
//!
//! Fixtures are generated here with the `image` encoders, or hand-made where the exact
//! bytes are the point; no binary file is checked in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Cursor;
use std::time::Instant;

use carrel_media::{
    CoverError, CoverLimits, ImageFormat, ProcessedCover, THUMBNAIL_MAX_SIDE, process_cover,
};
use image::codecs::gif::GifEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{
    Delay, DynamicImage, Frame, GenericImageView, ImageBuffer, Luma, Rgb, RgbImage, Rgba, RgbaImage,
};

const SECRET: &[u8] = b"SECRET-GPS-DATA";
const PHP: &[u8] = b"<?php system($_GET['c']); ?>";
const SCRIPT: &[u8] = b"<script>alert(1)</script>";

// ---------------------------------------------------------------------------------------
// Fixtures

fn rgb(width: u32, height: u32) -> RgbImage {
    ImageBuffer::from_fn(width, height, |x, y| {
        Rgb([
            (x * 255 / width.max(1)) as u8,
            (y * 255 / height.max(1)) as u8,
            ((x ^ y) & 0xFF) as u8,
        ])
    })
}

fn rgba(width: u32, height: u32) -> RgbaImage {
    ImageBuffer::from_fn(width, height, |x, y| {
        Rgba([
            (x & 0xFF) as u8,
            (y & 0xFF) as u8,
            128,
            if x < width / 2 { 255 } else { 64 },
        ])
    })
}

fn jpeg(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(image)
        .unwrap();
    out
}

fn png(image: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    image.write_with_encoder(PngEncoder::new(&mut out)).unwrap();
    out
}

fn webp_lossless(image: &RgbaImage) -> Vec<u8> {
    let mut out = Vec::new();
    DynamicImage::ImageRgba8(image.clone())
        .write_with_encoder(WebPEncoder::new_lossless(&mut out))
        .unwrap();
    out
}

/// A two-frame animation: solid red, then solid blue.
fn animated_gif(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder
            .set_repeat(image::codecs::gif::Repeat::Infinite)
            .unwrap();
        let frames = [[255, 0, 0, 255], [0, 0, 255, 255]].map(|color| {
            Frame::from_parts(
                ImageBuffer::from_pixel(width, height, Rgba(color)),
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            )
        });
        encoder.encode_frames(frames).unwrap();
    }
    out
}

fn jpeg_segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len() + 2).unwrap();
    let mut segment = vec![0xFF, marker];
    segment.extend_from_slice(&len.to_be_bytes());
    segment.extend_from_slice(payload);
    segment
}

/// An EXIF block (little-endian TIFF) with Orientation = `orientation` and a GPS-ish
/// string holding the marker.
fn exif(orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes()); // IFD0 offset
    tiff.extend_from_slice(&2u16.to_le_bytes()); // two entries
    // 0x0112 Orientation, SHORT, 1, value
    tiff.extend_from_slice(&0x0112u16.to_le_bytes());
    tiff.extend_from_slice(&3u16.to_le_bytes());
    tiff.extend_from_slice(&1u32.to_le_bytes());
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]);
    // 0x010E ImageDescription, ASCII, n, offset
    let text_offset = 8 + 2 + 2 * 12 + 4;
    tiff.extend_from_slice(&0x010Eu16.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&u32::try_from(SECRET.len() + 1).unwrap().to_le_bytes());
    tiff.extend_from_slice(&u32::try_from(text_offset).unwrap().to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    assert_eq!(tiff.len(), text_offset);
    tiff.extend_from_slice(SECRET);
    tiff.push(0);
    let mut block = b"Exif\0\0".to_vec();
    block.extend_from_slice(&tiff);
    block
}

/// A JPEG with an APP1 EXIF segment (orientation + marker) and a COM comment (marker),
/// inserted right after SOI.
fn jpeg_with_metadata(image: &RgbImage, orientation: u16) -> Vec<u8> {
    let plain = jpeg(image);
    let mut out = plain[..2].to_vec();
    out.extend(jpeg_segment(0xE1, &exif(orientation)));
    let mut comment = b"camera at ".to_vec();
    comment.extend_from_slice(SECRET);
    out.extend(jpeg_segment(0xFE, &comment));
    out.extend_from_slice(&plain[2..]);
    out
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(kind);
    hasher.update(data);
    chunk.extend_from_slice(&hasher.finalize().to_be_bytes());
    chunk
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Inserts `chunk` right after IHDR (signature 8 + IHDR 25 bytes).
fn png_insert_after_ihdr(png: &[u8], chunk: &[u8]) -> Vec<u8> {
    let mut out = png[..33].to_vec();
    out.extend_from_slice(chunk);
    out.extend_from_slice(&png[33..]);
    out
}

/// A syntactically valid PNG that declares `width × height` RGBA but carries one tiny IDAT.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA, deflate, no filter/interlace
    let mut out = PNG_SIGNATURE.to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    // zlib stream of one stored block holding a few zero bytes.
    out.extend(png_chunk(
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x05, 0x00, 0xFA, 0xFF, 0, 0, 0, 0, 0, 0x00, 0x05, 0x00, 0x01,
        ],
    ));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

/// A GIF with a `screen_w × screen_h` logical screen and one `frame_w × frame_h` frame
/// whose (LZW) data is tiny.
fn gif_with(screen_w: u16, screen_h: u16, frame_w: u16, frame_h: u16) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&screen_w.to_le_bytes());
    out.extend_from_slice(&screen_h.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0]); // global color table of 2 entries
    out.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    out.push(0x2C); // image descriptor
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&frame_w.to_le_bytes());
    out.extend_from_slice(&frame_h.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&[2, 2, 0x44, 0x01, 0]); // LZW min code size 2, one sub-block
    out.push(0x3B);
    out
}

fn decode(bytes: &[u8], format: ImageFormat) -> DynamicImage {
    let format = match format {
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Gif => image::ImageFormat::Gif,
        ImageFormat::Webp => image::ImageFormat::WebP,
    };
    image::load_from_memory_with_format(bytes, format).unwrap()
}

/// Output decodes, has the expected format and size, and a thumbnail that fits.
fn check_cover(cover: &ProcessedCover, format: ImageFormat, width: u32, height: u32) {
    assert_eq!(cover.format, format);
    assert_eq!((cover.width, cover.height), (width, height));
    assert_eq!(ImageFormat::sniff(&cover.full), Some(format));
    assert_eq!(ImageFormat::sniff(&cover.thumb), Some(format));
    let full = decode(&cover.full, format);
    assert_eq!(full.dimensions(), (width, height));
    let thumb = decode(&cover.thumb, format);
    let (tw, th) = thumb.dimensions();
    assert!(tw.max(th) <= THUMBNAIL_MAX_SIDE, "thumbnail {tw}×{th}");
    assert!(tw <= width && th <= height, "thumbnail {tw}×{th} upscaled");
    if width.max(height) > THUMBNAIL_MAX_SIDE {
        assert_eq!(tw.max(th), THUMBNAIL_MAX_SIDE);
        // Aspect ratio kept (to within rounding of the shorter side).
        let (long, short) = (width.max(height), width.min(height));
        let expected_short = (f64::from(short) * f64::from(THUMBNAIL_MAX_SIDE) / f64::from(long))
            .round()
            .max(1.0);
        assert!(
            (f64::from(tw.min(th)) - expected_short).abs() <= 1.0,
            "{tw}×{th} for {width}×{height}"
        );
    } else {
        assert_eq!((tw, th), (width, height));
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The markers of the header segments of a JPEG, up to the first SOS.
fn jpeg_markers(bytes: &[u8]) -> Vec<u8> {
    let mut markers = Vec::new();
    let mut pos = 2;
    while pos + 4 <= bytes.len() && bytes[pos] == 0xFF {
        let marker = bytes[pos + 1];
        markers.push(marker);
        if marker == 0xDA {
            break;
        }
        pos += 2 + usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
    }
    markers
}

fn png_chunk_types(bytes: &[u8]) -> Vec<String> {
    let mut types = Vec::new();
    let mut pos = 8;
    while pos + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        types.push(String::from_utf8_lossy(&bytes[pos + 4..pos + 8]).into_owned());
        pos += 12 + len;
    }
    types
}

fn limits() -> CoverLimits {
    CoverLimits::default()
}

// ---------------------------------------------------------------------------------------
// Allowed formats round-trip

#[test]
fn default_limits() {
    let limits = CoverLimits::default();
    assert_eq!(limits.max_bytes, 5 * 1024 * 1024);
    assert_eq!((limits.max_width, limits.max_height), (6000, 6000));
    assert_eq!(limits.max_alloc, 6000 * 6000 * 4);
}

#[test]
fn jpeg_round_trips_as_jpeg() {
    let cover = process_cover(&jpeg(&rgb(640, 480)), &limits()).unwrap();
    check_cover(&cover, ImageFormat::Jpeg, 640, 480);
    assert_eq!(
        decode(&cover.thumb, ImageFormat::Jpeg).dimensions(),
        (300, 225)
    );
}

#[test]
fn grayscale_jpeg_round_trips() {
    let gray = DynamicImage::ImageLuma8(ImageBuffer::from_fn(320, 200, |x, _| Luma([x as u8])));
    let mut bytes = Vec::new();
    gray.write_with_encoder(JpegEncoder::new(&mut bytes))
        .unwrap();
    let cover = process_cover(&bytes, &limits()).unwrap();
    check_cover(&cover, ImageFormat::Jpeg, 320, 200);
}

#[test]
fn png_round_trips_with_transparency() {
    let cover = process_cover(&png(&DynamicImage::ImageRgba8(rgba(500, 1000))), &limits()).unwrap();
    check_cover(&cover, ImageFormat::Png, 500, 1000);
    let full = decode(&cover.full, ImageFormat::Png);
    assert!(full.color().has_alpha());
    assert_eq!(full.to_rgba8().get_pixel(400, 10).0[3], 64);
    assert_eq!(
        decode(&cover.thumb, ImageFormat::Png).dimensions(),
        (150, 300)
    );
}

#[test]
fn opaque_and_sixteen_bit_pngs_become_eight_bit_without_alpha() {
    let opaque = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(40, 30, Rgba([1, 2, 3, 255])));
    let cover = process_cover(&png(&opaque), &limits()).unwrap();
    check_cover(&cover, ImageFormat::Png, 40, 30);
    assert_eq!(
        decode(&cover.full, ImageFormat::Png).color(),
        image::ColorType::Rgb8
    );

    let deep = DynamicImage::ImageLuma16(ImageBuffer::from_fn(64, 64, |x, y| {
        Luma([((x * 64 + y) * 16) as u16])
    }));
    let cover = process_cover(&png(&deep), &limits()).unwrap();
    check_cover(&cover, ImageFormat::Png, 64, 64);
    assert_eq!(
        decode(&cover.full, ImageFormat::Png).color(),
        image::ColorType::L8
    );
}

#[test]
fn gif_becomes_png_of_its_first_frame() {
    let bytes = animated_gif(64, 32);
    // Really animated: the image crate sees two frames.
    let frames = image::AnimationDecoder::into_frames(
        image::codecs::gif::GifDecoder::new(Cursor::new(&bytes)).unwrap(),
    )
    .collect_frames()
    .unwrap();
    assert_eq!(frames.len(), 2);

    let cover = process_cover(&bytes, &limits()).unwrap();
    check_cover(&cover, ImageFormat::Png, 64, 32);
    let full = decode(&cover.full, ImageFormat::Png).to_rgba8();
    assert_eq!(
        full.get_pixel(10, 10).0,
        [255, 0, 0, 255],
        "first frame is red"
    );
    assert_eq!(full.get_pixel(63, 31).0, [255, 0, 0, 255]);
}

#[test]
fn large_gif_gets_a_thumbnail() {
    let cover = process_cover(&animated_gif(900, 600), &limits()).unwrap();
    check_cover(&cover, ImageFormat::Png, 900, 600);
}

#[test]
fn webp_becomes_png() {
    let source = rgba(400, 200);
    let bytes = webp_lossless(&source);
    assert_eq!(ImageFormat::sniff(&bytes), Some(ImageFormat::Webp));
    let cover = process_cover(&bytes, &limits()).unwrap();
    check_cover(&cover, ImageFormat::Png, 400, 200);
    // Lossless all the way: same pixels.
    assert_eq!(decode(&cover.full, ImageFormat::Png).to_rgba8(), source);
}

#[test]
fn small_images_are_not_upscaled() {
    let cover = process_cover(&png(&DynamicImage::ImageRgb8(rgb(10, 7))), &limits()).unwrap();
    check_cover(&cover, ImageFormat::Png, 10, 7);
    let cover = process_cover(&jpeg(&rgb(300, 300)), &limits()).unwrap();
    check_cover(&cover, ImageFormat::Jpeg, 300, 300);
}

#[test]
fn extreme_aspect_ratio_keeps_a_one_pixel_thumbnail() {
    let cover = process_cover(&png(&DynamicImage::ImageRgb8(rgb(6000, 2))), &limits()).unwrap();
    check_cover(&cover, ImageFormat::Png, 6000, 2);
    assert_eq!(
        decode(&cover.thumb, ImageFormat::Png).dimensions(),
        (300, 1)
    );
}

#[test]
fn processed_cover_debug_omits_the_bytes() {
    let cover = process_cover(&png(&DynamicImage::ImageRgb8(rgb(3, 3))), &limits()).unwrap();
    let debug = format!("{cover:?}");
    assert!(
        debug.contains("width: 3") && debug.contains("full_len"),
        "{debug}"
    );
    assert!(!debug.contains("137, 80, 78, 71"), "{debug}");
}

// ---------------------------------------------------------------------------------------
// Metadata and payloads are stripped

#[test]
fn jpeg_exif_and_comment_are_stripped() {
    let bytes = jpeg_with_metadata(&rgb(64, 48), 1);
    assert!(contains(&bytes, SECRET));
    assert!(jpeg_markers(&bytes).contains(&0xE1));
    assert!(jpeg_markers(&bytes).contains(&0xFE));

    let cover = process_cover(&bytes, &limits()).unwrap();
    check_cover(&cover, ImageFormat::Jpeg, 64, 48);
    for out in [&cover.full, &cover.thumb] {
        assert!(!contains(out, SECRET));
        assert!(!contains(out, b"Exif"));
        let markers = jpeg_markers(out);
        assert!(!markers.contains(&0xE1), "APP1 in output: {markers:x?}");
        assert!(!markers.contains(&0xFE), "COM in output: {markers:x?}");
    }
}

#[test]
fn exif_orientation_is_applied_before_stripping() {
    // Orientation 6: the stored 40×20 pixels are displayed rotated 90° clockwise.
    let cover = process_cover(&jpeg_with_metadata(&rgb(40, 20), 6), &limits()).unwrap();
    check_cover(&cover, ImageFormat::Jpeg, 20, 40);
    assert!(!contains(&cover.full, SECRET));
}

#[test]
fn png_text_chunk_is_stripped() {
    let mut text = b"Comment\0".to_vec();
    text.extend_from_slice(SECRET);
    let plain = png(&DynamicImage::ImageRgb8(rgb(32, 32)));
    let bytes = png_insert_after_ihdr(&plain, &png_chunk(b"tEXt", &text));
    assert!(contains(&bytes, SECRET));
    assert!(png_chunk_types(&bytes).contains(&"tEXt".to_owned()));

    let cover = process_cover(&bytes, &limits()).unwrap();
    check_cover(&cover, ImageFormat::Png, 32, 32);
    assert!(!contains(&cover.full, SECRET));
    for chunk in png_chunk_types(&cover.full) {
        assert!(
            ["IHDR", "IDAT", "IEND"].contains(&chunk.as_str()),
            "{chunk}"
        );
    }
}

#[test]
fn polyglot_png_is_cleaned() {
    let mut bytes = png(&DynamicImage::ImageRgb8(rgb(50, 40)));
    bytes.extend_from_slice(PHP);
    bytes.extend_from_slice(SCRIPT);
    let cover = process_cover(&bytes, &limits()).unwrap();
    check_cover(&cover, ImageFormat::Png, 50, 40);
    for out in [&cover.full, &cover.thumb] {
        assert!(!contains(out, b"<?php"));
        assert!(!contains(out, b"<script"));
    }
}

#[test]
fn polyglot_jpeg_and_gif_are_cleaned() {
    for (bytes, format) in [
        (jpeg(&rgb(50, 40)), ImageFormat::Jpeg),
        (animated_gif(50, 40), ImageFormat::Png),
        (webp_lossless(&rgba(50, 40)), ImageFormat::Png),
    ] {
        let mut bytes = bytes;
        bytes.extend_from_slice(PHP);
        bytes.extend_from_slice(SCRIPT);
        let cover = process_cover(&bytes, &limits()).unwrap();
        check_cover(&cover, format, 50, 40);
        assert!(!contains(&cover.full, b"<?php") && !contains(&cover.full, b"<script"));
    }
}

#[test]
fn payload_inside_a_jpeg_comment_is_dropped() {
    let plain = jpeg(&rgb(30, 30));
    let mut bytes = plain[..2].to_vec();
    bytes.extend(jpeg_segment(0xFE, PHP));
    bytes.extend_from_slice(&plain[2..]);
    let cover = process_cover(&bytes, &limits()).unwrap();
    assert!(!contains(&cover.full, b"<?php"));
}

// ---------------------------------------------------------------------------------------
// Refused: not an allowed type

#[test]
fn non_images_are_unsupported() {
    let mut random = Vec::with_capacity(4096);
    let mut state: u32 = 0x1234_5678;
    for _ in 0..4096 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        random.push((state >> 24) as u8);
    }
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0x46, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0, 0x28, 0, 0, 0]);
    bmp.extend_from_slice(&[0; 48]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("php", b"<?php echo 1; ?>".to_vec()),
        ("php with BOM", b"\xEF\xBB\xBF<?php echo 1; ?>".to_vec()),
        (
            "html",
            b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>".to_vec(),
        ),
        (
            "svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
        ),
        (
            "pdf",
            b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<<>>\nendobj\n".to_vec(),
        ),
        ("empty", Vec::new()),
        ("random", random),
        ("bmp", bmp),
        ("tiff le", b"II*\0\x08\0\0\0\0\0\0\0".to_vec()),
        ("tiff be", b"MM\0*\0\0\0\x08\0\0\0\0".to_vec()),
        ("riff wave", b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0".to_vec()),
        ("png signature cut short", b"\x89PNG\r\n".to_vec()),
        ("zip", b"PK\x03\x04\x14\0\0\0".to_vec()),
    ];
    for (what, bytes) in cases {
        assert_eq!(
            process_cover(&bytes, &limits()).err(),
            Some(CoverError::Unsupported),
            "{what}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Refused: claims to be an image, does not decode

#[test]
fn png_signature_followed_by_garbage_is_corrupt() {
    let mut bytes = PNG_SIGNATURE.to_vec();
    bytes.extend_from_slice(b"this is not an IHDR chunk at all, just text");
    assert_eq!(
        process_cover(&bytes, &limits()).err(),
        Some(CoverError::Corrupt)
    );
}

#[test]
fn image_header_on_a_php_shell_is_corrupt() {
    for prefix in [&b"GIF89a"[..], b"\xFF\xD8\xFF\xE0", b"RIFF\x10\0\0\0WEBP"] {
        let mut bytes = prefix.to_vec();
        bytes.extend_from_slice(PHP);
        // The GIF "header" reads `<?` as a 16188-pixel width: refused as too large.
        let result = process_cover(&bytes, &limits()).err();
        assert!(
            matches!(result, Some(CoverError::Corrupt | CoverError::TooLarge)),
            "{result:?}"
        );
    }
}

#[test]
fn truncated_jpeg_is_corrupt() {
    let whole = jpeg(&rgb(128, 96));
    assert!(process_cover(&whole, &limits()).is_ok());
    for cut in [
        whole.len() - 2,
        whole.len() * 3 / 4,
        whole.len() / 2,
        200,
        40,
        3,
    ] {
        assert_eq!(
            process_cover(&whole[..cut], &limits()).err(),
            Some(CoverError::Corrupt),
            "cut at {cut} of {}",
            whole.len()
        );
    }
}

#[test]
fn truncated_png_gif_and_webp_are_corrupt() {
    let png_bytes = png(&DynamicImage::ImageRgb8(rgb(128, 96)));
    let gif_bytes = animated_gif(128, 96);
    let webp_bytes = webp_lossless(&rgba(128, 96));
    for whole in [png_bytes, gif_bytes, webp_bytes] {
        for cut in [whole.len() / 2, 20] {
            assert_eq!(
                process_cover(&whole[..cut], &limits()).err(),
                Some(CoverError::Corrupt),
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn corrupted_png_data_is_corrupt() {
    let mut bytes = png(&DynamicImage::ImageRgb8(rgb(64, 64)));
    // Flip bytes inside IDAT (CRC no longer matches).
    let idat = bytes.windows(4).position(|w| w == b"IDAT").unwrap();
    for b in &mut bytes[idat + 8..idat + 24] {
        *b ^= 0x5A;
    }
    assert_eq!(
        process_cover(&bytes, &limits()).err(),
        Some(CoverError::Corrupt)
    );
}

// ---------------------------------------------------------------------------------------
// Refused: too large (decompression bombs), before allocating the image

#[test]
fn png_declaring_100000_squared_is_too_large() {
    let bomb = png_bomb(100_000, 100_000);
    assert!(bomb.len() < 100);
    // 100000 × 100000 × 4 = 40 GB: had it been allocated, this test would not pass.
    let started = Instant::now();
    assert_eq!(
        process_cover(&bomb, &limits()).err(),
        Some(CoverError::TooLarge)
    );
    // Even with huge dimension limits the allocation limit refuses it up front.
    let wide_open = CoverLimits {
        max_width: u32::MAX,
        max_height: u32::MAX,
        ..CoverLimits::default()
    };
    assert_eq!(
        process_cover(&bomb, &wide_open).err(),
        Some(CoverError::TooLarge)
    );
    assert!(started.elapsed().as_millis() < 1000);
}

#[test]
fn png_bomb_within_one_dimension_is_too_large() {
    // 6000 wide is allowed, 60000 high is not.
    assert_eq!(
        process_cover(&png_bomb(6000, 60_000), &limits()).err(),
        Some(CoverError::TooLarge)
    );
}

#[test]
fn gif_with_a_huge_logical_screen_is_too_large() {
    let bomb = gif_with(65_535, 65_535, 1, 1);
    assert!(bomb.len() < 64);
    assert_eq!(
        process_cover(&bomb, &limits()).err(),
        Some(CoverError::TooLarge)
    );
}

#[test]
fn gif_frame_larger_than_its_screen_is_too_large() {
    // Small screen, 60000×60000 frame: must not allocate the frame.
    let bomb = gif_with(10, 10, 60_000, 60_000);
    assert_eq!(
        process_cover(&bomb, &limits()).err(),
        Some(CoverError::TooLarge)
    );
}

#[test]
fn webp_with_a_huge_canvas_is_too_large() {
    // VP8X canvas 16384×16384 (within WebP's range, over ours) around a tiny VP8L chunk.
    let mut body = b"WEBP".to_vec();
    body.extend_from_slice(b"VP8X");
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&[0, 0, 0, 0]);
    body.extend_from_slice(&16383u32.to_le_bytes()[..3]);
    body.extend_from_slice(&16383u32.to_le_bytes()[..3]);
    body.extend_from_slice(b"VP8L");
    body.extend_from_slice(&5u32.to_le_bytes());
    body.extend_from_slice(&[0x2F, 0, 0, 0, 0, 0]);
    let mut bomb = b"RIFF".to_vec();
    bomb.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
    bomb.extend_from_slice(&body);
    assert_eq!(
        process_cover(&bomb, &limits()).err(),
        Some(CoverError::TooLarge)
    );
}

#[test]
fn webp_with_an_oversized_metadata_chunk_is_corrupt() {
    // An EXIF chunk that claims 4 GiB in a file of a few hundred bytes.
    let mut bytes = webp_lossless(&rgba(8, 8));
    let mut exif_chunk = b"EXIF".to_vec();
    exif_chunk.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.splice(12..12, exif_chunk);
    let riff_size = u32::try_from(bytes.len() - 8).unwrap();
    bytes[4..8].copy_from_slice(&riff_size.to_le_bytes());
    assert_eq!(
        process_cover(&bytes, &limits()).err(),
        Some(CoverError::Corrupt)
    );
}

#[test]
fn real_but_oversized_images_are_too_large() {
    assert_eq!(
        process_cover(&png(&DynamicImage::ImageRgb8(rgb(7000, 10))), &limits()).err(),
        Some(CoverError::TooLarge)
    );
    assert_eq!(
        process_cover(&jpeg(&rgb(10, 7000)), &limits()).err(),
        Some(CoverError::TooLarge)
    );
}

#[test]
fn allocation_limit_is_enforced() {
    let bytes = png(&DynamicImage::ImageRgb8(rgb(100, 100)));
    let tight = CoverLimits {
        max_alloc: 100 * 100 * 4 - 1,
        ..CoverLimits::default()
    };
    assert_eq!(
        process_cover(&bytes, &tight).err(),
        Some(CoverError::TooLarge)
    );
    let exact = CoverLimits {
        max_alloc: 100 * 100 * 4,
        ..CoverLimits::default()
    };
    assert!(process_cover(&bytes, &exact).is_ok());
}

#[test]
fn byte_limit_is_enforced_before_sniffing() {
    let bytes = jpeg(&rgb(64, 64));
    let small = CoverLimits {
        max_bytes: bytes.len() - 1,
        ..CoverLimits::default()
    };
    assert_eq!(
        process_cover(&bytes, &small).err(),
        Some(CoverError::TooLarge)
    );
    let just_enough = CoverLimits {
        max_bytes: bytes.len(),
        ..CoverLimits::default()
    };
    assert!(process_cover(&bytes, &just_enough).is_ok());
}

#[test]
fn rotated_result_is_checked_against_the_limits() {
    // 40×20 stored, 20×40 displayed: fine for 40×40, too tall for max_height 30.
    let bytes = jpeg_with_metadata(&rgb(40, 20), 6);
    let limits = CoverLimits {
        max_width: 40,
        max_height: 30,
        ..CoverLimits::default()
    };
    assert_eq!(
        process_cover(&bytes, &limits).err(),
        Some(CoverError::TooLarge)
    );
}

// ---------------------------------------------------------------------------------------
// Timing (printed; `cargo test --release -p carrel-media -- --nocapture`)

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "timing is only meaningful in a release build"
)]
fn timing_of_2000_by_3000_covers() {
    let noisy = ImageBuffer::from_fn(2000, 3000, |x, y| {
        Rgb([(x / 8) as u8, (y / 12) as u8, ((x * y) / 97 % 256) as u8])
    });
    let smooth = ImageBuffer::from_fn(2000, 3000, |x, y| {
        Rgb([(x / 8) as u8, (y / 12) as u8, ((x + y) / 20) as u8])
    });
    let cases = [
        ("noisy JPEG", jpeg(&noisy)),
        ("smooth JPEG", jpeg(&smooth)),
        ("smooth PNG", png(&DynamicImage::ImageRgb8(smooth))),
    ];
    for (what, bytes) in cases {
        let mut best = f64::MAX;
        let mut cover = None;
        for _ in 0..3 {
            let started = Instant::now();
            cover = Some(process_cover(&bytes, &limits()).unwrap());
            best = best.min(started.elapsed().as_secs_f64() * 1000.0);
        }
        let cover = cover.unwrap();
        check_cover(&cover, cover.format, 2000, 3000);
        println!(
            "process_cover: 2000×3000 {what} ({} KiB in, {} KiB + {} KiB out): best of 3 {best:.1} ms ({} build)",
            bytes.len() / 1024,
            cover.full.len() / 1024,
            cover.thumb.len() / 1024,
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        );
    }
}
