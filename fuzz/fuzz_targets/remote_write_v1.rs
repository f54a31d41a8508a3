//! Remote-write 1.0 bodies: arbitrary bytes, both as the snappy block and as
//! the protobuf inside one. Must return Ok or Err, never panic or allocate
//! without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_ingest::{DecodeLimits, decode_v1};
use strata_types::TenantId;

fuzz_target!(|data: &[u8]| {
    let Ok(tenant) = TenantId::try_new("fuzz") else {
        return;
    };
    let limits = DecodeLimits {
        max_decoded_bytes: 1 << 20,
        ..DecodeLimits::default()
    };
    let _ = decode_v1(tenant.clone(), data, limits);
    if let Ok(framed) = snap::raw::Encoder::new().compress_vec(data) {
        let _ = decode_v1(tenant, &framed, limits);
    }
});
