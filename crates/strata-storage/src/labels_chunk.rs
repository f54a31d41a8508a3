//! The `labels` map column of a metrics file, encoded a series at a time.
//!
//! Parquet's Arrow writer dictionary-encodes a `map<string, string>` value
//! by value: each row's keys and values (about 18 strings on the load
//! generator's workload) are hashed and compared against the dictionary.
//! `perf` put that at ~40% of flush and compaction CPU. Rows come series by
//! series and a series' labels never change, so this encoder interns a
//! series' labels once and repeats their dictionary indices for each of its
//! rows. It writes what Parquet's writer writes for the column: per leaf
//! (`key`, `value`) a PLAIN dictionary page and data pages (v1) of
//! RLE-dictionary indices with RLE repetition and definition levels, each
//! compressed, and an offset index; no statistics (they prune nothing on a
//! map entry, and the Arrow path had them off too).

use std::collections::HashMap;

use bytes::Bytes;
use parquet::basic::{Compression, Encoding, PageType};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, PageEncodingStats};
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use crate::StorageError;

/// Largest dictionary page written (Parquet page sizes are i32).
const MAX_DICTIONARY_BYTES: usize = 1 << 30;

/// One leaf's dictionary: values in first-seen order, PLAIN-encoded.
#[derive(Default)]
struct Dict {
    index: HashMap<Box<str>, u32>,
    page: Vec<u8>,
    len: u32,
}

impl Dict {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.len;
        self.len += 1;
        self.page.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.page.extend_from_slice(s.as_bytes());
        self.index.insert(s.into(), i);
        i
    }

    /// Bits per index: enough for the largest.
    fn bit_width(&self) -> u8 {
        (u32::BITS - self.len.saturating_sub(1).leading_zeros()) as u8
    }
}

/// Consecutive rows of one series: its entries are
/// `keys[start..start + len]` / `values[start..start + len]`.
struct Run {
    start: usize,
    len: usize,
    rows: usize,
}

/// The `labels` column of one row group, built series by series.
#[derive(Default)]
pub(crate) struct LabelsColumn {
    keys: Dict,
    values: Dict,
    key_idx: Vec<u32>,
    value_idx: Vec<u32>,
    runs: Vec<Run>,
    rows: usize,
}

/// Which leaf of the map.
#[derive(Clone, Copy)]
pub(crate) enum Leaf {
    Key,
    Value,
}

impl LabelsColumn {
    /// Rows so far.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes of the two dictionaries so far.
    pub(crate) fn dictionary_bytes(&self) -> usize {
        self.keys.page.len() + self.values.page.len()
    }

