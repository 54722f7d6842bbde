//! Request extractors that reject bad input in the contract's shape: malformed
//! JSON or query strings are 400, well-formed but invalid fields (unknown fields
//! included, as every request type denies them) are 422 with `details.fields`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::Deserialize as _;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode};

/// A JSON body. Requires `Content-Type: application/json` (or `+json`), honours
/// the body size limit, and names the offending field on errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "expected Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

fn is_json(content_type: Option<&axum::http::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Maps a failure to read the body (over the limit, or a broken connection).
pub fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
    } else {
        ApiError::bad_request("the request body could not be read")
    }
}

/// True if the JSON text contains an escaped NUL (`\u0000`) that is not itself
/// an escaped backslash followed by `u0000`.
fn has_escaped_nul(bytes: &[u8]) -> bool {
    let needle = b"u0000";
    let mut i = 0;
    while let Some(pos) = bytes[i..].windows(needle.len()).position(|w| w == needle) {
        let at = i + pos;
        let backslashes = bytes[..at]
            .iter()
            .rev()
            .take_while(|b| **b == b'\\')
            .count();
        if backslashes % 2 == 1 {
            return true;
        }
        i = at + 1;
    }
    false
}

/// NUL is refused everywhere: PostgreSQL cannot store it and C-string APIs
/// (SQLite's LIKE among them) silently truncate at it.
fn nul_refused() -> ApiError {
    ApiError::bad_request("NUL characters are not allowed")
}

/// Deserialises JSON, classifying errors as 400 (syntax) or 422 (content).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if has_escaped_nul(bytes) {
        return Err(nul_refused());
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => field_rejection(&path, &inner.to_string()),
            _ => ApiError::bad_request(format!("malformed JSON: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// `unknown field `role`` and `missing field `email`` name the field in the
/// message; other errors carry it in the path.
fn field_rejection(path: &str, message: &str) -> ApiError {
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let parent = if path == "." || path == "?" { "" } else { path };
    let field = match (named, parent) {
        (Some(name), "") => name.to_owned(),
        // An unknown field is already the last segment of the path.
        (Some(name), parent) if parent == name || parent.ends_with(&format!(".{name}")) => {
            parent.to_owned()
        }
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, "") => "body".to_owned(),
        (None, parent) => parent.to_owned(),
    };
    let reason = message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned();
    ApiError::invalid_fields([(field, reason)])
}

/// For PATCH bodies: tells an absent field (`None`) from an explicit `null`
/// (`Some(None)`, which clears the field). Use with `#[serde(default, deserialize_with = "nullable")]`.
pub fn nullable<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A path id: anything that is not a UUID is simply not found.
pub fn parse_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| ApiError::not_found())
}

/// A query string. Unknown parameters and unparseable values are 400
/// `VALIDATION_ERROR` (query types deny unknown fields), naming the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        if form_urlencoded::parse(query.as_bytes())
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(nul_refused());
        }
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Query)
            .map_err(|error| {
                let path = error.path().to_string();
                let message = error.into_inner().to_string();
                // A bad query is "malformed" rather than "invalid": 400 per the contract.
                field_rejection(&path, &message)
                    .with_status(StatusCode::BAD_REQUEST)
                    .with_message("invalid query parameter")
            })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: u32,
    }

    fn fields(error: &ApiError) -> String {
        error
            .detail("fields")
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn malformed_json_is_400() {
        for raw in ["{", "not json", "{\"name\": \"a\", \"count\": 1} trailing"] {
            let err = parse_json::<Body>(raw.as_bytes()).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{raw}");
        }
    }

    #[test]
    fn unknown_missing_and_mistyped_fields_are_422_and_named() {
        let err = parse_json::<Body>(br#"{"name":"a","count":1,"role":"admin"}"#).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(fields(&err).contains("\"role\""), "{}", fields(&err));

        let err = parse_json::<Body>(br#"{"count":1}"#).unwrap_err();
        assert!(fields(&err).contains("\"name\""), "{}", fields(&err));

        let err = parse_json::<Body>(br#"{"name":"a","count":"many"}"#).unwrap_err();
        assert!(fields(&err).contains("\"count\""), "{}", fields(&err));
    }

    #[test]
    fn nul_is_refused_but_an_escaped_backslash_is_not() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Name {
            name: String,
        }
        assert_eq!(
            parse_json::<Name>(br#"{"name":"a\u0000b"}"#)
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_json::<Name>(br#"{"name":"a\\\u0000"}"#)
                .unwrap_err()
                .status(),
            StatusCode::BAD_REQUEST
        );
        assert!(
            parse_json::<Name>(br#"{"name":"a\\u0000"}"#).is_ok(),
            "a literal backslash then u0000"
        );
    }

    #[test]
    fn json_content_types() {
        let hv = |s: &'static str| axum::http::HeaderValue::from_static(s);
        assert!(is_json(Some(&hv("application/json"))));
        assert!(is_json(Some(&hv("application/json; charset=utf-8"))));
        assert!(is_json(Some(&hv("application/merge-patch+json"))));
        assert!(!is_json(Some(&hv("text/plain"))));
        assert!(!is_json(None));
    }
}
