//! OTLP metrics export requests, as protobuf and as OTLP's JSON mapping.
//! Must return Ok or Err, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_ingest::otlp_metrics::{decode_json, decode_proto};
use strata_types::TenantId;

fuzz_target!(|data: &[u8]| {
    let Ok(tenant) = TenantId::try_new("fuzz") else {
        return;
    };
    let _ = decode_proto(tenant.clone(), data);
    let _ = decode_json(tenant, data);
});