    /// Starts a series: its rows follow with [`Self::extend`].
    pub(crate) fn start_series<'a>(&mut self, labels: impl Iterator<Item = (&'a str, &'a str)>) {
        let start = self.key_idx.len();
        for (k, v) in labels {
            self.key_idx.push(self.keys.intern(k));
            self.value_idx.push(self.values.intern(v));
        }
        self.runs.push(Run {
            start,
            len: self.key_idx.len() - start,
            rows: 0,
        });
    }

    /// `rows` more rows of the series last started.
    pub(crate) fn extend(&mut self, rows: usize) {
        if let Some(run) = self.runs.last_mut() {
            run.rows += rows;
            self.rows += rows;
        }
    }

    /// The data pages: each a list of (run, rows of it), `page_rows`
    /// rows a page but the last.
    fn pages(&self, page_rows: usize) -> Vec<Vec<(usize, usize)>> {
        let page_rows = page_rows.max(1);
        let (mut pages, mut page, mut rows) = (Vec::new(), Vec::new(), 0);
        for (r, run) in self.runs.iter().enumerate() {
            let mut left = run.rows;
            while left > 0 {
                let n = left.min(page_rows - rows);
                page.push((r, n));
                rows += n;
                left -= n;
                if rows == page_rows {
                    pages.push(std::mem::take(&mut page));
                    rows = 0;
                }
            }
        }
        if rows > 0 {
            pages.push(page);
        }
        pages
    }

    /// Encodes one leaf as a column chunk: its bytes (offsets relative to
    /// their start) and what the row group writer needs to splice them in.
    /// Data pages hold at most `page_rows` rows.
    pub(crate) fn encode(
        &self,
        leaf: Leaf,
        descr: ColumnDescPtr,
        page_rows: usize,
        compression: Compression,
    ) -> Result<(Bytes, ColumnCloseResult), StorageError> {
        if descr.max_def_level() != 1 || descr.max_rep_level() != 1 {
            return Err(StorageError::Corrupt {
                message: format!(
                    "labels leaf {} has levels ({}, {}), not a map<string, string>",
                    descr.path(),
                    descr.max_def_level(),
                    descr.max_rep_level()
                ),
            });
        }
        let (dict, idx) = match leaf {
            Leaf::Key => (&self.keys, &self.key_idx),
            Leaf::Value => (&self.values, &self.value_idx),
        };
        // Page sizes are i32 in Parquet; a row group's distinct label
        // values stay far below (label lengths are limited at ingest).
        if dict.page.len() > MAX_DICTIONARY_BYTES {
            return Err(StorageError::Corrupt {
                message: format!(
                    "the labels of one row group hold {} bytes of distinct {}, over {MAX_DICTIONARY_BYTES}",
                    dict.page.len(),
                    descr.path()
                ),
            });
        }
        let level = match compression {
            Compression::UNCOMPRESSED => None,
            Compression::ZSTD(level) => Some(level.compression_level()),
            other => {
                return Err(StorageError::Corrupt {
                    message: format!("labels pages are written with zstd, not {other}"),
                });
            }
        };
        let zstd_error = |e: std::io::Error| ParquetError::General(format!("zstd: {e}"));
        let mut zstd = level
            .map(zstd::bulk::Compressor::new)
            .transpose()
            .map_err(zstd_error)?;
        let mut compress = |raw: Vec<u8>| -> Result<(Bytes, usize), StorageError> {
            let size = raw.len();
            match zstd.as_mut() {
                Some(z) => Ok((z.compress(&raw).map_err(zstd_error)?.into(), size)),
                None => Ok((raw.into(), size)),
            }
        };

        let mut sink = TrackedWrite::new(Vec::new());
        let mut pages = SerializedPageWriter::new(&mut sink);
        let (buf, size) = compress(dict.page.clone())?;
        let dict_spec = pages.write_page(CompressedPage::new(
            Page::DictionaryPage {
                buf,
                num_values: dict.len,
                encoding: Encoding::PLAIN,
                is_sorted: false,
            },
            size,
        ))?;
        let (mut compressed, mut uncompressed) =
            (dict_spec.compressed_size, dict_spec.uncompressed_size);
        let mut locations = Vec::new();
        let mut num_values = 0i64;
        let bit_width = dict.bit_width();

        let mut first_row = 0usize;
        for segments in self.pages(page_rows) {
            let (mut levels, mut values, mut all_defined) = (0, 0, true);
            for &(r, n) in &segments {
                let len = self.runs[r].len;
                levels += n * len.max(1);
                values += n * len;
                all_defined &= len > 0;
            }
            let mut page = PageBuilder::new(bit_width, levels, values, all_defined);
            for &(r, n) in &segments {
                let run = &self.runs[r];
                page.push_rows(&idx[run.start..run.start + run.len], n);
            }
            let rows = page.rows;
            let raw = page.finish();
            let (buf, size) = compress(raw)?;
            let spec = pages.write_page(CompressedPage::new(
                Page::DataPage {
                    buf,
                    num_values: levels as u32,
                    encoding: Encoding::RLE_DICTIONARY,
                    def_level_encoding: Encoding::RLE,
                    rep_level_encoding: Encoding::RLE,
                    statistics: None,
                },
                size,
            ))?;
            compressed += spec.compressed_size;
            uncompressed += spec.uncompressed_size;
            num_values += levels as i64;
            locations.push(PageLocation {
                offset: spec.offset as i64,
                compressed_page_size: spec.compressed_size as i32,
                first_row_index: first_row as i64,
            });
            first_row += rows;
        }
        let bytes_written = sink.bytes_written() as u64;
        let data_pages = locations.len();
        let metadata = ColumnChunkMetaData::builder(descr)
            .set_compression(compression)
            .set_encodings(vec![
                Encoding::PLAIN,
                Encoding::RLE,
                Encoding::RLE_DICTIONARY,
            ])
            .set_page_encoding_stats(vec![
                PageEncodingStats {
                    page_type: PageType::DICTIONARY_PAGE,
                    encoding: Encoding::PLAIN,
                    count: 1,
                },
                PageEncodingStats {
                    page_type: PageType::DATA_PAGE,
                    encoding: Encoding::RLE_DICTIONARY,
                    count: data_pages as i32,
                },
            ])
            .set_total_compressed_size(compressed as i64)
            .set_total_uncompressed_size(uncompressed as i64)
            .set_num_values(num_values)
            .set_dictionary_page_offset(Some(dict_spec.offset as i64))
            .set_data_page_offset(
                locations
                    .first()
                    .map_or(dict_spec.offset as i64, |l| l.offset),
            )
            .build()?;
        let bytes = sink.into_inner()?;
        Ok((
            Bytes::from(bytes),
            ColumnCloseResult {
                bytes_written,
                rows_written: self.rows as u64,
                metadata,
                bloom_filter: None,
                column_index: None,
                offset_index: Some(OffsetIndexMetaData {
                    page_locations: locations,
                    unencoded_byte_array_data_bytes: None,
                }),
            },
        ))
    }
}

