use strata_types::STALE_NAN_BITS;

use super::proto::*;
use super::*;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(crate::logs::otlp::proto::any_value::Value::StringValue(
                v.into(),
            )),
        }),
    }
}

fn point(t_ms: u64, v: f64, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        time_unix_nano: t_ms * 1_000_000,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics,
            }],
        }],
    }
}

fn metric(name: &str, unit: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

/// Every series as `{labels}` text → samples.
fn decoded(
    req: ExportMetricsServiceRequest,
) -> (BTreeMap<String, Vec<(i64, f64)>>, DecodedMetrics) {
    let d = decode_proto(TenantId::try_new("t").unwrap(), &req.encode_to_vec()).unwrap();
    let out = d
        .batch
        .series()
        .map(|s| {
            let labels: Vec<String> = s.labels().map(|(n, v)| format!("{n}={v}")).collect();
            (
                labels.join(","),
                s.samples()
                    .iter()
                    .map(|x| (x.timestamp_ms, x.value))
                    .collect(),
            )
        })
        .collect();
    (out, d)
}

#[test]
fn names_follow_prometheus_translation() {
    for (name, unit, kind, want) in [
        (
            "http.server.request.duration",
            "s",
            Kind::Histogram,
            "http_server_request_duration_seconds",
        ),
        (
            "process.runtime.memory",
            "By",
            Kind::Gauge,
            "process_runtime_memory_bytes",
        ),
        (
            "odoo.orders.picked",
            "{order}",
            Kind::Counter,
            "odoo_orders_picked_total",
        ),
        ("requests_total", "", Kind::Counter, "requests_total"),
        ("cpu.utilization", "1", Kind::Gauge, "cpu_utilization_ratio"),
        (
            "throughput",
            "By/s",
            Kind::Gauge,
            "throughput_bytes_per_second",
        ),
        ("latency_seconds", "s", Kind::Gauge, "latency_seconds"),
        ("queue-depth", "", Kind::Gauge, "queue_depth"),
        ("2xx.count", "", Kind::Counter, "_2xx_count_total"),
        // A unit without a word is appended as written (cleaned), and a
        // `per_` suffix is one token, as otlptranslator's normalizeName.
        ("pallets", "pallet", Kind::Gauge, "pallets_pallet"),
        (
            "dock.moves",
            "pallet.m/h",
            Kind::Gauge,
            "dock_moves_pallet_m_per_hour",
        ),
        (
            "throughput_per_second",
            "By/s",
            Kind::Gauge,
            "throughput_per_second_bytes_per_second",
        ),
        ("usage_ratio", "1", Kind::Gauge, "usage_ratio"),
        (
            "ratio.total.requests",
            "",
            Kind::Counter,
            "ratio_requests_total",
        ),
    ] {
        assert_eq!(
            metric_name(name, unit, kind, TranslationStrategy::default()),
            want,
            "{name} [{unit}]"
        );
    }
}

#[test]
fn gauges_sums_and_resources_become_prometheus_series() {
    let req = request(
        vec![
            kv("service.name", "odoo"),
            kv("service.namespace", "erp"),
            kv("service.instance.id", "pod-1"),
            kv("k8s.namespace.name", "prod"),
        ],
        vec![
            metric(
                "odoo.queue.depth",
                "{job}",
                metric::Data::Gauge(Gauge {
                    data_points: vec![point(1000, 7.0, vec![kv("queue.name", "picking")])],
                }),
            ),
            metric(
                "odoo.orders",
                "{order}",
                metric::Data::Sum(Sum {
                    data_points: vec![
                        point(1000, 3.0, vec![kv("stage", "dispatch")]),
                        NumberDataPoint {
                            flags: 1,
                            ..point(2000, 0.0, vec![kv("stage", "dispatch")])
                        },
                    ],
                    aggregation_temporality: CUMULATIVE,
                    is_monotonic: true,
                }),
            ),
        ],
    );
    let (series, d) = decoded(req);
    assert_eq!(d.rejected, 0);
    let keys: Vec<&String> = series.keys().collect();
    assert_eq!(
        keys,
        [
            "__name__=odoo_orders_total,instance=pod-1,job=erp/odoo,stage=dispatch",
            "__name__=odoo_queue_depth,instance=pod-1,job=erp/odoo,queue_name=picking",
            "__name__=target_info,instance=pod-1,job=erp/odoo,k8s_namespace_name=prod",
        ]
    );
    let orders = &series[keys[0]];
    assert_eq!(orders[0], (1000, 3.0));
    assert_eq!(
        orders[1].1.to_bits(),
        STALE_NAN_BITS,
        "no recorded value is stale"
    );
    assert_eq!(
        series[keys[2]],
        vec![(2000, 1.0)],
        "target_info at the newest point"
    );
}

#[test]
fn histograms_become_cumulative_buckets_and_summaries_quantiles() {
    let req = request(
        vec![kv("service.name", "api")],
        vec![
            metric(
                "http.server.request.duration",
                "s",
                metric::Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        time_unix_nano: 5_000_000_000,
                        count: 6,
                        sum: Some(1.5),
                        bucket_counts: vec![1, 2, 3],
                        explicit_bounds: vec![0.005, 1.0],
                        ..Default::default()
                    }],
                    aggregation_temporality: CUMULATIVE,
                }),
            ),
            metric(
                "rpc.duration",
                "ms",
                metric::Data::Summary(Summary {
                    data_points: vec![SummaryDataPoint {
                        time_unix_nano: 5_000_000_000,
                        count: 4,
                        sum: 10.0,
                        quantile_values: vec![ValueAtQuantile {
                            quantile: 0.99,
                            value: 9.0,
                        }],
                        ..Default::default()
                    }],
                }),
            ),
        ],
    );
    let (series, _) = decoded(req);
    let get = |k: &str| series.get(k).map(|v| v[0].1);
    let b = "__name__=http_server_request_duration_seconds_bucket,job=api,le=";
    assert_eq!(get(&format!("{b}0.005")), Some(1.0));
    assert_eq!(get(&format!("{b}1")), Some(3.0));
    assert_eq!(get(&format!("{b}+Inf")), Some(6.0));
    assert_eq!(
        get("__name__=http_server_request_duration_seconds_sum,job=api"),
        Some(1.5)
    );
    assert_eq!(
        get("__name__=http_server_request_duration_seconds_count,job=api"),
        Some(6.0)
    );
    assert_eq!(
        get("__name__=rpc_duration_milliseconds,job=api,quantile=0.99"),
        Some(9.0)
    );
    assert_eq!(
        get("__name__=rpc_duration_milliseconds_count,job=api"),
        Some(4.0)
    );
    assert_eq!(
        get("__name__=rpc_duration_milliseconds_sum,job=api"),
        Some(10.0)
    );
}

