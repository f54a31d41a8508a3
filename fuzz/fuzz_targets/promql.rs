//! PromQL as every user-supplied PromQL text enters (queries, `match[]`,
//! specs): the nesting check, then the parser, then the pretty-printer of
//! `/api/v1/format_query`. Must return Ok or Err, never panic or overflow
//! the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_query_lang::nesting::{self, Syntax};
use strata_query_lang::promql;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for syntax in [Syntax::PromQl, Syntax::LogQl, Syntax::Sql] {
        let _ = nesting::check(s, syntax);
    }
    if let Ok(expr) = promql::parse_expr(s) {
        let _ = expr.prettify();
    }
    let _ = promql::parse_duration_ms(s);
});