/// One data page being built: levels and indices in Parquet's
/// RLE/bit-packing hybrid, written as the rows come.
struct PageBuilder {
    rep: BitPacked,
    def: Def,
    indices: BitPacked,
    bit_width: u8,
    rows: usize,
    levels: usize,
}

/// Definition levels: all 1 (one RLE run) unless a row has no labels.
enum Def {
    Ones(usize),
    Mixed(BitPacked),
}

impl PageBuilder {
    /// A page of `rows` rows holding `levels` level entries and `values`
    /// dictionary indices.
    fn new(bit_width: u8, levels: usize, values: usize, all_defined: bool) -> Self {
        Self {
            rep: BitPacked::new(1, levels),
            def: if all_defined {
                Def::Ones(0)
            } else {
                Def::Mixed(BitPacked::new(1, levels))
            },
            indices: BitPacked::new(bit_width, values),
            bit_width,
            rows: 0,
            levels: 0,
        }
    }

    /// `n` rows whose map holds `entries` (dictionary indices).
    fn push_rows(&mut self, entries: &[u32], n: usize) {
        self.rows += n;
        if entries.is_empty() {
            // An empty map: one level, defined up to the map, no value.
            for _ in 0..n {
                self.rep.put(0);
                if let Def::Mixed(d) = &mut self.def {
                    d.put(0);
                }
            }
            self.levels += n;
            return;
        }
        for _ in 0..n {
            self.rep.put(0);
            for _ in 1..entries.len() {
                self.rep.put(1);
            }
            for &i in entries {
                self.indices.put(i);
            }
        }
        let levels = n * entries.len();
        match &mut self.def {
            Def::Ones(count) => *count += levels,
            Def::Mixed(d) => (0..levels).for_each(|_| d.put(1)),
        }
        self.levels += levels;
    }

    /// The uncompressed page: repetition then definition levels (each
    /// behind its 4-byte length), then the bit width and the indices.
    fn finish(self) -> Vec<u8> {
        let rep = self.rep.finish();
        let def = match self.def {
            Def::Ones(count) => {
                let mut run = Vec::with_capacity(11);
                varint(&mut run, (count as u64) << 1);
                run.push(1);
                run
            }
            Def::Mixed(d) => d.finish(),
        };
        let indices = self.indices.finish();
        let mut out = Vec::with_capacity(9 + rep.len() + def.len() + indices.len());
        out.extend_from_slice(&(rep.len() as u32).to_le_bytes());
        out.extend_from_slice(&rep);
        out.extend_from_slice(&(def.len() as u32).to_le_bytes());
        out.extend_from_slice(&def);
        out.push(self.bit_width);
        out.extend_from_slice(&indices);
        out
    }
}

/// Values in bit-packed runs of the RLE/bit-packing hybrid: a run header
/// (`groups << 1 | 1`, ULEB128) before each 63 groups of 8 values, each
/// value `width` bits, least significant first; the last group padded
/// with zeros. The number of values is known up front, so each header is
/// written when its run starts.
struct BitPacked {
    out: Vec<u8>,
    width: u32,
    acc: u64,
    bits: u32,
    left_in_run: usize,
    left: usize,
}

/// Values per bit-packed run, as Parquet's writers make them.
const RUN_VALUES: usize = 63 * 8;

impl BitPacked {
    fn new(width: u8, values: usize) -> Self {
        Self {
            out: Vec::with_capacity(values * usize::from(width) / 8 + values / RUN_VALUES * 2 + 8),
            width: u32::from(width),
            acc: 0,
            bits: 0,
            left_in_run: 0,
            left: values,
        }
    }

    #[inline]
    fn put(&mut self, v: u32) {
        if self.left_in_run == 0 {
            let groups = self.left.min(RUN_VALUES).div_ceil(8);
            varint(&mut self.out, ((groups as u64) << 1) | 1);
            self.left_in_run = groups * 8;
        }
        self.acc |= u64::from(v) << self.bits;
        self.bits += self.width;
        while self.bits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.bits -= 8;
        }
        self.left_in_run -= 1;
        self.left = self.left.saturating_sub(1);
    }

    fn finish(mut self) -> Vec<u8> {
        // Pads the last group: its bits end on a byte boundary.
        while self.left_in_run > 0 {
            self.put(0);
        }
        self.out
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}
