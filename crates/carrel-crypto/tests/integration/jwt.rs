use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carrel_crypto::{AccessClaims, JwtKeys, KeyError, SCOPE_MFA_SETUP, TokenError};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{assert_names_path_only, dir_entries};

const ISS: &str = "https://carrel.example";
const AUD: &str = "carrel-api";
const NOW: i64 = 1_750_000_000;

fn claims() -> AccessClaims {
    AccessClaims {
        sub: Uuid::new_v4(),
        sid: Uuid::new_v4(),
        role: "member".to_owned(),
        iat: NOW,
        exp: NOW + 900,
        iss: String::new(),
        aud: String::new(),
        scope: None,
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

fn parts(token: &str) -> [String; 3] {
    let v: Vec<&str> = token.split('.').collect();
    assert_eq!(v.len(), 3, "{token}");
    [v[0].to_owned(), v[1].to_owned(), v[2].to_owned()]
}

fn json_part(part: &str) -> Value {
    serde_json::from_slice(&unb64(part)).unwrap()
}

fn encode_json(v: &Value) -> String {
    b64(&serde_json::to_vec(v).unwrap())
}

/// A compact JWS over exactly `header` and `payload`, signed by `key` (the attacker's tool:
/// any header, any claims).
fn sign_raw(key: &SigningKey, header: &Value, payload: &Value) -> String {
    let message = format!("{}.{}", encode_json(header), encode_json(payload));
    let signature = key.sign(message.as_bytes());
    format!("{message}.{}", b64(&signature.to_bytes()))
}

/// Keys written to `dir/name`, plus the same private key for hand-signing.
fn file_keys(dir: &Path, name: &str, previous: &[PathBuf]) -> (JwtKeys, SigningKey, PathBuf) {
    let path = dir.join(name);
    let keys = JwtKeys::load_or_generate(&path, true, previous, ISS, AUD).unwrap();
    let signing = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (keys, signing, path)
}

/// A complete, valid claims object as JSON (iss/aud filled).
fn full_claims_json() -> Value {
    let mut c = claims();
    c.iss = ISS.to_owned();
    c.aud = AUD.to_owned();
    serde_json::to_value(c).unwrap()
}

fn kid_of(jwk: &Value) -> String {
    jwk["kid"].as_str().unwrap().to_owned()
}

// ---- round trip ----

#[test]
fn round_trip_fills_iss_and_aud_and_sets_header() {
    let keys = JwtKeys::generate(ISS, AUD);
    let c = claims();
    let token = keys.sign(&c).unwrap();

    let [h, p, s] = parts(&token);
    let header = json_part(&h);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], keys.kid());
    assert_eq!(unb64(&s).len(), 64);
    let payload = json_part(&p);
    assert_eq!(payload["iss"], ISS);
    assert_eq!(payload["aud"], AUD);
    assert!(payload.get("scope").is_none(), "absent scope is omitted");

    let verified = keys.verify(&token, NOW).unwrap();
    let mut expected = c;
    expected.iss = ISS.to_owned();
    expected.aud = AUD.to_owned();
    assert_eq!(verified, expected);
    assert_eq!(keys.issuer(), ISS);
    assert_eq!(keys.audience(), AUD);
}

#[test]
fn mfa_setup_scope_round_trips() {
    let keys = JwtKeys::generate(ISS, AUD);
    let mut c = claims();
    c.scope = Some(SCOPE_MFA_SETUP.to_owned());
    let token = keys.sign(&c).unwrap();
    assert_eq!(json_part(&parts(&token)[1])["scope"], "mfa_setup");
    assert_eq!(
        keys.verify(&token, NOW).unwrap().scope.as_deref(),
        Some("mfa_setup")
    );
}

#[test]
fn generated_keys_are_distinct() {
    let a = JwtKeys::generate(ISS, AUD);
    let b = JwtKeys::generate(ISS, AUD);
    assert_ne!(a.kid(), b.kid());
    assert_eq!(a.kid().len(), 43);
}

