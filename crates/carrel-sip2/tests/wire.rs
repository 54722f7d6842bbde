//! Wire-level behaviour: error detection, field handling, encodings, malformed input.

use carrel_sip2::checksum::checksum_hex;
use carrel_sip2::*;

/// Appends `AZ` and the checksum (and the CR) to `body`, which ends with `AYn` or not.
fn sealed(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(b"AZ");
    let hex = checksum_hex(&out);
    out.extend_from_slice(&hex);
    out.push(b'\r');
    out
}

const ITEM_INFO: &[u8] = b"1720240305    140709AOCARREL|AB39001|ACtp|AY6";

#[test]
fn good_checksum_is_accepted_in_either_case() {
    let frame = sealed(ITEM_INFO);
    let d = decode_request(&frame, Encoding::Utf8).unwrap();
    assert_eq!(
        d.error_detection,
        ErrorDetection {
            sequence: Some(6),
            checksum: true
        }
    );
    // The same checksum in lowercase hex.
    let mut frame = sealed(ITEM_INFO);
    let n = frame.len();
    frame[n - 5..n - 1].make_ascii_lowercase();
    assert!(decode_request(&frame, Encoding::Utf8).is_ok());
}

#[test]
fn bad_checksums_are_rejected() {
    let good = sealed(ITEM_INFO);
    // One character of the message changed.
    let mut flipped = good.clone();
    flipped[25] = b'X';
    assert_eq!(
        decode_request(&flipped, Encoding::Utf8),
        Err(DecodeError::BadChecksum)
    );
    // The checksum off by one.
    let mut off = good.clone();
    let n = off.len();
    off[n - 2] = if off[n - 2] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        decode_request(&off, Encoding::Utf8),
        Err(DecodeError::BadChecksum)
    );
    // Not hex.
    let mut not_hex = good.clone();
    not_hex[n - 3] = b'G';
    assert_eq!(
        decode_request(&not_hex, Encoding::Utf8),
        Err(DecodeError::BadChecksum)
    );
    // The sequence number changed after the checksum was computed.
    let mut seq = good;
    seq[n - 8] = b'7';
    assert_eq!(
        decode_request(&seq, Encoding::Utf8),
        Err(DecodeError::BadChecksum)
    );
}

/// Found by `scripts/fuzz-parsers.sh` (sip2_messages): a last field whose value ends in
/// `AZ` and three characters was read as a checksum once written with its `|`, so a
/// terminal whose password ended that way could never log in.
#[test]
fn a_field_ending_in_az_is_not_a_checksum() {
    let login = b"9300CNkiosk|COsecretAZ123|\r";
    let d = decode_request(login, Encoding::Utf8).unwrap();
    assert_eq!(d.error_detection, ErrorDetection::NONE);
    let Request::Login(l) = &d.message else {
        panic!("{:?}", d.message)
    };
    assert_eq!(l.login_password.expose(), "secretAZ123");
    // The fuzzer's input: a 96 whose unknown field ends in `AZ\x0eFC`, written back.
    let frame: &[u8] = &[
        57, 54, 225, 207, 205, 207, 207, 63, 207, 205, 209, 202, 48, 65, 104, 65, 90, 14, 70, 67,
        13,
    ];
    for encoding in [Encoding::Utf8, Encoding::Cp850, Encoding::Latin1] {
        let d = decode_response(frame, encoding).unwrap();
        let again = encode_response(&d.message, encoding, d.error_detection);
        assert_eq!(decode_response(&again, encoding).unwrap(), d);
    }
    // Four non-hex characters without a `|` still make a bad checksum.
    assert_eq!(
        decode_request(b"9300CNkiosk|COpw|AZxyzw\r", Encoding::Utf8),
        Err(DecodeError::BadChecksum)
    );
}

#[test]
fn checksum_without_leading_zeros_is_accepted() {
    // Find a sequence digit and padding that make the checksum start with 0; the
    // `sip2` client writes such a checksum with three digits.
    for pad in 0..1200 {
        let mut body = b"17                  AOCARREL|AB".to_vec();
        body.extend(std::iter::repeat_n(b'A', pad));
        body.extend_from_slice(b"|AY1AZ");
        let hex = checksum_hex(&body);
        if hex[0] != b'0' {
            continue;
        }
        let mut frame = body.clone();
        frame.extend_from_slice(&hex[1..]);
        frame.push(b'\r');
        let d = decode_request(&frame, Encoding::Utf8).unwrap();
        assert_eq!(d.error_detection.sequence, Some(1));
        let Request::ItemInformation(r) = d.message else {
            panic!()
        };
        assert_eq!(r.item_identifier.len(), pad);
        // A wrong short checksum is still caught.
        let n = frame.len();
        frame[n - 2] = if frame[n - 2] == b'1' { b'2' } else { b'1' };
        assert_eq!(
            decode_request(&frame, Encoding::Utf8),
            Err(DecodeError::BadChecksum)
        );
        return;
    }
    panic!("no padding gave a leading zero");
}

