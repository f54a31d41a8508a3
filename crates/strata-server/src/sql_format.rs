//! SQL result formats for HTTP, written batch by batch so a large result
//! streams instead of being held whole: JSON (the default, see
//! [`crate::sql_json`]), CSV, Arrow IPC stream, Parquet.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use bytes::Bytes;
use serde_json::{Value, json};

/// One of the output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Csv,
    Arrow,
    Parquet,
}

impl Format {
    /// From a `format` parameter.
    pub(crate) fn named(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "csv" => Some(Self::Csv),
            "arrow" | "arrows" | "ipc" => Some(Self::Arrow),
            "parquet" => Some(Self::Parquet),
            _ => None,
        }
    }

    /// From an `Accept` header: the first media type we serve.
    pub(crate) fn accepted(accept: &str) -> Option<Self> {
        accept.split(',').find_map(|part| {
            let media = part.split(';').next().unwrap_or_default().trim();
            match media.to_ascii_lowercase().as_str() {
                "application/json" => Some(Self::Json),
                "text/csv" => Some(Self::Csv),
                "application/vnd.apache.arrow.stream" => Some(Self::Arrow),
                "application/vnd.apache.parquet" | "application/x-parquet" => Some(Self::Parquet),
                _ => None,
            }
        })
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Arrow => "application/vnd.apache.arrow.stream",
            Self::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// Turns batches into the bytes of one format.
pub(crate) enum Encoder {
    Json { first_row: bool },
    Csv { header: bool },
    Arrow(arrow::ipc::writer::StreamWriter<Vec<u8>>),
    Parquet(parquet::arrow::ArrowWriter<Vec<u8>>),
}

impl Encoder {
    /// The encoder and the bytes that open the output.
    pub(crate) fn start(format: Format, schema: &SchemaRef) -> Result<(Self, Bytes), ArrowError> {
        Ok(match format {
            Format::Json => {
                let columns: Vec<Value> = schema
                    .fields()
                    .iter()
                    .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
                    .collect();
                let head = format!(
                    "{{\"columns\":{},\"rows\":[",
                    serde_json::to_string(&columns)
                        .map_err(|e| ArrowError::JsonError(e.to_string()))?
                );
                (Self::Json { first_row: true }, Bytes::from(head))
            }
            Format::Csv => (Self::Csv { header: true }, Bytes::new()),
            Format::Arrow => {
                let mut w = arrow::ipc::writer::StreamWriter::try_new(Vec::new(), schema)?;
                let head = std::mem::take(w.get_mut());
                (Self::Arrow(w), Bytes::from(head))
            }
            Format::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                    .build();
                let w = parquet::arrow::ArrowWriter::try_new(
                    Vec::new(),
                    Arc::clone(schema),
                    Some(props),
                )
                .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                (Self::Parquet(w), Bytes::new())
            }
        })
    }

    /// The bytes for one batch (possibly none yet: Parquet writes whole
    /// row groups).
    pub(crate) fn batch(&mut self, batch: &RecordBatch) -> Result<Bytes, ArrowError> {
        match self {
            Self::Json { first_row } => {
                let cols: Vec<Vec<Value>> = batch
                    .columns()
                    .iter()
                    .map(|c| crate::sql_json::values(c.as_ref()))
                    .collect::<Result<_, _>>()?;
                let mut out = Vec::new();
                for r in 0..batch.num_rows() {
                    if !std::mem::take(first_row) {
                        out.push(b',');
                    }
                    let row = Value::Array(cols.iter().map(|c| c[r].clone()).collect());
                    serde_json::to_writer(&mut out, &row)
                        .map_err(|e| ArrowError::JsonError(e.to_string()))?;
                }
                Ok(Bytes::from(out))
            }
            Self::Csv { header } => {
                let flat = flatten(batch)?;
                let mut out = Vec::new();
                {
                    let mut w = arrow::csv::WriterBuilder::new()
                        .with_header(std::mem::take(header))
                        .build(&mut out);
                    w.write(&flat)?;
                }
                Ok(Bytes::from(out))
            }
            Self::Arrow(w) => {
                w.write(batch)?;
                Ok(Bytes::from(std::mem::take(w.get_mut())))
            }
            Self::Parquet(w) => {
                w.write(batch)
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                Ok(Bytes::from(std::mem::take(w.inner_mut())))
            }
        }
    }

    /// The bytes that close the output.
    pub(crate) fn finish(self) -> Result<Bytes, ArrowError> {
        match self {
            Self::Json { .. } => Ok(Bytes::from_static(b"]}")),
            Self::Csv { .. } => Ok(Bytes::new()),
            Self::Arrow(mut w) => {
                w.finish()?;
                Ok(Bytes::from(w.into_inner()?))
            }
            Self::Parquet(w) => w
                .into_inner()
                .map(Bytes::from)
                .map_err(|e| ArrowError::ExternalError(Box::new(e))),
        }
    }
}

/// CSV has no nested types: maps, lists and structs become JSON text.
fn flatten(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let nested = |t: &DataType| t.is_nested() || matches!(t, DataType::Map(..));
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| nested(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        if nested(f.data_type()) {
            let text: Vec<Option<String>> = crate::sql_json::values(c.as_ref())?
                .into_iter()
                .map(|v| (!v.is_null()).then(|| v.to_string()))
                .collect();
            fields.push(Field::new(f.name(), DataType::Utf8, true));
            columns.push(Arc::new(StringArray::from(text)));
        } else {
            fields.push(f.as_ref().clone());
            columns.push(Arc::clone(c));
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}
