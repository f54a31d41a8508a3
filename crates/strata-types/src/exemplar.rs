//! Exemplars: a traced observation behind a series' value (a trace id and
//! span id, a value, a time), as Prometheus keeps them beside samples.

use crate::{Labels, TenantId};

/// Most characters (Unicode scalar values) an exemplar's label names and
/// values may hold together, as Prometheus bounds them
/// (`ExemplarMaxLabelSetLength`).
pub const EXEMPLAR_MAX_LABEL_CHARS: usize = 128;

/// One exemplar: its own labels (sorted by name, names unique and
/// non-empty; may be empty), value and time.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: i64,
}

impl Exemplar {
    /// The same exemplar, as Prometheus compares them: labels, time and
    /// value (bit-exact, so NaNs compare equal to themselves).
    pub fn same_as(&self, other: &Self) -> bool {
        self.timestamp_ms == other.timestamp_ms
            && self.value.to_bits() == other.value.to_bits()
            && self.labels == other.labels
    }
}

/// Why an exemplar is not kept, before it reaches storage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExemplarError {
    #[error("exemplar labels hold {chars} characters, more than {EXEMPLAR_MAX_LABEL_CHARS}")]
    TooLong { chars: usize },
    #[error("exemplar label name is empty")]
    EmptyName,
    #[error("exemplar label {name:?} appears twice")]
    Duplicate { name: String },
}

/// Sorts `pairs` by name and checks them as Prometheus does: at most
/// [`EXEMPLAR_MAX_LABEL_CHARS`] characters in all, names non-empty and
/// unique (an empty value is allowed, as Prometheus allows it).
pub fn exemplar_labels(
    mut pairs: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, ExemplarError> {
    let chars: usize = pairs
        .iter()
        .map(|(n, v)| n.chars().count() + v.chars().count())
        .sum();
    if chars > EXEMPLAR_MAX_LABEL_CHARS {
        return Err(ExemplarError::TooLong { chars });
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (name, _)) in pairs.iter().enumerate() {
        if name.is_empty() {
            return Err(ExemplarError::EmptyName);
        }
        if i > 0 && pairs[i - 1].0 == *name {
            return Err(ExemplarError::Duplicate { name: name.clone() });
        }
    }
    Ok(pairs)
}

/// One series' exemplars, in the order sent.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplars {
    pub labels: Labels,
    pub exemplars: Vec<Exemplar>,
}

/// A validated batch of exemplars for one tenant: what a write hands to
/// the WAL and then to the exemplar store.
#[derive(Debug, Clone, PartialEq)]
pub struct ExemplarBatch {
    pub tenant: TenantId,
    pub series: Vec<SeriesExemplars>,
}

impl ExemplarBatch {
    pub fn new(tenant: TenantId) -> Self {
        Self {
            tenant,
            series: Vec::new(),
        }
    }

    pub fn exemplar_count(&self) -> usize {
        self.series.iter().map(|s| s.exemplars.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.exemplars.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: &str, v: &str) -> (String, String) {
        (n.to_owned(), v.to_owned())
    }

    #[test]
    fn labels_are_sorted_and_bounded_as_prometheus_bounds_them() {
        let ok = exemplar_labels(vec![p("trace_id", "abc"), p("span_id", "1")]).unwrap();
        assert_eq!(ok, vec![p("span_id", "1"), p("trace_id", "abc")]);
        assert!(exemplar_labels(vec![]).unwrap().is_empty());
        // 128 characters pass, 129 do not; characters, not bytes.
        let v = "é".repeat(121);
        assert!(exemplar_labels(vec![p("trace_id", &v)]).is_err());
        assert!(exemplar_labels(vec![p("t", &"x".repeat(127))]).is_ok());
        assert_eq!(
            exemplar_labels(vec![p("t", &"x".repeat(128))]),
            Err(ExemplarError::TooLong { chars: 129 })
        );
        assert_eq!(
            exemplar_labels(vec![p("a", "1"), p("a", "2")]),
            Err(ExemplarError::Duplicate { name: "a".into() })
        );
        assert_eq!(
            exemplar_labels(vec![p("", "1")]),
            Err(ExemplarError::EmptyName)
        );
    }
}
