//! WAL segment scanning over arbitrary bytes: a clean prefix, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_wal::segment;

fuzz_target!(|data: &[u8]| {
    let scan = segment::scan(data);
    assert!(scan.valid_len <= data.len());
    for (_, range) in &scan.records {
        assert!(range.end <= scan.valid_len);
    }
});
