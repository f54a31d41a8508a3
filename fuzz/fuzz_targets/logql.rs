//! LogQL queries through the entry every Loki API call uses (nesting
//! check, lexer, parser), and the duration and byte-size literals. Must
//! return Ok or Err, never panic or overflow the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_query_lang::logql;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = logql::parse(s);
    let _ = logql::parse_duration(s);
    let _ = logql::parser::parse_bytes(s);
});
