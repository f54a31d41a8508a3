//! Which tenant a request belongs to.

use axum::http::HeaderMap;
use strata_types::{ErrorKind, TenantId};

use crate::error::{ApiError, Shape};

/// The header naming the tenant, as in Cortex, Mimir and Loki.
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

/// Resolves the tenant of a request: the validated `X-Scope-OrgID`, or the
/// default tenant when the header is absent and tenancy is not required.
pub fn resolve(headers: &HeaderMap, require: bool, shape: Shape) -> Result<TenantId, ApiError> {
    let Some(raw) = headers.get(TENANT_HEADER) else {
        if require {
            return Err(ApiError::new(
                ErrorKind::Unauthenticated,
                "no org id",
                shape,
            ));
        }
        return Ok(TenantId::default_tenant());
    };
    let id = raw.to_str().map_err(|_| {
        ApiError::new(
            ErrorKind::BadInput,
            format!("invalid {TENANT_HEADER} header: not visible ASCII"),
            shape,
        )
    })?;
    TenantId::try_new(id).map_err(|e| {
        ApiError::new(
            ErrorKind::BadInput,
            format!("invalid {TENANT_HEADER} header: {e}"),
            shape,
        )
    })
}
