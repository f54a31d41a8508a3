//! Remote-write 2.0 bodies (`io.prometheus.write.v2.Request`, symbol table
//! references): arbitrary bytes, both as the snappy block and as the
//! protobuf inside one. Must return Ok or Err, never panic or allocate
//! without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_ingest::DecodeLimits;
use strata_ingest::remote_write::{Proto, decode};
use strata_types::TenantId;

fuzz_target!(|data: &[u8]| {
    let Ok(tenant) = TenantId::try_new("fuzz") else {
        return;
    };
    let limits = DecodeLimits {
        max_decoded_bytes: 1 << 20,
        ..DecodeLimits::default()
    };
    let _ = decode(Proto::V2, tenant.clone(), data, limits);
    if let Ok(framed) = snap::raw::Encoder::new().compress_vec(data) {
        let _ = decode(Proto::V2, tenant, &framed, limits);
    }
});
