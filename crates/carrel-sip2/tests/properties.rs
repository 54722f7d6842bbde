//! Property tests: no panic and bounded work on arbitrary bytes; format → parse round
//! trips for arbitrary valid messages in every encoding; the checksum.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use carrel_sip2::checksum::{checksum_hex, verify};
use carrel_sip2::*;
use proptest::prelude::*;
use proptest::strategy::Union;
use time::{Date, Month, PrimitiveDateTime, Time};
use tokio_util::codec::Decoder;

const ENCODINGS: [Encoding; 3] = [Encoding::Utf8, Encoding::Cp850, Encoding::Latin1];

// ------------------------------------------------------------------- strategies

/// Text every encoding represents: ASCII printable (but `|`) and some diacritics.
fn text() -> impl Strategy<Value = String> {
    "[ -{}~éèëêüöäßçñÉÖÅøÆ]{0,24}"
}
fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}
fn texts() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(text(), 0..4)
}
fn opt_pw() -> impl Strategy<Value = Option<Password>> {
    proptest::option::of(text().prop_map(Password::new))
}
fn opt_bool() -> impl Strategy<Value = Option<bool>> {
    proptest::option::of(any::<bool>())
}
fn opt_u32() -> impl Strategy<Value = Option<u32>> {
    proptest::option::of(any::<u32>())
}
fn digits(width: u32) -> impl Strategy<Value = u32> {
    0..10u32.pow(width)
}
fn date() -> impl Strategy<Value = SipDateTime> {
    let zone = prop_oneof![
        Just(Zone::Local),
        Just(Zone::Utc),
        "[A-Y ]{3}[A-Y]".prop_map(Zone::Other),
    ];
    (
        0i32..=9999,
        1u8..=12,
        1u8..=28,
        0u8..24,
        0u8..60,
        0u8..60,
        zone,
    )
        .prop_map(|(y, mo, d, h, mi, s, zone)| SipDateTime {
            date_time: PrimitiveDateTime::new(
                Date::from_calendar_date(y, Month::try_from(mo).unwrap(), d).unwrap(),
                Time::from_hms(h, mi, s).unwrap(),
            ),
            zone,
        })
}
fn opt_date() -> impl Strategy<Value = Option<SipDateTime>> {
    proptest::option::of(date())
}
fn extra() -> impl Strategy<Value = Vec<UnknownField>> {
    // X*, Y* and Z* identifiers are never SIP2 2.00 fields.
    proptest::collection::vec(
        ("[XYZ][A-Z]", text()).prop_map(|(id, value)| UnknownField { id, value }),
        0..3,
    )
}
fn language() -> impl Strategy<Value = Language> {
    prop_oneof![
        proptest::sample::select(Language::ALL),
        "0[3-9][0-9]".prop_map(|c| Language::from_code(&c)),
    ]
}
fn fee_type() -> impl Strategy<Value = FeeType> {
    prop_oneof![
        proptest::sample::select(FeeType::ALL),
        "[1-9][0-9]".prop_map(|c| FeeType::from_code(&c))
    ]
}
fn opt_fee_type() -> impl Strategy<Value = Option<FeeType>> {
    proptest::option::of(fee_type())
}
fn opt_media() -> impl Strategy<Value = Option<MediaType>> {
    proptest::option::of(prop_oneof![
        proptest::sample::select(MediaType::ALL),
        "[1-9][0-9]{2}".prop_map(|c| MediaType::from_code(&c)),
    ])
}
fn flags() -> impl Strategy<Value = PatronStatusFlags> {
    any::<[bool; 14]>().prop_map(PatronStatusFlags::from_array)
}
fn summary() -> impl Strategy<Value = Summary> {
    (0usize..7).prop_map(|i| {
        if i == 6 {
            Summary::None
        } else {
            Summary::from_position(i)
        }
    })
}
fn opt_limit() -> impl Strategy<Value = Option<ItemLimit>> {
    proptest::option::of((0u32..10_000).prop_map(ItemLimit))
}

