//! Loki push: `POST /loki/api/v1/push`.
//!
//! JSON (`application/json`, optionally gzip or deflate):
//! `{"streams":[{"stream":{..},"values":[["<ns>","<line>",{..}?],..]}]}`,
//! timestamps as strings of Unix nanoseconds (a number is an error, as in
//! Loki). Protobuf (`application/x-protobuf` or no content type):
//! snappy-block-compressed `logproto.PushRequest`, whose stream labels are
//! a string in selector form, `{job="x", level="info"}`.

use prost::Message;
use serde_json::Value;
use strata_types::{Labels, LogBatch, LogEntry, TenantId};

use super::{LogLimits, batch, entry, stream_labels};
use crate::{IngestError, Position};

/// `logproto.PushRequest` and its parts, from the field description in
/// `../shared/conformance/protocols` (d).
pub mod proto {
    use prost::Message;

    #[derive(Clone, PartialEq, Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct StreamAdapter {
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct EntryAdapter {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        #[prost(string, tag = "2")]
        pub line: String,
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct LabelPairAdapter {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, PartialEq, Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

/// Whether a push request is JSON (else protobuf), by `Content-Type`.
pub fn is_json(content_type: Option<&str>) -> Result<bool, IngestError> {
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/json") => Ok(true),
        None | Some("" | "application/x-protobuf") => Ok(false),
        Some(other) => Err(IngestError::UnsupportedMediaType {
            content_type: other.to_owned(),
            expected: "application/json or application/x-protobuf",
        }),
    }
}

/// Decodes a JSON push body (already decompressed).
pub fn decode_json(
    tenant: TenantId,
    body: &[u8],
    limits: &LogLimits,
) -> Result<LogBatch, IngestError> {
    let json = |reason: String| IngestError::Json { reason };
    let v: Value = serde_json::from_slice(body).map_err(|e| json(e.to_string()))?;
    let streams = v
        .get("streams")
        .and_then(Value::as_array)
        .ok_or_else(|| json("expected {\"streams\": [...]}".into()))?;
    let mut out: Vec<(Labels, Vec<LogEntry>)> = Vec::with_capacity(streams.len());
    for (i, s) in streams.iter().enumerate() {
        let pairs = string_object(s.get("stream")).ok_or_else(|| {
            json(format!(
                "stream {i}: \"stream\" must be an object of strings"
            ))
        })?;
        let labels = stream_labels(pairs, Position::Stream(i))?;
        let values = s
            .get("values")
            .and_then(Value::as_array)
            .ok_or_else(|| json(format!("stream {i}: \"values\" must be an array")))?;
        let mut entries = Vec::with_capacity(values.len());
        for v in values {
            let Some(parts) = v.as_array().filter(|p| p.len() == 2 || p.len() == 3) else {
                return Err(json(format!(
                    "stream {i}: each value must be [\"<unix ns>\", \"<line>\"] or [\"<unix ns>\", \"<line>\", {{metadata}}]"
                )));
            };
            let ts = match &parts[0] {
                Value::String(s) => parse_ns(s, i)?,
                other => {
                    return Err(IngestError::InvalidTimestamp {
                        at: Position::Stream(i),
                        value: other.to_string(),
                        reason: "must be a string of Unix nanoseconds",
                    });
                }
            };
            let line = parts[1]
                .as_str()
                .ok_or_else(|| json(format!("stream {i}: a line must be a string")))?;
            let metadata = match parts.get(2) {
                None => Vec::new(),
                Some(m) => string_object(Some(m)).ok_or_else(|| {
                    json(format!(
                        "stream {i}: structured metadata must be an object of strings"
                    ))
                })?,
            };
            entries.push(entry(
                ts,
                line.to_owned(),
                metadata,
                limits,
                Position::Stream(i),
            )?);
        }
        out.push((labels, entries));
    }
    Ok(batch(tenant, out))
}

fn string_object(v: Option<&Value>) -> Option<Vec<(String, String)>> {
    v?.as_object()?
        .iter()
        .map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
        .collect()
}

fn parse_ns(s: &str, stream: usize) -> Result<i64, IngestError> {
    s.parse::<i64>().map_err(|_| IngestError::InvalidTimestamp {
        at: Position::Stream(stream),
        value: s.to_owned(),
        reason: "must be a string of Unix nanoseconds",
    })
}

/// Decodes a snappy-compressed protobuf push body.
pub fn decode_proto(
    tenant: TenantId,
    body: &[u8],
    limits: &LogLimits,
) -> Result<LogBatch, IngestError> {
    let len = snap::raw::decompress_len(body).map_err(|e| IngestError::Snappy {
        reason: e.to_string(),
    })?;
    if len > limits.max_decoded_bytes {
        return Err(IngestError::TooLarge {
            len,
            max: limits.max_decoded_bytes,
        });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| IngestError::Snappy {
            reason: e.to_string(),
        })?;
    let req = proto::PushRequest::decode(raw.as_slice()).map_err(|e| IngestError::LogProtobuf {
        reason: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(req.streams.len());
    for (i, s) in req.streams.into_iter().enumerate() {
        let pairs = parse_selector(&s.labels).map_err(|reason| IngestError::InvalidStream {
            at: Position::Stream(i),
            labels: s.labels.clone(),
            source: strata_types::LabelError::Syntax { reason },
        })?;
        let labels = stream_labels(pairs, Position::Stream(i))?;
        let mut entries = Vec::with_capacity(s.entries.len());
        for e in s.entries {
            let ts = e.timestamp.map_or(0, |t| {
                t.seconds
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(t.nanos))
            });
            let metadata = e
                .structured_metadata
                .into_iter()
                .map(|p| (p.name, p.value))
                .collect();
            entries.push(entry(ts, e.line, metadata, limits, Position::Stream(i))?);
        }
        out.push((labels, entries));
    }
    Ok(batch(tenant, out))
}

/// `{name="value", ...}` → pairs. Values are double-quoted with Go/PromQL
/// escapes (`\"`, `\\`, `\n`, `\t`).
pub fn parse_selector(s: &str) -> Result<Vec<(String, String)>, String> {
    let s = s.trim();
    let inner = s
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| "labels must be written {name=\"value\", ...}".to_owned())?;
    let mut chars = inner.chars().peekable();
    let mut out = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                chars.next();
            } else {
                break;
            }
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if name.is_empty() || chars.next() != Some('=') {
            return Err(format!("expected name=\"value\" in {s}"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('"') {
            return Err(format!("label {name}: value must be double-quoted"));
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return Err(format!("label {name}: unterminated value")),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some(c @ ('"' | '\\')) => value.push(c),
                    Some(c) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => return Err(format!("label {name}: unterminated value")),
                },
                Some(c) => value.push(c),
            }
        }
        out.push((name, value));
    }
    Ok(out)
}

/// Encodes a push request as Loki clients send it (tests, the load
/// generator).
pub fn encode_proto(req: &proto::PushRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::try_new("acme").unwrap()
    }