#[test]
fn sequence_number_without_checksum() {
    let d = decode_request(
        b"1720240305    140709AOCARREL|AB39001|AY4\r",
        Encoding::Utf8,
    )
    .unwrap();
    assert_eq!(
        d.error_detection,
        ErrorDetection {
            sequence: Some(4),
            checksum: false
        }
    );
    // Not after a `|`: part of the last (unterminated) field.
    let d = decode_request(b"1720240305    140709AOCARREL|ABHIGHWAY1\r", Encoding::Utf8).unwrap();
    assert_eq!(d.error_detection, ErrorDetection::NONE);
    let Request::ItemInformation(r) = d.message else {
        panic!()
    };
    assert_eq!(r.item_identifier, "HIGHWAY1");
}

#[test]
fn responses_echo_error_detection() {
    let response: Response = LoginResponse {
        ok: true,
        extra: vec![],
    }
    .into();
    assert_eq!(
        encode_response(&response, Encoding::Utf8, ErrorDetection::NONE),
        b"941\r"
    );
    // Hand-computed: "941AY7AZ" sums to 0x39+0x34+0x31+0x41+0x59+0x37+0x41+0x5A =
    // 0x20A, whose 16-bit two's complement is 0xFDF6 (pysip2 writes FDFA for AY3).
    assert_eq!(
        encode_response(
            &response,
            Encoding::Utf8,
            ErrorDetection {
                sequence: Some(7),
                checksum: true
            }
        ),
        b"941AY7AZFDF6\r"
    );
    // A request with AY only still gets AY and AZ back.
    let out = encode_response(
        &response,
        Encoding::Utf8,
        ErrorDetection {
            sequence: Some(7),
            checksum: false,
        },
    );
    assert_eq!(out, b"941AY7AZFDF6\r");
}

#[test]
fn unknown_fields_are_kept_in_order_and_written_back() {
    let frame = b"1720240305    140709XXfirst|AOCARREL|ZZ|AB39001|XXsecond|AOdup|\r";
    let d = decode_request(frame, Encoding::Utf8).unwrap();
    let Request::ItemInformation(r) = &d.message else {
        panic!()
    };
    assert_eq!(r.institution_id, "CARREL");
    let extra: Vec<(&str, &str)> = r
        .extra
        .iter()
        .map(|f| (f.id.as_str(), f.value.as_str()))
        .collect();
    assert_eq!(
        extra,
        [("XX", "first"), ("ZZ", ""), ("XX", "second"), ("AO", "dup")]
    );
    assert_eq!(
        encode_request(&d.message, Encoding::Utf8, ErrorDetection::NONE),
        b"1720240305    140709AOCARREL|AB39001|XXfirst|ZZ|XXsecond|AOdup|\r"
    );
}

#[test]
fn repeated_fields_keep_their_order() {
    let frame = b"64              00120240305    140709000000000002000000000000AOI|AAP|AEN|AUb|AFone|AUa|AFtwo|AUc|\r";
    let Response::PatronInformation(r) = decode_response(frame, Encoding::Utf8).unwrap().message
    else {
        panic!()
    };
    assert_eq!(r.charged_items_count, 2);
    assert_eq!(r.charged_items, ["b", "a", "c"]);
    assert_eq!(r.screen_message, ["one", "two"]);
}

#[test]
fn last_field_without_pipe_and_empty_segments_are_accepted() {
    let d = decode_request(b"9300CNterm1||COpw\r", Encoding::Utf8).unwrap();
    let Request::Login(r) = d.message else {
        panic!()
    };
    assert_eq!(r.login_user_id, "term1");
    assert_eq!(r.login_password.expose(), "pw");
}

#[test]
fn absent_required_text_reads_as_empty() {
    let d = decode_request(b"9300\r", Encoding::Utf8).unwrap();
    let Request::Login(r) = d.message else {
        panic!()
    };
    assert_eq!(r.login_user_id, "");
    assert!(r.login_password.is_empty());
    assert_eq!(r.location_code, None);
}

