//! The value encoding Strata writes (byte-stream-split, zstd) reads back bit
//! for bit through the patched decoder (vendor/parquet/PATCHES.md): every
//! page length, every batch offset into a page, rows skipped by a selection.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float32Array, Float64Array, Int32Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Int32Type, Schema};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection, RowSelector};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// Values whose eight bytes all differ from row to row (a transposition
/// that mixes up two streams or two rows shows), NaNs with payloads,
/// infinities, signed zeros and subnormals among them.
fn values(n: usize) -> Vec<f64> {
    let special = [
        f64::from_bits(0x7ff0_0000_0000_0002), // Prometheus' stale marker
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        f64::MIN_POSITIVE / 3.0,
        f64::MAX,
    ];
    (0..n)
        .map(|i| match i % 13 {
            k @ 0..7 if i % 5 == 0 => special[k],
            _ => f64::from_bits((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x0123_4567),
        })
        .collect()
}

fn write(column: ArrayRef, page_rows: usize) -> Bytes {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "value",
        column.data_type().clone(),
        false,
    )]));
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(false)
        .set_encoding(Encoding::BYTE_STREAM_SPLIT)
        .set_data_page_row_count_limit(page_rows)
        .set_write_batch_size(page_rows.min(1024))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema.clone(), Some(props)).unwrap();
    w.write(&RecordBatch::try_new(schema, vec![column]).unwrap())
        .unwrap();
    w.close().unwrap();
    Bytes::from(out)
}

/// Every row of `file` read `batch` rows at a time, `selection` applied.
fn read(file: &Bytes, batch: usize, selection: Option<RowSelection>) -> ArrayRef {
    let mut b = ParquetRecordBatchReaderBuilder::try_new(file.clone())
        .unwrap()
        .with_batch_size(batch);
    if let Some(s) = selection {
        b = b.with_row_selection(s);
    }
    let parts: Vec<ArrayRef> = b
        .build()
        .unwrap()
        .map(|r| Arc::clone(r.unwrap().column(0)))
        .collect();
    let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
    arrow::compute::concat(&refs).unwrap()
}

fn bits64(a: &ArrayRef) -> Vec<u64> {
    let a = a.as_primitive::<Float64Type>();
    a.values().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn byte_stream_split_values_read_back_exactly() {
    let n = 10_007;
    let all = values(n);
    let want: Vec<u64> = all.iter().map(|v| v.to_bits()).collect();
    let col: ArrayRef = Arc::new(Float64Array::from(all.clone()));
    // Pages shorter than one 16-value block, not a multiple of it, and
    // holding everything; batches that start mid-block.
    for page_rows in [5, 16, 1000, 1 << 20] {
        let file = write(Arc::clone(&col), page_rows);
        for batch in [1, 15, 17, 333, 8192] {
            assert_eq!(
                bits64(&read(&file, batch, None)),
                want,
                "pages of {page_rows} rows, batches of {batch}"
            );
        }
        // Runs kept and skipped, as a series' rows are picked from a file.
        let selection = RowSelection::from(vec![
            RowSelector::skip(3),
            RowSelector::select(40),
            RowSelector::skip(1001),
            RowSelector::select(2999),
            RowSelector::skip(17),
            RowSelector::select(n - 3 - 40 - 1001 - 2999 - 17),
        ]);
        let picked: Vec<u64> = [3..43, 1044..4043, 4060..n]
            .into_iter()
            .flat_map(|r| want[r].to_vec())
            .collect();
        assert_eq!(
            bits64(&read(&file, 100, Some(selection))),
            picked,
            "pages of {page_rows} rows, a selection"
        );
    }
}

/// The four-byte widths take the same path.
#[test]
fn byte_stream_split_four_byte_values_read_back_exactly() {
    let n: usize = 4_099;
    let floats: Vec<f32> = (0..n)
        .map(|i| f32::from_bits((i as u32).wrapping_mul(0x9e37_79b9) ^ 0x0102_0304))
        .collect();
    let ints: Vec<i32> = (0..n)
        .map(|i| (i as i32).wrapping_mul(-0x6151_f2e1))
        .collect();
    for page_rows in [7, 100, 1 << 20] {
        let file = write(Arc::new(Float32Array::from(floats.clone())), page_rows);
        let back = read(&file, 33, None);
        assert_eq!(back.data_type(), &DataType::Float32);
        let back: Vec<u32> = back
            .as_primitive::<Float32Type>()
            .values()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(back, floats.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        let file = write(Arc::new(Int32Array::from(ints.clone())), page_rows);
        let back = read(&file, 33, None);
        assert_eq!(back.as_primitive::<Int32Type>().values().to_vec(), ints);
    }
}