#[test]
fn start_times_go_with_cumulative_samples_only() {
    let start = |mut p: NumberDataPoint| {
        p.start_time_unix_nano = 1_000_000_000;
        p
    };
    let req = request(
        vec![kv("service.name", "api")],
        vec![
            metric(
                "orders.picked",
                "",
                metric::Data::Sum(Sum {
                    data_points: vec![start(point(5000, 7.0, vec![]))],
                    aggregation_temporality: CUMULATIVE,
                    is_monotonic: true,
                }),
            ),
            metric(
                "queue.depth",
                "",
                metric::Data::Sum(Sum {
                    data_points: vec![start(point(5000, 3.0, vec![]))],
                    aggregation_temporality: CUMULATIVE,
                    is_monotonic: false,
                }),
            ),
            metric(
                "rpc.duration",
                "s",
                metric::Data::Histogram(Histogram {
                    data_points: vec![HistogramDataPoint {
                        time_unix_nano: 5_000_000_000,
                        start_time_unix_nano: 2_000_000_000,
                        count: 2,
                        sum: Some(0.5),
                        bucket_counts: vec![2],
                        explicit_bounds: vec![],
                        ..Default::default()
                    }],
                    aggregation_temporality: CUMULATIVE,
                }),
            ),
        ],
    );
    let (_, d) = decoded(req);
    let starts: BTreeMap<String, i64> = d
        .batch
        .series()
        .zip(&d.starts)
        .map(|(s, st)| (s.label("__name__").unwrap().to_owned(), *st))
        .collect();
    assert_eq!(d.starts.len(), d.batch.sample_count());
    assert_eq!(starts["orders_picked_total"], 1000);
    assert_eq!(starts["queue_depth"], 0, "a gauge-like sum has no start");
    assert_eq!(starts["rpc_duration_seconds_bucket"], 2000);
    assert_eq!(starts["rpc_duration_seconds_sum"], 2000);
    assert_eq!(starts["rpc_duration_seconds_count"], 2000);
}

