use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carrel_crypto::{
    OpaqueToken, SecretsKey, TokenHash, constant_time_eq, csrf_token, generate_recovery_codes,
    normalize_recovery_code, verify_csrf_token,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn is_base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

// ---- CSRF ----

#[test]
fn csrf_token_verifies_for_its_session_only() {
    let key = SecretsKey::from_bytes([1; 32]);
    let session = Uuid::new_v4();
    let other = Uuid::new_v4();
    let token = csrf_token(&key, session);

    assert!(verify_csrf_token(&key, session, &token));
    assert!(!verify_csrf_token(&key, other, &token));
    assert!(!verify_csrf_token(&key, other, &csrf_token(&key, session)));
    assert!(verify_csrf_token(&key, other, &csrf_token(&key, other)));
    // Another server key.
    assert!(!verify_csrf_token(
        &SecretsKey::from_bytes([2; 32]),
        session,
        &token
    ));
}

#[test]
fn csrf_token_format_and_derivation() {
    let key = SecretsKey::from_bytes([1; 32]);
    let session = Uuid::new_v4();
    let token = csrf_token(&key, session);
    assert_eq!(token.len(), 43);
    assert!(is_base64url(&token));
    assert_eq!(
        token,
        csrf_token(&key, session),
        "deterministic per session"
    );
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&token).unwrap(),
        key.mac("csrf", session.as_bytes())
    );
}

#[test]
fn csrf_rejects_altered_tokens() {
    let key = SecretsKey::from_bytes([1; 32]);
    let session = Uuid::new_v4();
    let token = csrf_token(&key, session);
    assert!(!verify_csrf_token(&key, session, ""));
    assert!(!verify_csrf_token(&key, session, &token[..42]));
    assert!(!verify_csrf_token(&key, session, &format!("{token}A")));
    assert!(!verify_csrf_token(&key, session, &format!(" {token}")));
    assert!(!verify_csrf_token(&key, session, &token.to_uppercase()));
    let mut altered = token.clone().into_bytes();
    altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
    assert!(!verify_csrf_token(
        &key,
        session,
        std::str::from_utf8(&altered).unwrap()
    ));
}

#[test]
fn constant_time_eq_semantics() {
    assert!(constant_time_eq(b"", b""));
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"ab"));
    assert!(!constant_time_eq(b"", b"a"));
}

// ---- opaque tokens ----

#[test]
fn opaque_token_is_43_url_safe_chars_of_32_bytes() {
    for _ in 0..100 {
        let t = OpaqueToken::generate();
        assert_eq!(t.as_str().len(), 43);
        assert!(is_base64url(t.as_str()), "{}", t.as_str());
        assert_eq!(URL_SAFE_NO_PAD.decode(t.as_str()).unwrap().len(), 32);
    }
}

#[test]
fn opaque_tokens_are_unique() {
    let set: HashSet<String> = (0..1000)
        .map(|_| OpaqueToken::generate().as_str().to_owned())
        .collect();
    assert_eq!(set.len(), 1000);
}

#[test]
fn token_hash_is_sha256_of_the_text() {
    let t = OpaqueToken::generate();
    let expected: [u8; 32] = Sha256::digest(t.as_str().as_bytes()).into();
    assert_eq!(t.hash(), TokenHash::of(t.as_str()));
    assert_eq!(t.hash().as_bytes(), &expected);
    assert_eq!(t.hash().0, expected);
    assert_ne!(t.hash(), TokenHash::of(&t.as_str()[1..]));
    assert_ne!(OpaqueToken::generate().hash(), t.hash());
    // Known answer: SHA-256("abc").
    assert_eq!(TokenHash::of("abc").0[..4], [0xba, 0x78, 0x16, 0xbf],);
}

