use std::sync::{Arc, Barrier};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use carrel_crypto::{KeyError, SecretsKey};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{assert_names_path_only, dir_entries};

fn hmac_ref(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn key(byte: u8) -> SecretsKey {
    SecretsKey::from_bytes([byte; 32])
}

// ---- load / generate ----

#[test]
fn generates_missing_file_with_parents_mode_0600_and_reloads_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/secrets.key");

    let first = SecretsKey::load_or_generate(&path, true).unwrap();

    #[cfg(unix)]
    assert_eq!(crate::mode_of(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(STANDARD.decode(text.trim()).unwrap().len(), 32);
    assert_eq!(dir_entries(path.parent().unwrap()), vec!["secrets.key"]);

    let second = SecretsKey::load_or_generate(&path, false).unwrap();
    let third = SecretsKey::load_or_generate(&path, true).unwrap();
    assert_eq!(first.mac("t", b"x"), second.mac("t", b"x"));
    assert_eq!(first.mac("t", b"x"), third.mac("t", b"x"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "must not rewrite"
    );
}

#[test]
fn generated_keys_differ() {
    let dir = tempfile::tempdir().unwrap();
    let a = SecretsKey::load_or_generate(&dir.path().join("a"), true).unwrap();
    let b = SecretsKey::load_or_generate(&dir.path().join("b"), true).unwrap();
    assert_ne!(a.mac("t", b"x"), b.mac("t", b"x"));
}

#[test]
fn file_content_is_the_key_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.key");
    let generated = SecretsKey::load_or_generate(&path, true).unwrap();
    let bytes: [u8; 32] = STANDARD
        .decode(std::fs::read_to_string(&path).unwrap().trim())
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        generated.mac("p", b"d"),
        SecretsKey::from_bytes(bytes).mac("p", b"d")
    );
}

#[test]
fn missing_file_without_generation_is_not_found_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope/secrets.key");
    let err = SecretsKey::load_or_generate(&path, false).unwrap_err();
    match &err {
        KeyError::Io { path: p, source } => {
            assert_eq!(p, &path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }
    assert_names_path_only(&err.to_string(), &path, &[]);
    assert!(!path.exists() && !path.parent().unwrap().exists());
}

#[test]
fn accepts_padding_or_not_and_surrounding_whitespace() {
    let bytes = [7u8; 32];
    let padded = STANDARD.encode(bytes);
    assert!(padded.ends_with('='));
    let unpadded = padded.trim_end_matches('=').to_owned();
    let dir = tempfile::tempdir().unwrap();
    for (i, text) in [
        padded.clone(),
        unpadded.clone(),
        format!("  \n{padded}\n\n"),
        format!("\t{unpadded} \r\n"),
    ]
    .iter()
    .enumerate()
    {
        let path = dir.path().join(format!("k{i}"));
        std::fs::write(&path, text).unwrap();
        let loaded = SecretsKey::load_or_generate(&path, false).unwrap();
        assert_eq!(
            loaded.mac("p", b"d"),
            SecretsKey::from_bytes(bytes).mac("p", b"d")
        );
    }
}

#[test]
fn bad_files_are_invalid_and_never_echo_content() {
    let dir = tempfile::tempdir().unwrap();
    let short = STANDARD.encode([0x5au8; 31]);
    let long = STANDARD.encode([0x5au8; 33]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("short", short.clone().into_bytes()),
        ("long", long.clone().into_bytes()),
        ("empty", Vec::new()),
        ("whitespace", b" \n\t ".to_vec()),
        ("not-base64", b"hunter2-SUPERSECRET-value!!".to_vec()),
        (
            "urlsafe",
            STANDARD
                .encode([0xffu8; 32])
                .replace('/', "_")
                .replace('+', "-")
                .into_bytes(),
        ),
        ("binary", vec![0xff; 32]),
        (
            "two-keys",
            format!(
                "{} {}",
                STANDARD.encode([1u8; 32]),
                STANDARD.encode([2u8; 32])
            )
            .into_bytes(),
        ),
    ];
    for (name, content) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).unwrap();
        let err = SecretsKey::load_or_generate(&path, true).unwrap_err();
        assert!(matches!(err, KeyError::Invalid(_)), "{name}: {err:?}");
        let text = String::from_utf8_lossy(&content).into_owned();
        let message = err.to_string();
        assert_names_path_only(
            &message,
            &path,
            &[text.trim(), "hunter2", "SUPERSECRET", &short[..8]],
        );
        assert_names_path_only(
            &format!("{err:?}"),
            &path,
            &[text.trim(), "hunter2", &short[..8]],
        );
        // A bad file is never replaced by a generated one.
        assert_eq!(std::fs::read(&path).unwrap(), content, "{name}");
    }
}

