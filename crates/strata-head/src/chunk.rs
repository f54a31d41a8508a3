//! Gorilla-style compression of one series' in-order samples, as in
//! Prometheus' XOR chunks (Pelkonen et al., "Gorilla", VLDB 2015).
//!
//! ```text
//! sample 0   timestamp: 64 bits, value: 64 bits (raw f64 bits)
//! sample n   timestamp as delta-of-delta:
//!              0                      '0'
//!              in [-2^13, 2^13)       '10'   + 14 bits
//!              in [-2^16, 2^16)       '110'  + 17 bits
//!              in [-2^19, 2^19)       '1110' + 20 bits
//!              otherwise              '1111' + 64 bits
//!            value XOR previous:
//!              0                      '0'
//!              fits previous window   '10'  + meaningful bits
//!              otherwise              '11'  + 5 bits leading zeros
//!                                           + 6 bits length (64 → 0)
//!                                           + meaningful bits
//! ```
//!
//! Values are kept as raw bits, so NaNs (the stale marker) round-trip
//! exactly. Only appends with a strictly newer timestamp go here; the head
//! keeps anything else beside the chunk.

#[cfg(test)]
use strata_types::Sample;

/// Samples between two [`Mark`]s: a query reading the last minutes of a
/// long head decodes from the mark before its start, not from the first
/// sample (Prometheus cuts a new chunk every 120 samples for the same
/// reason).
const MARK_EVERY: u32 = 120;

/// The decoder's state just before sample `(k + 1) * MARK_EVERY`, for
/// the `k`-th mark: decoding can start here.
#[derive(Clone, Copy)]
struct Mark {
    /// Bit position of that sample's encoding.
    bit_pos: u32,
    /// Timestamp of the sample before it: every sample from the mark on is
    /// newer.
    ts: i64,
    delta: i64,
    value: u64,
    leading: u8,
    trailing: u8,
}

/// An append-only compressed run of samples with increasing timestamps.
#[derive(Default, Clone)]
pub(crate) struct XorChunk {
    bytes: Vec<u8>,
    /// One every [`MARK_EVERY`] samples, in order (none once the bit
    /// position outgrows `u32`, so the `k`-th is always at sample
    /// `(k + 1) * MARK_EVERY`).
    marks: Vec<Mark>,
    /// Bits used in the last byte (0 = the last byte is full or none yet).
    bit_len: u8,
    count: u32,
    last_ts: i64,
    last_delta: i64,
    last_value: u64,
    leading: u8,
    trailing: u8,
}

impl XorChunk {
    pub(crate) fn len(&self) -> usize {
        self.count as usize
    }

    pub(crate) fn first_timestamp(&self) -> Option<i64> {
        (self.count > 0).then(|| BitReader::new(&self.bytes).read(64) as i64)
    }

    pub(crate) fn last_timestamp(&self) -> Option<i64> {
        (self.count > 0).then_some(self.last_ts)
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.marks.capacity() * std::mem::size_of::<Mark>()
    }

    /// Bits written so far.
    fn bit_pos(&self) -> usize {
        let full = self.bytes.len() * 8;
        if self.bit_len == 0 {
            full
        } else {
            full - 8 + usize::from(self.bit_len)
        }
    }

    /// Appends a sample whose timestamp is newer than every one before.
    pub(crate) fn push(&mut self, ts: i64, value: f64) {
        let bits = value.to_bits();
        match self.count {
            0 => {
                self.write(ts as u64, 64);
                self.write(bits, 64);
                self.leading = 0xff;
            }
            n => {
                if n % MARK_EVERY == 0
                    && self.marks.len() as u32 + 1 == n / MARK_EVERY
                    && let Ok(bit_pos) = u32::try_from(self.bit_pos())
                {
                    self.marks.push(Mark {
                        bit_pos,
                        ts: self.last_ts,
                        delta: self.last_delta,
                        value: self.last_value,
                        leading: self.leading,
                        trailing: self.trailing,
                    });
                }
                let delta = ts.wrapping_sub(self.last_ts);
                let dod = delta.wrapping_sub(self.last_delta);
                self.write_dod(dod);
                self.write_xor(bits ^ self.last_value);
                self.last_delta = delta;
            }
        }
        self.last_ts = ts;
        self.last_value = bits;
        self.count += 1;
    }

    fn write_dod(&mut self, dod: i64) {
        let fits = |bits: u32| dod >= -(1i64 << (bits - 1)) && dod < (1i64 << (bits - 1));
        if dod == 0 {
            self.write(0, 1);
        } else if fits(14) {
            self.write(0b10, 2);
            self.write(dod as u64, 14);
        } else if fits(17) {
            self.write(0b110, 3);
            self.write(dod as u64, 17);
        } else if fits(20) {
            self.write(0b1110, 4);
            self.write(dod as u64, 20);
        } else {
            self.write(0b1111, 4);
            self.write(dod as u64, 64);
        }
    }

