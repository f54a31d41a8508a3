//! Segment file format.
//!
//! A segment is named `<base seq, 20 digits>.wal` and holds:
//!
//! ```text
//! header (24 bytes)
//!   magic    8  b"STRATAWL"
//!   version  2  u16 LE = 1
//!   flags    2  u16 LE = 0
//!   base     8  u64 LE, sequence number of the first record
//!   crc      4  u32 LE, CRC32 of the 20 bytes above
//! frames, back to back
//!   len      4  u32 LE, payload length
//!   crc      4  u32 LE, CRC32 of seq ‖ payload
//!   seq      8  u64 LE, base + index in segment
//!   payload  len bytes (a [`crate::WalRecord`])
//! ```
//!
//! CRC32 is the IEEE 802.3 polynomial as computed by `crc32fast` (the same as
//! zlib's `crc32`).
//!
//! A frame is valid when it fits in the file, its CRC matches and its seq is
//! the next expected one. The first invalid frame ends the valid prefix.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::WalSeq;

pub const MAGIC: [u8; 8] = *b"STRATAWL";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 24;
pub const FRAME_HEADER_LEN: usize = 16;
/// Largest payload a frame may carry.
pub const MAX_RECORD_LEN: usize = 256 << 20;

/// File name of the segment whose first record is `base`.
pub fn file_name(base: WalSeq) -> String {
    format!("{:020}.wal", base.0)
}

/// Parses a segment file name back into its base sequence number.
pub fn parse_file_name(path: &Path) -> Option<WalSeq> {
    let name = path.file_name()?.to_str()?;
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(WalSeq)
}

pub fn path_for(dir: &Path, base: WalSeq) -> PathBuf {
    dir.join(file_name(base))
}

pub fn encode_header(base: WalSeq) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[10..12].copy_from_slice(&0u16.to_le_bytes());
    h[12..20].copy_from_slice(&base.0.to_le_bytes());
    let crc = crc32fast::hash(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends one frame for `payload` to `out`.
pub fn encode_frame(seq: WalSeq, payload: &[u8], out: &mut Vec<u8>) {
    let seq_bytes = seq.0.to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq_bytes);
    hasher.update(payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&hasher.finalize().to_le_bytes());
    out.extend_from_slice(&seq_bytes);
    out.extend_from_slice(payload);
}

/// Why the valid prefix of a segment ended before the end of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corruption {
    /// The header is short, has the wrong magic or version, or a bad CRC.
    BadHeader { reason: &'static str },
    /// The file ends inside a frame (a write cut short by a crash).
    Torn { offset: usize },
    /// A frame's length is larger than any record may be.
    BadLength { offset: usize, len: usize },
    /// A frame's checksum does not match its content.
    Checksum { offset: usize },
    /// A frame's sequence number is not the expected one.
    Sequence {
        offset: usize,
        expected: u64,
        found: u64,
    },
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadHeader { reason } => write!(f, "bad segment header: {reason}"),
            Self::Torn { offset } => write!(f, "torn frame at byte {offset}"),
            Self::BadLength { offset, len } => {
                write!(f, "frame at byte {offset} claims {len} bytes")
            }
            Self::Checksum { offset } => write!(f, "checksum mismatch in frame at byte {offset}"),
            Self::Sequence {
                offset,
                expected,
                found,
            } => write!(
                f,
                "frame at byte {offset} has seq {found}, expected {expected}"
            ),
        }
    }
}

/// The valid prefix of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// Base sequence number from the header (`None` if the header is bad).
    pub base: Option<WalSeq>,
    /// Each valid record's seq and payload range in the scanned bytes.
    pub records: Vec<(WalSeq, Range<usize>)>,
    /// Bytes from the start of the file that are valid (header included).
    pub valid_len: usize,
    /// Why scanning stopped before the end, if it did.
    pub corruption: Option<Corruption>,
}

/// Scans a whole segment's bytes. Never panics, whatever the bytes.
pub fn scan(bytes: &[u8]) -> SegmentScan {
    let bad_header = |reason| SegmentScan {
        base: None,
        records: Vec::new(),
        valid_len: 0,
        corruption: Some(Corruption::BadHeader { reason }),
    };
    let Some(h) = bytes.get(..HEADER_LEN) else {
        return bad_header("shorter than a header");
    };
    if h[0..8] != MAGIC {
        return bad_header("wrong magic");
    }
    let stored_crc = u32::from_le_bytes([h[20], h[21], h[22], h[23]]);
    if crc32fast::hash(&h[0..20]) != stored_crc {
        return bad_header("header checksum mismatch");
    }
    if u16::from_le_bytes([h[8], h[9]]) != VERSION {
        return bad_header("unsupported version");
    }
    let base = u64::from_le_bytes([h[12], h[13], h[14], h[15], h[16], h[17], h[18], h[19]]);

    let mut records = Vec::new();
    let mut offset = HEADER_LEN;
    let mut expected = base;
    let corruption = loop {
        if offset == bytes.len() {
            break None;
        }
        let Some(fh) = bytes.get(offset..offset + FRAME_HEADER_LEN) else {
            break Some(Corruption::Torn { offset });
        };
        let len = u32::from_le_bytes([fh[0], fh[1], fh[2], fh[3]]) as usize;
        let crc = u32::from_le_bytes([fh[4], fh[5], fh[6], fh[7]]);
        if len > MAX_RECORD_LEN {
            break Some(Corruption::BadLength { offset, len });
        }
        let start = offset + FRAME_HEADER_LEN;
        let Some(payload) = bytes.get(start..start + len) else {
            break Some(Corruption::Torn { offset });
        };
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&fh[8..16]);
        hasher.update(payload);
        if hasher.finalize() != crc {
            break Some(Corruption::Checksum { offset });
        }
        let seq =
            u64::from_le_bytes([fh[8], fh[9], fh[10], fh[11], fh[12], fh[13], fh[14], fh[15]]);
        if seq != expected {
            break Some(Corruption::Sequence {
                offset,
                expected,
                found: seq,
            });
        }
        records.push((WalSeq(seq), start..start + len));
        expected += 1;
        offset = start + len;
    };
    SegmentScan {
        base: Some(WalSeq(base)),
        records,
        valid_len: offset,
        corruption,
    }
}

#[cfg(test)]
mod tests;