fn requests() -> impl Strategy<Value = Request> {
    let login = ("[0-9]", "[0-9]", text(), text(), opt_text(), extra()).prop_map(
        |(u, p, cn, co, cp, extra)| {
            Request::from(LoginRequest {
                uid_algorithm: u,
                pwd_algorithm: p,
                login_user_id: cn,
                login_password: Password::new(co),
                location_code: cp,
                extra,
            })
        },
    );
    let status = (
        prop_oneof![
            proptest::sample::select(ScStatusCode::ALL),
            "[3-9]".prop_map(|c| ScStatusCode::from_code(&c))
        ],
        digits(3),
        "[0-9]\\.[0-9]{2}",
        extra(),
    )
        .prop_map(|(status_code, max_print_width, protocol_version, extra)| {
            Request::from(ScStatusRequest {
                status_code,
                max_print_width,
                protocol_version,
                extra,
            })
        });
    let patron_status = (
        language(),
        opt_date(),
        text(),
        text(),
        opt_pw(),
        opt_pw(),
        extra(),
    )
        .prop_map(
            |(
                language,
                transaction_date,
                institution_id,
                patron_identifier,
                terminal_password,
                patron_password,
                extra,
            )| {
                Request::from(PatronStatusRequest {
                    language,
                    transaction_date,
                    institution_id,
                    patron_identifier,
                    terminal_password,
                    patron_password,
                    extra,
                })
            },
        );
    let patron_info = (
        (language(), opt_date(), summary()),
        (
            text(),
            text(),
            opt_pw(),
            opt_pw(),
            opt_u32(),
            opt_u32(),
            extra(),
        ),
    )
        .prop_map(
            |((language, transaction_date, summary), (ao, aa, ac, ad, bp, bq, extra))| {
                Request::from(PatronInformationRequest {
                    language,
                    transaction_date,
                    summary,
                    institution_id: ao,
                    patron_identifier: aa,
                    terminal_password: ac,
                    patron_password: ad,
                    start_item: bp,
                    end_item: bq,
                    extra,
                })
            },
        );
    let checkout = (
        (any::<bool>(), any::<bool>(), opt_date(), opt_date()),
        (
            text(),
            text(),
            text(),
            opt_pw(),
            opt_text(),
            opt_pw(),
            opt_bool(),
            opt_bool(),
            extra(),
        ),
    )
        .prop_map(
            |((rp, nb, td, due), (ao, aa, ab, ac, ch, ad, bo, bi, extra))| {
                Request::from(CheckoutRequest {
                    sc_renewal_policy: rp,
                    no_block: nb,
                    transaction_date: td,
                    nb_due_date: due,
                    institution_id: ao,
                    patron_identifier: aa,
                    item_identifier: ab,
                    terminal_password: ac,
                    item_properties: ch,
                    patron_password: ad,
                    fee_acknowledged: bo,
                    cancel: bi,
                    extra,
                })
            },
        );
    let checkin = (
        (any::<bool>(), opt_date(), opt_date()),
        (
            text(),
            text(),
            text(),
            opt_pw(),
            opt_text(),
            opt_bool(),
            extra(),
        ),
    )
        .prop_map(|((nb, td, rd), (ap, ao, ab, ac, ch, bi, extra))| {
            Request::from(CheckinRequest {
                no_block: nb,
                transaction_date: td,
                return_date: rd,
                current_location: ap,
                institution_id: ao,
                item_identifier: ab,
                terminal_password: ac,
                item_properties: ch,
                cancel: bi,
                extra,
            })
        });
    let item =
        (opt_date(), text(), text(), opt_pw(), extra()).prop_map(|(td, ao, ab, ac, extra)| {
            Request::from(ItemInformationRequest {
                transaction_date: td,
                institution_id: ao,
                item_identifier: ab,
                terminal_password: ac,
                extra,
            })
        });
    let renew = (
        (any::<bool>(), any::<bool>(), opt_date(), opt_date()),
        (
            text(),
            text(),
            opt_pw(),
            opt_text(),
            opt_text(),
            opt_pw(),
            opt_text(),
            opt_bool(),
            extra(),
        ),
    )
        .prop_map(
            |((tp, nb, td, due), (ao, aa, ad, ab, aj, ac, ch, bo, extra))| {
                Request::from(RenewRequest {
                    third_party_allowed: tp,
                    no_block: nb,
                    transaction_date: td,
                    nb_due_date: due,
                    institution_id: ao,
                    patron_identifier: aa,
                    patron_password: ad,
                    item_identifier: ab,
                    title_identifier: aj,
                    terminal_password: ac,
                    item_properties: ch,
                    fee_acknowledged: bo,
                    extra,
                })
            },
        );
    let renew_all = (
        opt_date(),
        text(),
        text(),
        opt_pw(),
        opt_pw(),
        opt_bool(),
        extra(),
    )
        .prop_map(|(td, ao, aa, ad, ac, bo, extra)| {
            Request::from(RenewAllRequest {
                transaction_date: td,
                institution_id: ao,
                patron_identifier: aa,
                patron_password: ad,
                terminal_password: ac,
                fee_acknowledged: bo,
                extra,
            })
        });
    let end = (opt_date(), text(), text(), opt_pw(), opt_pw(), extra()).prop_map(
        |(td, ao, aa, ac, ad, extra)| {
            Request::from(EndPatronSessionRequest {
                transaction_date: td,
                institution_id: ao,
                patron_identifier: aa,
                terminal_password: ac,
                patron_password: ad,
                extra,
            })
        },
    );
    let fee = (
        (
            opt_date(),
            fee_type(),
            prop_oneof![
                proptest::sample::select(PaymentType::ALL),
                "[1-9][0-9]".prop_map(|c| PaymentType::from_code(&c))
            ],
            "[A-Z]{3}",
        ),
        (
            text(),
            text(),
            text(),
            opt_pw(),
            opt_pw(),
            opt_text(),
            opt_text(),
            extra(),
        ),
    )
        .prop_map(|((td, ft, pt, cur), (bv, ao, aa, ac, ad, cg, bk, extra))| {
            Request::from(FeePaidRequest {
                transaction_date: td,
                fee_type: ft,
                payment_type: pt,
                currency_type: cur,
                fee_amount: bv,
                institution_id: ao,
                patron_identifier: aa,
                terminal_password: ac,
                patron_password: ad,
                fee_identifier: cg,
                transaction_id: bk,
                extra,
            })
        });
    let resend = extra().prop_map(|extra| Request::from(RequestAcsResend { extra }));
    Union::new(vec![
        login.boxed(),
        status.boxed(),
        patron_status.boxed(),
        patron_info.boxed(),
        checkout.boxed(),
        checkin.boxed(),
        item.boxed(),
        renew.boxed(),
        renew_all.boxed(),
        end.boxed(),
        fee.boxed(),
        resend.boxed(),
    ])
}

