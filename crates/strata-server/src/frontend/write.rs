//! Every write of every signal, whatever its protocol: the adapters in
//! `routes/write.rs` and `routes/logs_write.rs` negotiate their format,
//! call [`Write::begin`], decode through [`Write::decode`] and store
//! through [`Write::metrics`] or [`Write::logs`].

use std::sync::Arc;

use strata_head::ExemplarStats;
use strata_storage::{Signal, StorageError};
use strata_types::{
    ErrorKind, ExemplarBatch, HistogramBatch, LogBatch, SeriesExemplars, SeriesHistograms,
    SeriesSamples, TenantId, WriteBatch,
};
use strata_wal::Wal;

use strata_query::QueryError;

use crate::AppState;
use crate::decoded::Reservation;
use crate::error::{ApiError, Shape};
use crate::limits::SeriesAdmission;

/// Bodies at least this large are decoded on the blocking pool, so one huge
/// request does not stall the async workers serving everyone else.
pub const BLOCKING_DECODE_BYTES: usize = 1 << 20;

/// One admitted write: its tenant, the request's size and its room for
/// decoded bytes (held until the write is stored or refused).
pub struct Write<'a> {
    state: &'a AppState,
    /// The WAL, open since `begin` checked it (it stays open).
    wal: &'a Arc<dyn Wal>,
    tenant: &'a TenantId,
    shape: Shape,
    body_len: u64,
    room: Reservation,
}

