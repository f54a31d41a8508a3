//! Remote-write 1.0 messages (`prometheus` package), written from the field
//! table in `../shared/conformance/protocols/prompb/SCHEMA.md`. Only the
//! fields Strata reads are declared on the histogram; prost skips the rest.

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// A native histogram (the same message in 2.0). The `count` and
/// `zero_count` oneofs are declared as their two optional fields.
#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(uint64, optional, tag = "1")]
    pub count_int: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub count_float: Option<f64>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    #[prost(uint64, optional, tag = "6")]
    pub zero_count_int: Option<u64>,
    #[prost(double, optional, tag = "7")]
    pub zero_count_float: Option<f64>,
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct MetricMetadata {
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

impl TimeSeries {
    /// A float series from `(name, value)` label pairs (sent in the order
    /// given) and `(timestamp ms, value)` samples. For tests, benches and
    /// the load generator.
    pub fn from_pairs(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> Self {
        Self {
            labels: labels
                .iter()
                .map(|(name, value)| Label {
                    name: (*name).into(),
                    value: (*value).into(),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|&(timestamp, value)| Sample { value, timestamp })
                .collect(),
            ..Default::default()
        }
    }
}

/// Encodes and snappy-compresses a request: what a sender does. Used by
/// tests, benches and the load generator.
pub fn encode_snappy(req: &WriteRequest) -> Vec<u8> {
    let raw = req.encode_to_vec();
    // Compressing a Vec we own cannot fail short of allocation failure.
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

/// Remote-write 2.0 messages (`io.prometheus.write.v2`), from the same
/// field table. Strings are interned in `Request::symbols` (element 0 is
/// `""`) and referred to by index.
pub mod v2 {
    use prost::Message;

    #[derive(Clone, PartialEq, Message)]
    pub struct Request {
        #[prost(string, repeated, tag = "4")]
        pub symbols: Vec<String>,
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct TimeSeries {
        /// Pairs of `symbols` indexes: name, value, … sorted by name.
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// Native histograms: 1.0's message.
        #[prost(message, repeated, tag = "3")]
        pub histograms: Vec<super::Histogram>,
        #[prost(message, repeated, tag = "4")]
        pub exemplars: Vec<Exemplar>,
        #[prost(message, optional, tag = "5")]
        pub metadata: Option<Metadata>,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
        #[prost(int64, tag = "3")]
        pub start_timestamp: i64,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Exemplar {
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        #[prost(double, tag = "2")]
        pub value: f64,
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, Message)]
    pub struct Metadata {
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        #[prost(uint32, tag = "3")]
        pub help_ref: u32,
        #[prost(uint32, tag = "4")]
        pub unit_ref: u32,
    }

    /// A float series as `(name, value)` label pairs and `(timestamp ms,
    /// value)` samples.
    pub type PlainSeries<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

    impl Request {
        /// A request of float series from `(name, value)` label pairs (in
        /// the order given) and `(timestamp ms, value)` samples, interning
        /// every string as a sender does. For tests, benches and the load
        /// generator.
        pub fn from_series(series: &[PlainSeries<'_>]) -> Self {
            let mut symbols = vec![String::new()];
            let mut index = std::collections::HashMap::<String, u32>::new();
            let mut intern = |s: &str| -> u32 {
                if s.is_empty() {
                    return 0;
                }
                *index.entry(s.to_owned()).or_insert_with(|| {
                    symbols.push(s.to_owned());
                    (symbols.len() - 1) as u32
                })
            };
            let timeseries = series
                .iter()
                .map(|(labels, samples)| TimeSeries {
                    labels_refs: labels
                        .iter()
                        .flat_map(|(n, v)| [intern(n), intern(v)])
                        .collect(),
                    samples: samples
                        .iter()
                        .map(|&(timestamp, value)| Sample {
                            value,
                            timestamp,
                            start_timestamp: 0,
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect();
            Self {
                symbols,
                timeseries,
            }
        }
    }

    impl From<&super::WriteRequest> for Request {
        /// The same float series as a 2.0 request (exemplars, histograms
        /// and metadata left out).
        fn from(v1: &super::WriteRequest) -> Self {
            let series: Vec<PlainSeries<'_>> = v1
                .timeseries
                .iter()
                .map(|t| {
                    (
                        t.labels
                            .iter()
                            .map(|l| (l.name.as_str(), l.value.as_str()))
                            .collect(),
                        t.samples.iter().map(|s| (s.timestamp, s.value)).collect(),
                    )
                })
                .collect();
            Self::from_series(&series)
        }
    }

    /// Encodes and snappy-compresses a request, as a sender does.
    pub fn encode_snappy(req: &Request) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap_or_default()
    }
}
