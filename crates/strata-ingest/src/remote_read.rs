//! Prometheus remote read (`POST /api/v1/read`): the request
//! (`prometheus.ReadRequest`, snappy block compressed) decoded, and the
//! answer encoded in either response type the client accepts.
//!
//! * `SAMPLES` (the default, and all Prometheus 2.x asks for): one
//!   `ReadResponse` with a `QueryResult` per query, snappy compressed,
//!   `Content-Type: application/x-protobuf`.
//! * `STREAMED_XOR_CHUNKS`: frames, each `uvarint(length)`, the CRC-32C
//!   (Castagnoli) of the message big-endian, then a `ChunkedReadResponse`
//!   holding part of one series as XOR chunks ([`xor`]) of at most
//!   [`xor::SAMPLES_PER_CHUNK`] samples, uncompressed. A series is split
//!   over frames of about `max_frame_bytes`, as Prometheus' handler does.
//!
//! See Prometheus' `prompb/remote.proto` and `storage/remote/codec.go`.

pub mod proto;
#[cfg(test)]
mod tests;
pub mod xor;

use prost::Message;

use crate::{DecodeLimits, IngestError, remote_write};
use proto::{Chunk, ChunkedReadResponse, ChunkedSeries, Label, QueryResult, Sample, TimeSeries};

/// What a samples answer is sent as.
pub const SAMPLES_CONTENT_TYPE: &str = "application/x-protobuf";
/// What a streamed answer is sent as.
pub const STREAMED_CONTENT_TYPE: &str =
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse";
/// Prometheus' default `--storage.remote.read-max-bytes-in-frame`.
pub const MAX_BYTES_IN_FRAME: usize = 1 << 20;

/// A label matcher's kind (`LabelMatcher.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMatcher {
    pub kind: MatchKind,
    pub name: String,
    pub value: String,
}

/// One query of a request: series matching every matcher, samples in
/// `[start_ms, end_ms]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadQuery {
    pub start_ms: i64,
    pub end_ms: i64,
    pub matchers: Vec<ReadMatcher>,
}

/// How the answer is sent: the first type in the client's list Strata
/// speaks (samples when the list is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    Samples,
    StreamedXorChunks,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequest {
    pub queries: Vec<ReadQuery>,
    pub response: ResponseType,
}

fn invalid(reason: impl Into<String>) -> IngestError {
    IngestError::InvalidReadRequest {
        reason: reason.into(),
    }
}

/// Decodes a snappy-compressed `ReadRequest`, refusing a body that would
/// decode larger than `limits`, an unknown matcher type, a query whose
/// end is before its start, and a request accepting no response type
/// Strata sends.
pub fn decode_read_request(body: &[u8], limits: DecodeLimits) -> Result<ReadRequest, IngestError> {
    let raw = remote_write::decompress(body, limits)?;
    let req =
        proto::ReadRequest::decode(raw.as_slice()).map_err(|e| IngestError::ReadProtobuf {
            reason: e.to_string(),
        })?;
    let response = if req.accepted_response_types.is_empty() {
        ResponseType::Samples
    } else {
        req.accepted_response_types
            .iter()
            .find_map(|t| match t {
                0 => Some(ResponseType::Samples),
                1 => Some(ResponseType::StreamedXorChunks),
                _ => None,
            })
            .ok_or_else(|| {
                invalid(format!(
                    "server does not support any of the requested response types: {:?}; supported: [SAMPLES STREAMED_XOR_CHUNKS]",
                    req.accepted_response_types
                ))
            })?
    };
    let mut queries = Vec::with_capacity(req.queries.len());
    for (i, q) in req.queries.into_iter().enumerate() {
        if q.end_timestamp_ms < q.start_timestamp_ms {
            return Err(invalid(format!(
                "query {i}: end timestamp {} is before start timestamp {}",
                q.end_timestamp_ms, q.start_timestamp_ms
            )));
        }
        let matchers = q
            .matchers
            .into_iter()
            .map(|m| {
                let kind = match m.r#type {
                    0 => MatchKind::Equal,
                    1 => MatchKind::NotEqual,
                    2 => MatchKind::Regex,
                    3 => MatchKind::NotRegex,
                    t => return Err(invalid(format!("query {i}: invalid matcher type {t}"))),
                };
                Ok(ReadMatcher {
                    kind,
                    name: m.name,
                    value: m.value,
                })
            })
            .collect::<Result<_, _>>()?;
        queries.push(ReadQuery {
            start_ms: q.start_timestamp_ms,
            end_ms: q.end_timestamp_ms,
            matchers,
        });
    }
    Ok(ReadRequest { queries, response })
}

