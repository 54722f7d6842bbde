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
    match parse_hex4(hex) {
        Some(value) => byte_sum(prefix).wrapping_add(value) == 0,
        None => false,
    }
}

fn byte_sum(bytes: &[u8]) -> u16 {
    bytes
        .iter()
        .fold(0u16, |sum, &b| sum.wrapping_add(u16::from(b)))
}

/// Parses exactly four hex digits.
pub(crate) fn parse_hex4(hex: &[u8]) -> Option<u16> {
    if hex.len() != 4 {
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
}
