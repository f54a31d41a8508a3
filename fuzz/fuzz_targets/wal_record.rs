//! WAL record payload decoding over arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_wal::WalRecord;

fuzz_target!(|data: &[u8]| {
    let _ = WalRecord::decode(data);
});