fn labels<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Label> {
    pairs
        .into_iter()
        .map(|(name, value)| Label {
            name: name.to_owned(),
            value: value.to_owned(),
        })
        .collect()
}

/// A `SAMPLES` answer being built: series added per query, in the order
/// they are to be sent.
#[derive(Debug, Default)]
pub struct SamplesResponse {
    results: Vec<QueryResult>,
}

impl SamplesResponse {
    /// An answer to `queries` queries, each empty so far.
    pub fn new(queries: usize) -> Self {
        Self {
            results: vec![QueryResult::default(); queries],
        }
    }

    /// Adds a series to query `query`'s result (ignored past the last
    /// query): its float samples and its native histograms (remote
    /// write's `Histogram`, as Prometheus 3 sends them in this answer).
    pub fn push<'a>(
        &mut self,
        query: usize,
        label_pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        points: &[(i64, f64)],
        histograms: Vec<remote_write::proto::Histogram>,
    ) {
        if let Some(r) = self.results.get_mut(query) {
            r.timeseries.push(TimeSeries {
                labels: labels(label_pairs),
                samples: points
                    .iter()
                    .map(|&(timestamp, value)| Sample { value, timestamp })
                    .collect(),
                histograms,
                ..TimeSeries::default()
            });
        }
    }

    /// The answer's body: the `ReadResponse`, snappy block compressed.
    pub fn encode(self) -> Vec<u8> {
        let raw = proto::ReadResponse {
            results: self.results,
        }
        .encode_to_vec();
        // Only a body over snappy's 4 GiB-ish bound fails; the sample
        // limit keeps answers far below it.
        snap::raw::Encoder::new()
            .compress_vec(&raw)
            .unwrap_or_default()
    }
}

/// Appends the frames of one series of query `query_index` to `out`: its
/// samples as XOR chunks of at most [`xor::SAMPLES_PER_CHUNK`], as many
/// per frame as fit in about `max_frame_bytes` (the labels counted, and a
/// frame holding at least one chunk), as Prometheus'
/// `StreamChunkedReadResponses` cuts them.
pub fn write_series_frames<'a>(
    out: &mut Vec<u8>,
    query_index: i64,
    label_pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    points: &[(i64, f64)],
    max_frame_bytes: usize,
) {
    let labels = labels(label_pairs);
    let label_bytes: usize = labels.iter().map(Message::encoded_len).sum();
    let max_data = max_frame_bytes as i64 - label_bytes as i64;
    let mut left = max_data;
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut parts = points.chunks(xor::SAMPLES_PER_CHUNK).peekable();
    while let Some(part) = parts.next() {
        let mut c = xor::XorChunk::new();
        for &(t, v) in part {
            c.append(t, v);
        }
        let chunk = Chunk {
            min_time_ms: part.first().map_or(0, |p| p.0),
            max_time_ms: part.last().map_or(0, |p| p.0),
            r#type: proto::CHUNK_XOR,
            data: c.into_bytes(),
        };
        left -= chunk.encoded_len() as i64;
        chunks.push(chunk);
        if left > 0 && parts.peek().is_some() {
            continue;
        }
        let frame = ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries {
                labels: labels.clone(),
                chunks: std::mem::take(&mut chunks),
            }],
            query_index,
        };
        write_frame(out, &frame.encode_to_vec());
        left = max_data;
    }
}

/// One frame: `uvarint(len)`, CRC-32C of `msg` big-endian, `msg`.
fn write_frame(out: &mut Vec<u8>, msg: &[u8]) {
    let mut len = msg.len() as u64;
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(&CASTAGNOLI.checksum(msg).to_be_bytes());
    out.extend_from_slice(msg);
}

const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
