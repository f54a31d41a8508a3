//! Prometheus remote write 1.0 (protobuf `prometheus.WriteRequest`) and 2.0
//! (`io.prometheus.write.v2.Request`, strings interned in a symbol table),
//! both snappy block compressed; `Content-Type` picks the message.
//!
//! See `../shared/conformance/protocols` section (a). Labels must be sorted,
//! unique, non-empty and valid; `__name__` must be present. Sample values are
//! kept bit-exact (the stale-marker NaN included).

mod histogram;
mod pb;
pub mod proto;
mod wire;

use strata_types::{NameScheme, SeriesExemplars, SeriesHistograms, TenantId, WriteBatch};

use crate::IngestError;
use crate::metadata::MetricMetadata;

/// Bounds on what a decoder will allocate for one request.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest decompressed body accepted.
    pub max_decoded_bytes: usize,
    /// The names a series may have.
    pub names: NameScheme,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_decoded_bytes: 64 << 20,
            names: NameScheme::Utf8,
        }
    }
}

/// What a request carried that is not stored: exemplars whose labels or
/// time Prometheus would refuse
/// (over 128 characters, an empty or repeated name, a time outside the
/// stored range).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    pub exemplars: u64,
}

impl Skipped {
    pub fn any(&self) -> bool {
        self.exemplars > 0
    }
}

/// A decoded, validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub batch: WriteBatch,
    pub skipped: Skipped,
    /// The metric metadata the request carried, named and saying
    /// something, in request order (a repeat of the entry before dropped).
    pub metadata: Vec<MetricMetadata>,
    /// Each sample's start (created) timestamp in ms, in the batch's
    /// sample order, 0 where unset (2.0 `Sample.start_timestamp`); empty
    /// when no sample has one. See [`crate::start_zeros`].
    pub starts: Vec<i64>,
    /// The exemplars that passed their checks, per series in request
    /// order (a series may carry exemplars and no samples).
    pub exemplars: Vec<SeriesExemplars>,
    /// The native histograms, per series in request order (validated; a
    /// series may carry histograms and no float samples).
    pub histograms: Vec<SeriesHistograms>,
}

/// Which remote-write message a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// 1.0: `prometheus.WriteRequest`.
    V1,
    /// 2.0: `io.prometheus.write.v2.Request`.
    V2,
}

/// Checks `Content-Type` and `Content-Encoding` of a remote-write request
/// and says which message it carries.
///
/// `application/x-protobuf` alone or with `proto=prometheus.WriteRequest`
/// is 1.0, and so is a missing content type, as the reference handler
/// takes it; `proto=io.prometheus.write.v2.Request` is 2.0. Anything else,
/// or an encoding other than snappy, is 415.
pub fn negotiate(content_type: Option<&str>, encoding: Option<&str>) -> Result<Proto, IngestError> {
    let mut proto = Proto::V1;
    if let Some(ct) = content_type {
        let mut parts = ct.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let mut ok = media.eq_ignore_ascii_case("application/x-protobuf");
        for param in parts {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("proto")
            {
                match v.trim().trim_matches('"') {
                    "prometheus.WriteRequest" => proto = Proto::V1,
                    "io.prometheus.write.v2.Request" => proto = Proto::V2,
                    _ => ok = false,
                }
            }
        }
        if !ok {
            return Err(IngestError::UnsupportedContentType {
                content_type: ct.to_owned(),
            });
        }
    }
    match encoding {
        Some(e) if !e.trim().eq_ignore_ascii_case("snappy") => {
            Err(IngestError::UnsupportedEncoding {
                encoding: e.to_owned(),
                expected: "snappy",
            })
        }
        _ => Ok(proto),
    }
}

/// Decodes and validates a remote-write body of either version for
/// `tenant`.
pub fn decode(
    proto: Proto,
    tenant: TenantId,
    body: &[u8],
    limits: DecodeLimits,
) -> Result<Decoded, IngestError> {
    let raw = decompress(body, limits)?;
    match proto {
        Proto::V1 => wire::decode(tenant, &raw, limits.names),
        Proto::V2 => wire::decode_v2(tenant, &raw, limits.names),
    }
}

/// Decodes and validates a remote-write 1.0 body for `tenant`.
pub fn decode_v1(
    tenant: TenantId,
    body: &[u8],
    limits: DecodeLimits,
) -> Result<Decoded, IngestError> {
    decode(Proto::V1, tenant, body, limits)
}

/// Snappy block decompression, refusing bodies that would decode larger
/// than the limit before allocating.
pub(crate) fn decompress(body: &[u8], limits: DecodeLimits) -> Result<Vec<u8>, IngestError> {
    let len = snap::raw::decompress_len(body).map_err(|e| IngestError::Snappy {
        reason: e.to_string(),
    })?;
    if len > limits.max_decoded_bytes {
        return Err(IngestError::TooLarge {
            len,
            max: limits.max_decoded_bytes,
        });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| IngestError::Snappy {
            reason: e.to_string(),
        })
}

/// `{a="1", b="2"}` for error messages, shortened if huge.
pub(crate) fn describe<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = String::from("{");
    for (i, (name, value)) in labels.enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        if s.len() > 200 {
            s.push('…');
            break;
        }
        s.push_str(&format!("{name}={value:?}"));
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests;
