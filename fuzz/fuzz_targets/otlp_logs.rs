//! OTLP logs export requests, as protobuf and as OTLP's JSON mapping.
//! Must return Ok or Err, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_ingest::logs::{LogLimits, otlp};
use strata_types::TenantId;

fuzz_target!(|data: &[u8]| {
    let Ok(tenant) = TenantId::try_new("fuzz") else {
        return;
    };
    let limits = LogLimits {
        max_decoded_bytes: 1 << 20,
        max_line_bytes: 4 << 10,
    };
    let _ = otlp::decode_proto(tenant.clone(), data, &limits);
    let _ = otlp::decode_json(tenant, data, &limits);
});