// ---- signature ----

#[test]
fn tampered_payload_is_bad_signature() {
    let keys = JwtKeys::generate(ISS, AUD);
    let token = keys.sign(&claims()).unwrap();
    let [h, p, s] = parts(&token);

    let mut payload = json_part(&p);
    payload["role"] = json!("admin");
    let forged = format!("{h}.{}.{s}", encode_json(&payload));
    assert_eq!(keys.verify(&forged, NOW), Err(TokenError::BadSignature));

    let mut payload = json_part(&p);
    payload["exp"] = json!(NOW + 10 * 365 * 86400);
    let forged = format!("{h}.{}.{s}", encode_json(&payload));
    assert_eq!(keys.verify(&forged, NOW), Err(TokenError::BadSignature));

    // Same claims, different serialisation (whitespace) still changes the signed bytes.
    let respaced = b64(serde_json::to_string_pretty(&json_part(&p))
        .unwrap()
        .as_bytes());
    assert_eq!(
        keys.verify(&format!("{h}.{respaced}.{s}"), NOW),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn tampered_header_is_bad_signature() {
    let keys = JwtKeys::generate(ISS, AUD);
    let token = keys.sign(&claims()).unwrap();
    let [h, p, s] = parts(&token);
    let mut header = json_part(&h);
    header["typ"] = json!("at+jwt");
    let forged = format!("{}.{p}.{s}", encode_json(&header));
    assert_eq!(keys.verify(&forged, NOW), Err(TokenError::BadSignature));
}

#[test]
fn tampered_signature_is_bad_signature() {
    let keys = JwtKeys::generate(ISS, AUD);
    let token = keys.sign(&claims()).unwrap();
    let [h, p, s] = parts(&token);
    let sig = unb64(&s);
    for i in [0, 1, 31, 32, 63] {
        let mut t = sig.clone();
        t[i] ^= 0x01;
        let forged = format!("{h}.{p}.{}", b64(&t));
        assert_eq!(
            keys.verify(&forged, NOW),
            Err(TokenError::BadSignature),
            "byte {i}"
        );
    }
    // Wrong lengths and empty.
    for bad in [
        &sig[..63],
        &sig[..32],
        &[][..],
        &[sig.as_slice(), &[0]].concat()[..],
    ] {
        let forged = format!("{h}.{p}.{}", b64(bad));
        assert_eq!(
            keys.verify(&forged, NOW),
            Err(TokenError::BadSignature),
            "len {}",
            bad.len()
        );
    }
    // The signature of a different token.
    let other = keys.sign(&claims()).unwrap();
    let forged = format!("{h}.{p}.{}", parts(&other)[2]);
    assert_eq!(keys.verify(&forged, NOW), Err(TokenError::BadSignature));
}

// ---- algorithm confusion ----

#[test]
fn alg_none_is_refused() {
    let keys = JwtKeys::generate(ISS, AUD);
    let real = keys.sign(&claims()).unwrap();
    let [_, p, s] = parts(&real);
    for alg in ["none", "None", "NONE", "nOnE"] {
        for header in [
            json!({"alg": alg, "typ": "JWT"}),
            json!({"alg": alg, "typ": "JWT", "kid": keys.kid()}),
        ] {
            let h = encode_json(&header);
            for sig in ["", s.as_str()] {
                let token = format!("{h}.{p}.{sig}");
                assert_eq!(
                    keys.verify(&token, NOW),
                    Err(TokenError::WrongAlgorithm),
                    "{header} sig={}",
                    !sig.is_empty()
                );
            }
        }
    }
    // The classic hand-built form: header {"alg":"none","typ":"JWT"}, payload, empty signature.
    let token = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        encode_json(&full_claims_json())
    );
    assert_eq!(keys.verify(&token, NOW), Err(TokenError::WrongAlgorithm));
}

#[test]
fn hs256_with_the_public_key_as_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, signing, _) = file_keys(dir.path(), "k.pem", &[]);
    let public = signing.verifying_key();
    let x = keys.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
    let spki_pem = public.to_public_key_pem(LineEnding::LF).unwrap();
    let spki_der = public.to_public_key_der().unwrap();

    let secrets: Vec<Vec<u8>> = vec![
        public.to_bytes().to_vec(),
        x.clone().into_bytes(),
        spki_pem.into_bytes(),
        spki_der.as_bytes().to_vec(),
    ];
    for secret in secrets {
        for alg in [
            jsonwebtoken::Algorithm::HS256,
            jsonwebtoken::Algorithm::HS384,
            jsonwebtoken::Algorithm::HS512,
        ] {
            let mut header = jsonwebtoken::Header::new(alg);
            header.kid = Some(keys.kid().to_owned());
            let token = jsonwebtoken::encode(
                &header,
                &full_claims_json(),
                &jsonwebtoken::EncodingKey::from_secret(&secret),
            )
            .unwrap();
            assert_eq!(
                keys.verify(&token, NOW),
                Err(TokenError::WrongAlgorithm),
                "{alg:?}"
            );
        }
    }
}

