//! Prometheus remote write 1.0: snappy block + protobuf `WriteRequest`.
//!
//! See `../shared/conformance/protocols` section (a). Labels must be sorted,
//! unique, non-empty and valid; `__name__` must be present. Sample values are
//! kept bit-exact (the stale-marker NaN included).

pub mod proto;
mod wire;

use strata_types::{TenantId, WriteBatch};

use crate::IngestError;

/// Bounds on what a decoder will allocate for one request.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Largest decompressed body accepted.
    pub max_decoded_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_decoded_bytes: 64 << 20,
        }
    }
}

/// What a request carried that is not stored yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Skipped {
    pub exemplars: u64,
    pub histograms: u64,
    pub metadata: u64,
}

impl Skipped {
    pub fn any(&self) -> bool {
        self.exemplars + self.histograms + self.metadata > 0
    }
}

/// A decoded, validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub batch: WriteBatch,
    pub skipped: Skipped,
}

/// Checks `Content-Type` and `Content-Encoding` of a remote-write request.
///
/// Remote write 1.0 is `application/x-protobuf` (optionally with
/// `proto=prometheus.WriteRequest`); a missing content type is taken as 1.0
/// like the reference handler does. 2.0 (`proto=io.prometheus.write.v2.Request`)
/// is refused with 415, which tells 2.0 senders to fall back to 1.0.
pub fn negotiate(content_type: Option<&str>, encoding: Option<&str>) -> Result<(), IngestError> {
    if let Some(ct) = content_type {
        let mut parts = ct.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let mut ok = media.eq_ignore_ascii_case("application/x-protobuf");
        for param in parts {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("proto")
                && v.trim() != "prometheus.WriteRequest"
            {
                ok = false;
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
        _ => Ok(()),
    }
}

/// Decodes and validates a remote-write 1.0 body for `tenant`.
pub fn decode_v1(
    tenant: TenantId,
    body: &[u8],
    limits: DecodeLimits,
) -> Result<Decoded, IngestError> {
    let len = snap::raw::decompress_len(body).map_err(|e| IngestError::Snappy {
        reason: e.to_string(),
    })?;
    if len > limits.max_decoded_bytes {
        return Err(IngestError::TooLarge {
            len,
            max: limits.max_decoded_bytes,
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| IngestError::Snappy {
            reason: e.to_string(),
        })?;
    wire::decode(tenant, &raw)
}

/// `{a="1", b="2"}` for error messages, shortened if huge.
fn describe<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> String {
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
