//! Prometheus remote write 1.0 and 2.0 (`/api/v1/write`, `/api/v1/push`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_ingest::remote_write::decode;
use strata_ingest::{DecodeLimits, Proto, negotiate};
use strata_storage::StorageError;
use strata_types::ErrorKind;
use tracing::debug;

use crate::AppState;
use crate::auth::Role;
use crate::error::{ApiError, Shape};

/// Decodes, validates, makes durable, applies to the head, then answers 204.
/// Nothing is stored unless the whole request is valid. A 2.0 request
/// whose native histograms or exemplars were not stored (Strata stores
/// float samples) gets 400 naming them once its samples are durable, as
/// 2.0 requires of a partial write; 1.0 skips them (counted in
/// `strata_ingest_skipped_total`).
pub(super) async fn remote_write(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match write(&state, &headers, body).await {
        Ok(Written {
            samples,
            not_written: None,
        }) => written(StatusCode::NO_CONTENT, samples).into_response(),
        Ok(Written {
            samples,
            not_written: Some(why),
        }) => (
            StatusCode::BAD_REQUEST,
            written_headers(samples),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            why,
        )
            .into_response(),
        Err(e) => {
            let mut resp = e.into_response();
            resp.headers_mut().extend(written_headers(0));
            resp
        }
    }
}

/// Bodies at least this large are decoded on the blocking pool, so one huge
/// request does not stall the async workers serving everyone else.
pub(super) const BLOCKING_DECODE_BYTES: usize = 1 << 20;

/// What a request stored, and what it carried that was not stored (2.0).
struct Written {
    samples: u64,
    not_written: Option<String>,
}

async fn write(state: &AppState, headers: &HeaderMap, body: Bytes) -> Result<Written, ApiError> {
    let shape = Shape::PlainText;
    let body_len = body.len() as u64;
    let tenant = state.tenant_for(headers, Role::Write, shape)?;
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let proto = negotiate(text(header::CONTENT_TYPE), text(header::CONTENT_ENCODING))
        .map_err(|e| ApiError::new(e.kind(), e.to_string(), shape))?;
    let Some(wal) = state.wal() else {
        return Err(ApiError::new(
            ErrorKind::Unavailable,
            "not ready: replaying the WAL",
            shape,
        ));
    };
    state
        .limits
        .check_ingest_budget(&tenant)
        .map_err(|r| state.refused(&tenant, r, shape))?;
    let limits = DecodeLimits {
        max_decoded_bytes: usize::try_from(state.config.limits.max_decoded_size.0)
            .unwrap_or(usize::MAX),
    };
    let decoded = if body.len() >= BLOCKING_DECODE_BYTES {
        let t = tenant.clone();
        tokio::task::spawn_blocking(move || decode(proto, t, &body, limits))
            .await
            .map_err(|e| ApiError::new(ErrorKind::Internal, format!("decode task: {e}"), shape))?
    } else {
        decode(proto, tenant.clone(), &body, limits)
    }
    .map_err(|e| ApiError::new(e.kind(), e.to_string(), shape))?;

    let skipped = decoded.skipped;
    if skipped.any() {
        debug!(%tenant, exemplars = skipped.exemplars, histograms = skipped.histograms,
            metadata = skipped.metadata, "skipping items not stored yet");
        for (i, (kind, n)) in [
            ("exemplars", skipped.exemplars),
            ("histograms", skipped.histograms),
            ("metadata", skipped.metadata),
        ]
        .into_iter()
        .enumerate()
        {
            if n > 0 {
                state
                    .metrics
                    .ingest_skipped
                    .get_or_create(&vec![("kind", kind.to_owned())])
                    .inc_by(n);
                state.log_skipped_once(i, kind, n);
            }
        }
    }

    let not_written = (proto == Proto::V2
        && skipped.histograms + skipped.exemplars > 0)
        .then(|| {
            format!(
                "{} native histogram samples and {} exemplars not written: Strata stores float samples only",
                skipped.histograms, skipped.exemplars
            )
        });
    let batch = Arc::new(decoded.batch);
    let samples = batch.sample_count() as u64;
    if samples == 0 {
        return Ok(Written {
            samples,
            not_written,
        });
    }
    let head = state.head.tenant(&tenant);
    state
        .limits
        .check_ingest(&batch, head.as_deref())
        .map_err(|r| state.refused(&tenant, r, shape))?;
    state
        .storage
        .write(wal.as_ref(), batch)
        .await
        .map_err(|e| match e {
            StorageError::Wal { .. } => {
                ApiError::new(e.kind(), format!("write not durable: {e}"), shape)
            }
            e => ApiError::new(e.kind(), e.to_string(), shape),
        })?;
    state.record_ingest(&tenant, samples, body_len);
    Ok(Written {
        samples,
        not_written,
    })
}

/// The remote-write 2.0 "written" headers, set on every response as the
/// reference handler does (for 1.0 too). Histograms and exemplars are not
/// stored yet: always 0.
fn written_headers(samples: u64) -> [(header::HeaderName, HeaderValue); 3] {
    [
        (
            header::HeaderName::from_static("x-prometheus-remote-write-samples-written"),
            HeaderValue::from(samples),
        ),
        (
            header::HeaderName::from_static("x-prometheus-remote-write-histograms-written"),
            HeaderValue::from(0u64),
        ),
        (
            header::HeaderName::from_static("x-prometheus-remote-write-exemplars-written"),
            HeaderValue::from(0u64),
        ),
    ]
}

fn written(status: StatusCode, samples: u64) -> impl IntoResponse {
    (status, written_headers(samples))
}