#[cfg(unix)]
#[test]
fn unreadable_path_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be.
    let path = dir.path().join("is-a-dir");
    std::fs::create_dir(&path).unwrap();
    let err = SecretsKey::load_or_generate(&path, true).unwrap_err();
    assert!(matches!(err, KeyError::Io { .. }), "{err:?}");
}

#[test]
fn concurrent_generation_agrees_on_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = Arc::new(dir.path().join("race/secrets.key"));
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let path = Arc::clone(&path);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                SecretsKey::load_or_generate(&path, true)
                    .unwrap()
                    .mac("p", b"d")
            })
        })
        .collect();
    let macs: Vec<[u8; 32]> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let on_disk = SecretsKey::load_or_generate(&path, false)
        .unwrap()
        .mac("p", b"d");
    assert!(
        macs.iter().all(|m| *m == on_disk),
        "every caller must get the key on disk"
    );
    assert_eq!(dir_entries(path.parent().unwrap()), vec!["secrets.key"]);
}

#[test]
fn debug_is_redacted() {
    let k = SecretsKey::from_bytes([0xab; 32]);
    let debug = format!("{k:?}");
    assert_eq!(debug, "SecretsKey([redacted])");
    assert_eq!(format!("{k:#?}"), "SecretsKey([redacted])");
}

// ---- mac ----

#[test]
fn mac_is_hmac_under_a_purpose_subkey() {
    // Pins the stored format: HMAC(HMAC(key, "carrel/mac/" + purpose), data).
    let master = [0x42u8; 32];
    let subkey = hmac_ref(&master, b"carrel/mac/recovery");
    let expected = hmac_ref(&subkey, b"abcdefghjkmn");
    assert_eq!(
        SecretsKey::from_bytes(master).mac("recovery", b"abcdefghjkmn"),
        expected
    );
    // Never the master key directly.
    assert_ne!(expected, hmac_ref(&master, b"abcdefghjkmn"));
}

#[test]
fn mac_separates_purposes_keys_and_data() {
    let k = key(1);
    assert_eq!(k.mac("csrf", b"data"), k.mac("csrf", b"data"));
    assert_ne!(k.mac("csrf", b"data"), k.mac("recovery", b"data"));
    assert_ne!(k.mac("csrf", b"data"), k.mac("csrf", b"datb"));
    assert_ne!(k.mac("csrf", b"data"), key(2).mac("csrf", b"data"));
    assert_ne!(k.mac("", b""), k.mac("x", b""));
}

// ---- seal / open ----

#[test]
fn seal_open_round_trip() {
    let k = key(3);
    let aad = b"user:0190f4a0-0000-7000-8000-000000000001";
    for plaintext in [&b""[..], b"JBSWY3DPEHPK3PXP", &[0u8; 1000]] {
        let sealed = k.seal("totp", plaintext, aad);
        assert_eq!(sealed.len(), plaintext.len() + 24 + 16);
        assert_eq!(k.open("totp", &sealed, aad).unwrap(), plaintext);
    }
}