fn checkout_response() -> impl Strategy<Value = CheckoutResponse> {
    (
        (any::<bool>(), any::<bool>(), opt_bool(), opt_bool(), date()),
        (
            text(),
            text(),
            text(),
            text(),
            opt_date(),
            opt_fee_type(),
            opt_bool(),
        ),
        (
            opt_text(),
            opt_text(),
            opt_media(),
            opt_text(),
            opt_text(),
            texts(),
            texts(),
            extra(),
        ),
    )
        .prop_map(
            |(
                (ok, rok, mm, de, td),
                (ao, aa, ab, aj, ah, bt, ci),
                (bh, bv, ck, ch, bk, af, ag, extra),
            )| {
                CheckoutResponse {
                    ok,
                    renewal_ok: rok,
                    magnetic_media: mm,
                    desensitize: de,
                    transaction_date: td,
                    institution_id: ao,
                    patron_identifier: aa,
                    item_identifier: ab,
                    title_identifier: aj,
                    due_date: ah,
                    fee_type: bt,
                    security_inhibit: ci,
                    currency_type: bh,
                    fee_amount: bv,
                    media_type: ck,
                    item_properties: ch,
                    transaction_id: bk,
                    screen_message: af,
                    print_line: ag,
                    extra,
                }
            },
        )
}

