//! The allowed image types and content sniffing.

/// An allowed cover image type.
///
/// Uploads may be any of the four; stored covers (the output of
/// [`process_cover`](crate::process_cover)) are only ever [`Jpeg`](Self::Jpeg) or
/// [`Png`](Self::Png).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// JPEG (JFIF/EXIF), `image/jpeg`.
    Jpeg,
    /// PNG (including APNG, of which only the default image is used), `image/png`.
    Png,
    /// GIF 87a/89a (of an animation, only the first frame is used), `image/gif`.
    Gif,
    /// WebP, lossy or lossless (of an animation, only the first frame is used), `image/webp`.
    Webp,
}

const PNG_SIGNATURE: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

impl ImageFormat {
    /// The MIME type to serve this format with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
        }
    }

    /// The file extension used for stored names (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::Webp => "webp",
        }
    }

    /// The real type of `bytes`, from their leading magic bytes only; `None` for anything
    /// that is not one of the four allowed types (PHP, HTML, SVG, PDF, BMP, TIFF, empty…).
    ///
    /// A match only says what the data *claims* to be; whether it decodes is up to
    /// [`process_cover`](crate::process_cover).
    ///
    /// | type | signature |
    /// | --- | --- |
    /// | JPEG | `FF D8 FF` (SOI followed by the first marker) |
    /// | PNG | `89 50 4E 47 0D 0A 1A 0A` |
    /// | GIF | `GIF87a` or `GIF89a` |
    /// | WebP | `RIFF`, 4 size bytes, `WEBP` |
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(PNG_SIGNATURE) {
            Some(Self::Png)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ImageFormat;

    #[test]
    fn sniffs_only_the_four_signatures() {
        assert_eq!(
            ImageFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(ImageFormat::Png)
        );
        assert_eq!(ImageFormat::sniff(b"GIF87a.."), Some(ImageFormat::Gif));
        assert_eq!(ImageFormat::sniff(b"GIF89a.."), Some(ImageFormat::Gif));
        assert_eq!(
            ImageFormat::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(ImageFormat::Webp)
        );
        assert_eq!(ImageFormat::sniff(b"RIFF\0\0\0\0WAVEfmt "), None);
        assert_eq!(ImageFormat::sniff(b"RIFF\0\0\0\0WEB"), None);
        assert_eq!(ImageFormat::sniff(b"GIF88a"), None);
        assert_eq!(ImageFormat::sniff(&[0xFF, 0xD8]), None);
        assert_eq!(ImageFormat::sniff(b"\x89PNG\r\n\x1a"), None);
        assert_eq!(ImageFormat::sniff(b""), None);
        assert_eq!(ImageFormat::sniff(b"BM"), None);
        assert_eq!(ImageFormat::sniff(b"II*\0"), None);
        assert_eq!(ImageFormat::sniff(b"<?php"), None);
    }

    #[test]
    fn content_types_and_extensions() {
        assert_eq!(ImageFormat::Jpeg.content_type(), "image/jpeg");
        assert_eq!(ImageFormat::Png.content_type(), "image/png");
        assert_eq!(ImageFormat::Gif.content_type(), "image/gif");
        assert_eq!(ImageFormat::Webp.content_type(), "image/webp");
        assert_eq!(ImageFormat::Jpeg.extension(), "jpg");
        assert_eq!(ImageFormat::Png.extension(), "png");
        assert_eq!(ImageFormat::Gif.extension(), "gif");
        assert_eq!(ImageFormat::Webp.extension(), "webp");
    }
}
