//! Prometheus' XOR chunk (`tsdb/chunkenc/xor.go`), bit for bit: what a
//! streamed remote read answers samples in.
//!
//! ```text
//! 2 bytes   sample count, big-endian
//! sample 0  timestamp as a signed varint (zig-zag), value as 64 raw bits
//! sample 1  timestamp delta as an unsigned varint, value XOR-encoded
//! sample n  delta-of-delta:  0 → '0'; in [-(2^13-1), 2^13] → '10' + 14 bits;
//!           [-(2^16-1), 2^16] → '110' + 17; [-(2^19-1), 2^19] → '1110' + 20;
//!           otherwise '1111' + 64; value XOR-encoded
//! value     XOR with the previous: 0 → '0'; within the previous window →
//!           '10' + meaningful bits; otherwise '11' + 5 bits leading zeros
//!           (at most 31) + 6 bits length (64 → 0) + meaningful bits
//! ```
//!
//! Bits are written most significant first. Like Go's `bstream`, a byte
//! written whole at a byte boundary leaves an empty byte after it, which
//! the chunk keeps: the bytes are Prometheus' own.

/// Samples per chunk, as Prometheus cuts its head chunks.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// A chunk being written. Timestamps must not decrease.
#[derive(Debug, Clone)]
pub struct XorChunk {
    stream: Vec<u8>,
    /// Bits still free in the last byte of `stream`.
    count: u8,
    num: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl XorChunk {
    pub fn new() -> Self {
        Self {
            stream: vec![0, 0],
            count: 0,
            num: 0,
            t: 0,
            v: 0,
            t_delta: 0,
            leading: 0xff,
            trailing: 0,
        }
    }

    pub fn len(&self) -> usize {
        usize::from(self.num)
    }

    pub fn is_empty(&self) -> bool {
        self.num == 0
    }

    /// The chunk as Prometheus stores and sends it.
    pub fn bytes(&self) -> &[u8] {
        &self.stream
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.stream
    }

    /// Appends a sample; a chunk holds at most `u16::MAX` (callers cut at
    /// [`SAMPLES_PER_CHUNK`]), so a full chunk takes no more.
    pub fn append(&mut self, t: i64, v: f64) -> bool {
        if self.num == u16::MAX {
            return false;
        }
        let bits = v.to_bits();
        let mut t_delta = 0u64;
        match self.num {
            0 => {
                let mut buf = [0u8; 10];
                let n = put_uvarint(&mut buf, zigzag(t));
                for &b in &buf[..n] {
                    self.write_byte(b);
                }
                self.write_bits(bits, 64);
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let mut buf = [0u8; 10];
                let n = put_uvarint(&mut buf, t_delta);
                for &b in &buf[..n] {
                    self.write_byte(b);
                }
                self.write_value(bits);
            }
            _ => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.write_bit(false);
                } else if bit_range(dod, 14) {
                    self.write_bits(0b10, 2);
                    self.write_bits(dod as u64, 14);
                } else if bit_range(dod, 17) {
                    self.write_bits(0b110, 3);
                    self.write_bits(dod as u64, 17);
                } else if bit_range(dod, 20) {
                    self.write_bits(0b1110, 4);
                    self.write_bits(dod as u64, 20);
                } else {
                    self.write_bits(0b1111, 4);
                    self.write_bits(dod as u64, 64);
                }
                self.write_value(bits);
            }
        }
        self.t = t;
        self.v = bits;
        self.t_delta = t_delta;
        self.num += 1;
        self.stream[..2].copy_from_slice(&self.num.to_be_bytes());
        true
    }

    fn write_value(&mut self, bits: u64) {
        let delta = bits ^ self.v;
        if delta == 0 {
            self.write_bit(false);
            return;
        }
        self.write_bit(true);
        // Both at most 64: the casts cannot truncate.
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.write_bit(false);
            let (l, t) = (self.leading, self.trailing);
            self.write_bits(delta >> t, 64 - l - t);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.write_bit(true);
        self.write_bits(u64::from(leading), 5);
        // 64 significant bits are written as 0 (6 bits hold up to 63); 0
        // never occurs, since a zero delta took the branch above.
        let sig = 64 - leading - trailing;
        self.write_bits(u64::from(sig), 6);
        self.write_bits(delta >> trailing, sig);
    }

    fn write_bit(&mut self, bit: bool) {
        if self.count == 0 {
            self.stream.push(0);
            self.count = 8;
        }
        if bit && let Some(last) = self.stream.last_mut() {
            *last |= 1 << (self.count - 1);
        }
        self.count -= 1;
    }

    fn write_byte(&mut self, byte: u8) {
        if self.count == 0 {
            self.stream.push(0);
            self.count = 8;
        }
        if let Some(last) = self.stream.last_mut() {
            // `count` is 1..=8 here; a shift by 8 (a whole free byte) is 0.
            *last |= byte.checked_shr(u32::from(8 - self.count)).unwrap_or(0);
        }
        self.stream
            .push(byte.checked_shl(u32::from(self.count)).unwrap_or(0));
    }

    /// The low `n` bits of `u` (n ≤ 64), most significant first.
    fn write_bits(&mut self, u: u64, n: u8) {
        let mut n = u32::from(n);
        let mut u = u.checked_shl(64 - n).unwrap_or(0);
        while n >= 8 {
            self.write_byte((u >> 56) as u8);
            u <<= 8;
            n -= 8;
        }
        while n > 0 {
            self.write_bit(u >> 63 == 1);
            u <<= 1;
            n -= 1;
        }
    }
}