fn responses() -> impl Strategy<Value = Response> {
    let login = (any::<bool>(), extra())
        .prop_map(|(ok, extra)| Response::from(LoginResponse { ok, extra }));
    let acs = (
        (
            any::<[bool; 6]>(),
            digits(3),
            digits(3),
            date(),
            "[0-9]\\.[0-9]{2}",
        ),
        (
            text(),
            opt_text(),
            "[YN]{16}",
            opt_text(),
            texts(),
            texts(),
            extra(),
        ),
    )
        .prop_map(|((f, to, re, dt, pv), (ao, am, bx, an, af, ag, extra))| {
            Response::from(AcsStatusResponse {
                online_status: f[0],
                checkin_ok: f[1],
                checkout_ok: f[2],
                acs_renewal_policy: f[3],
                status_update_ok: f[4],
                offline_ok: f[5],
                timeout_period: to,
                retries_allowed: re,
                date_time_sync: dt,
                protocol_version: pv,
                institution_id: ao,
                library_name: am,
                supported_messages: bx,
                terminal_location: an,
                screen_message: af,
                print_line: ag,
                extra,
            })
        });
    let patron_status = (
        (flags(), language(), date()),
        (
            text(),
            text(),
            text(),
            opt_bool(),
            opt_bool(),
            opt_text(),
            opt_text(),
            texts(),
            texts(),
            extra(),
        ),
    )
        .prop_map(
            |((ps, lang, td), (ao, aa, ae, bl, cq, bh, bv, af, ag, extra))| {
                Response::from(PatronStatusResponse {
                    patron_status: ps,
                    language: lang,
                    transaction_date: td,
                    institution_id: ao,
                    patron_identifier: aa,
                    personal_name: ae,
                    valid_patron: bl,
                    valid_patron_password: cq,
                    currency_type: bh,
                    fee_amount: bv,
                    screen_message: af,
                    print_line: ag,
                    extra,
                })
            },
        );
    let patron_info = (
        (
            flags(),
            language(),
            date(),
            proptest::array::uniform6(digits(4)),
        ),
        (
            text(),
            text(),
            text(),
            opt_limit(),
            opt_limit(),
            opt_limit(),
            opt_bool(),
            opt_bool(),
            opt_text(),
            opt_text(),
            opt_text(),
        ),
        (texts(), texts(), texts(), texts(), texts(), texts()),
        (
            opt_text(),
            opt_text(),
            opt_text(),
            texts(),
            texts(),
            extra(),
        ),
    )
        .prop_map(
            |(
                (ps, lang, td, c),
                (ao, aa, ae, bz, ca, cb, bl, cq, bh, bv, cc),
                (as_, at, au, av, bu, cd),
                (bd, be, bf, af, ag, extra),
            )| {
                Response::from(PatronInformationResponse {
                    patron_status: ps,
                    language: lang,
                    transaction_date: td,
                    hold_items_count: c[0],
                    overdue_items_count: c[1],
                    charged_items_count: c[2],
                    fine_items_count: c[3],
                    recall_items_count: c[4],
                    unavailable_holds_count: c[5],
                    institution_id: ao,
                    patron_identifier: aa,
                    personal_name: ae,
                    hold_items_limit: bz,
                    overdue_items_limit: ca,
                    charged_items_limit: cb,
                    valid_patron: bl,
                    valid_patron_password: cq,
                    currency_type: bh,
                    fee_amount: bv,
                    fee_limit: cc,
                    hold_items: as_,
                    overdue_items: at,
                    charged_items: au,
                    fine_items: av,
                    recall_items: bu,
                    unavailable_hold_items: cd,
                    home_address: bd,
                    email_address: be,
                    home_phone_number: bf,
                    screen_message: af,
                    print_line: ag,
                    extra,
                })
            },
        );
    let checkout = checkout_response().prop_map(Response::from);
    let renew = checkout_response().prop_map(|c| {
        Response::from(RenewResponse {
            ok: c.ok,
            renewal_ok: c.renewal_ok,
            magnetic_media: c.magnetic_media,
            desensitize: c.desensitize,
            transaction_date: c.transaction_date,
            institution_id: c.institution_id,
            patron_identifier: c.patron_identifier,
            item_identifier: c.item_identifier,
            title_identifier: c.title_identifier,
            due_date: c.due_date,
            fee_type: c.fee_type,
            security_inhibit: c.security_inhibit,
            currency_type: c.currency_type,
            fee_amount: c.fee_amount,
            media_type: c.media_type,
            item_properties: c.item_properties,
            transaction_id: c.transaction_id,
            screen_message: c.screen_message,
            print_line: c.print_line,
            extra: c.extra,
        })
    });
    let alert = proptest::option::of(prop_oneof![
        proptest::sample::select(AlertType::ALL),
        "[1-8][0-9]".prop_map(|c| AlertType::from_code(&c)),
    ]);
    let checkin = (
        (
            any::<bool>(),
            any::<bool>(),
            opt_bool(),
            any::<bool>(),
            date(),
        ),
        (
            text(),
            text(),
            text(),
            opt_text(),
            opt_text(),
            opt_text(),
            opt_media(),
            opt_text(),
        ),
        (
            opt_text(),
            opt_text(),
            alert,
            opt_text(),
            opt_text(),
            texts(),
            texts(),
            extra(),
        ),
    )
        .prop_map(
            |(
                (ok, rs, mm, al, td),
                (ao, ab, aq, aj, cl, aa, ck, ch),
                (cs, ct, cv, cy, da, af, ag, extra),
            )| {
                Response::from(CheckinResponse {
                    ok,
                    resensitize: rs,
                    magnetic_media: mm,
                    alert: al,
                    transaction_date: td,
                    institution_id: ao,
                    item_identifier: ab,
                    permanent_location: aq,
                    title_identifier: aj,
                    sort_bin: cl,
                    patron_identifier: aa,
                    media_type: ck,
                    item_properties: ch,
                    call_number: cs,
                    destination_location: ct,
                    alert_type: cv,
                    hold_patron_id: cy,
                    hold_patron_name: da,
                    screen_message: af,
                    print_line: ag,
                    extra,
                })
            },
        );
    let item = (
        (
            prop_oneof![
                proptest::sample::select(CirculationStatus::ALL),
                "[2-9][0-9]".prop_map(|c| CirculationStatus::from_code(&c))
            ],
            prop_oneof![
                proptest::sample::select(SecurityMarker::ALL),
                "[1-9][0-9]".prop_map(|c| SecurityMarker::from_code(&c))
            ],
            fee_type(),
            date(),
        ),
        (
            opt_u32(),
            opt_date(),
            opt_date(),
            opt_date(),
            text(),
            text(),
            opt_text(),
            opt_text(),
        ),
        (
            opt_text(),
            opt_media(),
            opt_text(),
            opt_text(),
            opt_text(),
            texts(),
            texts(),
            extra(),
        ),
    )
        .prop_map(
            |(
                (cs, sm, ft, td),
                (cf, ah, cj, cm, ab, aj, bg, bh),
                (bv, ck, aq, ap, ch, af, ag, extra),
            )| {
                Response::from(ItemInformationResponse {
                    circulation_status: cs,
                    security_marker: sm,
                    fee_type: ft,
                    transaction_date: td,
                    hold_queue_length: cf,
                    due_date: ah,
                    recall_date: cj,
                    hold_pickup_date: cm,
                    item_identifier: ab,
                    title_identifier: aj,
                    owner: bg,
                    currency_type: bh,
                    fee_amount: bv,
                    media_type: ck,
                    permanent_location: aq,
                    current_location: ap,
                    item_properties: ch,
                    screen_message: af,
                    print_line: ag,
                    extra,
                })
            },
        );
    let renew_all = (
        any::<bool>(),
        digits(4),
        digits(4),
        date(),
        text(),
        texts(),
        texts(),
        texts(),
        texts(),
        extra(),
    )
        .prop_map(|(ok, rc, uc, td, ao, bm, bn, af, ag, extra)| {
            Response::from(RenewAllResponse {
                ok,
                renewed_count: rc,
                unrenewed_count: uc,
                transaction_date: td,
                institution_id: ao,
                renewed_items: bm,
                unrenewed_items: bn,
                screen_message: af,
                print_line: ag,
                extra,
            })
        });
    let end = (
        any::<bool>(),
        date(),
        text(),
        text(),
        texts(),
        texts(),
        extra(),
    )
        .prop_map(|(es, td, ao, aa, af, ag, extra)| {
            Response::from(EndSessionResponse {
                end_session: es,
                transaction_date: td,
                institution_id: ao,
                patron_identifier: aa,
                screen_message: af,
                print_line: ag,
                extra,
            })
        });
    let fee = (
        any::<bool>(),
        date(),
        text(),
        text(),
        opt_text(),
        texts(),
        texts(),
        extra(),
    )
        .prop_map(|(pa, td, ao, aa, bk, af, ag, extra)| {
            Response::from(FeePaidResponse {
                payment_accepted: pa,
                transaction_date: td,
                institution_id: ao,
                patron_identifier: aa,
                transaction_id: bk,
                screen_message: af,
                print_line: ag,
                extra,
            })
        });
    let resend = extra().prop_map(|extra| Response::from(RequestScResend { extra }));
    Union::new(vec![
        login.boxed(),
        acs.boxed(),
        patron_status.boxed(),
        patron_info.boxed(),
        checkout.boxed(),
        renew.boxed(),
        checkin.boxed(),
        item.boxed(),
        renew_all.boxed(),
        end.boxed(),
        fee.boxed(),
        resend.boxed(),
    ])
}