#[test]
fn delta_points_are_rejected_and_named() {
    let req = request(
        vec![],
        vec![
            metric(
                "deltas",
                "",
                metric::Data::Sum(Sum {
                    data_points: vec![point(1, 1.0, vec![]), point(2, 1.0, vec![])],
                    aggregation_temporality: DELTA,
                    is_monotonic: true,
                }),
            ),
            metric(
                "expo",
                "",
                metric::Data::ExponentialHistogram(ExponentialHistogram {
                    data_points: vec![ExponentialHistogramDataPoint::default()],
                    aggregation_temporality: DELTA,
                }),
            ),
            metric(
                "kept",
                "",
                metric::Data::Gauge(Gauge {
                    data_points: vec![point(1, 1.0, vec![kv("a.b", "1"), kv("a_b", "2")])],
                }),
            ),
        ],
    );
    let (series, d) = decoded(req);
    assert_eq!(d.rejected, 3);
    let why = d.rejected_why.join("; ");
    assert!(why.contains("delta sums are not stored (deltas)"), "{why}");
    assert!(
        why.contains("delta exponential histograms are not stored (expo)"),
        "{why}"
    );
    assert_eq!(
        series.keys().collect::<Vec<_>>(),
        ["__name__=kept,a_b=1;2"],
        "colliding attribute names joined; no job without service.name"
    );
    let body = response_body(d.rejected, &d.rejected_why);
    let back = ExportMetricsServiceResponse::decode(body.as_slice()).unwrap();
    assert_eq!(back.partial_success.unwrap().rejected_data_points, 3);
    assert!(
        response_body(0, &[]).is_empty(),
        "full success: an empty message"
    );
}

#[test]
fn garbage_is_a_protobuf_error() {
    let e = decode_proto(TenantId::try_new("t").unwrap(), b"\x0a\x05\x0a\x03").unwrap_err();
    assert_eq!(e.kind(), strata_types::ErrorKind::BadInput);
}

