//! The unit of ingest: one tenant's accepted series and samples.

use crate::{Labels, Sample, TenantId};

/// One series and the samples accepted for it in a request.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSamples {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// A validated batch for one tenant: what a write endpoint hands to the WAL
/// and then to the head. Everything in it has passed validation, so applying
/// it cannot fail half-way for reasons of input.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBatch {
    pub tenant: TenantId,
    pub series: Vec<SeriesSamples>,
}

impl WriteBatch {
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }
}
