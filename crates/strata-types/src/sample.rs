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