fn detection() -> impl Strategy<Value = ErrorDetection> {
    prop_oneof![
        Just(ErrorDetection::NONE),
        (0u8..10).prop_map(|n| ErrorDetection {
            sequence: Some(n),
            checksum: true
        }),
    ]
}

/// What the decoder reports back for a message sealed with `sent`.
fn expected_detection(code: &str, sent: ErrorDetection) -> ErrorDetection {
    if !sent.is_enabled() {
        ErrorDetection::NONE
    } else if code == "96" || code == "97" {
        ErrorDetection {
            sequence: None,
            checksum: true,
        }
    } else {
        ErrorDetection {
            sequence: Some(sent.sequence.unwrap_or(0)),
            checksum: true,
        }
    }
}

/// Bytes that look like SIP2 more often than uniform noise does.
fn noisy_frames() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        (
            proptest::sample::select(vec![
                "93", "99", "23", "63", "11", "09", "17", "29", "65", "35", "37", "97", "94", "98",
                "24", "64", "12", "10", "18", "30", "66", "36", "38", "96", "01",
            ]),
            proptest::collection::vec(
                prop_oneof![
                    Just(b"|".to_vec()),
                    Just(b"AY".to_vec()),
                    Just(b"AZ".to_vec()),
                    Just(b"20240305    140709".to_vec()),
                    "[A-Z]{2}[ -~]{0,5}".prop_map(String::into_bytes),
                    proptest::collection::vec(any::<u8>(), 0..4),
                ],
                0..40
            ),
        )
            .prop_map(|(code, parts)| {
                let mut out = code.as_bytes().to_vec();
                out.extend(parts.concat());
                out
            }),
    ]
}