#[test]
fn every_other_alg_is_refused_even_with_a_valid_eddsa_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, signing, _) = file_keys(dir.path(), "k.pem", &[]);
    let algs = [
        json!("RS256"),
        json!("PS256"),
        json!("ES256"),
        json!("ES384"),
        json!("HS256"),
        json!("eddsa"),
        json!("EDDSA"),
        json!("Ed25519"),
        json!("EdDSA "),
        json!(""),
        json!(null),
        json!(["EdDSA"]),
    ];
    for alg in algs {
        // Signed for real with our key: only the alg is wrong.
        let token = sign_raw(
            &signing,
            &json!({"alg": alg, "kid": keys.kid()}),
            &full_claims_json(),
        );
        let result = keys.verify(&token, NOW);
        if alg.is_array() {
            assert_eq!(result, Err(TokenError::Malformed), "{alg}");
        } else {
            assert_eq!(result, Err(TokenError::WrongAlgorithm), "{alg}");
        }
    }
    // No alg at all.
    let token = sign_raw(&signing, &json!({"kid": keys.kid()}), &full_claims_json());
    assert_eq!(keys.verify(&token, NOW), Err(TokenError::WrongAlgorithm));
    // Control: the same construction with EdDSA verifies.
    let token = sign_raw(
        &signing,
        &json!({"alg": "EdDSA", "kid": keys.kid()}),
        &full_claims_json(),
    );
    assert!(keys.verify(&token, NOW).is_ok());
}

#[test]
fn crit_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, signing, _) = file_keys(dir.path(), "k.pem", &[]);
    let token = sign_raw(
        &signing,
        &json!({"alg": "EdDSA", "kid": keys.kid(), "crit": ["exp"], "exp": 0}),
        &full_claims_json(),
    );
    assert_eq!(keys.verify(&token, NOW), Err(TokenError::Malformed));
}

#[test]
fn embedded_keys_in_the_header_are_ignored() {
    // An attacker-supplied jwk/jku header must not be trusted: the kid still decides.
    let dir = tempfile::tempdir().unwrap();
    let (keys, _, _) = file_keys(dir.path(), "k.pem", &[]);
    let attacker = SigningKey::from_bytes(&[7; 32]);
    let attacker_x = b64(&attacker.verifying_key().to_bytes());
    let header = json!({
        "alg": "EdDSA",
        "kid": keys.kid(),
        "jwk": {"kty": "OKP", "crv": "Ed25519", "x": attacker_x},
        "jku": "https://evil.example/jwks.json",
    });
    let token = sign_raw(&attacker, &header, &full_claims_json());
    assert_eq!(keys.verify(&token, NOW), Err(TokenError::BadSignature));
}

// ---- keys ----

