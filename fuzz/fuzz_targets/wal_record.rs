//! WAL record payload decoding over arbitrary bytes, several records in a
//! row through one segment decoder (so refs to earlier definitions are
//! exercised).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_wal::SegmentDecoder;

fuzz_target!(|data: &[u8]| {
    let mut decoder = SegmentDecoder::default();
    for chunk in data.split(|b| *b == 0xfe) {
        let _ = decoder.decode(chunk);
    }
});
