//! Untrusted bytes in, clean re-encoded cover and thumbnail out.

use std::fmt;
use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::jpeg::{JpegDecoder, JpegEncoder};
use image::codecs::png::{CompressionType, FilterType, PngDecoder, PngEncoder};
use image::codecs::webp::WebPDecoder;
use image::metadata::Orientation;
use image::{ColorType, DynamicImage, ImageDecoder, ImageError};

use crate::format::ImageFormat;

/// Thumbnails fit within a square of this many pixels per side.
pub const THUMBNAIL_MAX_SIDE: u32 = 300;

/// JPEG quality of re-encoded covers and their thumbnails.
const JPEG_QUALITY: u8 = 85;

/// What an upload may be.
///
/// Every limit is checked *before* the pixel buffer is allocated: the byte length first,
/// then the width and height from the image header, then the size of the decoded buffer
/// they imply (`max(width × height × 4, the decoder's native buffer size)`, e.g.
/// `width × height × 8` for a 16-bit RGBA PNG). The same values are then handed to the
/// decoder as [`image::Limits`], which also caps the decoder's own working memory.
///
/// Peak memory of one [`process_cover`] call is roughly the input plus 2–3 × `max_alloc`
/// in the worst case (decoded buffer, an 8-bit/oriented copy, the encoder's output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoverLimits {
    /// Largest accepted upload, in bytes.
    pub max_bytes: usize,
    /// Largest accepted width, in pixels.
    pub max_width: u32,
    /// Largest accepted height, in pixels.
    pub max_height: u32,
    /// Decoded RGBA bytes allowed.
    pub max_alloc: u64,
}

impl Default for CoverLimits {
    /// 5 MiB, at most 6000 × 6000 pixels, and a decoded buffer of at most
    /// 6000 × 6000 × 4 bytes (144 MB, one full-size RGBA image).
    ///
    /// Covers are displayed a few hundred pixels wide; 6000 px still admits a scan or a
    /// photo straight from a 36-megapixel camera. 5 MiB admits a high-quality JPEG of that
    /// size; the HTTP layer should use `max_bytes` as its body limit.
    fn default() -> Self {
        Self {
            max_bytes: 5 * 1024 * 1024,
            max_width: 6000,
            max_height: 6000,
            max_alloc: 6000 * 6000 * 4,
        }
    }
}

/// A cleaned cover: re-encoded (no metadata, no trailing bytes), plus a thumbnail.
#[derive(Clone)]
pub struct ProcessedCover {
    /// Format of both `full` and `thumb`: [`ImageFormat::Jpeg`] for a JPEG upload,
    /// [`ImageFormat::Png`] for everything else.
    pub format: ImageFormat,
    /// The re-encoded cover, at its original size (after EXIF orientation).
    pub full: Vec<u8>,
    /// The thumbnail: fits within 300 × 300, aspect ratio kept, never upscaled.
    pub thumb: Vec<u8>,
    /// Width of `full`, in pixels.
    pub width: u32,
    /// Height of `full`, in pixels.
    pub height: u32,
}

impl fmt::Debug for ProcessedCover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessedCover")
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("full_len", &self.full.len())
            .field("thumb_len", &self.thumb.len())
            .finish()
    }
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoverError {
    /// Not one of the allowed image types (by content) → 415.
    #[error("not a JPEG, PNG, GIF or WebP image")]
    Unsupported,
    /// Bytes, dimensions or decoded size over the limits (decompression bomb) → 413 or 415
    /// (the HTTP layer decides).
    #[error("image too large")]
    TooLarge,
    /// Claims to be an image but does not decode (truncated, malformed, or using a feature
    /// of its format that the decoder does not support) → 415.
    #[error("image data is corrupt or truncated")]
    Corrupt,
}

