//! Who a request acts for, as an axum extractor.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use strata_types::TenantId;

use crate::AppState;
use crate::auth::Role;
use crate::error::Shape;

/// The role a [`Caller`] must hold.
pub trait RoleOf: Send + Sync + 'static {
    const ROLE: Role;
}

/// Reads: queries, label lookups, the analytics API.
pub struct Read;
/// Writes: every ingest protocol.
pub struct Writer;
/// A tenant's administration: its specs, its flush.
pub struct Admin;

impl RoleOf for Read {
    const ROLE: Role = Role::Read;
}
impl RoleOf for Writer {
    const ROLE: Role = Role::Write;
}
impl RoleOf for Admin {
    const ROLE: Role = Role::Admin;
}

/// The tenant a request acts for, authorised for role `R` (its token's
/// tenant with auth on, else `X-Scope-OrgID` or the default tenant). A
/// refusal answers in the route's error shape ([`shape_for`]); the
/// request's tracing span names the tenant from here on.
pub struct Caller<R: RoleOf = Read> {
    pub tenant: TenantId,
    role: PhantomData<R>,
}

impl<R: RoleOf> FromRequestParts<Arc<AppState>> for Caller<R> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let shape = shape_for(parts.uri.path(), &parts.headers);
        state
            .tenant_for(&parts.headers, R::ROLE, shape)
            .map(|tenant| Caller {
                tenant,
                role: PhantomData,
            })
            .map_err(IntoResponse::into_response)
    }
}

/// The error shape of a route: OTLP's `google.rpc.Status` (protobuf or
/// JSON, as the request), plain text for Loki and remote write and read, else
/// Prometheus' JSON.
pub fn shape_for(path: &str, headers: &HeaderMap) -> Shape {
    if path.starts_with("/v1/") || path.contains("/otlp/") {
        let json = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        Shape::Otlp { json }
    } else if path.starts_with("/loki/")
        || matches!(path, "/api/v1/write" | "/api/v1/push" | "/api/v1/read")
    {
        Shape::PlainText
    } else {
        Shape::Json
    }
}
