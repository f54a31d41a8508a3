use serde_json::Value;

use super::proto::*;
use crate::IngestError;
use crate::logs::otlp::{arr, bad, key_values, string, uint};

pub(super) fn request(v: &Value) -> Result<ExportMetricsServiceRequest, IngestError> {
    if !v.is_object() {
        return Err(bad("expected an ExportMetricsServiceRequest object"));
    }
    let mut req = ExportMetricsServiceRequest::default();
    for rm in arr(v, "resourceMetrics")? {
        let resource = match rm.get("resource") {
            None | Some(Value::Null) => None,
            Some(r) => Some(Resource {
                attributes: key_values(r, "attributes")?,
            }),
        };
        let mut scope_metrics = Vec::new();
        for sm in arr(rm, "scopeMetrics")? {
            let metrics = arr(sm, "metrics")?
                .iter()
                .map(metric)
                .collect::<Result<_, _>>()?;
            scope_metrics.push(ScopeMetrics {
                scope: None,
                metrics,
            });
        }
        req.resource_metrics.push(ResourceMetrics {
            resource,
            scope_metrics,
        });
    }
    Ok(req)
}

fn metric(m: &Value) -> Result<Metric, IngestError> {
    let temporality = |d: &Value| -> Result<i32, IngestError> {
        i32::try_from(uint(d, "aggregationTemporality")?)
            .map_err(|_| bad("aggregationTemporality out of range"))
    };
    let numbers = |d: &Value| -> Result<Vec<NumberDataPoint>, IngestError> {
        arr(d, "dataPoints")?.iter().map(number_point).collect()
    };
    let data = if let Some(d) = m.get("gauge") {
        Some(metric::Data::Gauge(Gauge {
            data_points: numbers(d)?,
        }))
    } else if let Some(d) = m.get("sum") {
        Some(metric::Data::Sum(Sum {
            data_points: numbers(d)?,
            aggregation_temporality: temporality(d)?,
            is_monotonic: d
                .get("isMonotonic")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }))
    } else if let Some(d) = m.get("histogram") {
        Some(metric::Data::Histogram(Histogram {
            data_points: arr(d, "dataPoints")?
                .iter()
                .map(histogram_point)
                .collect::<Result<_, _>>()?,
            aggregation_temporality: temporality(d)?,
        }))
    } else if let Some(d) = m.get("exponentialHistogram") {
        Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: arr(d, "dataPoints")?
                .iter()
                .map(exponential_point)
                .collect::<Result<_, _>>()?,
            aggregation_temporality: temporality(d)?,
        }))
    } else if let Some(d) = m.get("summary") {
        Some(metric::Data::Summary(Summary {
            data_points: arr(d, "dataPoints")?
                .iter()
                .map(summary_point)
                .collect::<Result<_, _>>()?,
        }))
    } else {
        None
    };
    Ok(Metric {
        name: string(m, "name")?,
        description: string(m, "description")?,
        unit: string(m, "unit")?,
        data,
    })
}

/// A double: a JSON number, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn float(v: &Value, key: &str) -> Result<Option<f64>, IngestError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => match s.as_str() {
            "NaN" => Ok(Some(f64::NAN)),
            "Infinity" => Ok(Some(f64::INFINITY)),
            "-Infinity" => Ok(Some(f64::NEG_INFINITY)),
            other => other
                .parse()
                .map(Some)
                .map_err(|_| bad(format!("{key} must be a number, got {other:?}"))),
        },
        Some(_) => Err(bad(format!("{key} must be a number"))),
    }
}

/// A signed 64-bit integer: a decimal string or a number.
fn int(v: &Value, key: &str) -> Result<Option<i64>, IngestError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| bad(format!("{key} must be an integer, got {s:?}"))),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(format!("{key} must be an integer"))),
        Some(_) => Err(bad(format!("{key} must be an integer"))),
    }
}

fn flags(p: &Value) -> Result<u32, IngestError> {
    u32::try_from(uint(p, "flags")?).map_err(|_| bad("flags out of range"))
}

fn number_point(p: &Value) -> Result<NumberDataPoint, IngestError> {
    let value = match (float(p, "asDouble")?, int(p, "asInt")?) {
        (Some(d), _) => Some(number_data_point::Value::AsDouble(d)),
        (None, Some(i)) => Some(number_data_point::Value::AsInt(i)),
        (None, None) => None,
    };
    Ok(NumberDataPoint {
        attributes: key_values(p, "attributes")?,
        start_time_unix_nano: uint(p, "startTimeUnixNano")?,
        time_unix_nano: uint(p, "timeUnixNano")?,
        value,
        flags: flags(p)?,
        exemplars: exemplars(p)?,
    })
}