#[test]
fn token_from_another_key_is_unknown_key() {
    let ours = JwtKeys::generate(ISS, AUD);
    let theirs = JwtKeys::generate(ISS, AUD);
    let token = theirs.sign(&claims()).unwrap();
    assert_eq!(ours.verify(&token, NOW), Err(TokenError::UnknownKey));
}

#[test]
fn forged_kid_naming_our_key_is_bad_signature() {
    let ours = JwtKeys::generate(ISS, AUD);
    let attacker = SigningKey::from_bytes(&[0x11; 32]);
    let token = sign_raw(
        &attacker,
        &json!({"alg": "EdDSA", "typ": "JWT", "kid": ours.kid()}),
        &full_claims_json(),
    );
    assert_eq!(ours.verify(&token, NOW), Err(TokenError::BadSignature));
}

#[test]
fn missing_or_unknown_kid_is_unknown_key() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, signing, _) = file_keys(dir.path(), "k.pem", &[]);
    for header in [
        json!({"alg": "EdDSA"}),
        json!({"alg": "EdDSA", "kid": ""}),
        json!({"alg": "EdDSA", "kid": null}),
        json!({"alg": "EdDSA", "kid": "not-a-kid"}),
        json!({"alg": "EdDSA", "kid": keys.kid().to_uppercase()}),
        json!({"alg": "EdDSA", "kid": format!("{} ", keys.kid())}),
    ] {
        // Correctly signed by our key, but without naming it.
        let token = sign_raw(&signing, &header, &full_claims_json());
        assert_eq!(
            keys.verify(&token, NOW),
            Err(TokenError::UnknownKey),
            "{header}"
        );
    }
    let token = sign_raw(
        &signing,
        &json!({"alg": "EdDSA", "kid": 5}),
        &full_claims_json(),
    );
    assert_eq!(keys.verify(&token, NOW), Err(TokenError::Malformed));
}

// ---- time ----

#[test]
fn expiry_is_exact_with_no_leeway() {
    let keys = JwtKeys::generate(ISS, AUD);
    let mut c = claims();
    c.exp = NOW + 900;
    let token = keys.sign(&c).unwrap();
    assert!(keys.verify(&token, NOW + 899).is_ok());
    assert_eq!(
        keys.verify(&token, NOW + 900),
        Err(TokenError::Expired),
        "exp == now"
    );
    assert_eq!(keys.verify(&token, NOW + 901), Err(TokenError::Expired));
    assert_eq!(keys.verify(&token, i64::MAX), Err(TokenError::Expired));
}

#[test]
fn only_the_callers_clock_is_used() {
    let keys = JwtKeys::generate(ISS, AUD);
    // Expired long ago by the system clock, valid by the injected one.
    let mut c = claims();
    c.iat = 100;
    c.exp = 1_000;
    let token = keys.sign(&c).unwrap();
    assert!(keys.verify(&token, 500).is_ok());
    assert_eq!(keys.verify(&token, 1_000), Err(TokenError::Expired));

    // Valid by the system clock, expired by the injected one.
    let mut c = claims();
    c.iat = NOW;
    c.exp = 4_000_000_000;
    let token = keys.sign(&c).unwrap();
    assert_eq!(keys.verify(&token, 4_000_000_000), Err(TokenError::Expired));
}

#[test]
fn iat_more_than_60s_ahead_is_not_yet_valid() {
    let keys = JwtKeys::generate(ISS, AUD);
    let mut c = claims();
    c.iat = NOW + 60;
    c.exp = NOW + 1000;
    assert!(keys.verify(&keys.sign(&c).unwrap(), NOW).is_ok());
    c.iat = NOW + 61;
    assert_eq!(
        keys.verify(&keys.sign(&c).unwrap(), NOW),
        Err(TokenError::NotYetValid)
    );
    c.iat = i64::MAX;
    assert_eq!(
        keys.verify(&keys.sign(&c).unwrap(), NOW),
        Err(TokenError::NotYetValid)
    );
    // Saturating: a huge `now` does not overflow.
    c.iat = NOW;
    c.exp = i64::MAX;
    assert!(keys.verify(&keys.sign(&c).unwrap(), i64::MAX - 1).is_ok());
}

