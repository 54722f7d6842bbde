//! Property tests of every parser of outside input in this crate: access tokens, CSRF
//! tokens, sealed data and typed recovery codes.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carrel_crypto::{
    AccessClaims, JwtKeys, SecretsKey, csrf_token, generate_recovery_codes,
    normalize_recovery_code, verify_csrf_token,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

const ISS: &str = "https://carrel.example";
const AUD: &str = "carrel-api";
const NOW: i64 = 1_750_000_000;

/// One key set and one valid token for every case (key generation is not what is tested).
static KEYS: LazyLock<JwtKeys> = LazyLock::new(|| JwtKeys::generate(ISS, AUD));
static TOKEN: LazyLock<String> = LazyLock::new(|| {
    KEYS.sign(&AccessClaims {
        sub: Uuid::from_u128(1),
        sid: Uuid::from_u128(2),
        role: "patron".to_owned(),
        iat: NOW,
        exp: NOW + 900,
        iss: String::new(),
        aud: String::new(),
        scope: None,
    })
    .unwrap()
});

/// The symbols of recovery codes.
const ALPHABET: &str = "23456789abcdefghjkmnpqrstuvwxyz";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JSON header that gets as far as the key lookup or the signature check half the time.
fn header() -> impl Strategy<Value = Value> {
    let alg = prop_oneof![
        3 => Just(json!("EdDSA")),
        1 => prop::sample::select(vec!["none", "HS256", "RS256", "ES256", "eddsa", ""]).prop_map(|a| json!(a)),
        1 => Just(Value::Null),
    ];
    let kid = prop_oneof![
        3 => Just(json!(KEYS.kid())),
        1 => "\\PC{0,44}".prop_map(|k| json!(k)),
        1 => Just(Value::Null),
    ];
    (alg, kid, any::<bool>(), any::<bool>()).prop_map(|(alg, kid, typ, crit)| {
        let mut h = json!({"alg": alg, "kid": kid});
        if typ {
            h["typ"] = json!("JWT");
        }
        if crit {
            h["crit"] = json!(["exp"]);
        }
        h
    })
}

/// Claims of every shape: right, wrong and of the wrong type.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (
            any::<u128>(),
            any::<i64>(),
            any::<i64>(),
            prop::sample::select(vec![ISS, "https://evil.example", ""]),
            prop::sample::select(vec![AUD, "other", ""]),
        )
            .prop_map(|(id, iat, exp, iss, aud)| {
                json!({"sub": Uuid::from_u128(id), "sid": Uuid::from_u128(!id), "role": "admin",
                       "iat": iat, "exp": exp, "iss": iss, "aud": aud})
                .to_string()
                .into_bytes()
            }),
        prop::collection::vec(any::<u8>(), 0..120),
    ]
}

/// Three base64url parts of the shapes above, or arbitrary text.
fn token_like() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            header(),
            payload(),
            prop::collection::vec(any::<u8>(), 0..80)
        )
            .prop_map(|(h, p, s)| format!("{}.{}.{}", b64(h.to_string()), b64(p), b64(s))),
        "\\PC{0,200}",
        "[A-Za-z0-9_.=+/-]{0,200}",
    ]
}