#[test]
fn json_bodies_decode_like_protobuf() {
    let body = br#"{"resourceMetrics":[{
        "resource":{"attributes":[{"key":"service.name","value":{"stringValue":"odoo"}}]},
        "scopeMetrics":[{"scope":{"name":"stock"},"metrics":[
          {"name":"odoo.orders.picked","unit":"{order}","sum":{"aggregationTemporality":2,"isMonotonic":true,
            "dataPoints":[{"attributes":[{"key":"stage","value":{"stringValue":"picking"}}],
                           "timeUnixNano":"1000000000","asInt":"5"}]}},
          {"name":"latency","unit":"s","histogram":{"aggregationTemporality":2,
            "dataPoints":[{"timeUnixNano":"1000000000","count":"3","sum":0.5,
                           "bucketCounts":["1",2],"explicitBounds":[0.1]}]}},
          {"name":"temp","gauge":{"dataPoints":[{"timeUnixNano":1000000000,"asDouble":"NaN"}]}}
        ]}]}]}"#;
    let d = decode_json(TenantId::try_new("t").unwrap(), body).unwrap();
    let got: BTreeMap<String, f64> = d
        .batch
        .series()
        .map(|s| {
            let labels: Vec<String> = s.labels().map(|(n, v)| format!("{n}={v}")).collect();
            (labels.join(","), s.samples()[0].value)
        })
        .collect();
    assert_eq!(
        got["__name__=odoo_orders_picked_total,job=odoo,stage=picking"],
        5.0
    );
    assert_eq!(got["__name__=latency_seconds_bucket,job=odoo,le=0.1"], 1.0);
    assert_eq!(got["__name__=latency_seconds_bucket,job=odoo,le=+Inf"], 3.0);
    assert_eq!(got["__name__=latency_seconds_sum,job=odoo"], 0.5);
    assert!(got["__name__=temp,job=odoo"].is_nan());
    // Each metric's family, type and unit in Prometheus' words (an
    // annotation alone, `{order}`, is no unit).
    let meta: Vec<(&str, crate::MetricType, &str)> = d
        .metadata
        .iter()
        .map(|m| (m.metric.as_str(), m.kind, m.unit.as_str()))
        .collect();
    assert_eq!(
        meta,
        [
            ("odoo_orders_picked_total", crate::MetricType::Counter, ""),
            ("latency_seconds", crate::MetricType::Histogram, "seconds"),
            ("temp", crate::MetricType::Gauge, ""),
        ]
    );
    let e = decode_json(TenantId::try_new("t").unwrap(), br#"{"resourceMetrics":7}"#).unwrap_err();
    assert!(
        e.to_string().contains("resourceMetrics must be an array"),
        "{e}"
    );
    assert_eq!(response(true, 0, &[]), b"{}");
    assert!(
        String::from_utf8(response(true, 2, &["x".into()]))
            .unwrap()
            .contains(r#""rejectedDataPoints":"2""#)
    );
}

/// Units in metadata as Prometheus' OTLP receiver writes them.
#[test]
fn metadata_units_follow_prometheus() {
    for (unit, utf8, want) in [
        ("ms", false, "milliseconds"),
        ("By/s", false, "bytes_per_second"),
        ("{order}", false, ""),
        ("1", false, ""),
        ("pallet.m", false, "pallet_m"),
        ("pallet.m", true, "pallet.m"),
        ("{packet}/s", false, "per_second"),
    ] {
        assert_eq!(prom_unit(unit, utf8), want, "{unit} {utf8}");
    }
}

/// Prometheus 3's other translation strategies, name by name.
#[test]
fn names_follow_each_translation_strategy() {
    use TranslationStrategy::*;
    for (name, unit, kind, strategy, want) in [
        (
            "http.server.request.duration",
            "s",
            Kind::Histogram,
            NoUTF8EscapingWithSuffixes,
            "http.server.request.duration_seconds",
        ),
        (
            "memory.usage",
            "By",
            Kind::Gauge,
            NoUTF8EscapingWithSuffixes,
            "memory.usage_bytes",
        ),
        (
            "latency_seconds",
            "s",
            Kind::Gauge,
            NoUTF8EscapingWithSuffixes,
            "latency_seconds",
        ),
        (
            "odoo.orders.picked",
            "{order}",
            Kind::Counter,
            NoUTF8EscapingWithSuffixes,
            "odoo.orders.picked_total",
        ),
        (
            "requests.total",
            "1",
            Kind::Counter,
            NoUTF8EscapingWithSuffixes,
            "requests_total",
        ),
        (
            "cpu.utilization",
            "1",
            Kind::Gauge,
            NoUTF8EscapingWithSuffixes,
            "cpu.utilization_ratio",
        ),
        (
            "net.io",
            "By/s",
            Kind::Counter,
            NoUTF8EscapingWithSuffixes,
            "net.io_bytes_per_second_total",
        ),
        (
            "net.io.per_second",
            "By/s",
            Kind::Gauge,
            NoUTF8EscapingWithSuffixes,
            "net.io_bytes_per_second",
        ),
        (
            "pallets",
            "pallet",
            Kind::Gauge,
            NoUTF8EscapingWithSuffixes,
            "pallets_pallet",
        ),
        (
            "http.server.request.duration",
            "s",
            Kind::Histogram,
            UnderscoreEscapingWithoutSuffixes,
            "http_server_request_duration",
        ),
        (
            "2xx__count",
            "",
            Kind::Counter,
            UnderscoreEscapingWithoutSuffixes,
            "_2xx__count",
        ),
        (
            "http.server.request.duration",
            "s",
            Kind::Histogram,
            NoTranslation,
            "http.server.request.duration",
        ),
    ] {
        assert_eq!(
            metric_name(name, unit, kind, strategy),
            want,
            "{name} [{unit}] {strategy:?}"
        );
    }
}

/// A request under a UTF-8 strategy keeps attribute keys as label names
/// and its histogram's series named from the UTF-8 name.
#[test]
fn utf8_strategies_keep_attribute_keys() {
    let req = request(
        vec![kv("service.name", "api"), kv("host.name", "h1")],
        vec![metric(
            "http.server.active_requests",
            "{request}",
            metric::Data::Gauge(Gauge {
                data_points: vec![point(
                    1000,
                    3.0,
                    vec![kv("http.request.method", "GET"), kv("__", "x")],
                )],
            }),
        )],
    );
    let d = decode_proto_as(
        TenantId::try_new("t").unwrap(),
        &req.encode_to_vec(),
        TranslationStrategy::NoUTF8EscapingWithSuffixes,
    )
    .unwrap();
    let series: Vec<String> = d
        .batch
        .series()
        .map(|s| {
            s.labels()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    assert!(
        series.contains(
            &"__name__=http.server.active_requests,http.request.method=GET,job=api".to_string()
        ),
        "{series:?}"
    );
    assert!(
        series.contains(&"__name__=target_info,host.name=h1,job=api".to_string()),
        "{series:?}"
    );
}

#[test]
fn attribute_keys_become_prometheus_label_names() {
    assert_eq!(label_name("http.route"), "http_route");
    assert_eq!(label_name("9lives"), "key_9lives");
    assert_eq!(label_name("k8s.pod-name"), "k8s_pod_name");
    assert_eq!(label_name(""), "_");
}

#[test]
fn protobuf_exemplars_of_counters_and_histograms_are_kept_with_ids_in_hex() {
    let ex = |ms: u64, value: exemplar::Value| proto::Exemplar {
        filtered_attributes: vec![kv("user", "u1")],
        time_unix_nano: ms * 1_000_000,
        value: Some(value),
        span_id: vec![0xee, 0xe1],
        trace_id: vec![0x5b, 0x8e],
    };
    let mut counter = point(2000, 4.0, vec![]);
    counter.exemplars = vec![ex(1900, exemplar::Value::AsInt(1))];
    let hist = HistogramDataPoint {
        time_unix_nano: 2_000_000_000,
        count: 2,
        bucket_counts: vec![1, 1],
        explicit_bounds: vec![0.5],
        exemplars: vec![ex(1950, exemplar::Value::AsDouble(0.25))],
        ..Default::default()
    };
    let req = request(
        vec![],
        vec![
            metric(
                "jobs",
                "",
                metric::Data::Sum(Sum {
                    data_points: vec![counter],
                    aggregation_temporality: CUMULATIVE,
                    is_monotonic: true,
                }),
            ),
            metric(
                "latency",
                "",
                metric::Data::Histogram(Histogram {
                    data_points: vec![hist],
                    aggregation_temporality: CUMULATIVE,
                }),
            ),
        ],
    );
    let (_, d) = decoded(req);
    type Seen = (String, Option<String>, f64, Vec<(String, String)>);
    let got: Vec<Seen> = d
        .exemplars
        .iter()
        .map(|s| {
            (
                s.labels.metric_name().to_owned(),
                s.labels.get("le").map(str::to_owned),
                s.exemplars[0].value,
                s.exemplars[0].labels.clone(),
            )
        })
        .collect();
    let labels = vec![
        ("span_id".to_owned(), "eee1".to_owned()),
        ("trace_id".to_owned(), "5b8e".to_owned()),
        ("user".to_owned(), "u1".to_owned()),
    ];
    assert_eq!(
        got,
        vec![
            ("jobs_total".into(), None, 1.0, labels.clone()),
            ("latency_bucket".into(), Some("0.5".into()), 0.25, labels),
        ]
    );
}

/// Found by the fuzzer: an exemplar's `as_double` (field 3) once went to
/// the number point's value type, which has no field 3, and panicked.
#[test]
fn fuzzed_exemplar_fields_are_errors_or_data_never_panics() {
    let body: &[u8] = include_bytes!("fuzz_exemplar_value.bin");
    let t = TenantId::try_new("t").unwrap();
    let _ = decode_proto(t.clone(), body);
    let _ = decode_json(t, body);
}

/// An exponential histogram point at `t_ms` of scale `scale`.
fn expo_point(
    t_ms: u64,
    scale: i32,
    offset: i32,
    counts: Vec<u64>,
) -> ExponentialHistogramDataPoint {
    ExponentialHistogramDataPoint {
        attributes: vec![kv("route", "/pick")],
        time_unix_nano: t_ms * 1_000_000,
        count: 1 + counts.iter().sum::<u64>(),
        sum: Some(4.5),
        scale,
        zero_count: 1,
        positive: Some(Buckets {
            offset,
            bucket_counts: counts,
        }),
        ..Default::default()
    }
}

#[test]
fn cumulative_exponential_histograms_become_native_histograms_as_prometheus_translates() {
    let req = request(
        vec![kv("service.name", "wms")],
        vec![metric(
            "pick.duration",
            "s",
            metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![
                    // OTLP buckets -1, 0, 1 are Prometheus' 0, 1, 2.
                    expo_point(2000, 3, -1, vec![1, 0, 2]),
                    // Scale 10 merged down to 8: buckets 5..=8 of scale
                    // 10 are 1, 1, 1, 2 of scale 8 (k >> 2), then +1.
                    expo_point(1000, 10, 5, vec![1, 2, 3, 4]),
                    // Below -4: refused, named.
                    expo_point(3000, -5, 0, vec![1]),
                ],
                aggregation_temporality: CUMULATIVE,
            }),
        )],
    );
    let (series, d) = decoded(req);
    assert!(series.is_empty(), "no float series: {series:?}");
    assert_eq!(d.rejected, 1);
    assert!(
        d.rejected_why[0].contains("scale below -4"),
        "{:?}",
        d.rejected_why
    );
    assert_eq!(d.histograms.len(), 1);
    let s = &d.histograms[0];
    let labels: Vec<String> = s
        .labels
        .iter()
        .map(|l| format!("{}={}", l.name, l.value))
        .collect();
    assert_eq!(
        labels,
        ["__name__=pick_duration_seconds", "job=wms", "route=/pick"]
    );
    // In time order.
    let (merged, plain) = (&s.samples[0], &s.samples[1]);
    assert_eq!((merged.timestamp_ms, plain.timestamp_ms), (1000, 2000));
    let h = &plain.histogram;
    assert_eq!((h.schema, h.count, h.sum, h.zero_count), (3, 4.0, 4.5, 1.0));
    assert_eq!(h.zero_threshold, 1e-128);
    assert_eq!(
        h.positive_spans,
        vec![BucketSpan {
            offset: 0,
            length: 3
        }]
    );
    assert_eq!(h.positive_counts, vec![1.0, 0.0, 2.0]);
    assert!(h.integer);
    let h = &merged.histogram;
    assert_eq!(h.schema, 8);
    assert_eq!(
        h.positive_spans,
        vec![BucketSpan {
            offset: 2,
            length: 2
        }]
    );
    assert_eq!(h.positive_counts, vec![6.0, 4.0]);
    assert_eq!(h.count, 11.0);
    assert_eq!(
        d.metadata[0].kind,
        crate::MetricType::Histogram,
        "described as a histogram"
    );
}

#[test]
fn json_exponential_histograms_decode_like_protobuf() {
    let body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
          {"name":"lat","exponentialHistogram":{"aggregationTemporality":2,
            "dataPoints":[{"timeUnixNano":"1000000000","count":"4","sum":2.5,"scale":2,
                           "zeroCount":"1","zeroThreshold":0.001,
                           "positive":{"offset":-2,"bucketCounts":["1","2"]}}]}}]}]}]}"#;
    let d = decode_json(TenantId::try_new("t").unwrap(), body).unwrap();
    assert_eq!(d.rejected, 0, "{:?}", d.rejected_why);
    let h = &d.histograms[0].samples[0].histogram;
    assert_eq!((h.schema, h.zero_threshold, h.count), (2, 0.001, 4.0));
    assert_eq!(
        h.positive_spans,
        vec![BucketSpan {
            offset: -1,
            length: 2
        }]
    );
}
