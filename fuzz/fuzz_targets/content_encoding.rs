//! `Content-Encoding` of log pushes (gzip, deflate, none): arbitrary bytes
//! under each. Must return Ok or a size error, never panic or decode past
//! the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_ingest::logs::{LogLimits, decompress};

fuzz_target!(|data: &[u8]| {
    let limits = LogLimits {
        max_decoded_bytes: 1 << 20,
        max_line_bytes: 4 << 10,
    };
    for enc in [None, Some("gzip"), Some("deflate"), Some("snappy")] {
        if let Ok(out) = decompress(data, enc, &limits) {
            assert!(out.len() <= limits.max_decoded_bytes);
        }
    }
});
