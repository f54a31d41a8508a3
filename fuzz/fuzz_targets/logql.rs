//! LogQL queries through the entry every Loki API call uses (nesting
//! check, lexer, parser, templates, patterns), the duration and byte-size
//! literals, and a log query's pipeline run over a line: the input is the
//! query, a newline, then the line. Must return Ok or Err, never panic or
//! overflow the stack.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_query_lang::logql;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (query, line) = s.split_once('\n').unwrap_or((s, ""));
    if let Ok(logql::Query::Log(expr)) = logql::parse(query) {
        let entry = logql::SourceEntry {
            timestamp_ns: 1_623_316_469_500_000_000,
            line: line.to_owned(),
            metadata: vec![("trace_id".into(), line.chars().take(8).collect())],
        };
        let _ = logql::pipeline::process(&expr.pipeline, &[("job".into(), "x".into())], &entry);
    }
    let _ = logql::parse_duration(s);
    let _ = logql::parser::parse_bytes(s);
    let _ = logql::parser::parse_go_duration(s);
    let _ = logql::parser::parse_humanized_bytes(s);
});