/// `code` (as `xxxx-xxxx-xxxx`) typed with any mix of case and separators.
fn typed(code: &str, upper: &[bool], seps: &[(usize, &'static str)]) -> String {
    let mut out = String::new();
    for (i, c) in code.chars().enumerate() {
        for (_, sep) in seps.iter().filter(|(at, _)| *at == i) {
            out.push_str(sep);
        }
        if upper.get(i).copied().unwrap_or(false) {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    for (_, sep) in seps.iter().filter(|(at, _)| *at >= code.len()) {
        out.push_str(sep);
    }
    out
}

fn code12() -> impl Strategy<Value = String> {
    "[23456789abcdefghjkmnpqrstuvwxyz]{12}"
        .prop_map(|c| format!("{}-{}-{}", &c[..4], &c[4..8], &c[8..]))
}

fn separators() -> impl Strategy<Value = Vec<(usize, &'static str)>> {
    let sep = prop::sample::select(vec!["-", " ", "\t", "\u{a0}", "\u{3000}", " - ", "\n"]);
    prop::collection::vec((0usize..16, sep), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Anything presented as a bearer token is refused, never a panic.
    #[test]
    fn any_token_is_refused(token in token_like()) {
        prop_assert!(KEYS.verify(&token, NOW).is_err());
    }

    /// A real token with any one character changed is refused (the unchanged one still
    /// verifies, so its remembered claims are not what answers).
    #[test]
    fn token_with_one_changed_byte_is_refused(at in any::<prop::sample::Index>(), mask in 1u8..128) {
        let mut bytes = TOKEN.clone().into_bytes();
        let at = at.index(bytes.len());
        bytes[at] ^= mask;
        // ASCII stays ASCII under a 7-bit mask.
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(KEYS.verify(&changed, NOW).is_err(), "byte {} ^ {:#x} accepted", at, mask);
        prop_assert!(KEYS.verify(&TOKEN, NOW).is_ok());
    }

    /// A CSRF token is accepted only when it is the session's own.
    #[test]
    fn csrf_accepts_only_the_sessions_token(
        key in any::<[u8; 32]>(),
        session in any::<u128>(),
        presented in "\\PC{0,60}|[A-Za-z0-9_-]{43}",
        at in any::<prop::sample::Index>(),
        mask in 1u8..128,
    ) {
        let key = SecretsKey::from_bytes(key);
        let session = Uuid::from_u128(session);
        let real = csrf_token(&key, session);
        prop_assert!(verify_csrf_token(&key, session, &real));
        prop_assert_eq!(verify_csrf_token(&key, session, &presented), presented == real);
        let mut changed = real.clone().into_bytes();
        let at = at.index(changed.len());
        changed[at] ^= mask;
        prop_assert!(!verify_csrf_token(&key, session, &String::from_utf8(changed).unwrap()));
    }

    /// Sealed data opens to what was sealed; any changed, cut or extended byte string,
    /// and any arbitrary one, is refused.
    #[test]
    fn sealed_data_round_trips_and_any_change_is_refused(
        key in any::<[u8; 32]>(),
        plaintext in prop::collection::vec(any::<u8>(), 0..64),
        aad in prop::collection::vec(any::<u8>(), 0..16),
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
        cut in any::<prop::sample::Index>(),
        garbage in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let key = SecretsKey::from_bytes(key);
        let sealed = key.seal("totp", &plaintext, &aad);
        prop_assert_eq!(key.open("totp", &sealed, &aad).unwrap(), plaintext);
        let mut changed = sealed.clone();
        changed[at.index(sealed.len())] ^= mask;
        prop_assert!(key.open("totp", &changed, &aad).is_err());
        prop_assert!(key.open("totp", &sealed[..cut.index(sealed.len())], &aad).is_err());
        let mut longer = sealed.clone();
        longer.push(mask);
        prop_assert!(key.open("totp", &longer, &aad).is_err());
        prop_assert!(key.open("totp", &garbage, &aad).is_err());
    }

    /// A recovery code typed in any case, with any spaces or hyphens, normalises to the
    /// code's 12 symbols; changing any one symbol gives another code.
    #[test]
    fn recovery_code_normalisation_round_trip(
        code in code12(),
        upper in prop::collection::vec(any::<bool>(), 14),
        seps in separators(),
        at in 0usize..12,
        other in any::<prop::sample::Index>(),
    ) {
        let bare: String = code.chars().filter(|c| *c != '-').collect();
        prop_assert_eq!(normalize_recovery_code(&code), bare.clone());
        prop_assert_eq!(normalize_recovery_code(&typed(&code, &upper, &seps)), bare.clone());

        let mut symbols: Vec<char> = bare.chars().collect();
        let alternatives: Vec<char> = ALPHABET.chars().filter(|c| *c != symbols[at]).collect();
        symbols[at] = alternatives[other.index(alternatives.len())];
        let changed: String = symbols.into_iter().collect();
        prop_assert_ne!(normalize_recovery_code(&typed(&changed, &upper, &seps)), bare);
    }

    /// Any text normalises without a panic to text with no whitespace or hyphen, and
    /// normalising again changes nothing.
    #[test]
    fn any_text_normalises_idempotently(raw in "\\PC{0,40}|[\\s\\-A-Za-z0-9\u{130}\u{212a}]{0,40}") {
        let once = normalize_recovery_code(&raw);
        prop_assert!(!once.chars().any(|c| c.is_whitespace() || c == '-'));
        prop_assert_eq!(normalize_recovery_code(&once), once);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Generated codes are `xxxx-xxxx-xxxx` over the alphabet and store as their symbols.
    #[test]
    fn generated_recovery_codes_normalise_to_their_symbols(n in 1usize..12) {
        let codes = generate_recovery_codes(n);
        prop_assert_eq!(codes.len(), n);
        for code in codes {
            prop_assert_eq!(code.len(), 14);
            let bare = normalize_recovery_code(&code);
            prop_assert_eq!(bare.len(), 12);
            prop_assert!(bare.chars().all(|c| ALPHABET.contains(c)));
            prop_assert_eq!(normalize_recovery_code(&code.to_uppercase().replace('-', " ")), bare);
        }
    }
}