#[test]
fn seal_uses_a_fresh_nonce_each_time() {
    let k = key(3);
    let a = k.seal("totp", b"same", b"aad");
    let b = k.seal("totp", b"same", b"aad");
    assert_ne!(a, b);
    assert_ne!(a[..24], b[..24]);
    assert!(!a.windows(4).any(|w| w == b"same"), "plaintext visible");
}

#[test]
fn seal_format_is_nonce_then_xchacha20poly1305_under_purpose_subkey() {
    // Pins the stored format: an independent XChaCha20-Poly1305 ciphertext under
    // HMAC(key, "carrel/seal/" + purpose) with the nonce prepended must open.
    let master = [0x24u8; 32];
    let subkey = hmac_ref(&master, b"carrel/seal/totp");
    let cipher = XChaCha20Poly1305::new(&subkey.into());
    let nonce = [9u8; 24];
    let ct = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: b"secret",
                aad: b"owner",
            },
        )
        .unwrap();
    let mut sealed = nonce.to_vec();
    sealed.extend_from_slice(&ct);
    let k = SecretsKey::from_bytes(master);
    assert_eq!(k.open("totp", &sealed, b"owner").unwrap(), b"secret");

    // And the other direction.
    let ours = k.seal("totp", b"secret", b"owner");
    let (n, c) = ours.split_at(24);
    let n: [u8; 24] = n.try_into().unwrap();
    let opened = cipher
        .decrypt(
            &XNonce::from(n),
            Payload {
                msg: c,
                aad: b"owner",
            },
        )
        .unwrap();
    assert_eq!(opened, b"secret");
}

#[test]
fn open_refuses_wrong_aad_purpose_or_key() {
    let k = key(4);
    let sealed = k.seal("totp", b"JBSWY3DPEHPK3PXP", b"user-a");
    assert!(matches!(
        k.open("totp", &sealed, b"user-b"),
        Err(KeyError::Crypto(_))
    ));
    assert!(matches!(
        k.open("totp", &sealed, b""),
        Err(KeyError::Crypto(_))
    ));
    assert!(matches!(
        k.open("other", &sealed, b"user-a"),
        Err(KeyError::Crypto(_))
    ));
    assert!(matches!(
        key(5).open("totp", &sealed, b"user-a"),
        Err(KeyError::Crypto(_))
    ));
}

#[test]
fn open_refuses_any_modification() {
    let k = key(6);
    let sealed = k.seal("totp", b"JBSWY3DPEHPK3PXP", b"aad");
    // Every single-bit flip in nonce, ciphertext and tag.
    for i in 0..sealed.len() {
        for bit in [0x01u8, 0x80] {
            let mut t = sealed.clone();
            t[i] ^= bit;
            assert!(k.open("totp", &t, b"aad").is_err(), "flip at {i}");
        }
    }
    // Truncations and extensions.
    for len in 0..sealed.len() {
        assert!(k.open("totp", &sealed[..len], b"aad").is_err(), "len {len}");
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert!(k.open("totp", &longer, b"aad").is_err());
    let err = k.open("totp", &[], b"aad").unwrap_err();
    assert!(!err.to_string().contains("JBSWY3DP"));
}

#[test]
fn oversized_key_files_are_refused_before_reading_them_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.key");
    // A valid key followed by 16 KiB of padding: over the limit, so refused as a whole.
    let mut content = STANDARD.encode([7u8; 32]).into_bytes();
    content.extend(std::iter::repeat_n(b' ', 16 * 1024));
    std::fs::write(&path, &content).unwrap();
    for generate in [false, true] {
        let err = SecretsKey::load_or_generate(&path, generate).unwrap_err();
        assert!(matches!(err, KeyError::Invalid(_)), "{err:?}");
        let message = err.to_string();
        assert_names_path_only(&message, &path, &[&STANDARD.encode([7u8; 32])]);
        assert!(message.contains("larger than"), "{message}");
    }
    // The file is left as it was.
    assert_eq!(std::fs::read(&path).unwrap(), content);
}
