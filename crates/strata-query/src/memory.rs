//! SQL memory bounds: each query has a budget, and all queries together
//! another, so one tenant's `ORDER BY` over billions of rows gets a clear
//! "resources exhausted" error (or spills) instead of growing until the
//! process is killed for everyone.
//!
//! DataFusion's operators that hold data (sorts, joins, aggregations)
//! reserve it from their session's memory pool first. Every session gets a
//! [`QueryPool`] of its own that counts against the query's limit and the
//! shared [`MemoryBudget`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryLimit, MemoryPool, MemoryReservation};

/// The memory all SQL queries together may reserve, and one query.
#[derive(Debug)]
pub struct MemoryBudget {
    total: usize,
    per_query: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    pub fn new(total: usize, per_query: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            per_query: per_query.min(total),
            used: AtomicUsize::new(0),
        })
    }

    /// Bytes reserved by running queries now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// A pool for one query's session.
    pub fn pool(self: &Arc<Self>) -> QueryPool {
        QueryPool {
            budget: Arc::clone(self),
            used: AtomicUsize::new(0),
        }
    }
}

/// One query's memory pool: bounded by its own limit and the shared
/// budget. What it holds goes back to the budget as its reservations are
/// freed (DataFusion frees them when operators finish or are dropped).
#[derive(Debug)]
pub struct QueryPool {
    budget: Arc<MemoryBudget>,
    used: AtomicUsize,
}

fn take(counter: &AtomicUsize, limit: usize, n: usize) -> std::result::Result<(), usize> {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
            used.checked_add(n).filter(|u| *u <= limit)
        })
        .map(|_| ())
}

fn mib(n: usize) -> String {
    format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "strata-query"
    }

    fn grow(&self, _reservation: &MemoryReservation, additional: usize) {
        self.used.fetch_add(additional, Ordering::Relaxed);
        self.budget.used.fetch_add(additional, Ordering::Relaxed);
    }

    fn shrink(&self, _reservation: &MemoryReservation, shrink: usize) {
        self.used.fetch_sub(shrink, Ordering::Relaxed);
        self.budget.used.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let consumer = reservation.consumer().name();
        take(&self.used, self.budget.per_query, additional).map_err(|used| {
            DataFusionError::ResourcesExhausted(format!(
                "{consumer} needs {} more, but the query already holds {} of its {} limit (sql.max_query_memory)",
                mib(additional),
                mib(used),
                mib(self.budget.per_query)
            ))
        })?;
        if let Err(used) = take(&self.budget.used, self.budget.total, additional) {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{consumer} needs {} more, but running queries already hold {} of the server's {} (sql.max_memory); try again later",
                mib(additional),
                mib(used),
                mib(self.budget.total)
            )));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.budget.per_query)
    }
}

impl fmt::Display for QueryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "strata-query(used: {}, limit: {})",
            mib(self.reserved()),
            mib(self.budget.per_query)
        )
    }
}

impl Drop for QueryPool {
    fn drop(&mut self) {
        // Reservations free what they hold before their pool goes; this
        // only guards the shared count against a leak.
        let left = self.used.swap(0, Ordering::Relaxed);
        if left > 0 {
            self.budget.used.fetch_sub(left, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::MemoryConsumer;

    #[test]
    fn a_query_is_bounded_by_its_limit_and_all_by_the_budget() {
        let budget = MemoryBudget::new(1000, 600);
        let a: Arc<dyn MemoryPool> = Arc::new(budget.pool());
        let b: Arc<dyn MemoryPool> = Arc::new(budget.pool());
        let ra = MemoryConsumer::new("SortExec").register(&a);
        let rb = MemoryConsumer::new("HashJoin").register(&b);
        ra.try_grow(500).unwrap();
        let e = ra.try_grow(200).unwrap_err().to_string();
        assert!(e.contains("sql.max_query_memory"), "{e}");
        rb.try_grow(450).unwrap();
        let e = rb.try_grow(100).unwrap_err().to_string();
        assert!(e.contains("sql.max_memory"), "{e}");
        assert_eq!(budget.used(), 950);
        assert_eq!(b.reserved(), 450, "a refused grow takes nothing");
        drop(ra);
        drop(a);
        assert_eq!(budget.used(), 450);
        rb.try_grow(100).unwrap();
    }
}
