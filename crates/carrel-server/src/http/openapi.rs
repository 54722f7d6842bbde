//! The OpenAPI document, generated from the route definitions so it cannot drift.

use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

use super::error::{ErrorBody, ErrorCode};
use super::routes::catalog::SortParam;
use super::routes::covers::CoverSize;
use super::routes::fines::FineStatusParam;
use super::routes::holds::HoldStatusParam;
use super::routes::loans::LoanStatusParam;
use super::routes::outbox::OutboxStateParam;
use super::routes::users::StatusParam;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Carrel",
        description = "Library management: catalog, copies, circulation, holds, fines and payments, patrons.",
        license(name = "Apache-2.0"),
    ),
    // Query-parameter enums are referenced by name from `IntoParams`, which does
    // not register them: they are listed here so every `$ref` resolves.
    components(schemas(
        ErrorBody,
        ErrorCode,
        SortParam,
        CoverSize,
        StatusParam,
        LoanStatusParam,
        HoldStatusParam,
        OutboxStateParam,
        FineStatusParam,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Registration, login, sessions, passwords"),
        (name = "users", description = "Your account, and staff management of accounts"),
        (name = "catalog", description = "Items, copies, search and covers (reading needs no login)"),
        (name = "branches", description = "Branches, their time zones and opening calendars"),
        (name = "rules", description = "Rules a library writes: item types, patron categories, the circulation rule matrix, its resolution and checkout simulation"),
        (name = "audit", description = "The audit log (admin)"),
        (name = "operations", description = "Liveness, readiness, metrics, the outbox of emails and notices (admin)"),
    ),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        // Lets the docs UI's Authorize button log in with the form body of /auth/login.
        components.add_security_scheme(
            "password",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                "/api/v1/auth/login",
                Scopes::new(),
            ))])),
        );
    }
}

/// Adds the error responses that the shared layers give to every operation of
/// a kind, so the document lists every status the server can answer with:
/// the rate limit, timeouts, a full disk and internal errors everywhere; 401 (and 403 for a
/// cookie request without its CSRF token) where a login is needed; 400, 413,
/// 415 and 422 where there is a request body; 400 for a bad query string; 404 for
/// an id in the path. An operation's own description of a status is kept; a
/// response without one gets its status's reason phrase.
pub(crate) fn add_common_responses(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for (safe, operation) in operations_mut(item) {
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            let has = |place: ParameterIn| {
                operation.parameters.iter().flatten().any(|p| match p {
                    RefOr::T(p) => p.parameter_in == place,
                    RefOr::Ref(_) => false,
                })
            };
            let (query, path) = (has(ParameterIn::Query), has(ParameterIn::Path));
            let body = operation.request_body.is_some();
            let mut add = |status: &str, description: &str| {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(description));
            };
            if query || body {
                add(
                    "400",
                    "VALIDATION_ERROR: a malformed body, or an unknown or invalid query parameter",
                );
            }
            if secured {
                add(
                    "401",
                    "UNAUTHORIZED: missing, expired or revoked token or session",
                );
                if !safe {
                    add("403", "FORBIDDEN or CSRF_FAILED");
                }
            }
            if path {
                add(
                    "404",
                    "RESOURCE_NOT_FOUND: no such resource, or not visible to the caller",
                );
            }
            if body {
                add("413", "PAYLOAD_TOO_LARGE: the body is over the limit");
                add(
                    "415",
                    "UNSUPPORTED_MEDIA_TYPE: the body is not of the declared type",
                );
                add(
                    "422",
                    "VALIDATION_ERROR: invalid, missing or unknown fields (`details.fields`)",
                );
            }
            add("429", "RATE_LIMIT_EXCEEDED, with Retry-After");
            add("500", "INTERNAL_ERROR");
            add(
                "503",
                "SERVICE_UNAVAILABLE: the database is unavailable or the request timed out",
            );
            add(
                "507",
                "INSUFFICIENT_STORAGE: no space left on the disk of the database or the upload store",
            );
            // OpenAPI 3.1 requires a description on every response.
            for (status, response) in &mut operation.responses.responses {
                if let RefOr::T(response) = response
                    && response.description.is_empty()
                {
                    response.description = status
                        .parse::<u16>()
                        .ok()
                        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("Response")
                        .to_owned();
                }
            }
        }
    }
}

/// Every operation of a path, with whether its method is a safe one (GET, HEAD).
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (bool, &mut Operation)> {
    [
        (true, &mut item.get),
        (true, &mut item.head),
        (false, &mut item.put),
        (false, &mut item.post),
        (false, &mut item.delete),
        (false, &mut item.options),
        (false, &mut item.patch),
        (false, &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(safe, op)| op.as_mut().map(|op| (safe, op)))
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use crate::config::Environment;

    fn documents() -> Vec<(Environment, Value)> {
        [
            Environment::Development,
            Environment::Test,
            Environment::Production,
        ]
        .into_iter()
        .map(|env| {
            let doc = serde_json::to_value(crate::http::openapi_document(env)).unwrap();
            (env, doc)
        })
        .collect()
    }

    /// Follows a local JSON pointer (`#/components/schemas/X`).
    fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        doc.pointer(pointer)
    }

    fn refs<'a>(node: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
        match node {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    out.push((at.clone(), reference));
                }
                for (key, value) in map {
                    refs(value, format!("{at}/{key}"), out);
                }
            }
            Value::Array(items) => {
                for (i, value) in items.iter().enumerate() {
                    refs(value, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_ref_resolves() {
        for (env, doc) in documents() {
            let mut found = Vec::new();
            refs(&doc, "#".to_owned(), &mut found);
            assert!(found.len() > 50, "{env:?}: only {} refs", found.len());
            let dangling: Vec<_> = found
                .iter()
                .filter(|(_, reference)| resolve(&doc, reference).is_none())
                .collect();
            assert!(dangling.is_empty(), "{env:?}: dangling $refs {dangling:#?}");
        }
    }

    #[test]
    fn query_enums_list_their_values() {
        let (_, doc) = documents().remove(1);
        let sort = doc["paths"]["/api/v1/items"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "sort")
            .unwrap();
        let reference = sort["schema"]["oneOf"]
            .as_array()
            .and_then(|alts| alts.iter().find_map(|a| a["$ref"].as_str()))
            .or_else(|| sort["schema"]["$ref"].as_str())
            .unwrap_or_else(|| panic!("{sort}"));
        let schema = resolve(&doc, reference).unwrap();
        let values = schema["enum"].as_array().unwrap();
        assert!(
            values.contains(&Value::from("-publication_year")),
            "{schema}"
        );
    }

    #[test]
    fn shared_error_responses_are_documented() {
        let (_, doc) = documents().remove(1);
        let responses = |path: &str, method: &str| doc["paths"][path][method]["responses"].clone();
        let create_item = responses("/api/v1/items", "post");
        for status in [
            "400", "401", "403", "413", "415", "422", "429", "500", "503", "507",
        ] {
            assert_eq!(
                create_item[status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "POST /items {status}"
            );
        }
        // An operation's own description wins over the generic one.
        assert!(create_item["409"].is_object());
        let health = responses("/health", "get");
        assert!(health["401"].is_null() && health["400"].is_null());
        assert!(health["429"].is_object());
        let item = responses("/api/v1/items/{id}", "get");
        assert!(item["404"].is_object() && item["401"].is_null());
    }
}