/// Sniffs the real type from the bytes (the filename and declared Content-Type are never
/// consulted), checks the header dimensions against the limits BEFORE decoding, decodes
/// with [`image::Limits`] (max_image_width/height/alloc), strips everything by
/// re-encoding: JPEG in → JPEG out (quality 85), PNG/GIF/WebP in → PNG out (GIF: first
/// frame). Thumbnail: fit within 300×300 keeping aspect ratio (don't upscale), same output
/// format. CPU-heavy: the caller runs it on the blocking pool.
///
/// Also:
/// * an EXIF orientation (JPEG, PNG `eXIf`, WebP) is applied to the pixels, and `width`
///   and `height` are those of the upright image (checked against the limits again);
/// * 16-bit images are reduced to 8 bits per channel, and an alpha channel that is
///   entirely opaque is dropped;
/// * a JPEG must be structurally complete (its scans must end in an EOI marker), so a
///   truncated upload is [`CoverError::Corrupt`] instead of a half-grey cover;
/// * bytes after the end of the image (polyglot payloads) are ignored and never copied.
///
/// # Errors
///
/// [`CoverError::TooLarge`] when over `limits.max_bytes` or any size limit,
/// [`CoverError::Unsupported`] when the content is not one of the four allowed types,
/// [`CoverError::Corrupt`] when it does not decode.
pub fn process_cover(bytes: &[u8], limits: &CoverLimits) -> Result<ProcessedCover, CoverError> {
    if bytes.len() > limits.max_bytes {
        return Err(CoverError::TooLarge);
    }
    let input = ImageFormat::sniff(bytes).ok_or(CoverError::Unsupported)?;
    let output = match input {
        ImageFormat::Jpeg => ImageFormat::Jpeg,
        ImageFormat::Png | ImageFormat::Gif | ImageFormat::Webp => ImageFormat::Png,
    };

    let image = normalize(decode(bytes, input, limits)?, output);
    let (width, height) = (image.width(), image.height());
    let full = encode(&image, output)?;

    let (thumb_width, thumb_height) = thumbnail_size(width, height);
    let thumb = if (thumb_width, thumb_height) == (width, height) {
        full.clone()
    } else {
        encode(&image.thumbnail_exact(thumb_width, thumb_height), output)?
    };

    Ok(ProcessedCover {
        format: output,
        full,
        thumb,
        width,
        height,
    })
}

fn image_limits(limits: &CoverLimits) -> image::Limits {
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(limits.max_width);
    image_limits.max_image_height = Some(limits.max_height);
    image_limits.max_alloc = Some(limits.max_alloc);
    image_limits
}

/// Decodes with the decoder of the sniffed format (never a guessed one).
fn decode(
    bytes: &[u8],
    format: ImageFormat,
    limits: &CoverLimits,
) -> Result<DynamicImage, CoverError> {
    let cursor = Cursor::new(bytes);
    match format {
        ImageFormat::Jpeg => {
            if !crate::container::jpeg_is_complete(bytes) {
                return Err(CoverError::Corrupt);
            }
            decode_with(JpegDecoder::new(cursor).map_err(decode_error)?, limits)
        }
        ImageFormat::Png => decode_with(
            PngDecoder::with_limits(cursor, image_limits(limits)).map_err(decode_error)?,
            limits,
        ),
        ImageFormat::Gif => decode_with(GifDecoder::new(cursor).map_err(decode_error)?, limits),
        ImageFormat::Webp => {
            if !crate::container::webp_chunks_in_bounds(bytes) {
                return Err(CoverError::Corrupt);
            }
            decode_with(WebPDecoder::new(cursor).map_err(decode_error)?, limits)
        }
    }
}

/// The decoder has read the header only; nothing large has been allocated yet.
fn decode_with(
    mut decoder: impl ImageDecoder,
    limits: &CoverLimits,
) -> Result<DynamicImage, CoverError> {
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(CoverError::Corrupt);
    }
    if width > limits.max_width || height > limits.max_height {
        return Err(CoverError::TooLarge);
    }
    let rgba_bytes = u64::from(width) * u64::from(height) * 4;
    if decoder.total_bytes().max(rgba_bytes) > limits.max_alloc {
        return Err(CoverError::TooLarge);
    }

    // Read before decoding (the decoder is consumed); unreadable metadata is ignored.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    decoder
        .set_limits(image_limits(limits))
        .map_err(decode_error)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;

    image.apply_orientation(orientation);
    if image.width() > limits.max_width || image.height() > limits.max_height {
        return Err(CoverError::TooLarge);
    }
    Ok(image)
}

