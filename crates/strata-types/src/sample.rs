//! Samples and the Prometheus staleness marker.

/// Bits of the NaN Prometheus uses as a staleness marker. It must be stored
/// and returned bit-exact; it is not an ordinary NaN.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The staleness marker as a float.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Whether `v` is exactly the staleness marker (not merely some NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// The earliest sample time Strata stores, in ms: 1677-09-21T00:12:43.146Z,
/// the first millisecond a signed 64-bit nanosecond timestamp holds. SQL
/// (nanosecond timestamps), day partitions and the table statistics all
/// work inside [`MIN_TIMESTAMP_MS`]..=[`MAX_TIMESTAMP_MS`]; a write with a
/// sample outside is refused whole.
pub const MIN_TIMESTAMP_MS: i64 = -9_223_372_036_854;

/// The latest sample time Strata stores, in ms: 2262-04-11T23:47:16.854Z.
pub const MAX_TIMESTAMP_MS: i64 = 9_223_372_036_854;

/// Whether a sample time is inside the storable range.
pub fn timestamp_in_range(ms: i64) -> bool {
    (MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&ms)
}

/// The storable range, as the error messages state it.
pub const TIMESTAMP_RANGE_TEXT: &str =
    "1677-09-21T00:12:43.146Z to 2262-04-11T23:47:16.854Z (ms -9223372036854 to 9223372036854)";

/// One float sample: milliseconds since the Unix epoch and a value.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub value: f64,
}

impl PartialEq for Sample {
    /// Bitwise on the value, so NaNs (and the stale marker) compare equal to
    /// themselves; this is the equality storage cares about.
    fn eq(&self, other: &Self) -> bool {
        self.timestamp_ms == other.timestamp_ms && self.value.to_bits() == other.value.to_bits()
    }
}

impl Eq for Sample {}