// ---------------------------------------------------------------------- properties

const ARBITRARY_CASES: u32 = 4000;
const ROUND_TRIP_CASES: u32 = 3000;
const CHECKSUM_CASES: u32 = 2000;
const FRAMER_CASES: u32 = 1000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(ARBITRARY_CASES))]

    /// Decoding never panics, in any encoding, with or without a valid checksum, and
    /// whatever decodes is written back as a message that decodes.
    #[test]
    fn decoding_arbitrary_bytes_never_panics(frame in noisy_frames()) {
        for encoding in ENCODINGS {
            if let Ok(d) = decode_request(&frame, encoding) {
                let again = encode_request(&d.message, encoding, d.error_detection);
                prop_assert!(decode_request(&again, encoding).is_ok(), "{:?}", again);
            }
            if let Ok(d) = decode_response(&frame, encoding) {
                let again = encode_response(&d.message, encoding, d.error_detection);
                prop_assert!(decode_response(&again, encoding).is_ok(), "{:?}", again);
            }
            let mut sealed = frame.clone();
            sealed.extend_from_slice(b"AZ");
            let hex = checksum_hex(&sealed);
            sealed.extend_from_slice(&hex);
            let _ = decode_request(&sealed, encoding);
            let _ = decode_response(&sealed, encoding);
            let _ = ErrorDetection::sniff(&frame);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(ROUND_TRIP_CASES))]

    #[test]
    fn requests_round_trip(request in requests(), sent in detection()) {
        for encoding in ENCODINGS {
            let bytes = encode_request(&request, encoding, sent);
            prop_assert_eq!(bytes.iter().filter(|&&b| b == b'\r').count(), 1);
            let back = decode_request(&bytes, encoding).map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(&bytes))))?;
            prop_assert_eq!(&back.message, &request);
            prop_assert_eq!(back.error_detection, expected_detection(request.code(), sent));
        }
    }

    #[test]
    fn responses_round_trip(response in responses(), sent in detection()) {
        for encoding in ENCODINGS {
            let bytes = encode_response(&response, encoding, sent);
            prop_assert_eq!(bytes.iter().filter(|&&b| b == b'\r').count(), 1);
            let back = decode_response(&bytes, encoding).map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(&bytes))))?;
            prop_assert_eq!(&back.message, &response);
            prop_assert_eq!(back.error_detection, expected_detection(response.code(), sent));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CHECKSUM_CASES))]

    /// The checksum verifies, and changing any one byte before it is detected.
    #[test]
    fn checksum_detects_any_single_byte_change(
        prefix in proptest::collection::vec(any::<u8>(), 0..300),
        at in any::<proptest::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let mut message = prefix.clone();
        message.extend_from_slice(b"AZ");
        let hex = checksum_hex(&message);
        prop_assert!(verify(&message, &hex));
        let sum = message.iter().fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
        let value = u16::from_str_radix(std::str::from_utf8(&hex).unwrap(), 16).unwrap();
        prop_assert_eq!(sum.wrapping_add(value), 0);
        let i = at.index(message.len());
        message[i] = message[i].wrapping_add(delta);
        prop_assert!(!verify(&message, &hex));
    }

    /// A sealed response with one byte of its text changed is refused as a bad checksum.
    #[test]
    fn corrupted_messages_get_bad_checksum(response in responses(), seq in 0u8..10, at in any::<proptest::sample::Index>(), delta in 1u8..=255) {
        let sent = ErrorDetection { sequence: Some(seq), checksum: true };
        let mut bytes = encode_response(&response, Encoding::Utf8, sent);
        let trailer = if matches!(response, Response::RequestScResend(_)) { 7 } else { 10 };
        let i = at.index(bytes.len() - trailer);
        bytes[i] = bytes[i].wrapping_add(delta);
        prop_assert_eq!(decode_response(&bytes, Encoding::Utf8).unwrap_err(), DecodeError::BadChecksum);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(FRAMER_CASES))]

    /// Whatever arrives, in whatever chunks: the buffer stays bounded, frames are at
    /// most the maximum and never contain a CR.
    #[test]
    fn framer_is_bounded(chunks in proptest::collection::vec(
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'x')], 0..200),
        ], 0..20)) {
        const MAX: usize = 64;
        let mut framer = Sip2Framer::new(MAX);
        let mut buf = BytesMut::new();
        for chunk in &chunks {
            buf.extend_from_slice(chunk);
            while let Some(frame) = framer.decode(&mut buf).unwrap() {
                if let Frame::Message(m) = frame {
                    prop_assert!(m.len() <= MAX);
                    prop_assert!(!m.contains(&b'\r'));
                }
            }
            prop_assert!(buf.len() <= MAX);
        }
    }
}

