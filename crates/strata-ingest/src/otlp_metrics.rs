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
//!   a staleness marker;
//! - cumulative exponential histograms are native histograms (one series
//!   named as the family, no suffix), as Prometheus' translator makes
//!   them: schema = scale (above 8 merged down to 8), bucket `k` moved to
//!   `k + 1`, the point's zero threshold or 1e-128.
//!
//! Not stored, and counted as rejected in the response's
//! `partial_success` (the client does not retry it): delta temporality
//! (Prometheus refuses it too without its delta-to-cumulative option),
//! exponential histograms with a scale below -4 or whose count disagrees
//! with their buckets, their points with no recorded value (a native
//! histogram stale marker is not kept yet) and their exemplars.

use std::collections::BTreeMap;

use prost::Message;
use strata_types::{
    BucketSpan, Exemplar, Histogram as NativeHistogram, HistogramSample, Label, Labels, ResetHint,
    Sample, SeriesExemplars, SeriesHistograms, TenantId, WriteBatch, exemplar_labels, stale_nan,
    timestamp_in_range, validate_sorted,
};

use crate::IngestError;
use crate::logs::otlp::proto::{KeyValue, Resource};
use crate::metadata::{MetricMetadata, MetricType};

pub mod proto;

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
    /// The exemplars of counters and histograms, on the series Prometheus'
    /// OTLP receiver puts them (a counter's series; the `_bucket` series
    /// whose bound is the first at or above the exemplar's value).
    pub exemplars: Vec<SeriesExemplars>,
    /// Exemplars not kept (a time outside the stored range).
    pub skipped_exemplars: u64,
    /// Cumulative exponential histograms as native histograms, per series
    /// (checked as Prometheus checks them).
    pub histograms: Vec<SeriesHistograms>,
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
    // Every series an exemplar is on has a sample, validated above.
    let exemplars = t
        .exemplars
        .into_iter()
        .map(|(labels, exemplars)| SeriesExemplars {
            labels: Labels::from_validated(
                labels.into_iter().map(|(n, v)| Label::new(n, v)).collect(),
            ),
            exemplars,
        })
        .collect();
    let mut histograms = Vec::with_capacity(t.histograms.len());
    for (index, (labels, mut samples)) in t.histograms.into_iter().enumerate() {
        let pairs = || labels.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        if let Err(source) = validate_sorted(pairs()) {
            return Err(IngestError::InvalidSeries {
                index,
                labels: crate::remote_write::describe(pairs()),
                source,
            });
        }
        samples.sort_by_key(|s| s.timestamp_ms);
        histograms.push(SeriesHistograms {
            labels: Labels::from_validated(
                labels.into_iter().map(|(n, v)| Label::new(n, v)).collect(),
            ),
            samples,
        });
    }
    Ok(DecodedMetrics {
        batch,
        histograms,
        rejected: t.rejected,
        rejected_why: t.why.into_iter().collect(),
        metadata: t.metadata,
        starts,
        exemplars,
        skipped_exemplars: t.skipped_exemplars,
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
    exemplars: BTreeMap<LabelMap, Vec<Exemplar>>,
    skipped_exemplars: u64,
    /// Exponential histograms as native histograms, per series.
    histograms: BTreeMap<LabelMap, Vec<HistogramSample>>,
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

    /// A point's exemplars on the series `labels` + `__name__` = `name` +
    /// `extra`.
    fn exemplars<'e>(
        &mut self,
        p: &Point,
        name: &str,
        extra: Option<(&str, String)>,
        exemplars: impl Iterator<Item = &'e proto::Exemplar>,
    ) {
        let mut kept = Vec::new();
        for e in exemplars {
            match otlp_exemplar(e) {
                Some(e) => kept.push(e),
                None => self.skipped_exemplars += 1,
            }
        }
        if kept.is_empty() {
            return;
        }
        let mut labels = p.labels.clone();
        if let Some((n, v)) = extra {
            labels.insert(n.to_owned(), v);
        }
        labels.insert("__name__".to_owned(), name.to_owned());
        self.exemplars.entry(labels).or_default().extend(kept);
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
                    // Each exemplar on the first bucket at or above its
                    // value, as Prometheus' translator places it.
                    let bucket_of = |e: &proto::Exemplar| {
                        d.explicit_bounds
                            .iter()
                            .take(d.bucket_counts.len())
                            .position(|b| e.value() <= *b)
                    };
                    for (i, bound) in d.explicit_bounds.iter().enumerate() {
                        if d.exemplars.iter().any(|e| bucket_of(e) == Some(i)) {
                            let on = d.exemplars.iter().filter(|e| bucket_of(e) == Some(i));
                            self.exemplars(&p, &bucket, Some(("le", float_label(*bound))), on);
                        }
                    }
                    if d.exemplars.iter().any(|e| bucket_of(e).is_none()) {
                        let on = d.exemplars.iter().filter(|e| bucket_of(e).is_none());
                        self.exemplars(&p, &bucket, Some(("le", "+Inf".into())), on);
                    }
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
            Data::ExponentialHistogram(h) if h.aggregation_temporality == proto::DELTA => {
                self.reject(h.data_points.len(), "delta exponential histograms", &m.name);
            }
            Data::ExponentialHistogram(h) => {
                // The family's name, no suffix: one series per point's
                // labels, as Prometheus' translator names it.
                let name = metric_name(&m.name, &m.unit, Kind::Histogram, self.strategy);
                self.describe(&m, &name, MetricType::Histogram);
                for d in &h.data_points {
                    let times = (d.time_unix_nano, d.start_time_unix_nano);
                    let p = self.point(target, &d.attributes, times, d.flags);
                    if p.stale {
                        self.reject(
                            1,
                            "exponential histogram points with no recorded value",
                            &m.name,
                        );
                        continue;
                    }
                    match native_histogram(d) {
                        Ok(histogram) => {
                            let mut labels = p.labels;
                            labels.insert("__name__".to_owned(), name.clone());
                            self.histograms
                                .entry(labels)
                                .or_default()
                                .push(HistogramSample {
                                    timestamp_ms: p.ms,
                                    histogram,
                                });
                        }
                        Err(why) => self.reject(1, why, &m.name),
                    }
                }
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
                // Counters carry exemplars, gauges do not (as Prometheus'
                // translator has it).
                self.exemplars(&p, name, None, d.exemplars.iter());
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

/// Prometheus' zero threshold for OTLP exponential histograms (the
/// point's own is read when set).
const DEFAULT_ZERO_THRESHOLD: f64 = 1e-128;

/// A cumulative exponential histogram point as Prometheus' translator
/// makes it a native histogram: schema = scale (scales above 8 merged
/// down to 8, below -4 refused), OTLP bucket `k` is Prometheus bucket
/// `k + 1` (OTLP's bounds are lower-exclusive at base^k, Prometheus'
/// upper-inclusive at base^k), integer counts; `Err` says why a point is
/// not stored.
fn native_histogram(
    d: &proto::ExponentialHistogramDataPoint,
) -> Result<NativeHistogram, &'static str> {
    if d.scale < -4 {
        return Err("exponential histograms with a scale below -4");
    }
    let down = (d.scale - 8).max(0) as u32;
    type Side = (Vec<BucketSpan>, Vec<f64>);
    let side = |b: &Option<proto::Buckets>| -> Result<Side, &'static str> {
        let Some(b) = b else {
            return Ok((Vec::new(), Vec::new()));
        };
        // Merged buckets: index k of scale s is index k >> d of scale s - d.
        let mut merged: Vec<(i64, u64)> = Vec::new();
        for (i, &c) in b.bucket_counts.iter().enumerate() {
            let k = (i64::from(b.offset) + i as i64) >> down;
            match merged.last_mut() {
                Some((last, n)) if *last == k => *n = n.saturating_add(c),
                _ => merged.push((k, c)),
            }
        }
        let Some(&(first, _)) = merged.first() else {
            return Ok((Vec::new(), Vec::new()));
        };
        // One span over every merged bucket (zeros kept): the same buckets.
        let span = BucketSpan {
            offset: i32::try_from(first + 1)
                .map_err(|_| "exponential histograms with bucket offsets past 32 bits")?,
            length: u32::try_from(merged.len())
                .map_err(|_| "exponential histograms with more than 2^32 buckets")?,
        };
        Ok((vec![span], merged.iter().map(|&(_, c)| c as f64).collect()))
    };
    let (positive_spans, positive_counts) = side(&d.positive)?;
    let (negative_spans, negative_counts) = side(&d.negative)?;
    let sum = d.sum.unwrap_or(0.0);
    if d.count == 0 && sum != 0.0 {
        return Err("exponential histogram points with zero count and a non-zero sum");
    }
    let h = NativeHistogram {
        reset_hint: ResetHint::Unknown,
        schema: d.scale.min(8),
        zero_threshold: if d.zero_threshold > 0.0 {
            d.zero_threshold
        } else {
            DEFAULT_ZERO_THRESHOLD
        },
        zero_count: d.zero_count as f64,
        count: d.count as f64,
        sum,
        positive_spans,
        positive_counts,
        negative_spans,
        negative_counts,
        custom_values: Vec::new(),
        integer: true,
    };
    h.validate()
        .map_err(|_| "exponential histogram points whose count disagrees with their buckets")?;
    Ok(h)
}

/// An OTLP exemplar as Prometheus' translator makes it: `trace_id` and
/// `span_id` in lower-case hex when set, then the filtered attributes
/// (names as sent) unless they would take the labels past
/// [`strata_types::EXEMPLAR_MAX_LABEL_CHARS`]; `None` for a time outside the stored
/// range.
fn otlp_exemplar(e: &proto::Exemplar) -> Option<Exemplar> {
    let timestamp_ms = nanos_to_ms(e.time_unix_nano);
    if !timestamp_in_range(timestamp_ms) {
        return None;
    }
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut labels = Vec::new();
    if !e.trace_id.is_empty() {
        labels.push(("trace_id".to_owned(), hex(&e.trace_id)));
    }
    if !e.span_id.is_empty() {
        labels.push(("span_id".to_owned(), hex(&e.span_id)));
    }
    let ids = labels.clone();
    for kv in &e.filtered_attributes {
        let v = kv
            .value
            .as_ref()
            .map(crate::logs::otlp::any_to_string)
            .unwrap_or_default();
        labels.push((kv.key.clone(), v));
    }
    let labels = exemplar_labels(labels)
        .or_else(|_| exemplar_labels(ids))
        .ok()?;
    Some(Exemplar {
        labels,
        value: e.value(),
        timestamp_ms,
    })
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