// ---- issuer / audience ----

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let keys = JwtKeys::generate(ISS, AUD);
    let mut c = claims();
    c.iss = "https://evil.example".to_owned();
    assert_eq!(
        keys.verify(&keys.sign(&c).unwrap(), NOW),
        Err(TokenError::WrongIssuer)
    );

    let mut c = claims();
    c.aud = "other-api".to_owned();
    assert_eq!(
        keys.verify(&keys.sign(&c).unwrap(), NOW),
        Err(TokenError::WrongAudience)
    );

    // Exact match only: prefixes, case and whitespace differ.
    for iss in [format!("{ISS}/"), ISS.to_uppercase(), format!(" {ISS}")] {
        let mut c = claims();
        c.iss = iss;
        assert_eq!(
            keys.verify(&keys.sign(&c).unwrap(), NOW),
            Err(TokenError::WrongIssuer)
        );
    }
    let mut c = claims();
    c.aud = format!("{AUD}x");
    assert_eq!(
        keys.verify(&keys.sign(&c).unwrap(), NOW),
        Err(TokenError::WrongAudience)
    );
}

#[test]
fn same_key_configured_for_another_audience_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    let api = JwtKeys::load_or_generate(&path, true, &[], ISS, AUD).unwrap();
    let other = JwtKeys::load_or_generate(&path, false, &[], ISS, "admin-api").unwrap();
    let other_iss = JwtKeys::load_or_generate(&path, false, &[], "https://x", AUD).unwrap();
    let token = api.sign(&claims()).unwrap();
    assert_eq!(other.verify(&token, NOW), Err(TokenError::WrongAudience));
    assert_eq!(other_iss.verify(&token, NOW), Err(TokenError::WrongIssuer));
}

// ---- malformed ----

#[test]
fn malformed_tokens_are_malformed() {
    let keys = JwtKeys::generate(ISS, AUD);
    let token = keys.sign(&claims()).unwrap();
    let [h, p, s] = parts(&token);
    let cases = vec![
        String::new(),
        ".".to_owned(),
        "..".to_owned(),
        "a.b".to_owned(),
        "not a token".to_owned(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}.{p}.{s}."),
        format!("{h}..{s}.x"),
        format!("%%%.{p}.{s}"),
        format!("{}.{p}.{s}", b64(b"not json")),
        format!("{}.{p}.{s}", b64(b"[1,2]")),
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}.{s}="),
        format!("{h}.{p}.!!"),
        format!("{h}.%%%.{s}"),
        format!("{}.{}.{}", h, "A".repeat(9000), s),
    ];
    for bad in cases {
        assert_eq!(
            keys.verify(&bad, NOW),
            Err(TokenError::Malformed),
            "{bad:.60}"
        );
    }
}

#[test]
fn validly_signed_but_malformed_claims_are_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, signing, _) = file_keys(dir.path(), "k.pem", &[]);
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": keys.kid()});
    let mut cases = Vec::new();
    for field in ["sub", "sid", "role", "iat", "exp", "iss", "aud"] {
        let mut c = full_claims_json();
        c.as_object_mut().unwrap().remove(field);
        cases.push((format!("missing {field}"), c));
    }
    let mut c = full_claims_json();
    c["sub"] = json!("not-a-uuid");
    cases.push(("sub not uuid".into(), c));
    let mut c = full_claims_json();
    c["exp"] = json!("9999999999");
    cases.push(("exp as string".into(), c));
    let mut c = full_claims_json();
    c["exp"] = json!(1.5e10);
    cases.push(("exp as float".into(), c));
    let mut c = full_claims_json();
    c["aud"] = json!([AUD]);
    cases.push(("aud as array".into(), c));
    cases.push(("not an object".into(), json!([1, 2, 3])));
    for (name, payload) in cases {
        let token = sign_raw(&signing, &header, &payload);
        assert_eq!(
            keys.verify(&token, NOW),
            Err(TokenError::Malformed),
            "{name}"
        );
    }
    // Control: unknown extra claims are ignored.
    let mut c = full_claims_json();
    c["extra"] = json!("ignored");
    assert!(keys.verify(&sign_raw(&signing, &header, &c), NOW).is_ok());
}

