//! The OpenAPI 3.1 document of the HTTP API, gathered from the handlers' `#[utoipa::path]`
//! annotations as their routes are registered (`utoipa_axum::routes!`): a route cannot be
//! served without being documented. Served at `/api/v1/openapi.json`, and as a page at
//! `/api/v1/docs` (the web client renders it; nothing is loaded from elsewhere).

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, ToSchema};

/// The document's frame: title, description, security schemes and shared schemas.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Missive",
        description = "Realtime private messaging: the native JSON API (`/api/v1`), Piratchat's \
            API at its original paths, and the service endpoints. Realtime events travel over \
            Socket.IO at `/socket.io/` (namespace `/messages`); their TypeScript types are in \
            the web client's `src/generated/events.ts`.",
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Security),
)]
pub struct ApiDoc;

/// Every error: `{"error": {code, message, fields?}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case: `invalid_payload`, `not_found`, `rate_limited`, ...
    pub code: String,
    /// For people.
    pub message: String,
    /// Per input field, the problems found (validation errors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, Vec<String>>>,
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "missive_session",
                "Set by POST /api/v1/auth/login (SameSite=Lax, HttpOnly)",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// The errors any JSON endpoint may answer, added to every operation that does not describe
/// them itself (each with the one error body).
const ERRORS: [(&str, &str); 10] = [
    ("400", "malformed_json, invalid_query"),
    ("401", "unauthorized, invalid_credentials"),
    (
        "403",
        "forbidden_origin: a cookie or Basic credential from a page of another site",
    ),
    ("404", "not_found"),
    ("413", "payload_too_large: a body over 1 MiB"),
    (
        "415",
        "unsupported_media_type: a JSON endpoint given another content type",
    ),
    (
        "422",
        "invalid_payload and the validation codes, with `fields`",
    ),
    ("429", "rate_limited, with Retry-After"),
    ("500", "internal"),
    (
        "503",
        "unavailable: the database does not answer; retry after Retry-After",
    ),
];

/// Adds the shared error responses to every operation.
pub fn with_errors(mut doc: OpenApi) -> OpenApi {
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add_errors(op);
        }
    }
    doc
}

fn add_errors(op: &mut Operation) {
    for (status, description) in ERRORS {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| {
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build()
                    .into()
            });
    }
}