#[test]
fn malformed_and_unknown_messages() {
    let cases: &[(&[u8], DecodeError)] = &[
        (b"", DecodeError::NotAMessage),
        (b"9", DecodeError::NotAMessage),
        (b"A9300", DecodeError::NotAMessage),
        (b"\xe99300", DecodeError::NotAMessage),
        (
            b"01N20240305    140709AOx|ALy|AAz|\r",
            DecodeError::Unsupported { code: "01".into() },
        ),
        (b"94\r", DecodeError::Unsupported { code: "94".into() }),
    ];
    for (frame, want) in cases {
        assert_eq!(
            &decode_request(frame, Encoding::Utf8).unwrap_err(),
            want,
            "{frame:?}"
        );
    }
    // Truncated fixed fields, an impossible date, a field without identifier.
    for frame in [
        &b"99003"[..],
        b"1720240305    1407",
        b"1720241305    140709AOx|",
        b"1720240305    140709AOx|B",
        b"940",
    ] {
        let err = decode_request(frame, Encoding::Utf8).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Malformed { .. } | DecodeError::Unsupported { .. }
            ),
            "{frame:?}: {err:?}"
        );
    }
    let err = decode_response(b"94X\r", Encoding::Utf8).unwrap_err();
    assert!(
        matches!(err, DecodeError::Malformed { field: "ok", .. }),
        "{err:?}"
    );
}

#[test]
fn blank_request_dates_are_none() {
    let d = decode_request(b"17                  AOx|ABy|\r", Encoding::Utf8).unwrap();
    let Request::ItemInformation(r) = d.message else {
        panic!()
    };
    assert_eq!(r.transaction_date, None);
}

// ---------------------------------------------------------------------- encodings

/// Unicode's published CP850 mapping (VENDORS/MICSFT/PC/CP850.TXT) for 0x80–0xFF,
/// as Python's `cp850` codec (generated from that file) decodes it.
const CP850_HIGH_HALF: [u32; 128] = [
    0x00C7, 0x00FC, 0x00E9, 0x00E2, 0x00E4, 0x00E0, 0x00E5, 0x00E7, 0x00EA, 0x00EB, 0x00E8, 0x00EF,
    0x00EE, 0x00EC, 0x00C4, 0x00C5, 0x00C9, 0x00E6, 0x00C6, 0x00F4, 0x00F6, 0x00F2, 0x00FB, 0x00F9,
    0x00FF, 0x00D6, 0x00DC, 0x00F8, 0x00A3, 0x00D8, 0x00D7, 0x0192, 0x00E1, 0x00ED, 0x00F3, 0x00FA,
    0x00F1, 0x00D1, 0x00AA, 0x00BA, 0x00BF, 0x00AE, 0x00AC, 0x00BD, 0x00BC, 0x00A1, 0x00AB, 0x00BB,
    0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x00C1, 0x00C2, 0x00C0, 0x00A9, 0x2563, 0x2551, 0x2557,
    0x255D, 0x00A2, 0x00A5, 0x2510, 0x2514, 0x2534, 0x252C, 0x251C, 0x2500, 0x253C, 0x00E3, 0x00C3,
    0x255A, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256C, 0x00A4, 0x00F0, 0x00D0, 0x00CA, 0x00CB,
    0x00C8, 0x0131, 0x00CD, 0x00CE, 0x00CF, 0x2518, 0x250C, 0x2588, 0x2584, 0x00A6, 0x00CC, 0x2580,
    0x00D3, 0x00DF, 0x00D4, 0x00D2, 0x00F5, 0x00D5, 0x00B5, 0x00FE, 0x00DE, 0x00DA, 0x00DB, 0x00D9,
    0x00FD, 0x00DD, 0x00AF, 0x00B4, 0x00AD, 0x00B1, 0x2017, 0x00BE, 0x00B6, 0x00A7, 0x00F7, 0x00B8,
    0x00B0, 0x00A8, 0x00B7, 0x00B9, 0x00B3, 0x00B2, 0x25A0, 0x00A0,
];

#[test]
fn cp850_matches_the_published_table_both_ways() {
    let all: Vec<u8> = (0..=255).collect();
    let decoded: Vec<u32> = Encoding::Cp850
        .decode(&all)
        .chars()
        .map(u32::from)
        .collect();
    assert_eq!(&decoded[..128], &(0..128).collect::<Vec<u32>>()[..]);
    assert_eq!(&decoded[128..], &CP850_HIGH_HALF[..]);
    let text: String = decoded.iter().filter_map(|&c| char::from_u32(c)).collect();
    assert_eq!(Encoding::Cp850.encode(&text), all);
}

