//! Structural checks of containers, run before the real decoder sees the bytes.
//!
//! They close two gaps of the decoders as configured by `image`:
//! * zune-jpeg runs in lenient mode and turns a truncated JPEG into an image whose missing
//!   part is grey; a cover cut off in transit should be refused instead;
//! * image-webp allocates metadata chunks (EXIF, ICC, XMP) by their *declared* size, up to
//!   4 GiB, without checking it against the file; reading the EXIF orientation of a
//!   200-byte WebP could then ask for gigabytes.

/// Whether `bytes` (starting with SOI) is a sequence of well-formed marker segments with at
/// least one scan, ending in EOI. Bytes after the EOI are allowed (and later dropped).
pub(crate) fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let len = bytes.len();
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut pos = 2;
    let mut seen_scan = false;
    loop {
        // A marker: 0xFF (any number of fill bytes 0xFF), then the marker code.
        if bytes.get(pos) != Some(&0xFF) {
            return false;
        }
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let Some(&marker) = bytes.get(pos) else {
            return false;
        };
        pos += 1;
        match marker {
            0xD9 => return seen_scan,       // EOI
            0x00 | 0xD8 => return false,    // stuffed zero / a second SOI: not a marker here
            0x01 | 0xD0..=0xD7 => continue, // TEM, RSTn: no length
            _ => {}
        }
        let (Some(&high), Some(&low)) = (bytes.get(pos), bytes.get(pos + 1)) else {
            return false;
        };
        let segment_len = usize::from(u16::from_be_bytes([high, low]));
        if segment_len < 2 || pos + segment_len > len {
            return false;
        }
        pos += segment_len;
        if marker == 0xDA {
            // SOS: entropy-coded data follows, up to the next marker that is neither a
            // stuffed 0xFF00 nor a restart marker.
            seen_scan = true;
            loop {
                let Some(offset) = bytes
                    .get(pos..)
                    .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
                else {
                    return false;
                };
                pos += offset;
                match bytes.get(pos + 1) {
                    None => return false,
                    Some(0x00 | 0xD0..=0xD7) => pos += 2,
                    Some(0xFF) => pos += 1,
                    Some(_) => break,
                }
            }
        }
    }
}

/// Whether the RIFF container of a WebP (`bytes` sniffed as WebP) is complete and every
/// chunk, including those nested in animation frames (`ANMF`), lies within it.
/// Bytes after the RIFF container are allowed (and later dropped).
pub(crate) fn webp_chunks_in_bounds(bytes: &[u8]) -> bool {
    let Some(size) = read_u32_le(bytes, 4) else {
        return false;
    };
    let Some(end) = usize::try_from(size).ok().and_then(|s| s.checked_add(8)) else {
        return false;
    };
    if end > bytes.len() || end < 12 {
        return false;
    }
    chunks_in_bounds(&bytes[12..end], false)
}

fn chunks_in_bounds(mut data: &[u8], nested: bool) -> bool {
    if data.is_empty() {
        return false;
    }
    while !data.is_empty() {
        let Some(size) = read_u32_le(data, 4) else {
            return false;
        };
        let Ok(size) = usize::try_from(size) else {
            return false;
        };
        let Some(body_end) = size.checked_add(8).filter(|&e| e <= data.len()) else {
            return false;
        };
        if &data[..4] == b"ANMF" {
            // 16 bytes of frame header, then the frame's own chunks. Frames do not nest.
            if nested || size < 16 || !chunks_in_bounds(&data[24..body_end], true) {
                return false;
            }
        }
        // Chunks are padded to an even size; tolerate a missing final pad byte.
        let next = body_end + (size & 1);
        data = data.get(next..).unwrap_or(&[]);
    }
    true
}

fn read_u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let field: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(field))
}

#[cfg(test)]
mod tests {
    use super::{jpeg_is_complete, webp_chunks_in_bounds};

    #[test]
    fn jpeg_structure() {
        // SOI, DQT-like segment, SOS (len 2) + entropy data with stuffing and RST, EOI.
        let good = [
            0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x03, 0x00, 0xFF, 0xDA, 0x00, 0x02, 0x12, 0xFF, 0x00,
            0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xD9, b'<', b'?',
        ];
        assert!(jpeg_is_complete(&good));
        for cut in 0..good.len() - 2 {
            assert!(!jpeg_is_complete(&good[..cut]), "cut at {cut}");
        }
        // EOI without a scan.
        assert!(!jpeg_is_complete(&[0xFF, 0xD8, 0xFF, 0xD9]));
        // Segment length running past the end.
        assert!(!jpeg_is_complete(&[
            0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 0x00
        ]));
        // Garbage where a marker should be.
        assert!(!jpeg_is_complete(&[0xFF, 0xD8, 0x00, 0xFF, 0xD9]));
    }

    #[test]
    fn webp_structure() {
        let mut good = b"RIFF\0\0\0\0WEBPVP8L\x05\0\0\0abcde\0".to_vec();
        let size = u32::try_from(good.len() - 8).unwrap_or(0);
        good[4..8].copy_from_slice(&size.to_le_bytes());
        assert!(webp_chunks_in_bounds(&good));
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"<?php ?>");
        assert!(webp_chunks_in_bounds(&trailing));
        assert!(!webp_chunks_in_bounds(&good[..good.len() - 2]));
        let mut huge_chunk = good.clone();
        huge_chunk[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(!webp_chunks_in_bounds(&huge_chunk));
        let mut huge_riff = good;
        huge_riff[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(!webp_chunks_in_bounds(&huge_riff));
    }
}