#[test]
fn duplicate_header_members_are_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, signing, _) = file_keys(dir.path(), "k.pem", &[]);
    let header = format!(r#"{{"alg":"none","alg":"EdDSA","kid":"{}"}}"#, keys.kid());
    let message = format!(
        "{}.{}",
        b64(header.as_bytes()),
        encode_json(&full_claims_json())
    );
    let token = format!(
        "{message}.{}",
        b64(&signing.sign(message.as_bytes()).to_bytes())
    );
    assert_eq!(keys.verify(&token, NOW), Err(TokenError::Malformed));
}

// ---- files, rotation, JWKS ----

#[test]
fn load_or_generate_creates_a_0600_pkcs8_file_and_reloads_the_same_kid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys/nested/jwt.pem");
    let first = JwtKeys::load_or_generate(&path, true, &[], ISS, AUD).unwrap();

    #[cfg(unix)]
    assert_eq!(crate::mode_of(&path), 0o600);
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(
        pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{}",
        &pem[..30]
    );
    assert!(pem.trim_end().ends_with("-----END PRIVATE KEY-----"));
    assert_eq!(
        dir_entries(path.parent().unwrap()),
        vec!["jwt.pem"],
        "no temp files left"
    );

    let second = JwtKeys::load_or_generate(&path, false, &[], ISS, AUD).unwrap();
    let third = JwtKeys::load_or_generate(&path, true, &[], ISS, AUD).unwrap();
    assert_eq!(first.kid(), second.kid());
    assert_eq!(first.kid(), third.kid());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        pem,
        "never rewritten"
    );
    // Tokens survive a "restart".
    let token = first.sign(&claims()).unwrap();
    assert!(second.verify(&token, NOW).is_ok());
}

#[test]
fn missing_key_without_generation_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwt.pem");
    let err = JwtKeys::load_or_generate(&path, false, &[], ISS, AUD).unwrap_err();
    assert!(
        matches!(&err, KeyError::Io { path: p, source } if p == &path && source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert_names_path_only(&err.to_string(), &path, &[]);
    assert!(!path.exists());
}

#[test]
fn invalid_private_key_files_are_refused_without_echoing_content() {
    let dir = tempfile::tempdir().unwrap();
    let signing = SigningKey::from_bytes(&[3; 32]);
    let private_pem = signing.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let body = private_pem.lines().nth(1).unwrap().to_owned();
    let public_pem = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let truncated = private_pem.replace(&body, &body[..20]);
    let cases: Vec<(&str, String)> = vec![
        ("garbage", "hunter2 SUPERSECRET".to_owned()),
        ("empty", String::new()),
        ("public-as-private", public_pem.clone()),
        ("truncated", truncated.clone()),
        (
            "rsa-label",
            private_pem.replace("PRIVATE KEY", "RSA PRIVATE KEY"),
        ),
    ];
    for (name, content) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &content).unwrap();
        let err = JwtKeys::load_or_generate(&path, true, &[], ISS, AUD).unwrap_err();
        assert!(matches!(err, KeyError::Invalid(_)), "{name}: {err:?}");
        assert_names_path_only(
            &err.to_string(),
            &path,
            &[
                "hunter2",
                "SUPERSECRET",
                &body[..16],
                &body[20..36],
                &public_pem.lines().nth(1).unwrap()[..16],
            ],
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            content,
            "{name} untouched"
        );
    }
}

