//! Queries running now, for `system.queries`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use parking_lot::Mutex;
use strata_types::TenantId;

#[derive(Debug)]
struct Running {
    tenant: TenantId,
    protocol: &'static str,
    text: String,
    started_us: i64,
    since: Instant,
}

/// Every query between its start and the end of its results.
#[derive(Debug, Default)]
pub struct RunningQueries {
    next: AtomicU64,
    map: Mutex<BTreeMap<u64, Running>>,
}

/// Removes its query from the registry when dropped.
#[derive(Debug)]
pub struct QueryGuard {
    registry: Arc<RunningQueries>,
    id: u64,
}

impl Drop for QueryGuard {
    fn drop(&mut self) {
        self.registry.map.lock().remove(&self.id);
    }
}

/// Longest query text kept (the start of longer ones).
const TEXT_BYTES: usize = 4096;

impl RunningQueries {
    /// Records a query as running until the guard is dropped.
    pub fn start(
        self: &Arc<Self>,
        tenant: &TenantId,
        protocol: &'static str,
        text: &str,
    ) -> QueryGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut end = text.len().min(TEXT_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let started_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        self.map.lock().insert(
            id,
            Running {
                tenant: tenant.clone(),
                protocol,
                text: text[..end].to_owned(),
                started_us,
                since: Instant::now(),
            },
        );
        QueryGuard {
            registry: Arc::clone(self),
            id,
        }
    }

    /// `tenant`'s running queries (the one reading this included).
    pub(crate) fn batch(&self, tenant: &TenantId) -> datafusion::error::Result<RecordBatch> {
        let map = self.map.lock();
        let rows: Vec<(&u64, &Running)> = map.iter().filter(|(_, r)| &r.tenant == tenant).collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("query_id", DataType::UInt64, false),
            Field::new("protocol", DataType::Utf8, false),
            Field::new("query", DataType::Utf8, false),
            Field::new(
                "started",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("elapsed_seconds", DataType::Float64, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from_iter_values(
                rows.iter().map(|(id, _)| **id),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|(_, r)| r.protocol),
            )),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|(_, r)| r.text.as_str()),
            )),
            Arc::new(
                arrow::array::TimestampMicrosecondArray::from_iter_values(
                    rows.iter().map(|(_, r)| r.started_us),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|(_, r)| r.since.elapsed().as_secs_f64()),
            )),
        ];
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}