fn decode_error(error: ImageError) -> CoverError {
    match error {
        ImageError::Limits(_) => CoverError::TooLarge,
        other => {
            tracing::debug!(error = %other, "cover image does not decode");
            CoverError::Corrupt
        }
    }
}

/// 8 bits per channel, in a color type the output encoder takes, alpha only if used.
fn normalize(image: DynamicImage, output: ImageFormat) -> DynamicImage {
    let gray = matches!(
        image.color(),
        ColorType::L8 | ColorType::La8 | ColorType::L16 | ColorType::La16
    );
    if output == ImageFormat::Jpeg {
        return match image {
            DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => image,
            other if gray => DynamicImage::ImageLuma8(other.to_luma8()),
            other => DynamicImage::ImageRgb8(other.to_rgb8()),
        };
    }
    let image = match image {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => image,
        other => match (gray, other.color().has_alpha()) {
            (true, false) => DynamicImage::ImageLuma8(other.to_luma8()),
            (true, true) => DynamicImage::ImageLumaA8(other.to_luma_alpha8()),
            (false, false) => DynamicImage::ImageRgb8(other.to_rgb8()),
            (false, true) => DynamicImage::ImageRgba8(other.to_rgba8()),
        },
    };
    match image {
        DynamicImage::ImageRgba8(ref rgba) if rgba.pixels().all(|p| p.0[3] == u8::MAX) => {
            DynamicImage::ImageRgb8(image.to_rgb8())
        }
        DynamicImage::ImageLumaA8(ref la) if la.pixels().all(|p| p.0[1] == u8::MAX) => {
            DynamicImage::ImageLuma8(image.to_luma8())
        }
        other => other,
    }
}

/// Fits `width × height` within [`THUMBNAIL_MAX_SIDE`] squared, keeping the aspect ratio
/// (rounded, at least 1 px), never upscaling.
fn thumbnail_size(width: u32, height: u32) -> (u32, u32) {
    let max = THUMBNAIL_MAX_SIDE;
    if width <= max && height <= max {
        return (width, height);
    }
    let (long, short) = (width.max(height), width.min(height));
    let scaled = (u64::from(short) * u64::from(max) + u64::from(long) / 2) / u64::from(long);
    let scaled = u32::try_from(scaled).unwrap_or(max).clamp(1, max);
    if width >= height {
        (max, scaled)
    } else {
        (scaled, max)
    }
}

fn encode(image: &DynamicImage, output: ImageFormat) -> Result<Vec<u8>, CoverError> {
    let mut buffer = Vec::new();
    let result = match output {
        ImageFormat::Jpeg => {
            image.write_with_encoder(JpegEncoder::new_with_quality(&mut buffer, JPEG_QUALITY))
        }
        ImageFormat::Png | ImageFormat::Gif | ImageFormat::Webp => {
            image.write_with_encoder(PngEncoder::new_with_quality(
                &mut buffer,
                CompressionType::Default,
                FilterType::Adaptive,
            ))
        }
    };
    match result {
        Ok(()) => Ok(buffer),
        Err(error) => {
            // Cannot happen for the 8-bit color types `normalize` produces; refuse the
            // upload rather than store something half-written.
            tracing::error!(%error, "re-encoding a decoded cover failed");
            Err(CoverError::Corrupt)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::thumbnail_size;

    #[test]
    fn thumbnail_sizes() {
        assert_eq!(thumbnail_size(300, 300), (300, 300));
        assert_eq!(thumbnail_size(10, 20), (10, 20));
        assert_eq!(thumbnail_size(600, 300), (300, 150));
        assert_eq!(thumbnail_size(2000, 3000), (200, 300));
        assert_eq!(thumbnail_size(6000, 1), (300, 1));
        assert_eq!(thumbnail_size(1, 6000), (1, 300));
        assert_eq!(thumbnail_size(301, 300), (300, 299));
        assert_eq!(thumbnail_size(u32::MAX, u32::MAX), (300, 300));
    }
}
