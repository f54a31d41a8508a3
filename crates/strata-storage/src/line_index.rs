//! A logs file's line index: per block of [`BLOCK_ROWS`] rows, a bloom
//! filter over the lines' sampled 8-byte substrings, so a needle search
//! (`|= "…"`, a regex with a literal part, SQL `LIKE '%…%'`) reads only
//! the blocks that may hold the needle.
//!
//! What is indexed: for every line, every window of [`WINDOW`]
//! consecutive 8-byte substrings (k-grams) chooses the one whose hash is
//! least (its *minimizer*), and the block's filter holds every chosen
//! hash. A needle of at least [`MIN_NEEDLE`] bytes has windows of its
//! own; each is also a window of any line holding the needle, where it
//! chose the same k-gram (the choice depends on the window's bytes
//! only). So a block whose filter lacks one of the needle's minimizers
//! cannot hold the needle: no false negative, whatever the tokens or
//! separators, and case-sensitive as `|=` is. About 2 of every
//! `WINDOW + 1` positions choose a new minimizer; repeated text (the
//! same paths, words and formats in every line) adds nothing to a
//! block's filter, so its size follows the text's variety, not its
//! length. A needle shorter than [`MIN_NEEDLE`] is searched in every
//! block.
//!
//! Each filter has [`BITS_PER_ITEM`] bits per distinct hash and
//! [`PROBES`] probes, about 9% false positives per hash; a needle brings
//! several hashes (a 36-byte UUID about 6), and a block is read only
//! when all of them pass.
//!
//! The writer puts the index after the last row group (Parquet readers
//! only read what the footer points at, so other engines skip it) and
//! names where it is under the footer key [`LineIndex::KEY`], as a
//! metrics file does its series index.
//!
//! Layout (integers LEB128 varints unless said): `b"SLI1"`, the k-gram
//! length, the window, the block rows, the probes, the file's rows, the
//! block count, then each block's filter: its 64-bit word count and the
//! words (8 little-endian bytes each).

use strata_wal::record::put_uvarint;

use crate::StorageError;

const MAGIC: &[u8; 4] = b"SLI1";
/// Bytes per k-gram (one little-endian `u64` load).
const KGRAM: usize = 8;
/// K-grams per window.
pub const WINDOW: usize = 8;
/// The shortest needle with a window of its own.
pub const MIN_NEEDLE: usize = KGRAM + WINDOW - 1;
/// Rows per block: the unit a search reads or skips.
pub const BLOCK_ROWS: u64 = 8192;
const BITS_PER_ITEM: usize = 5;
const PROBES: u32 = 3;
/// Largest index decoded.
const MAX_DECODED: u64 = 1 << 31;

/// Murmur3's 64-bit finaliser: every input bit moves every output bit.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Calls `out` with the minimizer of every window of `text` (a hash
/// repeated by consecutive windows once), reusing `hashes` as scratch.
fn minimizers(text: &[u8], hashes: &mut Vec<u64>, mut out: impl FnMut(u64)) {
    if text.len() < MIN_NEEDLE {
        return;
    }
    hashes.clear();
    hashes.extend(text.windows(KGRAM).map(|w| {
        let mut b = [0u8; KGRAM];
        b.copy_from_slice(w);
        mix(u64::from_le_bytes(b))
    }));
    // The least hash of the window ending at `end` and where it is; when
    // it leaves the window, the window is scanned again (about every
    // WINDOW / 2 positions on varied text).
    let least_in = |from: usize, to: usize| -> usize {
        let mut at = from;
        for i in from + 1..to {
            if hashes[i] <= hashes[at] {
                at = i;
            }
        }
        at
    };
    let mut at = least_in(0, WINDOW);
    let mut last = hashes[at];
    out(last);
    for end in WINDOW..hashes.len() {
        let start = end + 1 - WINDOW;
        if at < start {
            at = least_in(start, end + 1);
        } else if hashes[end] <= hashes[at] {
            at = end;
        }
        if hashes[at] != last {
            last = hashes[at];
            out(last);
        }
    }
}