#[test]
fn openssl_style_pems_load() {
    // RFC 8410 §10.3 private key and the matching §10.1 public key.
    let private_pem = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
        -----END PRIVATE KEY-----\n";
    let public_pem = "-----BEGIN PUBLIC KEY-----\n\
        MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
        -----END PUBLIC KEY-----\n";
    let dir = tempfile::tempdir().unwrap();
    let private_path = dir.path().join("private.pem");
    let public_path = dir.path().join("public.pem");
    // Surrounding whitespace / missing final newline are tolerated.
    std::fs::write(&private_path, format!("\n{}", private_pem.trim_end())).unwrap();
    std::fs::write(&public_path, public_pem).unwrap();

    let keys = JwtKeys::load_or_generate(
        &private_path,
        false,
        std::slice::from_ref(&public_path),
        ISS,
        AUD,
    )
    .unwrap();
    let jwks = keys.jwks();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        1,
        "public twin of the signing key is deduplicated"
    );
    assert_eq!(
        unb64(jwks["keys"][0]["x"].as_str().unwrap()),
        hex_decode("19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1")
    );
    assert!(keys.verify(&keys.sign(&claims()).unwrap(), NOW).is_ok());
}

#[test]
fn kid_is_the_rfc7638_thumbprint() {
    // RFC 8037 Appendix A.1 key; A.3 gives its thumbprint.
    let seed: [u8; 32] = unb64("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
        .try_into()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rfc8037.pem");
    let pem = SigningKey::from_bytes(&seed)
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap();
    std::fs::write(&path, pem.as_bytes()).unwrap();

    let keys = JwtKeys::load_or_generate(&path, false, &[], ISS, AUD).unwrap();
    assert_eq!(keys.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    let jwk = &keys.jwks()["keys"][0];
    assert_eq!(jwk["x"], "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    assert_eq!(jwk["kid"], keys.kid());
}

#[test]
fn jwks_shape() {
    let keys = JwtKeys::generate(ISS, AUD);
    let jwks = keys.jwks();
    assert_eq!(jwks.as_object().unwrap().len(), 1);
    let list = jwks["keys"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    let jwk = list[0].as_object().unwrap();
    let mut members: Vec<&str> = jwk.keys().map(String::as_str).collect();
    members.sort_unstable();
    assert_eq!(
        members,
        ["alg", "crv", "kid", "kty", "use", "x"],
        "no private member (d)"
    );
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert_eq!(jwk["alg"], "EdDSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kid"], keys.kid());
    let x = jwk["x"].as_str().unwrap();
    assert_eq!(unb64(x).len(), 32);
    // Recompute the thumbprint independently.
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    assert_eq!(keys.kid(), b64(&Sha256::digest(canonical.as_bytes())));
    // The JWK is usable by a standard client.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(list[0].clone()).unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.set_audience(&[AUD]);
    let token = keys.sign(&claims()).unwrap();
    jsonwebtoken::decode::<AccessClaims>(&token, &decoding, &validation).unwrap();
}

#[test]
fn rotation_keeps_old_tokens_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _, a_path) = file_keys(dir.path(), "a.pem", &[]);
    let old_token = a.sign(&claims()).unwrap();

    let (b, _, _) = file_keys(dir.path(), "b.pem", std::slice::from_ref(&a_path));
    assert_ne!(a.kid(), b.kid());
    // B verifies A's tokens and signs its own with its own kid.
    assert_eq!(b.verify(&old_token, NOW).unwrap().role, "member");
    let new_token = b.sign(&claims()).unwrap();
    assert_eq!(json_part(&parts(&new_token)[0])["kid"], b.kid());
    assert!(b.verify(&new_token, NOW).is_ok());
    // A does not know B.
    assert_eq!(a.verify(&new_token, NOW), Err(TokenError::UnknownKey));
    // Old tokens still expire.
    assert_eq!(b.verify(&old_token, NOW + 900), Err(TokenError::Expired));

    let kids: Vec<String> = b.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(kid_of)
        .collect();
    assert_eq!(
        kids,
        vec![b.kid().to_owned(), a.kid().to_owned()],
        "signing key first"
    );

    // Once A is dropped from the previous keys, its tokens are refused.
    let b_only =
        JwtKeys::load_or_generate(&dir.path().join("b.pem"), false, &[], ISS, AUD).unwrap();
    assert_eq!(b_only.verify(&old_token, NOW), Err(TokenError::UnknownKey));
}

#[test]
fn previous_key_may_be_a_public_key_pem() {
    let dir = tempfile::tempdir().unwrap();
    let (a, a_signing, _) = file_keys(dir.path(), "a.pem", &[]);
    let a_public = dir.path().join("a.pub.pem");
    std::fs::write(
        &a_public,
        a_signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    let (b, _, _) = file_keys(dir.path(), "b.pem", &[a_public]);
    assert!(b.verify(&a.sign(&claims()).unwrap(), NOW).is_ok());
    let kids: Vec<String> = b.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(kid_of)
        .collect();
    assert_eq!(kids, vec![b.kid().to_owned(), a.kid().to_owned()]);
}

#[test]
fn previous_keys_are_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, a_path) = file_keys(dir.path(), "a.pem", &[]);
    let b_path = dir.path().join("b.pem");
    let b = JwtKeys::load_or_generate(&b_path, true, &[], ISS, AUD).unwrap();
    let again = JwtKeys::load_or_generate(
        &b_path,
        false,
        &[a_path.clone(), b_path.clone(), a_path.clone()],
        ISS,
        AUD,
    )
    .unwrap();
    assert_eq!(again.kid(), b.kid());
    assert_eq!(again.jwks()["keys"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_previous_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let current = dir.path().join("current.pem");
    let missing = dir.path().join("missing.pem");
    let err = JwtKeys::load_or_generate(&current, true, std::slice::from_ref(&missing), ISS, AUD)
        .unwrap_err();
    assert!(
        matches!(&err, KeyError::Io { path, .. } if path == &missing),
        "{err:?}"
    );

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PUBLIC KEY-----\nSUPERSECRETxx\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let err = JwtKeys::load_or_generate(&current, true, std::slice::from_ref(&garbage), ISS, AUD)
        .unwrap_err();
    assert!(matches!(err, KeyError::Invalid(_)), "{err:?}");
    assert_names_path_only(&err.to_string(), &garbage, &["SUPERSECRET"]);
}

#[test]
fn debug_reveals_no_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let (a, _, a_path) = file_keys(dir.path(), "a.pem", &[]);
    let (b, b_signing, b_path) = file_keys(dir.path(), "b.pem", std::slice::from_ref(&a_path));
    let debug = format!("{b:?} {b:#?}");
    let seed_b64 = b64(b_signing.as_bytes());
    let seed_std = base64::engine::general_purpose::STANDARD.encode(b_signing.as_bytes());
    let x = b64(&b_signing.verifying_key().to_bytes());
    for pem_path in [&a_path, &b_path] {
        let pem = std::fs::read_to_string(pem_path).unwrap();
        let body = pem.lines().nth(1).unwrap();
        assert!(!debug.contains(body), "{debug}");
        assert!(!debug.contains(&body[body.len() - 16..]), "{debug}");
    }
    assert!(!debug.contains(&seed_b64[..16]));
    assert!(!debug.contains(&seed_std[..16]));
    assert!(!debug.contains(&x[..16]), "not even the public key");
    assert!(
        debug.contains(b.kid()) && debug.contains(a.kid()),
        "kids are fine: {debug}"
    );
}

#[test]
fn concurrent_generation_agrees_on_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = std::sync::Arc::new(dir.path().join("jwt.pem"));
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                JwtKeys::load_or_generate(&path, true, &[], ISS, AUD)
                    .unwrap()
                    .kid()
                    .to_owned()
            })
        })
        .collect();
    let kids: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let on_disk = JwtKeys::load_or_generate(&path, false, &[], ISS, AUD).unwrap();
    assert!(kids.iter().all(|k| k == on_disk.kid()), "{kids:?}");
    assert_eq!(dir_entries(dir.path()), vec!["jwt.pem"]);
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