impl<'a> Write<'a> {
    /// Admits a write of `signal` before its body is decoded: the WAL
    /// replayed (503 before), the tenant's compaction not too far behind
    /// (503), for metrics its ingest-rate bucket not empty (429, so an
    /// over-rate write is refused without decompressing it), and room for
    /// `decoded_hint` bytes (what the body says it decodes to) under the
    /// per-tenant and total bounds of decoded bytes in flight (429 after a
    /// bounded wait).
    pub async fn begin(
        state: &'a AppState,
        tenant: &'a TenantId,
        signal: Signal,
        body_len: usize,
        decoded_hint: u64,
        shape: Shape,
    ) -> Result<Self, ApiError> {
        let role = state.config.node.role;
        if !role.takes_writes() {
            // 503, which senders retry, rather than a 4xx they would drop:
            // a write sent here is a routing mistake, not bad data.
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                format!("this node is a {role}: writes go to the ingesters"),
                shape,
            ));
        }
        let Some(wal) = state.wal() else {
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                "not ready: replaying the WAL",
                shape,
            ));
        };
        state.check_compaction_lag(tenant, signal, shape)?;
        if signal == Signal::Metrics {
            state
                .limits
                .check_ingest_budget(tenant)
                .map_err(|r| state.refused(tenant, r, shape))?;
        }
        let mut w = Write {
            state,
            wal,
            tenant,
            shape,
            body_len: body_len as u64,
            room: Reservation::default(),
        };
        w.reserve(decoded_hint).await?;
        Ok(w)
    }

    /// The most a decoded body may hold (`limits.max_decoded_size`).
    pub fn max_decoded_bytes(&self) -> usize {
        usize::try_from(self.state.config.limits.max_decoded_size.0).unwrap_or(usize::MAX)
    }

    /// Runs `decode` for a body of `len` bytes: inline when small, on the
    /// blocking pool when large.
    pub async fn decode<T: Send + 'static>(
        &self,
        len: usize,
        decode: impl FnOnce() -> Result<T, strata_ingest::IngestError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let shape = self.shape;
        if len >= BLOCKING_DECODE_BYTES {
            tokio::task::spawn_blocking(decode).await.map_err(|e| {
                ApiError::new(ErrorKind::Internal, format!("decode task: {e}"), shape)
            })?
        } else {
            decode()
        }
        .map_err(|e| ApiError::new(e.kind(), e.to_string(), shape))
    }

    /// Room for `bytes` decoded bytes in all (a body whose size hint was
    /// short tops up here).
    async fn reserve(&mut self, bytes: u64) -> Result<(), ApiError> {
        let (state, tenant, shape) = (self.state, self.tenant, self.shape);
        state
            .decoded
            .reserve(tenant, &mut self.room, bytes)
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

    /// Checks the tenant's limits on `batch` (a series limit checked and
    /// reserved as one, so concurrent writes cannot pass it together),
    /// makes it durable in the WAL, applies it to the head and records the
    /// tenant's usage; the samples stored.
    pub async fn metrics(self, batch: WriteBatch) -> Result<u64, ApiError> {
        self.metrics_and_histograms(batch, Vec::new())
            .await
            .map(|(samples, _)| samples)
    }

    /// [`Self::metrics`] with native histograms: the limits see the float
    /// series and the histogram series together (a histogram series is a
    /// series of the series limits, a histogram sample one sample of the
    /// ingest rate, its labels under the label limits), then the samples
    /// and the histograms are made durable, each in their own WAL record.
    /// The float samples and histogram samples stored.
    async fn metrics_and_histograms(
        &self,
        batch: WriteBatch,
        histograms: Vec<SeriesHistograms>,
    ) -> Result<(u64, u64), ApiError> {
        let (state, tenant, shape) = (self.state, self.tenant, self.shape);
        let batch = Arc::new(batch);
        let samples = batch.sample_count() as u64;
        let hist: u64 = histograms.iter().map(|s| s.samples.len() as u64).sum();
        if samples + hist == 0 {
            return Ok((0, 0));
        }
        // What the limits count: each histogram sample as a sample at its
        // time (never stored as one).
        let limited = if hist == 0 {
            Arc::clone(&batch)
        } else {
            let mut all = (*batch).clone();
            for s in &histograms {
                all.push_validated(
                    s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
                    s.samples.iter().map(|h| strata_types::Sample {
                        timestamp_ms: h.timestamp_ms,
                        value: 0.0,
                    }),
                );
            }
            Arc::new(all)
        };
        let now_ms = chrono::Utc::now().timestamp_millis();
        let admission = state
            .limits
            .admit_series(&limited, now_ms.div_euclid(1000))
            .await;
        complete_live(state, &admission, now_ms, shape, "series", |since_ms| {
            state.query.series_written_since(tenant, since_ms, now_ms)
        })
        .await?;
        state
            .limits
            .check_ingest(&limited, &admission)
            .map_err(|r| state.refused(tenant, r, shape))?;
        if samples > 0 {
            state
                .storage
                .write(self.wal.as_ref(), Arc::clone(&batch))
                .await
                .map_err(|e| stored_error(e, shape))?;
        }
        if hist > 0 {
            let mut h = HistogramBatch::new(tenant.clone());
            h.series = histograms;
            state
                .storage
                .write_histograms(self.wal.as_ref(), Arc::new(h))
                .await
                .map_err(|e| stored_error(e, shape))?;
        }
        admission.record(&limited, now_ms.div_euclid(1000));
        state.record_ingest(tenant, samples + hist, self.body_len);
        Ok((samples, hist))
    }

    /// [`Self::metrics`] with the request's native histograms, then its
    /// exemplars: made durable in the WAL and kept under the tenant's
    /// bounds (`max_exemplars`, `max_exemplars_per_series`). Exemplars of
    /// a series whose labels pass the tenant's label limits only; the
    /// samples stored, what became of the exemplars, the histograms stored.
    pub async fn metrics_and_exemplars(
        self,
        batch: WriteBatch,
        exemplars: Vec<SeriesExemplars>,
        histograms: Vec<SeriesHistograms>,
    ) -> Result<(u64, ExemplarStats, u64), ApiError> {
        let (samples, stored) = self.metrics_and_histograms(batch, histograms).await?;
        let (state, wal, tenant, shape) = (self.state, &self.wal, self.tenant, self.shape);
        if exemplars.is_empty() {
            return Ok((samples, ExemplarStats::default(), stored));
        }
        let l = state.limits.of(tenant);
        let over = |limit: usize, n: usize| limit > 0 && n > limit;
        let mut refused = 0u64;
        let mut batch = ExemplarBatch::new(tenant.clone());
        for s in exemplars {
            let fits = !over(l.max_labels_per_series, s.labels.len())
                && s.labels.iter().all(|lb| {
                    !over(l.max_label_name_length, lb.name.len())
                        && !over(l.max_label_value_length, lb.value.len())
                });
            if fits {
                batch.series.push(s);
            } else {
                refused += s.exemplars.len() as u64;
            }
        }
        let mut stats = if batch.is_empty() {
            ExemplarStats::default()
        } else {
            state
                .storage
                .write_exemplars(wal.as_ref(), Arc::new(batch))
                .await
                .map_err(|e| stored_error(e, shape))?
        };
        stats.dropped += refused;
        Ok((samples, stats, stored))
    }

    /// Checks the tenant's log limits on `batch` (stream labels, live
    /// streams — checked and reserved as one, as series are — and the byte
    /// rate), makes it durable in the WAL, applies it to the log head and
    /// records the tenant's usage; the entries stored.
    pub async fn logs(mut self, batch: LogBatch) -> Result<u64, ApiError> {
        let entries = batch.entry_count() as u64;
        if entries == 0 {
            return Ok(0);
        }
        self.reserve(batch.bytes() as u64).await?;
        let batch = Arc::new(batch);
        let (state, tenant, shape) = (self.state, self.tenant, self.shape);
        let now_ms = chrono::Utc::now().timestamp_millis();
        let admission = state
            .limits
            .admit_streams(&batch, now_ms.div_euclid(1000))
            .await;
        complete_live(state, &admission, now_ms, shape, "streams", |since_ms| {
            state.query.streams_written_since(tenant, since_ms, now_ms)
        })
        .await?;
        state
            .limits
            .check_log_ingest(&batch, &admission)
            .map_err(|r| state.refused(tenant, r, shape))?;
        let bytes = batch.bytes() as u64;
        state
            .storage
            .write_logs(self.wal.as_ref(), Arc::clone(&batch))
            .await
            .map_err(|e| stored_error(e, shape))?;
        admission.record_streams(&batch, now_ms.div_euclid(1000));
        state.record_log_ingest(tenant, entries, bytes, self.body_len);
        Ok(entries)
    }
}