    #[test]
    fn json_push_keeps_labels_lines_and_metadata() {
        let body = br#"{"streams":[{"stream":{"job":"odoo","level":"info"},
            "values":[["1570818238000000000","line 1"],
                      ["1570818239000000001","line 2",{"trace_id":"abc"}]]}]}"#;
        let b = decode_json(tenant(), body, &LogLimits::default()).unwrap();
        assert_eq!(b.streams.len(), 1);
        let s = &b.streams[0];
        assert_eq!(s.labels.get("job"), Some("odoo"));
        assert_eq!(s.entries[1].timestamp_ns, 1_570_818_239_000_000_001);
        assert_eq!(s.entries[1].line, "line 2");
        assert_eq!(
            s.entries[1].metadata,
            vec![("trace_id".to_owned(), "abc".to_owned())]
        );
    }

    #[test]
    fn json_errors_name_what_is_wrong() {
        let limits = LogLimits {
            max_line_bytes: 4,
            ..LogLimits::default()
        };
        for (body, want) in [
            (
                r#"{"streams":[{"stream":{"job":"x"},"values":[[1570818238000000000,"l"]]}]}"#,
                "must be a string",
            ),
            (
                r#"{"streams":[{"stream":{},"values":[["1","l"]]}]}"#,
                "stream 0 {}",
            ),
            (
                r#"{"streams":[{"stream":{"1bad":"x"},"values":[["1","l"]]}]}"#,
                "1bad",
            ),
            (
                r#"{"streams":[{"stream":{"job":"x"},"values":[["1","too long"]]}]}"#,
                "longer than the limit of 4",
            ),
            (
                r#"{"streams":[{"stream":{"job":"x"},"values":[["1","l",{"a.b":"x"}]]}]}"#,
                "\"a.b\"",
            ),
            (r#"{"streams":"#, "invalid JSON"),
        ] {
            let err = decode_json(tenant(), body.as_bytes(), &limits).unwrap_err();
            assert!(err.to_string().contains(want), "{body}: {err}");
            assert_eq!(err.kind(), strata_types::ErrorKind::BadInput);
        }
    }

    #[test]
    fn protobuf_push_round_trips() {
        let req = proto::PushRequest {
            streams: vec![proto::StreamAdapter {
                labels: r#"{job="odoo", msg="say \"hi\""}"#.into(),
                entries: vec![proto::EntryAdapter {
                    timestamp: Some(proto::Timestamp {
                        seconds: 1_700_000_000,
                        nanos: 5,
                    }),
                    line: "dispatch failed".into(),
                    structured_metadata: vec![proto::LabelPairAdapter {
                        name: "trace_id".into(),
                        value: "t1".into(),
                    }],
                }],
                hash: 0,
            }],
        };
        let b = decode_proto(tenant(), &encode_proto(&req), &LogLimits::default()).unwrap();
        let s = &b.streams[0];
        assert_eq!(s.labels.get("msg"), Some("say \"hi\""));
        assert_eq!(s.entries[0].timestamp_ns, 1_700_000_000_000_000_005);
        assert!(decode_proto(tenant(), b"not snappy", &LogLimits::default()).is_err());
    }

    #[test]
    fn selectors_parse_like_loki_writes_them() {
        assert_eq!(
            parse_selector(r#"{a="1",b = "x\\y" }"#).unwrap(),
            vec![("a".into(), "1".into()), ("b".into(), "x\\y".into())]
        );
        assert!(parse_selector("job=x").is_err());
        assert!(parse_selector(r#"{job="x}"#).is_err());
        assert_eq!(parse_selector("{}").unwrap(), vec![]);
    }
}