#[test]
fn latin1_is_the_first_256_code_points() {
    let all: Vec<u8> = (0..=255).collect();
    let text = Encoding::Latin1.decode(&all);
    assert!(text.chars().zip(0u32..).all(|(c, i)| u32::from(c) == i));
    assert_eq!(Encoding::Latin1.encode(&text), all);
}

#[test]
fn unrepresentable_characters_become_question_marks() {
    let name = "Zoë Brontë-Łukasiewicz €🙂";
    assert_eq!(
        Encoding::Cp850.encode(name),
        b"Zo\x89 Bront\x89-?ukasiewicz ??"
    );
    assert_eq!(
        Encoding::Latin1.encode(name),
        b"Zo\xEB Bront\xEB-?ukasiewicz ??"
    );
    assert_eq!(Encoding::Utf8.decode(&Encoding::Utf8.encode(name)), name);
}

#[test]
fn diacritics_round_trip_in_every_encoding() {
    let name = "Zoë Brontë-Łukasiewicz";
    for (encoding, expect) in [
        (Encoding::Utf8, name),
        (Encoding::Cp850, "Zoë Brontë-?ukasiewicz"),
        (Encoding::Latin1, "Zoë Brontë-?ukasiewicz"),
    ] {
        let frame = encode_request(
            &PatronStatusRequest {
                language: Language::French,
                transaction_date: None,
                institution_id: "Médiathèque".into(),
                patron_identifier: name.into(),
                terminal_password: None,
                patron_password: Some(Password::new("ñ")),
                extra: vec![],
            }
            .into(),
            encoding,
            ErrorDetection {
                sequence: Some(2),
                checksum: true,
            },
        );
        let d = decode_request(&frame, encoding).unwrap();
        let Request::PatronStatus(r) = d.message else {
            panic!()
        };
        assert_eq!(r.patron_identifier, expect, "{encoding}");
        assert_eq!(r.institution_id, "Médiathèque", "{encoding}");
        assert_eq!(r.patron_password.unwrap().expose(), "ñ");
        // Decoding with the wrong encoding garbles text but never fails on UTF-8.
        let _ = decode_request(&frame, Encoding::Utf8);
    }
}

#[test]
fn invalid_utf8_decodes_lossily() {
    let d = decode_request(b"9300CNterm\xff|COpw|\r", Encoding::Utf8).unwrap();
    let Request::Login(r) = d.message else {
        panic!()
    };
    assert_eq!(r.login_user_id, "term\u{fffd}");
}

#[test]
fn encoding_names() {
    for (name, e) in [
        ("utf-8", Encoding::Utf8),
        ("UTF8", Encoding::Utf8),
        ("cp850", Encoding::Cp850),
        ("latin1", Encoding::Latin1),
        ("ISO-8859-1", Encoding::Latin1),
    ] {
        assert_eq!(name.parse::<Encoding>(), Ok(e));
    }
    assert!("ebcdic".parse::<Encoding>().is_err());
    assert_eq!(Encoding::Cp850.to_string(), "cp850");
}

#[test]
fn language_codes_map_to_tags() {
    assert_eq!(Language::from_code("001").bcp47(), Some("en"));
    assert_eq!(Language::from_code("002").bcp47(), Some("fr"));
    assert_eq!(Language::from_code("011").bcp47(), Some("fr-CA"));
    assert_eq!(Language::from_code("011").primary_language(), Some("fr"));
    assert_eq!(Language::from_code("000").bcp47(), None);
    assert_eq!(Language::from_code("099"), Language::Other("099".into()));
    assert_eq!(Language::from_code("099").bcp47(), None);
    assert_eq!(Language::ALL.len(), 28);
    for (i, l) in Language::ALL.iter().enumerate() {
        assert_eq!(l.code(), format!("{i:03}"));
    }
}

#[test]
fn long_values_are_cut_and_framing_characters_replaced() {
    let response: Response = EndSessionResponse {
        end_session: true,
        transaction_date: SipDateTime::parse("20240305    140709").unwrap(),
        institution_id: "A|B".into(),
        patron_identifier: "x\ry".into(),
        screen_message: vec!["é".repeat(300)],
        print_line: vec![],
        extra: vec![],
    }
    .into();
    let out = encode_response(&response, Encoding::Utf8, ErrorDetection::NONE);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("36Y20240305    140709AOA B|AAx y|AF"),
        "{text}"
    );
    assert_eq!(text.matches('\r').count(), 1);
    let af = text.split("|AF").nth(1).unwrap().trim_end_matches("|\r");
    assert_eq!(af.chars().count(), 127);
    assert!(af.len() <= MAX_FIELD_BYTES);
}
