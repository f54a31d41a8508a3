//! Prometheus remote read (`POST /api/v1/read`): a Prometheus (or Thanos,
//! or any reader of the protocol) reads a tenant's series back, as
//! samples or as streamed XOR chunks, whichever it accepts first.
//!
//! Each query selects like a PromQL selector over the tenant's heads and
//! files (the same indexes, the tenant's lookback limit), raw samples in
//! `[start, end]` with stale markers as stored, series sorted by labels.
//! The queries of a request are bounded together by the tenant's query
//! sample bound (`promql.max_samples`, lowered by `max_query_samples`;
//! past it, 400 `exceeded sample limit (N)` as Prometheus' read handler
//! answers) and by `promql.timeout`; reads go through the same admission
//! (tenant query concurrency, fair scheduler) and usage accounting as
//! queries. The selected samples are held in memory until the answer is
//! encoded (within the sample bound), as PromQL's selections are.
//!
//! Native histograms are in the samples answer (each series' `histograms`,
//! float counts, as Prometheus 3 answers); the streamed answer holds XOR
//! chunks of float samples only (no histogram chunk encoding yet).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use promql_parser::label::Matcher;
use promql_parser::parser::token::{T_EQL, T_EQL_REGEX, T_NEQ, T_NEQ_REGEX};
use strata_ingest::DecodeLimits;
use strata_ingest::remote_read::{
    MAX_BYTES_IN_FRAME, MatchKind, ReadMatcher, ResponseType, SAMPLES_CONTENT_TYPE,
    STREAMED_CONTENT_TYPE, SamplesResponse, decode_read_request, write_series_frames,
};
use strata_ingest::remote_write::proto;
use strata_query_lang::promql::{FloatHistogram, ResetHint, Series, Source};
use strata_types::{ErrorKind, TenantId};

use crate::AppState;
use crate::error::{ApiError, Shape};
use crate::frontend::Caller;

const SHAPE: Shape = Shape::PlainText;

/// Streamed frames are sent in writes of about this many bytes.
const WRITE_BYTES: usize = 64 << 10;

