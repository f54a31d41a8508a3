//! Remote-read requests (arbitrary bytes, as the snappy block and as the
//! protobuf inside one) and XOR chunks: must return Ok/Some or Err/None,
//! never panic or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_ingest::DecodeLimits;
use strata_ingest::remote_read::{decode_read_request, xor};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits {
        max_decoded_bytes: 1 << 20,
        ..DecodeLimits::default()
    };
    let _ = decode_read_request(data, limits);
    if let Ok(framed) = snap::raw::Encoder::new().compress_vec(data) {
        let _ = decode_read_request(&framed, limits);
    }
    let _ = xor::decode(data);
});