/// Completes a tenant's live set (series, or log streams) from what it
/// has stored, before the first check that could add to it: what was
/// written within `limits.active_series_window`, as `known(since_ms)`
/// lists it. `what` names the set in the error.
async fn complete_live<F>(
    state: &AppState,
    admission: &SeriesAdmission,
    now_ms: i64,
    shape: Shape,
    what: &str,
    known: impl FnOnce(i64) -> F,
) -> Result<(), ApiError>
where
    F: std::future::Future<Output = Result<Vec<(u64, Arc<str>, i64)>, QueryError>>,
{
    let Some(set) = admission.incomplete() else {
        return Ok(());
    };
    let window =
        i64::try_from(state.config.limits.active_series_window.as_millis()).unwrap_or(i64::MAX);
    let since_ms = now_ms.saturating_sub(window);
    let known = known(since_ms).await.map_err(|e| {
        ApiError::new(
            ErrorKind::Unavailable,
            format!("the tenant's live {what} could not be counted for its limit: {e}"),
            shape,
        )
    })?;
    set.complete(known, since_ms.div_euclid(1000));
    Ok(())
}

/// Stores series the server computed itself (rule output, analytics
/// results) for `tenant` through the same path as a remote write: the
/// WAL replayed, the tenant's limits, the WAL, usage. A node without a
/// WAL (a compactor evaluating its tenants' rules) writes them through an
/// ingester ([`super::forward`]). Nothing to store is not an error.
pub async fn write_internal(
    state: &AppState,
    tenant: &TenantId,
    series: Vec<SeriesSamples>,
) -> Result<u64, ApiError> {
    if series.is_empty() {
        return Ok(0);
    }
    if !state.config.node.role.takes_writes() {
        return super::forward::write(state, tenant, series).await;
    }
    let batch = WriteBatch::from_series(tenant.clone(), series);
    Write::begin(state, tenant, Signal::Metrics, 0, 0, Shape::Json)
        .await?
        .metrics(batch)
        .await
}

/// A storage failure as the writer sees it: a WAL failure means the write
/// was not made durable.
fn stored_error(e: StorageError, shape: Shape) -> ApiError {
    match e {
        StorageError::Wal { .. } => {
            ApiError::new(e.kind(), format!("write not durable: {e}"), shape)
        }
        e => ApiError::new(e.kind(), e.to_string(), shape),
    }
}
