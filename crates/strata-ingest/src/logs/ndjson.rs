//! Newline-delimited JSON logs for scripts: `POST /api/v1/logs` with
//! `Content-Type: application/x-ndjson`, one entry per line:
//!
//! ```json
//! {"labels": {"job": "backup"}, "line": "done in 42s", "timestamp": "2026-11-26T10:00:00Z", "metadata": {"run": "7"}}
//! ```
//!
//! `labels` and `line` are required. `timestamp` is Unix nanoseconds (a
//! number or a string of digits) or RFC 3339; without one the entry gets
//! the time it arrived. Blank lines are skipped. Entries with the same
//! labels join one stream.

use serde_json::Value;
use strata_types::{LogBatch, TenantId};

use super::{LogLimits, entry, now_ns, stream_labels};
use crate::{IngestError, Position};

/// Decodes an NDJSON body (already decompressed).
pub fn decode(tenant: TenantId, body: &[u8], limits: &LogLimits) -> Result<LogBatch, IngestError> {
    let text = std::str::from_utf8(body).map_err(|e| IngestError::Json {
        reason: format!("body is not UTF-8: {e}"),
    })?;
    let now = now_ns();
    let mut batch = LogBatch::new(tenant);
    let mut index: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for (n, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line_no = n + 1;
        let bad = |reason: String| IngestError::Json {
            reason: format!("line {line_no}: {reason}"),
        };
        let v: Value = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
        let object = |key: &str| -> Result<Vec<(String, String)>, IngestError> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Object(o)) => o
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone())),
                        _ => Err(bad(format!("{key}.{k} must be a string"))),
                    })
                    .collect(),
                Some(_) => Err(bad(format!("{key} must be an object of strings"))),
            }
        };
        let labels = stream_labels(object("labels")?, Position::Line(line_no))?;
        let line = v
            .get("line")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("\"line\" (a string) is required".into()))?;
        let ts = match v.get("timestamp") {
            None | Some(Value::Null) => now,
            Some(Value::Number(num)) => num
                .as_i64()
                .ok_or_else(|| bad("timestamp must be integer Unix nanoseconds".into()))?,
            Some(Value::String(s)) => {
                parse_time(s).ok_or_else(|| IngestError::InvalidTimestamp {
                    at: Position::Line(line_no),
                    value: s.clone(),
                    reason: "expected Unix nanoseconds or RFC 3339",
                })?
            }
            Some(_) => return Err(bad("timestamp must be a number or a string".into())),
        };
        let e = entry(
            ts,
            line.to_owned(),
            object("metadata")?,
            limits,
            Position::Line(line_no),
        )?;
        let id = labels.series_id().0;
        match index.get(&id) {
            Some(&i) => batch.streams[i].entries.push(e),
            None => {
                index.insert(id, batch.streams.len());
                batch.streams.push(strata_types::LogStream {
                    labels,
                    entries: vec![e],
                });
            }
        }
    }
    Ok(batch)
}

fn parse_time(s: &str) -> Option<i64> {
    if let Ok(ns) = s.parse::<i64>() {
        return Some(ns);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finding 15: every error names the line as an editor counts it.
    #[test]
    fn errors_name_the_line() {
        let limits = LogLimits {
            max_line_bytes: 4,
            ..LogLimits::default()
        };
        let ok = "{\"labels\":{\"job\":\"x\"},\"line\":\"ok\"}";
        for (bad, want) in [
            ("{\"labels\":{},\"line\":\"l\"}", "line 2 {}"),
            (
                "{\"labels\":{\"job\":\"x\"},\"line\":\"too long\"}",
                "line 2: line of 8 bytes",
            ),
            (
                "{\"labels\":{\"job\":\"x\"},\"line\":\"l\",\"metadata\":{\"a.b\":\"v\"}}",
                "line 2: structured metadata",
            ),
            (
                "{\"labels\":{\"job\":\"x\"},\"line\":\"l\",\"timestamp\":\"soon\"}",
                "line 2: invalid timestamp",
            ),
            ("{\"labels\":{\"job\":\"x\"}}", "line 2: \"line\""),
        ] {
            let body = format!("{ok}\n{bad}\n");
            let e = decode(TenantId::try_new("t").unwrap(), body.as_bytes(), &limits).unwrap_err();
            assert!(e.to_string().contains(want), "{e} (wanted {want:?})");
        }
    }

    #[test]
    fn lines_join_streams_by_labels() {
        let body = b"{\"labels\":{\"job\":\"backup\"},\"line\":\"start\",\"timestamp\":1700000000000000000}\n\n\
            {\"labels\":{\"job\":\"backup\"},\"line\":\"done\",\"timestamp\":\"2023-11-14T22:13:21Z\",\"metadata\":{\"run\":\"7\"}}\n\
            {\"labels\":{\"job\":\"cron\"},\"line\":\"tick\"}\n";
        let b = decode(TenantId::try_new("t").unwrap(), body, &LogLimits::default()).unwrap();
        assert_eq!(b.streams.len(), 2);
        assert_eq!(b.streams[0].entries.len(), 2);
        assert_eq!(
            b.streams[0].entries[1].timestamp_ns,
            1_700_000_001_000_000_000
        );
        let err = decode(
            TenantId::try_new("t").unwrap(),
            b"{\"labels\":{\"job\":\"x\"}}\n",
            &LogLimits::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
