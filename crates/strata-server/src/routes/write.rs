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

/// Runs `decode` for a body of `len` bytes: inline when small, on the
/// blocking pool when large. Every write route decodes through here.
pub(super) async fn decode_body<T: Send + 'static>(
    len: usize,
    shape: Shape,
    decode: impl FnOnce() -> Result<T, strata_ingest::IngestError> + Send + 'static,
) -> Result<T, ApiError> {
    if len >= BLOCKING_DECODE_BYTES {
        tokio::task::spawn_blocking(decode)
            .await
            .map_err(|e| ApiError::new(ErrorKind::Internal, format!("decode task: {e}"), shape))?
    } else {
        decode()
    }
    .map_err(|e| ApiError::new(e.kind(), e.to_string(), shape))
}

/// Room for a write's decoded bytes under the in-flight bounds
/// (`crate::decoded`), held until the write is stored; `hint` is what the
/// body says it decodes to. Past a bound after the wait: 429.
pub(super) async fn room_for(
    state: &AppState,
    tenant: &strata_types::TenantId,
    room: &mut crate::decoded::Reservation,
    bytes: u64,
    shape: Shape,
) -> Result<(), ApiError> {
    state
        .decoded
        .reserve(tenant, room, bytes)
        .await
        .map_err(|b| {
            let refusal = crate::limits::Refusal {
                kind: ErrorKind::Limit,
                reason: "max_decoded_in_flight",
                message: b.message,
            };
            state.refused(tenant, refusal, shape)
        })
}

/// A request header as text, if it is.
pub(super) fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
}

/// What a request stored, and what it carried that was not stored (2.0).
struct Written {
    samples: u64,
    not_written: Option<String>,
}

async fn write(state: &AppState, headers: &HeaderMap, body: Bytes) -> Result<Written, ApiError> {
    let shape = Shape::PlainText;
    let body_len = body.len() as u64;
    let tenant = state.tenant_for(headers, Role::Write, shape)?;
    let proto = negotiate(
        header_text(headers, header::CONTENT_TYPE),
        header_text(headers, header::CONTENT_ENCODING),
    )
    .map_err(|e| ApiError::new(e.kind(), e.to_string(), shape))?;
    ready_for(state, &tenant, shape)?;
    let limits = DecodeLimits {
        max_decoded_bytes: usize::try_from(state.config.limits.max_decoded_size.0)
            .unwrap_or(usize::MAX),
    };
    let mut room = crate::decoded::Reservation::default();
    let hint = crate::decoded::decoded_size_hint(
        &body,
        header_text(headers, header::CONTENT_ENCODING),
        true,
        state.config.limits.max_decoded_size.0,
    );
    room_for(state, &tenant, &mut room, hint, shape).await?;
    let t = tenant.clone();
    let decoded = decode_body(body.len(), shape, move || decode(proto, t, &body, limits)).await?;

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
    let samples = store(state, &tenant, decoded.batch, body_len, shape).await?;
    Ok(Written {
        samples,
        not_written,
    })
}

/// Before decoding: the WAL replayed, the tenant's compaction not too far
/// behind, and its ingest-rate bucket not empty (an over-rate write is
/// refused without decompressing it).
fn ready_for(
    state: &AppState,
    tenant: &strata_types::TenantId,
    shape: Shape,
) -> Result<(), ApiError> {
    if state.wal().is_none() {
        return Err(ApiError::new(
            ErrorKind::Unavailable,
            "not ready: replaying the WAL",
            shape,
        ));
    }
    state.check_compaction_lag(tenant, strata_storage::Signal::Metrics, shape)?;
    state
        .limits
        .check_ingest_budget(tenant)
        .map_err(|r| state.refused(tenant, r, shape))
}