#[test]
fn opaque_token_and_hash_debug_reveal_nothing() {
    let t = OpaqueToken::generate();
    let debug = format!("{t:?} {t:#?}");
    assert!(!debug.contains(t.as_str()));
    assert!(!debug.contains(&t.as_str()[..8]));
    assert!(debug.contains("redacted"));

    let h = TokenHash::of("abc");
    let hd = format!("{h:?}");
    assert_eq!(hd, "TokenHash(ba7816bf…)");
    let full_hex: String = h.0.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!hd.contains(&full_hex[..16]));
}

// ---- recovery codes ----

const ALPHABET: &str = "23456789abcdefghjkmnpqrstuvwxyz";

fn assert_recovery_format(code: &str) {
    let groups: Vec<&str> = code.split('-').collect();
    assert_eq!(groups.len(), 3, "{code}");
    for g in groups {
        assert_eq!(g.len(), 4, "{code}");
        assert!(g.chars().all(|c| ALPHABET.contains(c)), "{code}");
    }
}

#[test]
fn recovery_codes_have_the_format_and_are_unique() {
    let codes = generate_recovery_codes(10);
    assert_eq!(codes.len(), 10);
    assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 10);
    for code in &codes {
        assert_recovery_format(code);
    }
    assert!(generate_recovery_codes(0).is_empty());
    // Across batches too (random, 59+ bits each).
    let more = generate_recovery_codes(10);
    assert!(codes.iter().all(|c| !more.contains(c)));
}

#[test]
fn recovery_alphabet_is_unambiguous_and_fully_used() {
    assert_eq!(ALPHABET.len(), 31);
    for c in ['0', 'o', '1', 'l', 'i'] {
        assert!(!ALPHABET.contains(c));
    }
    let codes = generate_recovery_codes(500);
    let mut counts = std::collections::HashMap::new();
    for code in &codes {
        assert_recovery_format(code);
        for c in code.chars().filter(|c| *c != '-') {
            *counts.entry(c).or_insert(0u32) += 1;
        }
    }
    // 6000 symbols over 31: every symbol appears, none wildly over-represented
    // (expected ≈ 194 each; bounds are > 8 standard deviations wide).
    assert_eq!(counts.len(), 31, "{counts:?}");
    assert!(counts.values().all(|n| (80..320).contains(n)), "{counts:?}");
    // Entropy per code: 12 symbols of 31.
    let bits = 12.0 * (ALPHABET.len() as f64).log2();
    assert!(bits > 59.4, "{bits}");
}

#[test]
fn normalization_of_typed_codes() {
    assert_eq!(normalize_recovery_code("abcd-efgh-jkmn"), "abcdefghjkmn");
    assert_eq!(
        normalize_recovery_code("  ABCD-EFGH-JKMN \n"),
        "abcdefghjkmn"
    );
    assert_eq!(normalize_recovery_code("abcd efgh jkmn"), "abcdefghjkmn");
    assert_eq!(
        normalize_recovery_code("ab cd--ef gh\tjk-mn"),
        "abcdefghjkmn"
    );
    assert_eq!(normalize_recovery_code("abcdefghjkmn"), "abcdefghjkmn");
    assert_eq!(normalize_recovery_code(""), "");
    assert_eq!(normalize_recovery_code(" - "), "");
}

#[test]
fn typed_variants_hash_like_the_issued_code() {
    let key = SecretsKey::from_bytes([9; 32]);
    for code in generate_recovery_codes(5) {
        let stored = key.mac("recovery", normalize_recovery_code(&code).as_bytes());
        assert_eq!(normalize_recovery_code(&code).len(), 12);
        for typed in [
            code.to_uppercase(),
            code.replace('-', " "),
            code.replace('-', ""),
            format!("  {code}\n"),
        ] {
            let presented = key.mac("recovery", normalize_recovery_code(&typed).as_bytes());
            assert!(constant_time_eq(&stored, &presented), "{typed:?}");
        }
        let wrong = key.mac("recovery", normalize_recovery_code(&code[1..]).as_bytes());
        assert!(!constant_time_eq(&stored, &wrong));
    }
}