// ------------------------------------------------------------------ bounded time

/// The worst inputs a maximal (8 KiB) message allows: thousands of tiny fields, long
/// runs without a `|`. Each decodes in well under the bound even in a debug build.
#[test]
fn worst_case_messages_decode_quickly() {
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    let mut many_fields = b"64              00120240305    140709000000000000000000000000".to_vec();
    while many_fields.len() < DEFAULT_MAX_MESSAGE_BYTES - 3 {
        many_fields.extend_from_slice(b"AU|");
    }
    inputs.push(many_fields);
    let mut unknown_fields = b"1720240305    140709".to_vec();
    while unknown_fields.len() < DEFAULT_MAX_MESSAGE_BYTES - 3 {
        unknown_fields.extend_from_slice(b"ZZ|");
    }
    inputs.push(unknown_fields);
    let mut one_long = b"1720240305    140709AB".to_vec();
    one_long.resize(DEFAULT_MAX_MESSAGE_BYTES, 0xE9);
    inputs.push(one_long);
    let bound = Duration::from_millis(250);
    for input in &inputs {
        for encoding in ENCODINGS {
            let start = Instant::now();
            let _ = decode_request(input, encoding);
            let _ = decode_response(input, encoding);
            let took = start.elapsed();
            assert!(took < bound, "{took:?} for {} bytes", input.len());
        }
    }
}
