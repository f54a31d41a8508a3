//! Log ingest: Loki push (`/loki/api/v1/push`), OTLP/HTTP logs
//! (`/v1/logs`, `/otlp/v1/logs`) and NDJSON (`/api/v1/logs`).
//!
//! Each decodes and validates the whole request, checks the tenant's
//! limits, makes the batch durable in the WAL, applies it to the log head,
//! and only then answers success — in its protocol's shape: Loki 204,
//! OTLP 200 with an `ExportLogsServiceResponse`, NDJSON 204. Errors come
//! in the protocol's error shape (plain text, `google.rpc.Status`, JSON).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_ingest::IngestError;
use strata_ingest::logs::{self, LogLimits};
use strata_storage::Signal;
use strata_types::{LogBatch, TenantId};

use super::write::header_text;
use crate::AppState;
use crate::error::{ApiError, Shape};
use crate::frontend::write::Write;
use crate::frontend::{Caller, Writer};

/// `POST /loki/api/v1/push`.
pub(super) async fn loki_push(
    State(state): State<Arc<AppState>>,
    caller: Caller<Writer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let shape = Shape::PlainText;
    let result = async {
        let json = logs::loki::is_json(header_text(&headers, header::CONTENT_TYPE))
            .map_err(|e| bad(&e, shape))?;
        let encoding = header_text(&headers, header::CONTENT_ENCODING).map(str::to_owned);
        let hint = size_hint(&state, &body, encoding.as_deref(), !json);
        ingest(
            &state,
            &caller.tenant,
            body,
            hint,
            shape,
            move |tenant, body, limits| {
                if json {
                    let raw = logs::decompress(body, encoding.as_deref(), limits)?;
                    logs::loki::decode_json(tenant, &raw, limits)
                } else {
                    // Protobuf pushes are always snappy; the header may say so.
                    match encoding.as_deref().map(str::trim) {
                        None | Some("" | "snappy") => {}
                        Some(other) => {
                            return Err(IngestError::UnsupportedEncoding {
                                encoding: other.to_owned(),
                                expected: "snappy (protobuf pushes are snappy-compressed)",
                            });
                        }
                    }
                    logs::loki::decode_proto(tenant, body, limits)
                }
            },
        )
        .await
    }
    .await;
    match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /v1/logs` and `/otlp/v1/logs`.
pub(super) async fn otlp_logs(
    State(state): State<Arc<AppState>>,
    caller: Caller<Writer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = match logs::otlp::is_json(header_text(&headers, header::CONTENT_TYPE)) {
        Ok(json) => json,
        Err(e) => return bad(&e, Shape::Otlp { json: false }).into_response(),
    };
    let shape = Shape::Otlp { json };
    let encoding = header_text(&headers, header::CONTENT_ENCODING).map(str::to_owned);
    let hint = size_hint(&state, &body, encoding.as_deref(), false);
    let result = ingest(
        &state,
        &caller.tenant,
        body,
        hint,
        shape,
        move |tenant, body, limits| {
            let raw = logs::decompress(body, encoding.as_deref(), limits)?;
            if json {
                logs::otlp::decode_json(tenant, &raw, limits)
            } else {
                logs::otlp::decode_proto(tenant, &raw, limits)
            }
        },
    )
    .await;
    match result {
        Ok(_) => {
            let content_type = if json {
                "application/json"
            } else {
                "application/x-protobuf"
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
                logs::otlp::success_body(json),
            )
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /api/v1/logs` (`application/x-ndjson`).
pub(super) async fn ndjson(
    State(state): State<Arc<AppState>>,
    caller: Caller<Writer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let shape = Shape::Json;
    let media = header_text(&headers, header::CONTENT_TYPE)
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    if let Some(m) = media.filter(|m| {
        !matches!(
            m.as_str(),
            "" | "application/x-ndjson" | "application/jsonl" | "application/json-seq"
        )
    }) {
        let e = IngestError::UnsupportedMediaType {
            content_type: m,
            expected: "application/x-ndjson",
        };
        return bad(&e, shape).into_response();
    }
    let encoding = header_text(&headers, header::CONTENT_ENCODING).map(str::to_owned);
    let hint = size_hint(&state, &body, encoding.as_deref(), false);
    let result = ingest(
        &state,
        &caller.tenant,
        body,
        hint,
        shape,
        move |tenant, body, limits| {
            let raw = logs::decompress(body, encoding.as_deref(), limits)?;
            logs::ndjson::decode(tenant, &raw, limits)
        },
    )
    .await;
    match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

fn bad(e: &IngestError, shape: Shape) -> ApiError {
    ApiError::new(e.kind(), e.to_string(), shape)
}

/// What `body` will decode to at most, as far as it says.
fn size_hint(state: &AppState, body: &[u8], encoding: Option<&str>, snappy: bool) -> u64 {
    crate::decoded::decoded_size_hint(
        body,
        encoding,
        snappy,
        state.config.limits.max_decoded_size.0,
    )
}

/// The shared path of the three log protocols: the write admitted (see
/// [`Write::begin`]), decoded (on the blocking pool when large), stored.
/// Returns the entries written.
async fn ingest(
    state: &AppState,
    tenant: &TenantId,
    body: Bytes,
    decoded_hint: u64,
    shape: Shape,
    decode: impl FnOnce(TenantId, &[u8], &LogLimits) -> Result<LogBatch, IngestError> + Send + 'static,
) -> Result<u64, ApiError> {
    let w = Write::begin(state, tenant, Signal::Logs, body.len(), decoded_hint, shape).await?;
    let limits = LogLimits {
        max_decoded_bytes: w.max_decoded_bytes(),
        max_line_bytes: usize::try_from(state.config.limits.max_log_line_size.0)
            .unwrap_or(usize::MAX),
    };
    let t = tenant.clone();
    let len = body.len();
    let batch = w.decode(len, move || decode(t, &body, &limits)).await?;
    w.logs(batch).await
}
