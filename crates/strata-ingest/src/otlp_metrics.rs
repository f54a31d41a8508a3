//! OTLP/HTTP metrics: `POST /v1/metrics` (also `/otlp/v1/metrics` and
//! Prometheus' `/api/v1/otlp/v1/metrics`), protobuf or JSON
//! `ExportMetricsServiceRequest`.
//!
//! Mapped as Prometheus' OTLP receiver maps it (its default translation,
//! `UnderscoreEscapingWithSuffixes`; `../shared/conformance/protocols`
//! section (e)):
//! - names: characters outside `[a-zA-Z0-9_:]` become `_`, the unit is
//!   appended in words (`s` → `_seconds`, `By` → `_bytes`, `1` on a gauge →
//!   `_ratio`, a unit without a word as written, `{…}` annotations
//!   dropped, `a/b` → `_a_per_b`) unless the name already holds it, and a
//!   monotonic cumulative sum ends in `_total` (metadata units the same
//!   way);
//! - labels: data-point attributes with `.` and other characters turned
//!   into `_` (colliding names joined with `;`); `service.namespace` +
//!   `/` + `service.name` becomes `job`, `service.instance.id` `instance`;
//!   the other resource attributes go on one `target_info` series per
//!   resource;
//! - the tenant may pick another of Prometheus 3's strategies
//!   ([`TranslationStrategy`]): names and attribute keys kept as UTF-8
//!   text with the same suffixes (`NoUTF8EscapingWithSuffixes`, each
//!   suffix trimmed first so it comes once, an unknown unit appended as
//!   written, as `otlptranslator` builds them), escaped without suffixes,
//!   or kept as sent (`NoTranslation`); under the UTF-8 ones an attribute
//!   key that is empty or only underscores is no label name and is left
//!   out;
//! - gauges and non-monotonic sums are gauges, monotonic sums counters,
//!   histograms classic `_bucket{le}`/`_sum`/`_count` series, summaries
//!   `{quantile}`/`_sum`/`_count`; a point flagged "no recorded value" is
//!   a staleness marker.
//!
//! Not stored, and counted as rejected in the response's
//! `partial_success` (the client does not retry it): delta temporality
//! (Prometheus refuses it too without its delta-to-cumulative option) and
//! exponential histograms (native histograms are not stored yet).

use std::collections::BTreeMap;

use prost::Message;
use strata_types::{Sample, TenantId, WriteBatch, stale_nan, validate_sorted};

use crate::IngestError;
use crate::logs::otlp::proto::{KeyValue, Resource};
use crate::metadata::{MetricMetadata, MetricType};

/// The OTLP metrics messages (opentelemetry-proto `metrics/v1`,
/// `collector/metrics/v1`): the fields Strata reads.
pub mod proto {
    use prost::Message;

    pub use crate::logs::otlp::proto::{AnyValue, InstrumentationScope, KeyValue, Resource};