/// Checks the tenant's limits, makes `batch` durable in the WAL and
/// applies it to the head; the samples stored.
pub(super) async fn store(
    state: &AppState,
    tenant: &strata_types::TenantId,
    batch: strata_types::WriteBatch,
    body_len: u64,
    shape: Shape,
) -> Result<u64, ApiError> {
    let batch = Arc::new(batch);
    let samples = batch.sample_count() as u64;
    if samples == 0 {
        return Ok(0);
    }
    let Some(wal) = state.wal() else {
        return Err(ApiError::new(
            ErrorKind::Unavailable,
            "not ready: replaying the WAL",
            shape,
        ));
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    // Checked and applied as one when the batch adds series to a tenant
    // with a series limit: concurrent writes cannot pass it together.
    let admission = state
        .limits
        .admit_series(&batch, now_ms.div_euclid(1000))
        .await;
    if let Some(series) = admission.incomplete() {
        let window =
            i64::try_from(state.config.limits.active_series_window.as_millis()).unwrap_or(i64::MAX);
        let since_ms = now_ms.saturating_sub(window);
        let known = state
            .query
            .series_written_since(tenant, since_ms, now_ms)
            .await
            .map_err(|e| {
                ApiError::new(
                    ErrorKind::Unavailable,
                    format!("the series limit could not count the tenant's live series: {e}"),
                    shape,
                )
            })?;
        series.complete(known, since_ms.div_euclid(1000));
    }
    state
        .limits
        .check_ingest(&batch, &admission)
        .map_err(|r| state.refused(tenant, r, shape))?;
    state
        .storage
        .write(wal.as_ref(), Arc::clone(&batch))
        .await
        .map_err(|e| match e {
            StorageError::Wal { .. } => {
                ApiError::new(e.kind(), format!("write not durable: {e}"), shape)
            }
            e => ApiError::new(e.kind(), e.to_string(), shape),
        })?;
    admission.record(&batch, now_ms.div_euclid(1000));
    state.record_ingest(tenant, samples, body_len);
    Ok(samples)
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

/// `POST /v1/metrics`, `/otlp/v1/metrics`, `/api/v1/otlp/v1/metrics`:
/// OTLP/HTTP protobuf or JSON (gzip or not). 200 with an
/// `ExportMetricsServiceResponse` once the samples are durable, its
/// `partial_success` naming the points not stored; errors as
/// `google.rpc.Status`.
pub(super) async fn otlp_metrics(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = match strata_ingest::logs::otlp::is_json(header_text(&headers, header::CONTENT_TYPE))
    {
        Ok(json) => json,
        Err(e) => {
            return ApiError::new(e.kind(), e.to_string(), Shape::Otlp { json: false })
                .into_response();
        }
    };
    let shape = Shape::Otlp { json };
    let result = async {
        let body_len = body.len() as u64;
        let tenant = state.tenant_for(&headers, Role::Write, shape)?;
        ready_for(&state, &tenant, shape)?;
        let limits = strata_ingest::logs::LogLimits {
            max_decoded_bytes: usize::try_from(state.config.limits.max_decoded_size.0)
                .unwrap_or(usize::MAX),
            ..Default::default()
        };
        let encoding = header_text(&headers, header::CONTENT_ENCODING).map(str::to_owned);
        let mut room = crate::decoded::Reservation::default();
        let hint = crate::decoded::decoded_size_hint(
            &body,
            encoding.as_deref(),
            false,
            state.config.limits.max_decoded_size.0,
        );
        room_for(&state, &tenant, &mut room, hint, shape).await?;
        let t = tenant.clone();
        let decode = move || {
            let raw = strata_ingest::logs::decompress(&body, encoding.as_deref(), &limits)?;
            if json {
                strata_ingest::otlp_metrics::decode_json(t, &raw)
            } else {
                strata_ingest::otlp_metrics::decode_proto(t, &raw)
            }
        };
        let decoded = decode_body(body_len as usize, shape, decode).await?;
        store(&state, &tenant, decoded.batch, body_len, shape).await?;
        if decoded.rejected > 0 {
            state
                .metrics
                .ingest_skipped
                .get_or_create(&vec![("kind", "otlp_points".to_owned())])
                .inc_by(decoded.rejected);
        }
        Ok::<_, ApiError>((decoded.rejected, decoded.rejected_why))
    }
    .await;
    match result {
        Ok((rejected, why)) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(if json {
                    "application/json"
                } else {
                    "application/x-protobuf"
                }),
            )],
            strata_ingest::otlp_metrics::response(json, rejected, &why),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}