/// A point's `exemplars`; trace and span ids are hex in OTLP JSON.
fn exemplars(p: &Value) -> Result<Vec<Exemplar>, IngestError> {
    let ids = |e: &Value, key: &str| -> Result<Vec<u8>, IngestError> {
        let s = match e.get(key) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(bad(format!("exemplar {key} must be a hex string"))),
        };
        if !s.len().is_multiple_of(2) {
            return Err(bad(format!("exemplar {key} is not hex")));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| {
                s.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad(format!("exemplar {key} is not hex")))
            })
            .collect()
    };
    arr(p, "exemplars")?
        .iter()
        .map(|e| {
            let value = match (float(e, "asDouble")?, int(e, "asInt")?) {
                (Some(d), _) => Some(exemplar::Value::AsDouble(d)),
                (None, Some(i)) => Some(exemplar::Value::AsInt(i)),
                (None, None) => None,
            };
            Ok(Exemplar {
                filtered_attributes: key_values(e, "filteredAttributes")?,
                time_unix_nano: uint(e, "timeUnixNano")?,
                value,
                span_id: ids(e, "spanId")?,
                trace_id: ids(e, "traceId")?,
            })
        })
        .collect()
}

fn histogram_point(p: &Value) -> Result<HistogramDataPoint, IngestError> {
    let bucket_counts = arr(p, "bucketCounts")?
        .iter()
        .map(|c| uint(&serde_json::json!({ "c": c }), "c"))
        .collect::<Result<_, _>>()?;
    let explicit_bounds = arr(p, "explicitBounds")?
        .iter()
        .map(|b| {
            float(&serde_json::json!({ "b": b }), "b")?
                .ok_or_else(|| bad("explicitBounds must hold numbers"))
        })
        .collect::<Result<_, _>>()?;
    Ok(HistogramDataPoint {
        attributes: key_values(p, "attributes")?,
        start_time_unix_nano: uint(p, "startTimeUnixNano")?,
        time_unix_nano: uint(p, "timeUnixNano")?,
        count: uint(p, "count")?,
        sum: float(p, "sum")?,
        bucket_counts,
        explicit_bounds,
        flags: flags(p)?,
        exemplars: exemplars(p)?,
    })
}

fn exponential_point(p: &Value) -> Result<ExponentialHistogramDataPoint, IngestError> {
    let buckets = |key: &str| -> Result<Option<Buckets>, IngestError> {
        let Some(b) = p.get(key).filter(|b| !b.is_null()) else {
            return Ok(None);
        };
        let offset = int(b, "offset")?.unwrap_or(0);
        Ok(Some(Buckets {
            offset: i32::try_from(offset).map_err(|_| bad(format!("{key}.offset out of range")))?,
            bucket_counts: arr(b, "bucketCounts")?
                .iter()
                .map(|c| uint(&serde_json::json!({ "c": c }), "c"))
                .collect::<Result<_, _>>()?,
        }))
    };
    let scale = int(p, "scale")?.unwrap_or(0);
    Ok(ExponentialHistogramDataPoint {
        attributes: key_values(p, "attributes")?,
        start_time_unix_nano: uint(p, "startTimeUnixNano")?,
        time_unix_nano: uint(p, "timeUnixNano")?,
        count: uint(p, "count")?,
        sum: float(p, "sum")?,
        scale: i32::try_from(scale).map_err(|_| bad("scale out of range"))?,
        zero_count: uint(p, "zeroCount")?,
        positive: buckets("positive")?,
        negative: buckets("negative")?,
        flags: flags(p)?,
        zero_threshold: float(p, "zeroThreshold")?.unwrap_or(0.0),
    })
}

fn summary_point(p: &Value) -> Result<SummaryDataPoint, IngestError> {
    let quantile_values = arr(p, "quantileValues")?
        .iter()
        .map(|q| {
            Ok(ValueAtQuantile {
                quantile: float(q, "quantile")?.unwrap_or(0.0),
                value: float(q, "value")?.unwrap_or(0.0),
            })
        })
        .collect::<Result<_, IngestError>>()?;
    Ok(SummaryDataPoint {
        attributes: key_values(p, "attributes")?,
        start_time_unix_nano: uint(p, "startTimeUnixNano")?,
        time_unix_nano: uint(p, "timeUnixNano")?,
        count: uint(p, "count")?,
        sum: float(p, "sum")?.unwrap_or(0.0),
        quantile_values,
        flags: flags(p)?,
    })
}
