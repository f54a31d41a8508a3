use super::*;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use object_store::ObjectStoreExt;
use object_store::memory::InMemory;
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::file::metadata::PageIndexPolicy;

type Row = (String, Vec<(String, String)>, i64, i64, f64);

type HeadLabels = Vec<(Arc<str>, Arc<str>)>;

fn series(n: usize) -> Vec<(HeadLabels, i64, usize)> {
    // (labels with __name__, id, rows): one without labels, one long
    // enough to cross pages and row groups, several short ones.
    let mut out = vec![(vec![(Arc::from("__name__"), Arc::from("bare"))], 1, 7)];
    for i in 0..n {
        out.push((
            vec![
                (Arc::from("__name__"), Arc::from("up")),
                (
                    Arc::from("job"),
                    Arc::from(format!("job-{}", i % 3).as_str()),
                ),
                (Arc::from("pod"), Arc::from(format!("pod-{i}").as_str())),
            ],
            10 + i as i64,
            if i == 1 { 2_500 } else { 1 + i * 37 % 300 },
        ));
    }
    out
}

fn rows_of(batches: &[RecordBatch]) -> Vec<Row> {
    let mut out = Vec::new();
    for b in batches {
        let metric = b.column(crate::col::METRIC).as_string::<i32>();
        let labels = b.column(crate::col::LABELS).as_map();
        let ids = b.column(crate::col::SERIES_ID).as_primitive::<Int64Type>();
        let ts = b
            .column(crate::col::TIMESTAMP)
            .as_primitive::<TimestampMicrosecondType>();
        let v = b.column(crate::col::VALUE).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            let e = labels.value(i);
            let (k, val) = (
                e.column(0).as_string::<i32>(),
                e.column(1).as_string::<i32>(),
            );
            out.push((
                metric.value(i).to_owned(),
                (0..e.len())
                    .map(|j| (k.value(j).to_owned(), val.value(j).to_owned()))
                    .collect(),
                ids.value(i),
                ts.value(i),
                v.value(i),
            ));
        }
    }
    out
}

/// The labels column written a series at a time reads back row for
/// row, across data pages and row groups, with and without the page
/// index, and skipping into the middle of a series.
#[tokio::test]
async fn labels_read_back_across_pages_and_row_groups() {
    // Row groups ended by row count, then also by dictionary size.
    let by_rows = read_back(usize::MAX).await;
    assert!(by_rows > 3, "{by_rows} row groups");
    let by_dictionary = read_back(1).await;
    assert!(by_dictionary > by_rows, "{by_dictionary} row groups");
}

/// The file `w` writes, finished, as stored.
async fn finished(w: FileWriter, store: &Arc<dyn ObjectStore>, table: &Path) -> bytes::Bytes {
    let file = w.finish().await.unwrap();
    let got = store.get(&file.path.under(table)).await.unwrap();
    got.bytes().await.unwrap()
}

/// A row group holding a quarter of its rows ends where a metric
/// begins; a smaller one takes the next metric in.
#[tokio::test]
async fn row_groups_begin_at_a_metric_once_large() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let table = Path::from("t");
    let day = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
    let mut w = FileWriter::try_new(
        Arc::clone(&store),
        &table,
        day,
        FileLevel::Day,
        8,
        SeriesOrder::Id,
    )
    .unwrap()
    .with_bounds(1_000, 1_000, usize::MAX);
    // (metric, series, rows per series)
    let mut id = 0;
    for (metric, series, rows) in [("a", 7, 100), ("b", 1, 100), ("c", 4, 300)] {
        for _ in 0..series {
            id += 1;
            let labels: HeadLabels = vec![
                (Arc::from("__name__"), Arc::from(metric)),
                (Arc::from("pod"), Arc::from(format!("p{id}").as_str())),
            ];
            let samples = (0..rows).map(|t| (t * 15_000, t as f64));
            w.push_series(metric, &labels, id, samples).await.unwrap();
        }
    }
    let bytes = finished(w, &store, &table).await;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
    let groups: Vec<(i64, String, String)> = reader
        .metadata()
        .row_groups()
        .iter()
        .map(|g| {
            let stats = g.column(0).statistics().unwrap();
            let text = |b: Option<&[u8]>| String::from_utf8(b.unwrap().to_vec()).unwrap();
            (
                g.num_rows(),
                text(stats.min_bytes_opt()),
                text(stats.max_bytes_opt()),
            )
        })
        .collect();
    // "a" (700 rows) ends its group at "b"; "b" (100) takes "c" in,
    // which fills the group and runs over into a third.
    assert_eq!(
        groups,
        vec![
            (700, "a".into(), "a".into()),
            (1_000, "b".into(), "c".into()),
            (300, "c".into(), "c".into()),
        ]
    );
}

/// Writes the test series, reads them back; the row groups written.
async fn read_back(dictionary_bytes: usize) -> usize {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let table = Path::from("t");
    let day = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
    let mut w = FileWriter::try_new(
        Arc::clone(&store),
        &table,
        day,
        FileLevel::Flush,
        8,
        SeriesOrder::Id,
    )
    .unwrap()
    .with_bounds(1_000, 300, dictionary_bytes);
    let mut expected: Vec<Row> = Vec::new();
    for (labels, id, n) in series(12) {
        let metric = labels[0].1.to_string();
        let samples: Vec<(i64, f64)> = (0..n as i64)
            .map(|t| (t * 15_000, t as f64 + 0.5))
            .collect();
        w.push_series(&metric, &labels, id, samples.iter().copied())
            .await
            .unwrap();
        for (t, v) in samples {
            expected.push((
                metric.clone(),
                labels[1..]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                id,
                t * 1000,
                v,
            ));
        }
    }
    let bytes = finished(w, &store, &table).await;

    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
    let groups = reader.metadata().num_row_groups();
    let got: Vec<RecordBatch> = reader.build().unwrap().map(|b| b.unwrap()).collect();
    assert_eq!(rows_of(&got), expected);

    // Skip into the long series' middle through the offset index.
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
    let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options)
        .unwrap()
        .with_row_selection(RowSelection::from(vec![
            RowSelector::skip(1_234),
            RowSelector::select(777),
            RowSelector::skip(555),
            RowSelector::select(expected.len() - 1_234 - 777 - 555),
        ]));
    let got: Vec<RecordBatch> = reader.build().unwrap().map(|b| b.unwrap()).collect();
    let mut want = expected[1_234..1_234 + 777].to_vec();
    want.extend_from_slice(&expected[1_234 + 777 + 555..]);
    assert_eq!(rows_of(&got), want);
    groups
}
