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
use parquet::compression::{CodecOptionsBuilder, create_codec};
use parquet::encodings::rle::RleEncoder;
use parquet::file::metadata::{ColumnChunkMetaData, PageEncodingStats};
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use crate::StorageError;

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
        let mut codec = create_codec(compression, &CodecOptionsBuilder::default().build())?;
        let mut compress = |raw: Vec<u8>| -> Result<(Bytes, usize), StorageError> {
            let size = raw.len();
            match codec.as_mut() {
                Some(c) => {
                    let mut out = Vec::with_capacity(size / 4 + 64);
                    c.compress(&raw, &mut out)?;
                    Ok((out.into(), size))
                }
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

        let mut page = PageBuilder::new(bit_width);
        let mut first_row = 0usize;
        let mut flush = |page: &mut PageBuilder,
                         pages: &mut SerializedPageWriter<'_, Vec<u8>>,
                         first_row: usize|
         -> Result<(), StorageError> {
            let levels = page.levels as u32;
            let raw = std::mem::replace(page, PageBuilder::new(bit_width)).finish();
            let (buf, size) = compress(raw)?;
            let spec = pages.write_page(CompressedPage::new(
                Page::DataPage {
                    buf,
                    num_values: levels,
                    encoding: Encoding::RLE_DICTIONARY,
                    def_level_encoding: Encoding::RLE,
                    rep_level_encoding: Encoding::RLE,
                    statistics: None,
                },
                size,
            ))?;
            compressed += spec.compressed_size;
            uncompressed += spec.uncompressed_size;
            num_values += i64::from(levels);
            locations.push(PageLocation {
                offset: spec.offset as i64,
                compressed_page_size: spec.compressed_size as i32,
                first_row_index: first_row as i64,
            });
            Ok(())
        };
        for run in &self.runs {
            let entries = &idx[run.start..run.start + run.len];
            let mut left = run.rows;
            while left > 0 {
                let n = left.min(page_rows - page.rows);
                page.push_rows(entries, n);
                left -= n;
                if page.rows == page_rows {
                    let rows = page.rows;
                    flush(&mut page, &mut pages, first_row)?;
                    first_row += rows;
                }
            }
        }
        if page.rows > 0 {
            flush(&mut page, &mut pages, first_row)?;
        }
        drop(pages);
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

/// One data page's levels and indices.
struct PageBuilder {
    rep: RleEncoder,
    def: RleEncoder,
    indices: RleEncoder,
    bit_width: u8,
    rows: usize,
    levels: usize,
}

impl PageBuilder {
    fn new(bit_width: u8) -> Self {
        Self {
            rep: RleEncoder::new_from_buf(1, Vec::new()),
            def: RleEncoder::new_from_buf(1, Vec::new()),
            indices: RleEncoder::new_from_buf(bit_width, Vec::new()),
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
                self.def.put(0);
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
                self.def.put(1);
                self.indices.put(u64::from(i));
            }
        }
        self.levels += n * entries.len();
    }

    /// The uncompressed page: repetition then definition levels (RLE, each
    /// behind its 4-byte length), then the bit width and the indices.
    fn finish(self) -> Vec<u8> {
        let rep = self.rep.consume();
        let def = self.def.consume();
        let indices = self.indices.consume();
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
