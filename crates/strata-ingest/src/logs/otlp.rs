//! OTLP/HTTP logs: `POST /v1/logs` (also `/otlp/v1/logs`), protobuf or
//! JSON `ExportLogsServiceRequest`.
//!
//! Mapped as Loki maps it: well-known resource attributes
//! (`service.name`, `k8s.namespace.name`, ...) become stream labels with
//! dots turned into underscores (`service_name="unknown_service"` when a
//! resource names none); the body becomes the line; the time is
//! `timeUnixNano`, else `observedTimeUnixNano`; everything else is
//! structured metadata: the other resource attributes, scope name, version
//! and attributes, log attributes, `severity_text`, `severity_number`,
//! `trace_id`, `span_id` (hex) and `flags`.

use prost::Message;
use serde_json::Value;
use strata_types::{Labels, LogBatch, LogEntry, TenantId};

use super::{LogLimits, batch, entry, now_ns, sanitize_name, stream_labels};
use crate::{IngestError, Position};

/// The OTLP logs messages (opentelemetry-proto `logs/v1`, `common/v1`,
/// `resource/v1`, `collector/logs/v1`): the fields Strata reads.
pub mod proto {
    use prost::Message;

    #[derive(Clone, PartialEq, Message)]
    pub struct ExportLogsServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_logs: Vec<ResourceLogs>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ExportLogsServiceResponse {
        #[prost(message, optional, tag = "1")]
        pub partial_success: Option<ExportLogsPartialSuccess>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ExportLogsPartialSuccess {
        #[prost(int64, tag = "1")]
        pub rejected_log_records: i64,
        #[prost(string, tag = "2")]
        pub error_message: String,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ResourceLogs {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_logs: Vec<ScopeLogs>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ScopeLogs {
        #[prost(message, optional, tag = "1")]
        pub scope: Option<InstrumentationScope>,
        #[prost(message, repeated, tag = "2")]
        pub log_records: Vec<LogRecord>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct InstrumentationScope {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub version: String,
        #[prost(message, repeated, tag = "3")]
        pub attributes: Vec<KeyValue>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct LogRecord {
        #[prost(fixed64, tag = "1")]
        pub time_unix_nano: u64,
        #[prost(fixed64, tag = "11")]
        pub observed_time_unix_nano: u64,
        #[prost(int32, tag = "2")]
        pub severity_number: i32,
        #[prost(string, tag = "3")]
        pub severity_text: String,
        #[prost(message, optional, tag = "5")]
        pub body: Option<AnyValue>,
        #[prost(message, repeated, tag = "6")]
        pub attributes: Vec<KeyValue>,
        #[prost(fixed32, tag = "8")]
        pub flags: u32,
        #[prost(bytes = "vec", tag = "9")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "10")]
        pub span_id: Vec<u8>,
        #[prost(string, tag = "12")]
        pub event_name: String,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct AnyValue {
        #[prost(oneof = "any_value::Value", tags = "1, 2, 3, 4, 5, 6, 7")]
        pub value: Option<any_value::Value>,
    }

    pub mod any_value {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(string, tag = "1")]
            StringValue(String),
            #[prost(bool, tag = "2")]
            BoolValue(bool),
            #[prost(int64, tag = "3")]
            IntValue(i64),
            #[prost(double, tag = "4")]
            DoubleValue(f64),
            #[prost(message, tag = "5")]
            ArrayValue(super::ArrayValue),
            #[prost(message, tag = "6")]
            KvlistValue(super::KeyValueList),
            #[prost(bytes = "vec", tag = "7")]
            BytesValue(Vec<u8>),
        }
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ArrayValue {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<AnyValue>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct KeyValueList {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<KeyValue>,
    }
}

use proto::any_value::Value as Any;

/// Resource attributes that become stream labels (Loki's defaults).
pub const INDEX_LABELS: &[&str] = &[
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
];

/// Whether the body is JSON (else protobuf), by `Content-Type`.
pub fn is_json(content_type: Option<&str>) -> Result<bool, IngestError> {
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media.as_deref() {
        Some("application/json") => Ok(true),
        Some("application/x-protobuf" | "application/protobuf") => Ok(false),
        other => Err(IngestError::UnsupportedMediaType {
            content_type: other.unwrap_or_default().to_owned(),
            expected: "application/x-protobuf or application/json",
        }),
    }
}

/// Decodes a protobuf request body (already decompressed).
pub fn decode_proto(
    tenant: TenantId,
    body: &[u8],
    limits: &LogLimits,
) -> Result<LogBatch, IngestError> {
    let req =
        proto::ExportLogsServiceRequest::decode(body).map_err(|e| IngestError::LogProtobuf {
            reason: e.to_string(),
        })?;
    to_batch(tenant, req, limits)
}

/// Decodes a JSON request body (OTLP's JSON mapping: lowerCamelCase keys,
/// hex trace and span ids, 64-bit integers as strings or numbers).
pub fn decode_json(
    tenant: TenantId,
    body: &[u8],
    limits: &LogLimits,
) -> Result<LogBatch, IngestError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| IngestError::Json {
        reason: e.to_string(),
    })?;
    to_batch(tenant, request_from_json(&v)?, limits)
}

fn to_batch(
    tenant: TenantId,
    req: proto::ExportLogsServiceRequest,
    limits: &LogLimits,
) -> Result<LogBatch, IngestError> {
    let mut streams: Vec<(Labels, Vec<LogEntry>)> = Vec::new();
    let now = now_ns();
    for (i, rl) in req.resource_logs.into_iter().enumerate() {
        let mut labels: Vec<(String, String)> = Vec::new();
        let mut resource_meta: Vec<(String, String)> = Vec::new();
        for kv in rl.resource.map(|r| r.attributes).unwrap_or_default() {
            let value = kv.value.as_ref().map(any_to_string).unwrap_or_default();
            if INDEX_LABELS.contains(&kv.key.as_str()) {
                labels.push((sanitize_name(&kv.key), value));
            } else {
                resource_meta.push((sanitize_name(&kv.key), value));
            }
        }
        if !labels
            .iter()
            .any(|(n, v)| n == "service_name" && !v.is_empty())
        {
            labels.retain(|(n, _)| n != "service_name");
            labels.push(("service_name".into(), "unknown_service".into()));
        }
        let labels = stream_labels(labels, Position::Stream(i))?;
        let mut entries = Vec::new();
        for sl in rl.scope_logs {
            let mut scope_meta = resource_meta.clone();
            if let Some(scope) = &sl.scope {
                if !scope.name.is_empty() {
                    scope_meta.push(("scope_name".into(), scope.name.clone()));
                }
                if !scope.version.is_empty() {
                    scope_meta.push(("scope_version".into(), scope.version.clone()));
                }
                for kv in &scope.attributes {
                    let v = kv.value.as_ref().map(any_to_string).unwrap_or_default();
                    scope_meta.push((sanitize_name(&kv.key), v));
                }
            }
            for r in sl.log_records {
                let ts = match (r.time_unix_nano, r.observed_time_unix_nano) {
                    (0, 0) => now,
                    (0, t) | (t, _) => i64::try_from(t).unwrap_or(i64::MAX),
                };
                let mut meta = scope_meta.clone();
                // Record attributes win over scope and resource ones.
                for kv in &r.attributes {
                    let v = kv.value.as_ref().map(any_to_string).unwrap_or_default();
                    let name = sanitize_name(&kv.key);
                    meta.retain(|(n, _)| *n != name);
                    meta.push((name, v));
                }
                if !r.severity_text.is_empty() {
                    meta.push(("severity_text".into(), r.severity_text.clone()));
                }
                if r.severity_number != 0 {
                    meta.push(("severity_number".into(), r.severity_number.to_string()));
                }
                if !r.trace_id.is_empty() {
                    meta.push(("trace_id".into(), hex(&r.trace_id)));
                }
                if !r.span_id.is_empty() {
                    meta.push(("span_id".into(), hex(&r.span_id)));
                }
                if r.flags != 0 {
                    meta.push(("flags".into(), r.flags.to_string()));
                }
                if !r.event_name.is_empty() {
                    meta.push(("event_name".into(), r.event_name.clone()));
                }
                // Later (more specific) values win in `entry`'s dedup only
                // if they come first: keep the last of each name.
                meta.reverse();
                let line = r.body.as_ref().map(any_to_string).unwrap_or_default();
                entries.push(entry(ts, line, meta, limits, Position::Stream(i))?);
            }
        }
        streams.push((labels, entries));
    }
    Ok(batch(tenant, streams))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An attribute value as text: strings as they are, other scalars as
/// their usual spelling, arrays and maps as JSON.
pub(crate) fn any_to_string(v: &proto::AnyValue) -> String {
    match &v.value {
        None => String::new(),
        Some(Any::StringValue(s)) => s.clone(),
        Some(other) => match any_to_json(other) {
            Value::String(s) => s,
            j => j.to_string(),
        },
    }
}

fn any_to_json(v: &Any) -> Value {
    match v {
        Any::StringValue(s) => Value::String(s.clone()),
        Any::BoolValue(b) => Value::Bool(*b),
        Any::IntValue(i) => Value::from(*i),
        Any::DoubleValue(d) => serde_json::Number::from_f64(*d)
            .map_or_else(|| Value::String(d.to_string()), Value::Number),
        Any::BytesValue(b) => Value::String(base64_std(b)),
        Any::ArrayValue(a) => Value::Array(
            a.values
                .iter()
                .map(|v| v.value.as_ref().map_or(Value::Null, any_to_json))
                .collect(),
        ),
        Any::KvlistValue(kv) => Value::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value
                            .as_ref()
                            .and_then(|v| v.value.as_ref())
                            .map_or(Value::Null, any_to_json),
                    )
                })
                .collect(),
        ),
    }
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

// --- JSON mapping ---

pub(crate) fn bad(what: impl Into<String>) -> IngestError {
    IngestError::Json {
        reason: what.into(),
    }
}

pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> Result<&'a [Value], IngestError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(bad(format!("{key} must be an array"))),
    }
}