/// A bloom filter's bit positions for `item` in `bits` bits.
fn probes(item: u64, bits: u64) -> impl Iterator<Item = u64> {
    let a = item as u32;
    let b = ((item >> 32) as u32) | 1;
    (0..PROBES).map(move |i| {
        let x = a.wrapping_add(i.wrapping_mul(b));
        (u64::from(x) * bits) >> 32
    })
}

/// Collects a file's line index while its rows are written.
#[derive(Debug, Default)]
pub(crate) struct LineIndexWriter {
    /// The open block's minimizers (with repeats until it closes).
    items: Vec<u64>,
    scratch: Vec<u64>,
    rows: u64,
    /// Closed blocks: word counts and words.
    counts: Vec<u64>,
    words: Vec<u64>,
}

impl LineIndexWriter {
    /// The next row's line.
    pub(crate) fn push(&mut self, line: &str) {
        let items = &mut self.items;
        minimizers(line.as_bytes(), &mut self.scratch, |h| items.push(h));
        self.rows += 1;
        if self.rows.is_multiple_of(BLOCK_ROWS) {
            self.close_block();
        }
    }

    fn close_block(&mut self) {
        self.items.sort_unstable();
        self.items.dedup();
        let bits = (self.items.len() * BITS_PER_ITEM).div_ceil(64).max(1) * 64;
        let start = self.words.len();
        self.words.resize(start + bits / 64, 0);
        let block = &mut self.words[start..];
        for &item in &self.items {
            for p in probes(item, bits as u64) {
                block[(p / 64) as usize] |= 1 << (p % 64);
            }
        }
        self.counts.push((bits / 64) as u64);
        self.items.clear();
    }

    /// The encoded index (`None` for a file without rows).
    pub(crate) fn finish(mut self) -> Option<Vec<u8>> {
        if self.rows == 0 {
            return None;
        }
        if !self.rows.is_multiple_of(BLOCK_ROWS) {
            self.close_block();
        }
        let mut out = Vec::with_capacity(64 + self.counts.len() * 3 + self.words.len() * 8);
        out.extend_from_slice(MAGIC);
        for v in [
            KGRAM as u64,
            WINDOW as u64,
            BLOCK_ROWS,
            u64::from(PROBES),
            self.rows,
            self.counts.len() as u64,
        ] {
            put_uvarint(&mut out, v);
        }
        let mut words = self.words.iter();
        for &count in &self.counts {
            put_uvarint(&mut out, count);
            for w in words.by_ref().take(count as usize) {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        Some(out)
    }
}

/// Where a file's line index is: byte offset and length, as the footer
/// value writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineIndexLocation {
    pub offset: u64,
    pub len: u64,
}

impl LineIndexLocation {
    pub(crate) fn to_footer(self) -> String {
        format!("{} {}", self.offset, self.len)
    }

    /// Parses a footer value; `None` if it is not one.
    pub fn from_footer(s: &str) -> Option<Self> {
        let (offset, len) = s.split_once(' ')?;
        Some(Self {
            offset: offset.parse().ok()?,
            len: len.parse().ok()?,
        })
    }
}

/// What a line must contain to be read: the needles a query's line
/// filters require.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineNeed {
    /// The line contains these bytes.
    Substring(Vec<u8>),
    /// Every one of these.
    All(Vec<LineNeed>),
    /// At least one of these.
    Any(Vec<LineNeed>),
}

impl LineNeed {
    /// Whether an index can rule a block out by this (a needle long
    /// enough somewhere in it); one that cannot is left out.
    pub fn can_prune(&self) -> bool {
        match self {
            LineNeed::Substring(s) => s.len() >= MIN_NEEDLE,
            LineNeed::All(all) => all.iter().any(LineNeed::can_prune),
            LineNeed::Any(any) => !any.is_empty() && any.iter().all(LineNeed::can_prune),
        }
    }
}