pub(super) async fn remote_read(
    State(state): State<Arc<AppState>>,
    Caller { tenant, .. }: Caller,
    body: Bytes,
) -> Response {
    read(&state, &tenant, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

fn matcher(m: &ReadMatcher) -> Result<Matcher, ApiError> {
    let token = match m.kind {
        MatchKind::Equal => T_EQL,
        MatchKind::NotEqual => T_NEQ,
        MatchKind::Regex => T_EQL_REGEX,
        MatchKind::NotRegex => T_NEQ_REGEX,
    };
    Matcher::new_matcher(token, m.name.clone(), m.value.clone())
        .map_err(|e| ApiError::new(ErrorKind::BadInput, e, SHAPE))
}

/// A native histogram as remote read answers it: float counts, absolute
/// per bucket, buckets as spans (a span per run of consecutive indexes).
fn histogram_proto(t: i64, h: &FloatHistogram) -> proto::Histogram {
    fn spans(buckets: &[(i32, f64)]) -> (Vec<proto::BucketSpan>, Vec<f64>) {
        let mut spans: Vec<proto::BucketSpan> = Vec::new();
        let mut next = None::<i32>;
        for &(i, _) in buckets {
            match (next, spans.last_mut()) {
                (Some(n), Some(last)) if n == i => last.length += 1,
                _ => spans.push(proto::BucketSpan {
                    // The first span's offset is its index; the others'
                    // the gap after the span before.
                    offset: next.map_or(i, |n| i - n),
                    length: 1,
                }),
            }
            next = Some(i + 1);
        }
        (spans, buckets.iter().map(|b| b.1).collect())
    }
    let (positive_spans, positive_counts) = spans(&h.positive);
    let (negative_spans, negative_counts) = spans(&h.negative);
    proto::Histogram {
        count_float: Some(h.count),
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count_float: Some(h.zero_count),
        negative_spans,
        negative_counts,
        positive_spans,
        positive_counts,
        reset_hint: match h.hint {
            ResetHint::Unknown => 0,
            ResetHint::Reset => 1,
            ResetHint::NotReset => 2,
            ResetHint::Gauge => 3,
        },
        timestamp: t,
        custom_values: h.custom_values.to_vec(),
        ..proto::Histogram::default()
    }
}

async fn read(state: &Arc<AppState>, tenant: &TenantId, body: &[u8]) -> Result<Response, ApiError> {
    let limits = DecodeLimits {
        max_decoded_bytes: usize::try_from(state.config.limits.max_decoded_size.0)
            .unwrap_or(usize::MAX),
        ..DecodeLimits::default()
    };
    let req = decode_read_request(body, limits)
        .map_err(|e| ApiError::new(e.kind(), e.to_string(), SHAPE))?;
    let queries = req
        .queries
        .iter()
        .map(|q| {
            Ok((
                q.start_ms,
                q.end_ms,
                q.matchers
                    .iter()
                    .map(matcher)
                    .collect::<Result<Vec<_>, _>>()?,
            ))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;

    let timeout = state.config.promql.timeout;
    let admitted = state.admit(tenant, "remote_read", SHAPE).await?;
    let source = state
        .query
        .promql_source(tenant)
        .map_err(|e| ApiError::new(e.kind(), e.to_string(), SHAPE))?;
    let max_samples = state.max_query_samples(tenant);
    let select = async {
        let mut answers: Vec<Vec<Series>> = Vec::with_capacity(queries.len());
        let mut samples = 0usize;
        for (start, end, matchers) in &queries {
            let mut series = source
                .select(matchers, *start, *end)
                .await
                .map_err(|e| super::prom::prom_error(e, SHAPE))?;
            // Native histograms beside the floats, in the same series
            // when a series has both.
            let histograms = source
                .select_histograms(matchers, *start, *end)
                .await
                .map_err(|e| super::prom::prom_error(e, SHAPE))?;
            for h in histograms {
                match series.iter_mut().find(|s| s.labels == h.labels) {
                    Some(s) => s.histograms = h.histograms,
                    None => series.push(h),
                }
            }
            samples += series
                .iter()
                .map(|s| s.points.len() + s.histograms.len())
                .sum::<usize>();
            if samples > max_samples {
                return Err(ApiError::new(
                    ErrorKind::BadInput,
                    format!("exceeded sample limit ({max_samples})"),
                    SHAPE,
                ));
            }
            series.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
            answers.push(series);
        }
        Ok((answers, samples))
    };
    let (answers, samples) = tokio::time::timeout(timeout, select)
        .await
        .map_err(|_| ApiError::new(ErrorKind::Timeout, "remote read timed out", SHAPE))??;
    admitted.read_samples(samples as u64);
    drop(admitted);

    Ok(match req.response {
        ResponseType::Samples => {
            let mut r = SamplesResponse::new(answers.len());
            for (i, series) in answers.iter().enumerate() {
                for s in series {
                    let histograms = s
                        .histograms
                        .iter()
                        .map(|(t, h)| histogram_proto(*t, h))
                        .collect();
                    r.push(i, s.labels.iter(), &s.points, histograms);
                }
            }
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, SAMPLES_CONTENT_TYPE),
                    (header::CONTENT_ENCODING, "snappy"),
                ],
                r.encode(),
            )
                .into_response()
        }
        ResponseType::StreamedXorChunks => {
            // Frames written as the body is sent, a few series at a time.
            let mut series = answers
                .into_iter()
                .enumerate()
                .flat_map(|(i, s)| s.into_iter().map(move |s| (i as i64, s)))
                .peekable();
            let writes = std::iter::from_fn(move || {
                series.peek()?;
                let mut out = Vec::with_capacity(WRITE_BYTES + 4096);
                while out.len() < WRITE_BYTES {
                    let Some((i, s)) = series.next() else { break };
                    write_series_frames(
                        &mut out,
                        i,
                        s.labels.iter(),
                        &s.points,
                        MAX_BYTES_IN_FRAME,
                    );
                }
                Some(Ok::<_, std::convert::Infallible>(Bytes::from(out)))
            });
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, STREAMED_CONTENT_TYPE)],
                Body::from_stream(futures::stream::iter(writes)),
            )
                .into_response()
        }
    })
}
