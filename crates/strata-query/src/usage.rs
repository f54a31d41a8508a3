//! Per-tenant usage accounting: what each tenant sent and asked, kept in
//! memory since start and readable by the tenant as `system.usage` (one
//! row: its own). Ingest and the query front ends record into it; active
//! series and stored bytes are read from the head and the tables when the
//! row is built.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use parking_lot::Mutex;
use strata_storage::Storage;
use strata_types::TenantId;

/// Counters of one tenant since start.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Counters {
    pub samples_ingested: u64,
    /// Request bytes as received (compressed).
    pub bytes_ingested: u64,
    pub queries: u64,
    /// Wall time spent answering them.
    pub query_seconds: f64,
    /// Samples PromQL queries loaded (SQL scans are not counted here).
    pub query_samples: u64,
    pub log_entries_ingested: u64,
    /// Log line and structured-metadata bytes accepted (uncompressed).
    pub log_bytes_ingested: u64,
    /// Requests refused by a limit, by the limit's name.
    pub rejected: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
pub struct Usage {
    tenants: Mutex<HashMap<TenantId, Counters>>,
}

impl Usage {
    pub fn ingested(&self, tenant: &TenantId, samples: u64, bytes: u64) {
        let mut t = self.tenants.lock();
        let c = t.entry(tenant.clone()).or_default();
        c.samples_ingested += samples;
        c.bytes_ingested += bytes;
    }

    /// A log write: entries, their line and metadata bytes, and the
    /// request's bytes as received.
    pub fn logs_ingested(&self, tenant: &TenantId, entries: u64, bytes: u64, request_bytes: u64) {
        let mut t = self.tenants.lock();
        let c = t.entry(tenant.clone()).or_default();
        c.log_entries_ingested += entries;
        c.log_bytes_ingested += bytes;
        c.bytes_ingested += request_bytes;
    }

    pub fn queried(&self, tenant: &TenantId, seconds: f64, samples: u64) {
        let mut t = self.tenants.lock();
        let c = t.entry(tenant.clone()).or_default();
        c.queries += 1;
        c.query_seconds += seconds;
        c.query_samples += samples;
    }

    /// A request refused by limit `reason`.
    pub fn rejected(&self, tenant: &TenantId, reason: &str) {
        let mut t = self.tenants.lock();
        let c = t.entry(tenant.clone()).or_default();
        *c.rejected.entry(reason.to_owned()).or_default() += 1;
    }

    /// Every tenant's counters.
    pub fn all(&self) -> Vec<(TenantId, Counters)> {
        self.tenants
            .lock()
            .iter()
            .map(|(t, c)| (t.clone(), c.clone()))
            .collect()
    }

    pub fn get(&self, tenant: &TenantId) -> Counters {
        self.tenants.lock().get(tenant).cloned().unwrap_or_default()
    }

    /// `system.usage` for `tenant`: its counters, active series, stored
    /// files and bytes.
    pub(crate) fn batch(
        &self,
        tenant: &TenantId,
        storage: &Storage,
    ) -> datafusion::error::Result<RecordBatch> {
        let c = self.get(tenant);
        let active = storage
            .head()
            .tenant(tenant)
            .map_or(0, |h| h.series_count() as u64);
        let (files, bytes, rows) = storage
            .table_stats()
            .into_iter()
            .find(|(t, ..)| t == tenant)
            .map_or((0, 0, 0), |(_, f, b, r)| (f as u64, b, r));
        let u = |name: &str| Field::new(name, DataType::UInt64, false);
        let schema = Arc::new(Schema::new(vec![
            Field::new("tenant", DataType::Utf8, false),
            u("samples_ingested"),
            u("bytes_ingested"),
            u("active_series"),
            u("stored_files"),
            u("stored_bytes"),
            u("stored_samples"),
            u("queries"),
            Field::new("query_seconds", DataType::Float64, false),
            u("query_samples"),
            u("log_entries_ingested"),
            u("log_bytes_ingested"),
        ]));
        let n = |v: u64| -> ArrayRef { Arc::new(UInt64Array::from(vec![v])) };
        Ok(RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![tenant.as_str()])),
                n(c.samples_ingested),
                n(c.bytes_ingested),
                n(active),
                n(files),
                n(bytes),
                n(rows),
                n(c.queries),
                Arc::new(Float64Array::from(vec![c.query_seconds])),
                n(c.query_samples),
                n(c.log_entries_ingested),
                n(c.log_bytes_ingested),
            ],
        )?)
    }
}
