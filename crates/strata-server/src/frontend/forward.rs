//! What a node without a WAL computed for a tenant (a compactor's rule and
//! SLO results), written through an ingester: remote write 1.0 to its
//! `POST /api/v1/internal/write` with `node.ingester_token`, the
//! ingesters tried in turn from a rotating start until one stores it.
//!
//! An ingester that cannot be reached or answers 5xx is passed over for
//! the next; any other refusal (400, 429) is the tenant's and is returned
//! as it came. A request whose answer was lost may be stored by two
//! ingesters: the same samples at the same times, which queries read
//! once (series merge equal timestamps).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strata_ingest::remote_write::proto::{self, WriteRequest};
use strata_types::{ErrorKind, SeriesSamples, TenantId};
use tracing::warn;

use crate::AppState;
use crate::error::{ApiError, Shape};

/// Where the next forward starts among the ingesters.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// How long one ingester has to store a forwarded write.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One ingester's answer to a forwarded write.
enum Answer {
    Stored(u64),
    /// The tenant's write was refused (kept as the ingester said it).
    Refused(u16, String),
    /// This ingester could not take it; the next may.
    Unreachable(String),
}

/// Writes `series` of `tenant` through one of `node.ingesters`; the
/// samples stored.
pub(crate) async fn write(
    state: &AppState,
    tenant: &TenantId,
    series: Vec<SeriesSamples>,
) -> Result<u64, ApiError> {
    let ingesters = state.config.node.ingesters.clone();
    if ingesters.is_empty() {
        return Err(ApiError::new(
            ErrorKind::Unavailable,
            "no node.ingesters to write through",
            Shape::Json,
        ));
    }
    let request = WriteRequest {
        timeseries: series
            .iter()
            .map(|s| {
                let labels: Vec<(&str, &str)> = s
                    .labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str()))
                    .collect();
                let samples: Vec<(i64, f64)> = s
                    .samples
                    .iter()
                    .map(|p| (p.timestamp_ms, p.value))
                    .collect();
                proto::TimeSeries::from_pairs(&labels, &samples)
            })
            .collect(),
        ..Default::default()
    };
    let body = proto::encode_snappy(&request);
    let token = state.config.node.ingester_token.clone();
    let tenant_name = tenant.to_string();
    let start = NEXT.fetch_add(1, Ordering::Relaxed);
    let answer = tokio::task::spawn_blocking(move || {
        let agent = crate::http_agent(TIMEOUT);
        let mut last = String::new();
        for i in 0..ingesters.len() {
            let base = &ingesters[(start + i) % ingesters.len()];
            match post(&agent, base, token.as_deref(), &tenant_name, &body) {
                Answer::Unreachable(why) => {
                    warn!(ingester = %base, error = %why, "ingester did not take a forwarded write; trying the next");
                    last = format!("{base}: {why}");
                }
                answer => return answer,
            }
        }
        Answer::Unreachable(last)
    })
    .await
    .map_err(|e| ApiError::new(ErrorKind::Internal, format!("forward task: {e}"), Shape::Json))?;
    match answer {
        Answer::Stored(n) => Ok(n),
        Answer::Refused(status, message) => {
            let kind = match status {
                400 => ErrorKind::BadInput,
                401 => ErrorKind::Unauthenticated,
                403 => ErrorKind::Forbidden,
                413 => ErrorKind::PayloadTooLarge,
                429 => ErrorKind::Limit,
                _ => ErrorKind::Unavailable,
            };
            Err(ApiError::new(
                kind,
                format!("the ingester refused the write ({status}): {message}"),
                Shape::Json,
            ))
        }
        Answer::Unreachable(last) => Err(ApiError::new(
            ErrorKind::Unavailable,
            format!("no ingester took the write (last: {last})"),
            Shape::Json,
        )),
    }
}

fn post(agent: &ureq::Agent, base: &str, token: Option<&str>, tenant: &str, body: &[u8]) -> Answer {
    let url = format!("{}/api/v1/internal/write", base.trim_end_matches('/'));
    let mut req = agent
        .post(&url)
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header(crate::tenant::TENANT_HEADER, tenant);
    if let Some(token) = token {
        req = req.header("Authorization", &format!("Bearer {token}"));
    }
    match req.send(body) {
        Err(e) => Answer::Unreachable(e.to_string()),
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let written = resp
                .headers()
                .get("x-prometheus-remote-write-samples-written")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let text = resp
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_default();
            match status {
                200..=299 => Answer::Stored(written),
                500.. => Answer::Unreachable(format!("{status}: {}", text.trim())),
                _ => Answer::Refused(status, text.trim().to_owned()),
            }
        }
    }
}
