//! Loki push bodies: JSON, and snappy-framed protobuf (both the raw bytes
//! as a snappy block and the bytes framed as one), plus the stream
//! selector parser they carry. Must return Ok or Err, never panic or
//! allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_ingest::logs::{LogLimits, loki};
use strata_types::TenantId;

fuzz_target!(|data: &[u8]| {
    let Ok(tenant) = TenantId::try_new("fuzz") else {
        return;
    };
    let limits = LogLimits {
        max_decoded_bytes: 1 << 20,
        max_line_bytes: 4 << 10,
    };
    let _ = loki::decode_json(tenant.clone(), data, &limits);
    let _ = loki::decode_proto(tenant.clone(), data, &limits);
    if let Ok(framed) = snap::raw::Encoder::new().compress_vec(data) {
        let _ = loki::decode_proto(tenant, &framed, &limits);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = loki::parse_selector(s);
    }
});