/// A need ready to test lines with: the head's rows are tested before
/// their lines are copied out.
#[derive(Debug)]
pub enum LineTest {
    Substring(Box<memchr::memmem::Finder<'static>>),
    All(Vec<LineTest>),
    Any(Vec<LineTest>),
}

impl LineTest {
    pub fn new(need: &LineNeed) -> Self {
        match need {
            LineNeed::Substring(s) => {
                LineTest::Substring(Box::new(memchr::memmem::Finder::new(s).into_owned()))
            }
            LineNeed::All(all) => LineTest::All(all.iter().map(LineTest::new).collect()),
            LineNeed::Any(any) => LineTest::Any(any.iter().map(LineTest::new).collect()),
        }
    }

    /// Whether text of which `may_hold` answers "may it contain these
    /// bytes" may hold a line meeting the need (the log head's packed
    /// chunks are asked this before they are unpacked).
    pub fn may_pass(&self, may_hold: &dyn Fn(&[u8]) -> bool) -> bool {
        match self {
            LineTest::Substring(f) => may_hold(f.needle()),
            LineTest::All(all) => all.iter().all(|t| t.may_pass(may_hold)),
            LineTest::Any(any) => any.is_empty() || any.iter().any(|t| t.may_pass(may_hold)),
        }
    }

    /// Whether `line` meets the need (holds what it must).
    pub fn holds(&self, line: &[u8]) -> bool {
        match self {
            LineTest::Substring(f) => f.find(line).is_some(),
            LineTest::All(all) => all.iter().all(|t| t.holds(line)),
            // No alternatives: nothing is ruled out.
            LineTest::Any(any) => any.is_empty() || any.iter().any(|t| t.holds(line)),
        }
    }
}

/// A need with its needles' minimizers worked out once per query.
#[derive(Debug)]
enum Probe {
    /// A block passes when its filter holds every hash.
    Hashes(Vec<u64>),
    All(Vec<Probe>),
    Any(Vec<Probe>),
}

impl Probe {
    fn of(need: &LineNeed, scratch: &mut Vec<u64>) -> Self {
        match need {
            LineNeed::Substring(s) => {
                let mut hashes = Vec::new();
                minimizers(s, scratch, |h| hashes.push(h));
                hashes.sort_unstable();
                hashes.dedup();
                Probe::Hashes(hashes)
            }
            LineNeed::All(all) => Probe::All(all.iter().map(|n| Probe::of(n, scratch)).collect()),
            LineNeed::Any(any) => Probe::Any(any.iter().map(|n| Probe::of(n, scratch)).collect()),
        }
    }

    fn passes(&self, block: &[u64]) -> bool {
        match self {
            Probe::Hashes(hashes) => {
                let bits = block.len() as u64 * 64;
                hashes.iter().all(|&h| {
                    probes(h, bits).all(|p| block[(p / 64) as usize] & (1 << (p % 64)) != 0)
                })
            }
            Probe::All(all) => all.iter().all(|p| p.passes(block)),
            Probe::Any(any) => any.iter().any(|p| p.passes(block)),
        }
    }
}

/// A decoded line index.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LineIndex {
    /// The file's rows.
    pub rows: u64,
    block_rows: u64,
    /// Block `i`'s filter is `words[ends[i - 1]..ends[i]]` (from 0 for the
    /// first).
    ends: Vec<usize>,
    words: Vec<u64>,
}

impl LineIndex {
    /// The footer key naming where the index is.
    pub const KEY: &'static str = "strata.line_index.v1";

