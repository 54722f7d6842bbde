//! The OpenAPI document, generated from the route definitions so it cannot drift.

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::error::{ErrorBody, ErrorCode};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Carrel",
        description = "Library management: catalog, copies, circulation, holds, fines and payments, patrons.",
        license(name = "Apache-2.0"),
    ),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "operations", description = "Liveness, readiness, metrics"),
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
    }
}
