use strata_types::SeriesId;

/// Errors from the head.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// Two different label sets hashed to the same series id. Astronomically
    /// rare with a 64-bit hash; refused rather than merging two series.
    #[error("series id {id} collision between {existing} and {incoming}")]
    SeriesIdCollision {
        id: SeriesId,
        existing: String,
        incoming: String,
    },
    #[error("invalid regular expression {pattern:?}: {reason}")]
    InvalidRegex { pattern: String, reason: String },
}
