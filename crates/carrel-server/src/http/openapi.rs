//! The OpenAPI document, generated from the route definitions so it cannot drift.

use utoipa::OpenApi;
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};

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
        (name = "auth", description = "Registration, login, sessions, passwords"),
        (name = "users", description = "Your account, and staff management of accounts"),
        (name = "catalog", description = "Items, copies, search and covers (reading needs no login)"),
        (name = "audit", description = "The audit log (admin)"),
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
