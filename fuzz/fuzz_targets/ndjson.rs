//! Newline-delimited JSON log bodies. Must return Ok or Err, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_ingest::logs::{LogLimits, ndjson};
use strata_types::TenantId;

fuzz_target!(|data: &[u8]| {
    let Ok(tenant) = TenantId::try_new("fuzz") else {
        return;
    };
    let limits = LogLimits {
        max_decoded_bytes: 1 << 20,
        max_line_bytes: 4 << 10,
    };
    let _ = ndjson::decode(tenant, data, &limits);
});
