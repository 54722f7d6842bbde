//! Cursor pagination shared by every list: `?limit=` (1..=100, default 20) and an
//! opaque `?cursor=`; responses are `{"data": [...], "next_cursor": ...}`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::error::ApiError;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// A page of results.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Checks `?limit=`: absent → 20; outside 1..=100 → 400.
pub fn limit(requested: Option<u32>) -> Result<u32, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(
            ApiError::bad_request("limit must be between 1 and 100").with_detail(
                "fields",
                serde_json::json!({"limit": "must be between 1 and 100"}),
            ),
        ),
    }
}

/// A keyset position `(timestamp, id)` encoded as an opaque string.
pub fn encode_cursor(at: OffsetDateTime, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", at.unix_timestamp(), id.simple()))
}

/// Decodes [`encode_cursor`]; anything else is a 400.
pub fn decode_cursor(cursor: Option<&str>) -> Result<Option<(OffsetDateTime, Uuid)>, ApiError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request("invalid cursor").with_detail(
            "fields",
            serde_json::json!({"cursor": "is not a cursor from this API"}),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (secs, id) = text.split_once(':').ok_or_else(invalid)?;
    let at = secs
        .parse::<i64>()
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(invalid)?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok(Some((at, id)))
}

/// Turns `limit + 1` fetched rows into a page, with a cursor when there is more.
pub fn paginate<R, T>(
    mut rows: Vec<R>,
    limit: u32,
    key: impl Fn(&R) -> (OffsetDateTime, Uuid),
    view: impl Fn(R) -> T,
) -> Page<T> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| {
            let (at, id) = key(r);
            encode_cursor(at, id)
        })
    } else {
        None
    };
    Page {
        data: rows.into_iter().map(view).collect(),
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(
            decode_cursor(Some(&encode_cursor(at, id))).unwrap(),
            Some((at, id))
        );
        for bad in ["", "!!", "bm90LWEtY3Vyc29y", "MTox"] {
            assert!(decode_cursor(Some(bad)).is_err(), "{bad}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Unix seconds of the first and last instants `time` can represent (years ±9999).
        fn whole_seconds() -> impl Strategy<Value = OffsetDateTime> {
            let min = time::PrimitiveDateTime::MIN.assume_utc().unix_timestamp();
            let max = time::PrimitiveDateTime::MAX.assume_utc().unix_timestamp();
            (min..=max).prop_map(|s| OffsetDateTime::from_unix_timestamp(s).unwrap())
        }

        fn uuid() -> impl Strategy<Value = Uuid> {
            any::<u128>().prop_map(Uuid::from_u128)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Every cursor this API hands out reads back as the same position.
            #[test]
            fn cursor_round_trip(at in whole_seconds(), id in uuid()) {
                prop_assert_eq!(decode_cursor(Some(&encode_cursor(at, id))).unwrap(), Some((at, id)));
            }

            /// Any `?cursor=` text is an answer (a position or a 400), never a panic, and
            /// whatever is accepted is a position the API could have written itself.
            #[test]
            fn any_text_is_refused_or_a_position(raw in "\\PC{0,64}|[A-Za-z0-9_-]{0,64}") {
                if let Ok(Some((at, id))) = decode_cursor(Some(&raw)) {
                    prop_assert_eq!(decode_cursor(Some(&encode_cursor(at, id))).unwrap(), Some((at, id)));
                }
            }

            /// The same for well-formed base64 of arbitrary bytes and of near-misses
            /// (`<number>:<text>`), which reach the timestamp and UUID parsers.
            #[test]
            fn any_payload_is_refused_or_a_position(
                bytes in prop::collection::vec(any::<u8>(), 0..80),
                secs in prop_oneof![any::<i64>(), 0i64..4_000_000_000],
                tail in prop_oneof![
                    "\\PC{0,40}",
                    uuid().prop_map(|u| u.simple().to_string()),
                    uuid().prop_map(|u| u.hyphenated().to_string()),
                ],
                near_miss in any::<bool>(),
            ) {
                let payload = if near_miss { format!("{secs}:{tail}").into_bytes() } else { bytes };
                let raw = URL_SAFE_NO_PAD.encode(payload);
                if let Ok(Some((at, id))) = decode_cursor(Some(&raw)) {
                    prop_assert_eq!(decode_cursor(Some(&encode_cursor(at, id))).unwrap(), Some((at, id)));
                }
            }
        }
    }

    #[test]
    fn limits() {
        assert_eq!(limit(None).unwrap(), 20);
        assert_eq!(limit(Some(100)).unwrap(), 100);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(101)).is_err());
    }
}
