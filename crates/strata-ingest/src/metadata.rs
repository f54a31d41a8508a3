//! Metric metadata (type, help, unit) as senders describe their metrics:
//! remote write 1.0's `WriteRequest.metadata`, 2.0's per-series
//! `Metadata` and OTLP's metric descriptors.

/// A metric family's type, numbered as both remote-write versions number
/// it (1.0 `MetricMetadata.MetricType`, 2.0 `Metadata.MetricType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricType {
    Unknown,
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
}

impl MetricType {
    /// The wire number's type; numbers no version defines are unknown.
    pub fn from_wire(v: u64) -> Self {
        match v {
            1 => Self::Counter,
            2 => Self::Gauge,
            3 => Self::Histogram,
            4 => Self::GaugeHistogram,
            5 => Self::Summary,
            6 => Self::Info,
            7 => Self::StateSet,
            _ => Self::Unknown,
        }
    }

    /// The name Prometheus' `/api/v1/metadata` answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::GaugeHistogram => "gaugehistogram",
            Self::Summary => "summary",
            Self::Info => "info",
            Self::StateSet => "stateset",
        }
    }
}

/// One metric family's description as a sender gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricMetadata {
    /// The metric family's name (1.0 `metric_family_name`; 2.0 and OTLP:
    /// the series' `__name__`).
    pub metric: String,
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

impl MetricMetadata {
    /// Whether it says anything (2.0 senders attach an empty one to every
    /// series they know nothing about).
    pub fn is_empty(&self) -> bool {
        self.kind == MetricType::Unknown && self.help.is_empty() && self.unit.is_empty()
    }
}

/// Appends `m` unless it has no name or says nothing, or is the entry
/// just before (2.0 repeats a metric's metadata on each of its series).
pub(crate) fn push(out: &mut Vec<MetricMetadata>, m: MetricMetadata) {
    if m.metric.is_empty() || m.is_empty() || out.last() == Some(&m) {
        return;
    }
    out.push(m);
}