pub(crate) fn string(v: &Value, key: &str) -> Result<String, IngestError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(format!("{key} must be a string"))),
    }
}

/// A 64-bit integer field: a decimal string or a number.
pub(crate) fn uint(v: &Value, key: &str) -> Result<u64, IngestError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(s)) if s.is_empty() => Ok(0),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| bad(format!("{key} must be an unsigned integer, got {s:?}"))),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| bad(format!("{key} must be an unsigned integer"))),
        Some(_) => Err(bad(format!("{key} must be an integer"))),
    }
}

fn hex_bytes(v: &Value, key: &str) -> Result<Vec<u8>, IngestError> {
    let s = string(v, key)?;
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(format!("{key} must be hex, got {s:?}")));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| bad(format!("{key}: bad hex"))))
        .collect()
}

pub(crate) fn key_values(v: &Value, key: &str) -> Result<Vec<proto::KeyValue>, IngestError> {
    arr(v, key)?
        .iter()
        .map(|kv| {
            Ok(proto::KeyValue {
                key: string(kv, "key")?,
                value: kv.get("value").map(any_from_json).transpose()?,
            })
        })
        .collect()
}

fn any_from_json(v: &Value) -> Result<proto::AnyValue, IngestError> {
    let value = if let Some(s) = v.get("stringValue") {
        Some(Any::StringValue(
            s.as_str()
                .ok_or_else(|| bad("stringValue must be a string"))?
                .to_owned(),
        ))
    } else if let Some(b) = v.get("boolValue") {
        Some(Any::BoolValue(
            b.as_bool()
                .ok_or_else(|| bad("boolValue must be a boolean"))?,
        ))
    } else if let Some(i) = v.get("intValue") {
        let n = match i {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        Some(Any::IntValue(
            n.ok_or_else(|| bad("intValue must be an integer"))?,
        ))
    } else if let Some(d) = v.get("doubleValue") {
        let n = match d {
            Value::String(s) => s.parse().ok(),
            Value::Number(n) => n.as_f64(),
            _ => None,
        };
        Some(Any::DoubleValue(
            n.ok_or_else(|| bad("doubleValue must be a number"))?,
        ))
    } else if let Some(a) = v.get("arrayValue") {
        Some(Any::ArrayValue(proto::ArrayValue {
            values: arr(a, "values")?
                .iter()
                .map(any_from_json)
                .collect::<Result<_, _>>()?,
        }))
    } else if let Some(kv) = v.get("kvlistValue") {
        Some(Any::KvlistValue(proto::KeyValueList {
            values: key_values(kv, "values")?,
        }))
    } else if let Some(b) = v.get("bytesValue") {
        Some(Any::StringValue(
            b.as_str()
                .ok_or_else(|| bad("bytesValue must be a string"))?
                .to_owned(),
        ))
    } else {
        None
    };
    Ok(proto::AnyValue { value })
}

fn request_from_json(v: &Value) -> Result<proto::ExportLogsServiceRequest, IngestError> {
    if !v.is_object() {
        return Err(bad("expected an ExportLogsServiceRequest object"));
    }
    let mut req = proto::ExportLogsServiceRequest::default();
    for rl in arr(v, "resourceLogs")? {
        let resource = match rl.get("resource") {
            None | Some(Value::Null) => None,
            Some(r) => Some(proto::Resource {
                attributes: key_values(r, "attributes")?,
            }),
        };
        let mut scope_logs = Vec::new();
        for sl in arr(rl, "scopeLogs")? {
            let scope = match sl.get("scope") {
                None | Some(Value::Null) => None,
                Some(s) => Some(proto::InstrumentationScope {
                    name: string(s, "name")?,
                    version: string(s, "version")?,
                    attributes: key_values(s, "attributes")?,
                }),
            };
            let mut log_records = Vec::new();
            for r in arr(sl, "logRecords")? {
                log_records.push(proto::LogRecord {
                    time_unix_nano: uint(r, "timeUnixNano")?,
                    observed_time_unix_nano: uint(r, "observedTimeUnixNano")?,
                    severity_number: i32::try_from(uint(r, "severityNumber")?)
                        .map_err(|_| bad("severityNumber out of range"))?,
                    severity_text: string(r, "severityText")?,
                    body: r.get("body").map(any_from_json).transpose()?,
                    attributes: key_values(r, "attributes")?,
                    flags: u32::try_from(uint(r, "flags")?)
                        .map_err(|_| bad("flags out of range"))?,
                    trace_id: hex_bytes(r, "traceId")?,
                    span_id: hex_bytes(r, "spanId")?,
                    event_name: string(r, "eventName")?,
                });
            }
            scope_logs.push(proto::ScopeLogs { scope, log_records });
        }
        req.resource_logs.push(proto::ResourceLogs {
            resource,
            scope_logs,
        });
    }
    Ok(req)
}

/// The success response in the request's encoding.
pub fn success_body(json: bool) -> Vec<u8> {
    if json {
        b"{}".to_vec()
    } else {
        proto::ExportLogsServiceResponse::default().encode_to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::try_new("acme").unwrap()
    }

    fn kv(k: &str, v: &str) -> proto::KeyValue {
        proto::KeyValue {
            key: k.into(),
            value: Some(proto::AnyValue {
                value: Some(Any::StringValue(v.into())),
            }),
        }
    }

    #[test]
    fn maps_like_loki() {
        let req = proto::ExportLogsServiceRequest {
            resource_logs: vec![proto::ResourceLogs {
                resource: Some(proto::Resource {
                    attributes: vec![kv("service.name", "odoo"), kv("host.name", "n1")],
                }),
                scope_logs: vec![proto::ScopeLogs {
                    scope: Some(proto::InstrumentationScope {
                        name: "stock.picking".into(),
                        ..Default::default()
                    }),
                    log_records: vec![proto::LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_123,
                        severity_number: 17,
                        severity_text: "ERROR".into(),
                        body: Some(proto::AnyValue {
                            value: Some(Any::StringValue("picking failed".into())),
                        }),
                        attributes: vec![kv("business.process", "picking")],
                        trace_id: vec![0xab; 16],
                        span_id: vec![0x01; 8],
                        ..Default::default()
                    }],
                }],
            }],
        };
        let b = decode_proto(tenant(), &req.encode_to_vec(), &LogLimits::default()).unwrap();
        let s = &b.streams[0];
        assert_eq!(s.labels.get("service_name"), Some("odoo"));
        assert_eq!(s.labels.len(), 1);
        let e = &s.entries[0];
        assert_eq!(e.timestamp_ns, 1_700_000_000_000_000_123);
        assert_eq!(e.line, "picking failed");
        let meta: std::collections::HashMap<_, _> = e.metadata.iter().cloned().collect();
        assert_eq!(meta["host_name"], "n1");
        assert_eq!(meta["scope_name"], "stock.picking");
        assert_eq!(meta["business_process"], "picking");
        assert_eq!(meta["severity_text"], "ERROR");
        assert_eq!(meta["severity_number"], "17");
        assert_eq!(meta["trace_id"], "ab".repeat(16));
        assert_eq!(meta["span_id"], "01".repeat(8));
    }

    #[test]
    fn json_mapping_reads_strings_hex_and_camel_case() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[
            {"key":"k8s.namespace.name","value":{"stringValue":"erp"}}]},
            "scopeLogs":[{"logRecords":[{"timeUnixNano":"1700000000000000000",
              "body":{"kvlistValue":{"values":[{"key":"order","value":{"intValue":"42"}}]}},
              "traceId":"5b8efff798038103d269b633813fc60c","severityNumber":9}]}]}]}"#;
        let b = decode_json(tenant(), body, &LogLimits::default()).unwrap();
        let s = &b.streams[0];
        assert_eq!(s.labels.get("k8s_namespace_name"), Some("erp"));
        assert_eq!(s.labels.get("service_name"), Some("unknown_service"));
        assert_eq!(s.entries[0].line, r#"{"order":42}"#);
        assert!(
            decode_json(
                tenant(),
                br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"xyz"}]}]}]}"#,
                &LogLimits::default()
            )
            .is_err()
        );
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64_std(b"ab"), "YWI=");
        assert_eq!(base64_std(b"abc"), "YWJj");
        assert_eq!(base64_std(b"a"), "YQ==");
    }
}
