//! SIP2 error detection: the `AZ` checksum.
//!
//! The checksum is the 16-bit two's complement of the sum of every byte of the message
//! from its first byte through the `AZ` identifier, written as four hex digits. A
//! receiver verifies it by adding the bytes and the checksum value: the low 16 bits are
//! zero for an intact message.

/// The checksum of `prefix` (the message bytes up to and including `AZ`).
pub fn checksum(prefix: &[u8]) -> u16 {
    byte_sum(prefix).wrapping_neg()
}

/// The checksum as the four uppercase hex digits written after `AZ`.
pub fn checksum_hex(prefix: &[u8]) -> [u8; 4] {
    let value = checksum(prefix);
    let digits = b"0123456789ABCDEF";
    [
        digits[usize::from(value >> 12)],
        digits[usize::from((value >> 8) & 0xF)],
        digits[usize::from((value >> 4) & 0xF)],
        digits[usize::from(value & 0xF)],
    ]
}

/// Whether `hex` (four hex digits, either case) is the checksum of `prefix`.
pub fn verify(prefix: &[u8], hex: &[u8]) -> bool {
    match parse_hex(hex) {
        Some(value) if hex.len() == 4 => byte_sum(prefix).wrapping_add(value) == 0,
        _ => false,
    }
}

/// Like [`verify`], but also accepts one to three digits (a checksum written without
/// its leading zeros) and a sum over the decoded characters' code points instead of
/// the bytes (what some clients compute for non-ASCII text). For reading only.
pub fn verify_lenient(prefix: &[u8], text: &str, hex: &[u8]) -> bool {
    let Some(value) = parse_hex(hex) else {
        return false;
    };
    let char_sum = text
        .chars()
        .fold(0u16, |sum, c| sum.wrapping_add(u32::from(c) as u16));
    byte_sum(prefix).wrapping_add(value) == 0 || char_sum.wrapping_add(value) == 0
}

fn byte_sum(bytes: &[u8]) -> u16 {
    bytes
        .iter()
        .fold(0u16, |sum, &b| sum.wrapping_add(u16::from(b)))
}

/// Parses one to four hex digits.
pub(crate) fn parse_hex(hex: &[u8]) -> Option<u16> {
    if hex.is_empty() || hex.len() > 4 {
        return None;
    }
    hex.iter().try_fold(0u16, |acc, &b| {
        let digit = char::from(b).to_digit(16)?;
        Some((acc << 4) | digit as u16)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_checksums() {
        // Hand-computed: "97AZ" sums to 0x39+0x37+0x41+0x5A = 0x10B; -0x10B = 0xFEF5.
        assert_eq!(&checksum_hex(b"97AZ"), b"FEF5");
        assert!(verify(b"97AZ", b"FEF5"));
        assert!(verify(b"97AZ", b"fef5"));
        assert!(!verify(b"97AZ", b"FEF6"));
        assert!(!verify(b"97AZ", b"FEFG"));
        assert!(!verify(b"97AZ", b"FEF"));
        // An empty prefix sums to zero, whose two's complement is zero.
        assert_eq!(&checksum_hex(b""), b"0000");
    }

    #[test]
    fn lenient_verification() {
        // "9AZ": 0x39+0x41+0x5A = 0xD4, checksum 0xFF2C; a prefix summing to 0xF000
        // has checksum 0x1000, which a client may write as "1000" only, but 0x0ABC
        // may come as "ABC".
        assert!(verify_lenient(b"9AZ", "9AZ", b"FF2C"));
        let prefix = [0xFFu8; 0x0FFF / 0xFF]; // sum 0x0FF0 + pad below
        let sum: u16 = prefix.iter().map(|&b| u16::from(b)).sum();
        let hex = format!("{:X}", sum.wrapping_neg());
        assert!(verify_lenient(&prefix, "", hex.as_bytes()));
        let short = [0x10u8; 0xF544 / 0x10];
        let sum: u16 = short
            .iter()
            .fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
        let hex = format!("{:X}", sum.wrapping_neg());
        assert!(hex.len() < 4, "{hex}");
        assert!(verify_lenient(&short, "", hex.as_bytes()));
        assert!(!verify(&short, hex.as_bytes()));
        // Code points instead of bytes: "é" is C3 A9 in UTF-8 but U+00E9.
        let text = "AEé|AZ";
        let by_chars = text.chars().fold(0u16, |s, c| s.wrapping_add(c as u16));
        let hex = format!("{:04X}", by_chars.wrapping_neg());
        assert!(!verify(text.as_bytes(), hex.as_bytes()));
        assert!(verify_lenient(text.as_bytes(), text, hex.as_bytes()));
        assert!(!verify_lenient(b"97AZ", "97AZ", b"FEF6"));
        assert!(!verify_lenient(b"97AZ", "97AZ", b""));
        assert!(!verify_lenient(b"97AZ", "97AZ", b"0FEF5"));
    }
}