    fn write_xor(&mut self, xor: u64) {
        if xor == 0 {
            self.write(0, 1);
            return;
        }
        let leading = (xor.leading_zeros() as u8).min(31);
        let trailing = xor.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            let sig = 64 - self.leading - self.trailing;
            self.write(0b10, 2);
            self.write(xor >> self.trailing, sig);
        } else {
            let sig = 64 - leading - trailing;
            self.write(0b11, 2);
            self.write(u64::from(leading), 5);
            self.write(u64::from(sig & 63), 6);
            self.write(xor >> trailing, sig);
            self.leading = leading;
            self.trailing = trailing;
        }
    }

    /// Writes the low `n` bits of `v`, most significant first.
    fn write(&mut self, v: u64, n: u8) {
        let mut left = n;
        while left > 0 {
            if self.bit_len == 0 {
                self.bytes.push(0);
            }
            let free = 8 - self.bit_len;
            let take = free.min(left);
            let shift = left - take;
            let chunk = ((v >> shift) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= chunk << (free - take);
            }
            self.bit_len = (self.bit_len + take) % 8;
            left -= take;
        }
    }

    /// Decodes every sample into `out`, in timestamp order.
    #[cfg(test)]
    pub(crate) fn decode_into(&self, out: &mut Vec<Sample>) {
        self.decode_range(i64::MIN, i64::MAX, |ts, value| {
            out.push(Sample {
                timestamp_ms: ts,
                value,
            })
        });
    }

    /// Calls `f` with every sample with `min <= t <= max`, in timestamp
    /// order: decoding starts at the last mark before `min` and stops at
    /// the first sample after `max`.
    pub(crate) fn decode_range(&self, min: i64, max: i64, mut f: impl FnMut(i64, f64)) {
        if self.count == 0 || min > max || min > self.last_ts {
            return;
        }
        let mut r = BitReader::new(&self.bytes);
        let (mut ts, mut delta, mut value) = (0i64, 0i64, 0u64);
        let (mut leading, mut trailing) = (0u8, 0u8);
        let mut first = 0;
        let k = self.marks.partition_point(|m| m.ts < min);
        if let Some(m) = k.checked_sub(1).and_then(|k| self.marks.get(k)) {
            r.pos = m.bit_pos as usize;
            first = k as u32 * MARK_EVERY;
            (ts, delta, value) = (m.ts, m.delta, m.value);
            (leading, trailing) = (m.leading, m.trailing);
        }
        for i in first..self.count {
            if i == 0 {
                ts = r.read(64) as i64;
                value = r.read(64);
            } else {
                // One 128-bit window for the timestamp's control bits and
                // payload (at most 68 bits), one for the value's (at most
                // 77): two loads a sample instead of one per field.
                let w = r.window();
                let dod = match (!w).leading_zeros() {
                    0 => {
                        r.skip(1);
                        0
                    }
                    1 => {
                        r.skip(2 + 14);
                        sign_extend((w << 2 >> (128 - 14)) as u64, 14)
                    }
                    2 => {
                        r.skip(3 + 17);
                        sign_extend((w << 3 >> (128 - 17)) as u64, 17)
                    }
                    3 => {
                        r.skip(4 + 20);
                        sign_extend((w << 4 >> (128 - 20)) as u64, 20)
                    }
                    _ => {
                        r.skip(4 + 64);
                        (w << 4 >> 64) as u64 as i64
                    }
                };
                delta = delta.wrapping_add(dod);
                ts = ts.wrapping_add(delta);
                let w = r.window();
                if w >> 127 == 0 {
                    r.skip(1);
                } else {
                    let at = if (w >> 126) & 1 == 0 {
                        2
                    } else {
                        leading = (w << 2 >> (128 - 5)) as u8;
                        let sig = (w << 7 >> (128 - 6)) as u8;
                        let sig = if sig == 0 { 64 } else { sig };
                        trailing = 64u8.saturating_sub(leading).saturating_sub(sig);
                        13
                    };
                    let sig = 64u32.saturating_sub(u32::from(leading) + u32::from(trailing));
                    if sig > 0 {
                        value ^= ((w << at >> (128 - sig)) as u64) << trailing.min(63);
                    }
                    r.skip(at + sig);
                }
            }
            if ts > max {
                break;
            }
            if ts >= min {
                f(ts, f64::from_bits(value));
            }
        }
    }
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// The next bits, first one at the top: at least 121 valid (zeros
    /// past the end).
    fn window(&self) -> u128 {
        let at = self.pos / 8;
        let rest = self.bytes.get(at..).unwrap_or(&[]);
        let window = match rest.first_chunk::<16>() {
            Some(b) => u128::from_be_bytes(*b),
            None => {
                let mut b = [0u8; 16];
                b[..rest.len()].copy_from_slice(rest);
                u128::from_be_bytes(b)
            }
        };
        window << (self.pos % 8)
    }

    fn skip(&mut self, n: u32) {
        self.pos += n as usize;
    }

    /// Reads `n` bits (at most 64); past the end reads zeros (cannot
    /// happen for a chunk we wrote, and must not panic if it did).
    fn read(&mut self, n: u8) -> u64 {
        if n == 0 {
            return 0;
        }
        let n = u32::from(n.min(64));
        let v = (self.window() >> (128 - n)) as u64;
        self.skip(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn round_trip(samples: &[(i64, u64)]) -> Vec<(i64, u64)> {
        let mut c = XorChunk::default();
        for &(t, v) in samples {
            c.push(t, f64::from_bits(v));
        }
        let mut out = Vec::new();
        c.decode_into(&mut out);
        out.iter()
            .map(|s| (s.timestamp_ms, s.value.to_bits()))
            .collect()
    }

    #[test]
    fn regular_scrapes_compress_well() {
        let mut c = XorChunk::default();
        for i in 0..480i64 {
            c.push(1_700_000_000_000 + i * 15_000, (i / 4) as f64);
        }
        // ~2h of a 15s counter: raw would be 7680 bytes.
        assert!(c.bytes.len() < 600, "{} bytes", c.bytes.len());
        let mut out = Vec::new();
        c.decode_into(&mut out);
        assert_eq!(out.len(), 480);
        assert_eq!(out[479].timestamp_ms, 1_700_000_000_000 + 479 * 15_000);
        assert_eq!(out[479].value, 119.0);
    }

    /// A mark costs 32 bytes per 120 samples (0.27 bytes a sample), as
    /// DESIGN.md says.
    #[test]
    fn marks_are_small() {
        assert_eq!(std::mem::size_of::<Mark>(), 32);
    }

    #[test]
    fn stale_markers_and_extremes_round_trip() {
        let s = [
            (i64::MIN, 0x7ff0_0000_0000_0002),
            (-5, 0),
            (0, f64::INFINITY.to_bits()),
            (1, 1.5f64.to_bits()),
            (i64::MAX, u64::MAX),
        ];
        assert_eq!(round_trip(&s), s);
    }

    proptest! {
        #[test]
        fn round_trips_any_increasing_series(
            start in any::<i64>(),
            steps in prop::collection::vec((1i64..1_000_000_000, any::<u64>(), any::<bool>()), 0..200),
        ) {
            let mut t = start;
            let mut prev = 0u64;
            let mut samples = Vec::new();
            for (dt, v, repeat) in steps {
                let Some(next) = t.checked_add(dt) else { break };
                t = next;
                let v = if repeat { prev } else { v };
                prev = v;
                samples.push((t, v));
            }
            prop_assert_eq!(round_trip(&samples), samples);
        }

        /// Reading a time range (starting at a mark, stopping past the
        /// end) gives exactly the samples a full decode has in it.
        #[test]
        fn ranges_read_from_marks_match_a_full_decode(
            steps in prop::collection::vec((1i64..100_000, any::<u64>(), 0u8..4), 1..700),
            a in 0i64..80_000_000,
            len in 0i64..80_000_000,
        ) {
            let mut c = XorChunk::default();
            let mut t = 0i64;
            let mut prev = 0u64;
            for (dt, v, kind) in steps {
                t += dt;
                // Repeats, small steps and arbitrary bits: every XOR case.
                let v = match kind {
                    0 => prev,
                    1 => (f64::from_bits(prev) + 1.0).to_bits(),
                    _ => v,
                };
                prev = v;
                c.push(t, f64::from_bits(v));
            }
            let mut all = Vec::new();
            c.decode_into(&mut all);
            let (min, max) = (a, a + len);
            let want: Vec<(i64, u64)> = all
                .iter()
                .filter(|s| s.timestamp_ms >= min && s.timestamp_ms <= max)
                .map(|s| (s.timestamp_ms, s.value.to_bits()))
                .collect();
            let mut got = Vec::new();
            c.decode_range(min, max, |t, v| got.push((t, v.to_bits())));
            prop_assert_eq!(got, want);
        }
    }
}