    #[derive(Clone, PartialEq, Message)]
    pub struct ExportMetricsServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_metrics: Vec<ResourceMetrics>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ExportMetricsServiceResponse {
        #[prost(message, optional, tag = "1")]
        pub partial_success: Option<ExportMetricsPartialSuccess>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ExportMetricsPartialSuccess {
        #[prost(int64, tag = "1")]
        pub rejected_data_points: i64,
        #[prost(string, tag = "2")]
        pub error_message: String,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ResourceMetrics {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_metrics: Vec<ScopeMetrics>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ScopeMetrics {
        #[prost(message, optional, tag = "1")]
        pub scope: Option<InstrumentationScope>,
        #[prost(message, repeated, tag = "2")]
        pub metrics: Vec<Metric>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Metric {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub description: String,
        #[prost(string, tag = "3")]
        pub unit: String,
        #[prost(oneof = "metric::Data", tags = "5, 7, 9, 10, 11")]
        pub data: Option<metric::Data>,
    }

    pub mod metric {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Data {
            #[prost(message, tag = "5")]
            Gauge(super::Gauge),
            #[prost(message, tag = "7")]
            Sum(super::Sum),
            #[prost(message, tag = "9")]
            Histogram(super::Histogram),
            #[prost(message, tag = "10")]
            ExponentialHistogram(super::ExponentialHistogram),
            #[prost(message, tag = "11")]
            Summary(super::Summary),
        }
    }

    /// `AggregationTemporality`.
    pub const DELTA: i32 = 1;
    pub const CUMULATIVE: i32 = 2;

    #[derive(Clone, PartialEq, Message)]
    pub struct Gauge {
        #[prost(message, repeated, tag = "1")]
        pub data_points: Vec<NumberDataPoint>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Sum {
        #[prost(message, repeated, tag = "1")]
        pub data_points: Vec<NumberDataPoint>,
        #[prost(int32, tag = "2")]
        pub aggregation_temporality: i32,
        #[prost(bool, tag = "3")]
        pub is_monotonic: bool,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Histogram {
        #[prost(message, repeated, tag = "1")]
        pub data_points: Vec<HistogramDataPoint>,
        #[prost(int32, tag = "2")]
        pub aggregation_temporality: i32,
    }

    /// Only the number of points is read.
    #[derive(Clone, PartialEq, Message)]
    pub struct ExponentialHistogram {
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub data_points: Vec<Vec<u8>>,
        #[prost(int32, tag = "2")]
        pub aggregation_temporality: i32,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Summary {
        #[prost(message, repeated, tag = "1")]
        pub data_points: Vec<SummaryDataPoint>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct NumberDataPoint {
        #[prost(message, repeated, tag = "7")]
        pub attributes: Vec<KeyValue>,
        #[prost(fixed64, tag = "2")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "3")]
        pub time_unix_nano: u64,
        #[prost(oneof = "number_data_point::Value", tags = "4, 6")]
        pub value: Option<number_data_point::Value>,
        #[prost(uint32, tag = "8")]
        pub flags: u32,
    }

    pub mod number_data_point {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(double, tag = "4")]
            AsDouble(f64),
            #[prost(sfixed64, tag = "6")]
            AsInt(i64),
        }
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct HistogramDataPoint {
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<KeyValue>,
        #[prost(fixed64, tag = "2")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "3")]
        pub time_unix_nano: u64,
        #[prost(fixed64, tag = "4")]
        pub count: u64,
        #[prost(double, optional, tag = "5")]
        pub sum: Option<f64>,
        #[prost(fixed64, repeated, tag = "6")]
        pub bucket_counts: Vec<u64>,
        #[prost(double, repeated, tag = "7")]
        pub explicit_bounds: Vec<f64>,
        #[prost(uint32, tag = "10")]
        pub flags: u32,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct SummaryDataPoint {
        #[prost(message, repeated, tag = "7")]
        pub attributes: Vec<KeyValue>,
        #[prost(fixed64, tag = "2")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "3")]
        pub time_unix_nano: u64,
        #[prost(fixed64, tag = "4")]
        pub count: u64,
        #[prost(double, tag = "5")]
        pub sum: f64,
        #[prost(message, repeated, tag = "6")]
        pub quantile_values: Vec<ValueAtQuantile>,
        #[prost(uint32, tag = "8")]
        pub flags: u32,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct ValueAtQuantile {
        #[prost(double, tag = "1")]
        pub quantile: f64,
        #[prost(double, tag = "2")]
        pub value: f64,
    }
}

use proto::metric::Data;

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const NO_RECORDED_VALUE: u32 = 1;

/// Resource attributes that name the target (`job`, `instance`) rather
/// than going to `target_info`.
const TARGET_ATTRIBUTES: [&str; 3] = ["service.name", "service.namespace", "service.instance.id"];

/// A decoded request: the samples, and what was not stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedMetrics {
    pub batch: WriteBatch,
    /// Data points not stored (delta temporality, exponential
    /// histograms), and why, for `partial_success`.
    pub rejected: u64,
    pub rejected_why: Vec<String>,
    /// Each stored metric's type, description and unit, as Prometheus'
    /// OTLP receiver gives them (the family's Prometheus name, the unit's
    /// Prometheus words).
    pub metadata: Vec<MetricMetadata>,
    /// Each sample's start timestamp in ms (the data point's
    /// `start_time_unix_nano`, for the samples of cumulative counters,
    /// histograms and summaries' `_sum`/`_count`), in the batch's sample
    /// order, 0 where unset; empty when none is set. See
    /// [`crate::start_zeros`].
    pub starts: Vec<i64>,
}

/// Decodes a protobuf request body (already decompressed), names
/// translated as Prometheus 3 does by default.
pub fn decode_proto(tenant: TenantId, body: &[u8]) -> Result<DecodedMetrics, IngestError> {
    decode_proto_as(tenant, body, TranslationStrategy::default())
}

/// [`decode_proto`] with names translated by `strategy`.
pub fn decode_proto_as(
    tenant: TenantId,
    body: &[u8],
    strategy: TranslationStrategy,
) -> Result<DecodedMetrics, IngestError> {
    let req =
        proto::ExportMetricsServiceRequest::decode(body).map_err(|e| IngestError::LogProtobuf {
            reason: format!("not an OTLP ExportMetricsServiceRequest: {e}"),
        })?;
    to_batch(tenant, req, strategy)
}

/// Decodes a JSON request body (OTLP's JSON mapping: lowerCamelCase keys,
/// 64-bit integers as strings or numbers, enums as integers).
pub fn decode_json(tenant: TenantId, body: &[u8]) -> Result<DecodedMetrics, IngestError> {
    decode_json_as(tenant, body, TranslationStrategy::default())
}

/// [`decode_json`] with names translated by `strategy`.
pub fn decode_json_as(
    tenant: TenantId,
    body: &[u8],
    strategy: TranslationStrategy,
) -> Result<DecodedMetrics, IngestError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| IngestError::Json {
        reason: e.to_string(),
    })?;
    to_batch(tenant, json::request(&v)?, strategy)
}

/// The response body, in the request's encoding: `partial_success` set
/// when points were dropped.
pub fn response(json: bool, rejected: u64, why: &[String]) -> Vec<u8> {
    if !json {
        return response_body(rejected, why);
    }
    let body = if rejected > 0 {
        serde_json::json!({"partialSuccess": {
            "rejectedDataPoints": rejected.to_string(),
            "errorMessage": why.join("; "),
        }})
    } else {
        serde_json::json!({})
    };
    body.to_string().into_bytes()
}

/// The response body: `partial_success` set when points were dropped.
fn response_body(rejected: u64, why: &[String]) -> Vec<u8> {
    proto::ExportMetricsServiceResponse {
        partial_success: (rejected > 0).then(|| proto::ExportMetricsPartialSuccess {
            rejected_data_points: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message: why.join("; "),
        }),
    }
    .encode_to_vec()
}

/// Sorted labels of a series.
type LabelMap = BTreeMap<String, String>;

fn to_batch(
    tenant: TenantId,
    req: proto::ExportMetricsServiceRequest,
    strategy: TranslationStrategy,
) -> Result<DecodedMetrics, IngestError> {
    let mut t = Translation {
        strategy,
        ..Translation::default()
    };
    for rm in req.resource_metrics {
        let resource = rm.resource.unwrap_or_default();
        let target = target_labels(&resource);
        t.newest_ms = None;
        for m in rm.scope_metrics.into_iter().flat_map(|sm| sm.metrics) {
            t.metric(&target, m);
        }
        if let Some(ms) = t.newest_ms {
            let attrs: Vec<KeyValue> = resource
                .attributes
                .into_iter()
                .filter(|kv| !TARGET_ATTRIBUTES.contains(&kv.key.as_str()))
                .collect();
            let labels = point_labels(&target, &attrs, strategy);
            // Only when attributes are left beyond `job` and `instance`.
            if labels.len() > target.len() {
                t.push(&labels, "target_info", None, (ms, 0), 1.0);
            }
        }
    }
    let mut batch = WriteBatch::with_capacity(tenant, t.series.len(), 10);
    let mut starts: Vec<i64> = Vec::new();
    for (index, (labels, mut samples)) in t.series.into_iter().enumerate() {
        let pairs = || labels.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        if let Err(source) = validate_sorted(pairs()) {
            return Err(IngestError::InvalidSeries {
                index,
                labels: crate::remote_write::describe(pairs()),
                source,
            });
        }
        samples.sort_by_key(|(s, _)| s.timestamp_ms);
        crate::start_zeros::extend_starts(&mut starts, batch.sample_count(), &samples);
        batch.push_validated(pairs(), samples.iter().map(|(s, _)| *s));
    }
    Ok(DecodedMetrics {
        batch,
        rejected: t.rejected,
        rejected_why: t.why.into_iter().collect(),
        metadata: t.metadata,
        starts,
    })
}

/// The series a request becomes, and what it could not store.
#[derive(Default)]
struct Translation {
    strategy: TranslationStrategy,
    /// Each series' samples with their start timestamps (ms, 0: none).
    series: BTreeMap<LabelMap, Vec<(Sample, i64)>>,
    rejected: u64,
    why: std::collections::BTreeSet<String>,
    /// The newest point of the current resource (`target_info`'s time).
    newest_ms: Option<i64>,
    metadata: Vec<MetricMetadata>,
}

impl Translation {
    fn reject(&mut self, points: usize, what: &str, metric: &str) {
        self.rejected += points as u64;
        self.why.insert(format!("{what} are not stored ({metric})"));
    }

    /// One sample of `labels` + `__name__` = `name` + `extra`, at `ms`
    /// with start timestamp `start` (0: none).
    fn push(
        &mut self,
        labels: &LabelMap,
        name: &str,
        extra: Option<(&str, String)>,
        (ms, start): (i64, i64),
        v: f64,
    ) {
        let mut labels = labels.clone();
        if let Some((n, v)) = extra {
            labels.insert(n.to_owned(), v);
        }
        labels.insert("__name__".to_owned(), name.to_owned());
        self.series.entry(labels).or_default().push((
            Sample {
                timestamp_ms: ms,
                value: v,
            },
            start,
        ));
    }

    /// Where a data point's samples go: its labels, time, and whether it
    /// holds no recorded value (then every sample is a staleness marker).
    fn point(
        &mut self,
        target: &[(String, String)],
        attrs: &[KeyValue],
        (t_ns, start_ns): (u64, u64),
        flags: u32,
    ) -> Point {
        let ms = nanos_to_ms(t_ns);
        self.newest_ms = Some(self.newest_ms.map_or(ms, |n| n.max(ms)));
        Point {
            labels: point_labels(target, attrs, self.strategy),
            ms,
            start_ms: nanos_to_ms(start_ns),
            stale: flags & NO_RECORDED_VALUE != 0,
        }
    }

    /// A sample of a gauge-like series: no start timestamp.
    fn sample(&mut self, p: &Point, name: &str, extra: Option<(&str, String)>, v: f64) {
        let v = if p.stale { stale_nan() } else { v };
        self.push(&p.labels, name, extra, (p.ms, 0), v);
    }

    /// A sample of a cumulative series (a counter, a histogram's buckets,
    /// sum and count, a summary's sum and count), with the point's start.
    fn cumulative(&mut self, p: &Point, name: &str, extra: Option<(&str, String)>, v: f64) {
        let v = if p.stale { stale_nan() } else { v };
        self.push(&p.labels, name, extra, (p.ms, p.start_ms), v);
    }

    /// The metadata of a stored metric, its family named `name`.
    fn describe(&mut self, m: &proto::Metric, name: &str, kind: MetricType) {
        crate::metadata::push(
            &mut self.metadata,
            MetricMetadata {
                metric: name.to_owned(),
                kind,
                help: m.description.clone(),
                unit: prom_unit(&m.unit, self.strategy.utf8()),
            },
        );
    }

    fn metric(&mut self, target: &[(String, String)], mut m: proto::Metric) {
        let Some(data) = m.data.take() else { return };
        match data {
            Data::Gauge(g) => {
                let name = metric_name(&m.name, &m.unit, Kind::Gauge, self.strategy);
                self.describe(&m, &name, MetricType::Gauge);
                self.numbers(target, &name, &g.data_points, false);
            }
            Data::Sum(s) if s.aggregation_temporality == proto::DELTA => {
                self.reject(s.data_points.len(), "delta sums", &m.name);
            }
            Data::Sum(s) => {
                let kind = if s.is_monotonic {
                    Kind::Counter
                } else {
                    Kind::Gauge
                };
                let name = metric_name(&m.name, &m.unit, kind, self.strategy);
                let described = if kind == Kind::Counter {
                    MetricType::Counter
                } else {
                    MetricType::Gauge
                };
                self.describe(&m, &name, described);
                self.numbers(target, &name, &s.data_points, kind == Kind::Counter);
            }
            Data::Histogram(h) if h.aggregation_temporality == proto::DELTA => {
                self.reject(h.data_points.len(), "delta histograms", &m.name);
            }
            Data::Histogram(h) => {
                let base = metric_name(&m.name, &m.unit, Kind::Histogram, self.strategy);
                self.describe(&m, &base, MetricType::Histogram);
                let (bucket, sum, count) = (
                    format!("{base}_bucket"),
                    format!("{base}_sum"),
                    format!("{base}_count"),
                );
                for d in &h.data_points {
                    let times = (d.time_unix_nano, d.start_time_unix_nano);
                    let p = self.point(target, &d.attributes, times, d.flags);
                    let mut cumulative = 0u64;
                    // One more count than bounds: the last is the +Inf
                    // bucket, which is the point's count.
                    for (bound, n) in d.explicit_bounds.iter().zip(&d.bucket_counts) {
                        cumulative = cumulative.saturating_add(*n);
                        self.cumulative(
                            &p,
                            &bucket,
                            Some(("le", float_label(*bound))),
                            cumulative as f64,
                        );
                    }
                    self.cumulative(&p, &bucket, Some(("le", "+Inf".into())), d.count as f64);
                    if let Some(s) = d.sum {
                        self.cumulative(&p, &sum, None, s);
                    }
                    self.cumulative(&p, &count, None, d.count as f64);
                }
            }
            Data::Summary(s) => {
                let base = metric_name(&m.name, &m.unit, Kind::Summary, self.strategy);
                self.describe(&m, &base, MetricType::Summary);
                let (sum, count) = (format!("{base}_sum"), format!("{base}_count"));
                for d in &s.data_points {
                    let times = (d.time_unix_nano, d.start_time_unix_nano);
                    let p = self.point(target, &d.attributes, times, d.flags);
                    for q in &d.quantile_values {
                        self.sample(
                            &p,
                            &base,
                            Some(("quantile", float_label(q.quantile))),
                            q.value,
                        );
                    }
                    self.cumulative(&p, &sum, None, d.sum);
                    self.cumulative(&p, &count, None, d.count as f64);
                }
            }
            Data::ExponentialHistogram(h) => {
                self.reject(h.data_points.len(), "exponential histograms", &m.name);
            }
        }
    }

    fn numbers(
        &mut self,
        target: &[(String, String)],
        name: &str,
        points: &[proto::NumberDataPoint],
        counter: bool,
    ) {
        for d in points {
            let times = (d.time_unix_nano, d.start_time_unix_nano);
            let p = self.point(target, &d.attributes, times, d.flags);
            let v = match d.value {
                Some(proto::number_data_point::Value::AsDouble(v)) => v,
                Some(proto::number_data_point::Value::AsInt(i)) => i as f64,
                None => 0.0,
            };
            if counter {
                self.cumulative(&p, name, None, v);
            } else {
                self.sample(&p, name, None, v);
            }
        }
    }
}

/// A data point's labels, time and staleness.
struct Point {
    labels: LabelMap,
    ms: i64,
    /// `start_time_unix_nano` in ms; 0 when unset.
    start_ms: i64,
    stale: bool,
}

fn nanos_to_ms(ns: u64) -> i64 {
    i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX)
}

/// `0.005`, `10`, `+Inf`: Go's `strconv.FormatFloat(f, 'f', -1, 64)`, as
/// Prometheus spells `le` and `quantile`.
fn float_label(f: f64) -> String {
    if f == f64::INFINITY {
        "+Inf".into()
    } else if f == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{f}")
    }
}

/// `job` and `instance` from the resource.
fn target_labels(resource: &Resource) -> Vec<(String, String)> {
    let attr = |k: &str| {
        resource
            .attributes
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.as_ref())
            .map(crate::logs::otlp::any_to_string)
            .filter(|v| !v.is_empty())
    };
    let mut out = Vec::new();
    if let Some(name) = attr("service.name") {
        let job = match attr("service.namespace") {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        };
        out.push(("job".to_owned(), job));
    }
    if let Some(instance) = attr("service.instance.id") {
        out.push(("instance".to_owned(), instance));
    }
    out
}

/// A data point's labels but `__name__`: the attributes (sanitized;
/// colliding names joined with `;`, in attribute order; empty values left
/// out, as Prometheus does), then the target's `job` and `instance`, which
/// win over attributes of the same name.
fn point_labels(
    target: &[(String, String)],
    attrs: &[KeyValue],
    strategy: TranslationStrategy,
) -> LabelMap {
    let mut map = LabelMap::new();
    for kv in attrs {
        let v = kv
            .value
            .as_ref()
            .map(crate::logs::otlp::any_to_string)
            .unwrap_or_default();
        if v.is_empty() {
            continue;
        }
        // Under the UTF-8 strategies a key is its own label name; one
        // that is empty or only underscores is no name and is left out.
        let name = if strategy.utf8() {
            if kv.key.chars().all(|c| c == '_') {
                continue;
            }
            kv.key.clone()
        } else {
            label_name(&kv.key)
        };
        map.entry(name)
            .and_modify(|old| {
                old.push(';');
                old.push_str(&v);
            })
            .or_insert(v);
    }
    for (n, v) in target {
        map.insert(n.clone(), v.clone());
    }
    map
}

/// OTLP JSON → the protobuf messages.
mod json;
/// Metric and label names under each translation strategy.
mod names;
pub use names::TranslationStrategy;
use names::{Kind, label_name, metric_name, prom_unit};

#[cfg(test)]
mod tests;
