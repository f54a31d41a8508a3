//! Log ingest: Loki push (JSON and snappy protobuf), OTLP/HTTP logs
//! (protobuf and JSON) and newline-delimited JSON, each decoded into a
//! validated [`LogBatch`].
//!
//! See `../shared/conformance/protocols` sections (d) and (e). Every
//! decoder either returns a batch in which every stream and entry is
//! valid or an error naming the first problem: nothing is half-accepted.
//! Stream labels follow Prometheus' label rules without requiring
//! `__name__`; structured metadata names follow the same rules (OTLP's
//! dotted attribute names become underscored, as Loki does).

pub mod loki;
pub mod ndjson;
pub mod otlp;

use std::io::Read;

use strata_types::{Label, LabelError, Labels, LogBatch, LogEntry, TenantId, is_valid_label_name};

use crate::IngestError;
use crate::error::Position;

/// Bounds on what a log decoder accepts.
#[derive(Debug, Clone, Copy)]
pub struct LogLimits {
    /// Largest decompressed body accepted.
    pub max_decoded_bytes: usize,
    /// Longest line accepted (Loki's `max_line_size`).
    pub max_line_bytes: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            max_decoded_bytes: 64 << 20,
            max_line_bytes: 256 << 10,
        }
    }
}

/// Undoes `Content-Encoding` (gzip, deflate or none) within the size limit.
pub fn decompress(
    body: &[u8],
    encoding: Option<&str>,
    limits: &LogLimits,
) -> Result<Vec<u8>, IngestError> {
    let enc = encoding.map(|e| e.trim().to_ascii_lowercase());
    let mut out = Vec::new();
    let read = |r: &mut dyn Read, out: &mut Vec<u8>| -> Result<(), IngestError> {
        let max = limits.max_decoded_bytes;
        let n = r
            .take(max as u64 + 1)
            .read_to_end(out)
            .map_err(|e| IngestError::Decompress {
                reason: e.to_string(),
            })?;
        if n > max {
            return Err(IngestError::TooLarge { len: n, max });
        }
        Ok(())
    };
    match enc.as_deref() {
        None | Some("" | "identity") => {
            if body.len() > limits.max_decoded_bytes {
                return Err(IngestError::TooLarge {
                    len: body.len(),
                    max: limits.max_decoded_bytes,
                });
            }
            out.extend_from_slice(body);
        }
        Some("gzip") => read(&mut flate2::read::GzDecoder::new(body), &mut out)?,
        Some("deflate") => read(&mut flate2::read::ZlibDecoder::new(body), &mut out)?,
        Some(other) => {
            return Err(IngestError::UnsupportedEncoding {
                encoding: other.to_owned(),
                expected: "gzip, deflate or none",
            });
        }
    }
    Ok(out)
}

/// Validated stream labels from (name, value) pairs in any order.
pub(crate) fn stream_labels(
    mut pairs: Vec<(String, String)>,
    at: Position,
) -> Result<Labels, IngestError> {
    // An empty value is an absent label, as in Prometheus.
    pairs.retain(|(_, v)| !v.is_empty());
    let shown = || {
        let inner: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
        format!("{{{}}}", inner.join(", "))
    };
    if pairs.is_empty() {
        return Err(IngestError::InvalidStream {
            at,
            labels: "{}".into(),
            source: LabelError::NoLabels,
        });
    }
    let labels = pairs
        .iter()
        .map(|(n, v)| Label::new(n.as_str(), v.as_str()))
        .collect();
    Labels::try_stream_from_unsorted(labels).map_err(|source| IngestError::InvalidStream {
        at,
        labels: shown(),
        source,
    })
}

/// An entry, checked against the limits; metadata sorted, names checked.
pub(crate) fn entry(
    timestamp_ns: i64,
    line: String,
    mut metadata: Vec<(String, String)>,
    limits: &LogLimits,
    at: Position,
) -> Result<LogEntry, IngestError> {
    if line.len() > limits.max_line_bytes {
        return Err(IngestError::LineTooLong {
            at,
            len: line.len(),
            max: limits.max_line_bytes,
        });
    }
    metadata.retain(|(_, v)| !v.is_empty());
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    metadata.dedup_by(|b, a| a.0 == b.0);
    if let Some((name, _)) = metadata.iter().find(|(n, _)| !is_valid_label_name(n)) {
        return Err(IngestError::InvalidMetadata {
            at,
            name: name.clone(),
        });
    }
    Ok(LogEntry {
        timestamp_ns,
        line,
        metadata,
    })
}

/// A batch for `tenant` from streams of (labels, entries).
pub(crate) fn batch(tenant: TenantId, streams: Vec<(Labels, Vec<LogEntry>)>) -> LogBatch {
    let mut b = LogBatch::new(tenant);
    for (labels, entries) in streams {
        b.push(labels, entries);
    }
    b
}

/// An attribute or label name as a label name: every character that may
/// not appear in one becomes `_`, and a leading digit gets a `_` before
/// it (Loki's rule for OTLP attributes).
pub fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// Now, in Unix nanoseconds.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