    /// Decodes an index as [`LineIndexWriter::finish`] wrote it.
    pub fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let bad = |what: &str| StorageError::Corrupt {
            message: format!("line index: {what}"),
        };
        if bytes.len() as u64 > MAX_DECODED {
            return Err(bad("larger than any index written"));
        }
        let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| bad("no magic"))?;
        let mut r = Reader { bytes: rest };
        let (kgram, window, block_rows, probes) =
            (r.varint()?, r.varint()?, r.varint()?, r.varint()?);
        if (kgram, window, probes) != (KGRAM as u64, WINDOW as u64, u64::from(PROBES))
            || block_rows == 0
        {
            return Err(bad("written with other parameters"));
        }
        let rows = r.varint()?;
        let blocks = r.varint()?;
        if blocks != rows.div_ceil(block_rows) {
            return Err(bad("block count does not cover the rows"));
        }
        let mut ends = Vec::with_capacity(blocks.min(1 << 20) as usize);
        let mut words = Vec::with_capacity(r.bytes.len() / 8);
        for _ in 0..blocks {
            let count = r.varint()?;
            let len = count
                .checked_mul(8)
                .filter(|&n| count > 0 && n <= r.bytes.len() as u64)
                .ok_or_else(|| bad("a filter runs past the end"))? as usize;
            let (filter, rest) = r.bytes.split_at(len);
            words.extend(
                filter
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
            );
            r.bytes = rest;
            ends.push(words.len());
        }
        if !r.bytes.is_empty() {
            return Err(bad("bytes after the last filter"));
        }
        Ok(Self {
            rows,
            block_rows,
            ends,
            words,
        })
    }

    /// The file's blocks.
    pub fn blocks(&self) -> u64 {
        self.ends.len() as u64
    }

    /// Bytes held.
    pub fn memory(&self) -> usize {
        self.words.len() * 8 + self.ends.len() * 8
    }

    /// The row ranges (from, to) of the blocks that may hold lines
    /// meeting `need`, in order, adjacent ones joined.
    ///
    /// The rows a range holds are `to - from`; blocks hold
    /// [`BLOCK_ROWS`] rows but the last.
    pub fn ranges(&self, need: &LineNeed) -> Vec<(u64, u64)> {
        let probe = Probe::of(need, &mut Vec::new());
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut start = 0;
        for (i, &end) in self.ends.iter().enumerate() {
            let block = &self.words[start..end];
            start = end;
            if !probe.passes(block) {
                continue;
            }
            // Saturating: a damaged index's numbers may be anything.
            let from = (i as u64).saturating_mul(self.block_rows);
            let to = from.saturating_add(self.block_rows).min(self.rows);
            match out.last_mut() {
                Some(last) if last.1 == from => last.1 = to,
                _ => out.push((from, to)),
            }
        }
        out
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64, StorageError> {
        let mut v = 0u64;
        for (i, &b) in self.bytes.iter().enumerate().take(10) {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.bytes = &self.bytes[i + 1..];
                return Ok(v);
            }
        }
        Err(StorageError::Corrupt {
            message: "line index: a number runs past the end".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(lines: &[String]) -> LineIndex {
        let mut w = LineIndexWriter::default();
        for l in lines {
            w.push(l);
        }
        LineIndex::decode(&w.finish().unwrap()).unwrap()
    }

    fn lines(n: u64) -> Vec<String> {
        (0..n)
            .map(|i| {
                format!(
                    "2026-12-07 10:00:{:02} INFO odoo.models.stock.picking: picking {} by uid {} took {:.3}s",
                    i % 60,
                    mix(i) % 200_000,
                    mix(i + 7) % 400,
                    (mix(i + 3) % 2500) as f64 / 1000.0
                )
            })
            .collect()
    }

    #[test]
    fn a_needle_is_found_in_its_block_only() {
        let mut all = lines(3 * BLOCK_ROWS + 100);
        let needle = "trace_id=4bf92f3577b34da6a3ce929d0e0e4736";
        let row = 2 * BLOCK_ROWS + 17;
        all[row as usize].push_str(&format!(" {needle} done"));
        let index = index_of(&all);
        assert_eq!(index.rows, 3 * BLOCK_ROWS + 100);
        let whole = LineNeed::Substring(needle.as_bytes().to_vec());
        assert_eq!(index.ranges(&whole), vec![(2 * BLOCK_ROWS, 3 * BLOCK_ROWS)]);
        // Any substring long enough, across what a tokenizer would split.
        for (from, to) in [(9, 9 + MIN_NEEDLE), (0, 20), (5, needle.len())] {
            let part = LineNeed::Substring(needle.as_bytes()[from..to].to_vec());
            assert!(
                index
                    .ranges(&part)
                    .contains(&(2 * BLOCK_ROWS, 3 * BLOCK_ROWS)),
                "{from}..{to}"
            );
        }
        // A needle nowhere: at most a rare false positive, not all blocks.
        let absent = LineNeed::Substring(b"4bf92f3577b34da6a3ce929d0e0e4737".to_vec());
        assert!(index.ranges(&absent).len() <= 1);
    }

    #[test]
    fn short_needles_and_any_of_several_read_what_they_must() {
        let mut all = lines(2 * BLOCK_ROWS);
        all[5].push_str(" order WH/OUT/0000123456789");
        all[BLOCK_ROWS as usize + 5].push_str(" order WH/IN/00009876543210");
        let index = index_of(&all);
        let everything = vec![(0, 2 * BLOCK_ROWS)];
        let short = LineNeed::Substring(b"WH/OUT".to_vec());
        assert!(!short.can_prune());
        assert_eq!(index.ranges(&short), everything);
        let out = LineNeed::Substring(b"WH/OUT/0000123456789".to_vec());
        let inn = LineNeed::Substring(b"WH/IN/00009876543210".to_vec());
        assert_eq!(index.ranges(&out), vec![(0, BLOCK_ROWS)]);
        let either = LineNeed::Any(vec![out.clone(), inn.clone()]);
        assert_eq!(index.ranges(&either), everything);
        let both = LineNeed::All(vec![out, inn]);
        assert!(both.can_prune());
        assert!(index.ranges(&both).is_empty());
    }

    #[test]
    fn decoding_refuses_what_was_not_written() {
        let mut w = LineIndexWriter::default();
        for l in lines(100) {
            w.push(&l);
        }
        let bytes = w.finish().unwrap();
        assert!(LineIndex::decode(&bytes).is_ok());
        assert!(LineIndex::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(LineIndex::decode(&longer).is_err());
        assert!(LineIndex::decode(b"SLI0").is_err());
        assert!(LineIndex::decode(&[]).is_err());
        assert_eq!(LineIndexWriter::default().finish(), None);
        let at = LineIndexLocation { offset: 7, len: 9 };
        assert_eq!(LineIndexLocation::from_footer(&at.to_footer()), Some(at));
        assert_eq!(LineIndexLocation::from_footer("7"), None);
    }

    /// An index damaged anywhere (a byte changed, bytes cut off, its
    /// numbers' extremes) decodes to an error or to an index whose row
    /// ranges lie within its rows: a query never panics on a bad file.
    #[test]
    fn a_damaged_index_is_an_error_or_answers_within_its_rows() {
        let mut w = LineIndexWriter::default();
        for l in lines(3 * BLOCK_ROWS) {
            w.push(&l);
        }
        let good = w.finish().unwrap();
        let needs = [
            LineNeed::All(vec![LineNeed::Substring(b"picking 12345 by uid".to_vec())]),
            LineNeed::Any(vec![]),
        ];
        let check = |bytes: &[u8]| {
            if let Ok(ix) = LineIndex::decode(bytes) {
                for need in &needs {
                    for (from, to) in ix.ranges(need) {
                        assert!(from < to && to <= ix.rows, "{from}..{to} of {}", ix.rows);
                    }
                }
            }
        };
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2_000 {
            let mut bytes = good.clone();
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = next() as u8;
            check(&bytes);
            check(&good[..at]);
        }
        // The header's numbers at their extremes: 2^64 - 1 as a varint.
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        for field in 0..6 {
            let mut bytes = MAGIC.to_vec();
            for f in 0..6 {
                let v: &[u8] = match f {
                    0 => &[KGRAM as u8],
                    1 => &[WINDOW as u8],
                    3 => &[PROBES as u8],
                    _ => &[2],
                };
                bytes.extend_from_slice(if f == field { &max } else { v });
            }
            bytes.extend_from_slice(&[1; 9]);
            check(&bytes);
        }
    }
}