/// Whether `x` is in the `nbits` bucket: `[-(2^(n-1) - 1), 2^(n-1)]`.
fn bit_range(x: i64, nbits: u8) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn put_uvarint(buf: &mut [u8; 10], mut v: u64) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        buf[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    buf[i] = v as u8;
    i + 1
}

/// Reads bits most significant first; `None` past the end.
struct BitReader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Option<bool> {
        let byte = *self.b.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1 == 1;
        self.pos += 1;
        Some(bit)
    }

    fn bits(&mut self, n: u8) -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Some(v)
    }

    fn uvarint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.bits(8)?;
            v |= (byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// A value XOR-encoded against `v`, updating the window.
    fn value(&mut self, v: &mut u64, leading: &mut u8, trailing: &mut u8) -> Option<()> {
        if !self.bit()? {
            return Some(());
        }
        if self.bit()? {
            let l = self.bits(5)? as u8;
            let m = match self.bits(6)? as u8 {
                0 => 64,
                m => m,
            };
            *leading = l;
            *trailing = 64u8.checked_sub(l + m)?;
        }
        let m = 64u8.checked_sub(*leading + *trailing)?;
        *v ^= self.bits(m)?.checked_shl(u32::from(*trailing))?;
        Some(())
    }
}

/// The samples of an XOR chunk, read as Prometheus' `xorIterator` reads
/// them; `None` when the bytes end before the samples the header counts
/// or are not a chunk.
pub fn decode(bytes: &[u8]) -> Option<Vec<(i64, f64)>> {
    let n = u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]);
    let mut r = BitReader {
        b: &bytes[2..],
        pos: 0,
    };
    let mut out = Vec::with_capacity(usize::from(n));
    let (mut t, mut v, mut delta, mut leading, mut trailing) = (0i64, 0u64, 0u64, 0u8, 0u8);
    for i in 0..n {
        match i {
            0 => {
                let z = r.uvarint()?;
                t = ((z >> 1) as i64) ^ -((z & 1) as i64);
                v = r.bits(64)?;
            }
            1 => {
                delta = r.uvarint()?;
                t = t.wrapping_add(delta as i64);
                r.value(&mut v, &mut leading, &mut trailing)?;
            }
            _ => {
                let mut d = 0u8;
                for _ in 0..4 {
                    d <<= 1;
                    if !r.bit()? {
                        break;
                    }
                    d |= 1;
                }
                let dod = match d {
                    0b0 => 0,
                    0b1111 => r.bits(64)? as i64,
                    _ => {
                        let sz = match d {
                            0b10 => 14,
                            0b110 => 17,
                            _ => 20,
                        };
                        let bits = r.bits(sz)? as i64;
                        // Negative numbers come back as high unsigned ones.
                        if bits > 1 << (sz - 1) {
                            bits - (1 << sz)
                        } else {
                            bits
                        }
                    }
                };
                delta = (delta as i64).wrapping_add(dod) as u64;
                t = t.wrapping_add(delta as i64);
                r.value(&mut v, &mut leading, &mut trailing)?;
            }
        }
        out.push((t, f64::from_bits(v)));
    }
    Some(out)
}
