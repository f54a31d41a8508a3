//! Label sets as the evaluator handles them: sorted `(name, value)` pairs,
//! `__name__` included. Names and values are shared strings: a label set
//! read from an index (the head's, a file's) shares the index's strings,
//! and cloning one copies no text.

use std::fmt;
use std::sync::Arc;

pub const METRIC_NAME: &str = "__name__";

/// A sorted label set. Empty values are never stored (Prometheus treats an
/// empty value as an absent label).
#[derive(Debug, Clone, Default)]
pub struct Labels(Vec<(Arc<str>, Arc<str>)>);

/// Two shared strings: the same allocation is the same text (labels from
/// one index share theirs), so most comparisons skip the bytes.
fn cmp_shared(a: &Arc<str>, b: &Arc<str>) -> std::cmp::Ordering {
    if Arc::ptr_eq(a, b) {
        std::cmp::Ordering::Equal
    } else {
        (**a).cmp(&**b)
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        for ((an, av), (bn, bv)) in self.0.iter().zip(&other.0) {
            let o = cmp_shared(an, bn).then_with(|| cmp_shared(av, bv));
            if o.is_ne() {
                return o;
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.cmp(other).is_eq()
    }
}

impl Eq for Labels {}

impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Labels {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self::from_shared(
            pairs
                .into_iter()
                .map(|(n, v)| (Arc::from(n), Arc::from(v)))
                .collect(),
        )
    }

    /// From shared strings (an index's), in any order.
    pub fn from_shared(mut pairs: Vec<(Arc<str>, Arc<str>)>) -> Self {
        Self::canonicalize(&mut pairs);
        Labels(pairs)
    }

    /// Puts `pairs` in the form a label set holds them: no empty values,
    /// sorted, one value a name (the least). For indexes that take pairs
    /// without building a `Labels`.
    pub fn canonicalize<S: AsRef<str> + Ord>(pairs: &mut Vec<(S, S)>) {
        pairs.retain(|(_, v)| !v.as_ref().is_empty());
        if !pairs.is_sorted() {
            pairs.sort();
        }
        pairs.dedup_by(|a, b| a.0 == b.0);
    }

    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        // Label sets are short: a scan beats a binary search's branches.
        self.get_shared(name).map(|v| &**v)
    }

    /// The value of `name` as the shared string it is held in.
    pub fn get_shared(&self, name: &str) -> Option<&Arc<str>> {
        self.0.iter().find(|(n, _)| **n == *name).map(|(_, v)| v)
    }

    /// The value of `name`, or "" when absent (how matchers see it).
    pub fn value(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|(n, _)| (**n).cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].1 = Arc::from(value),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (Arc::from(name), Arc::from(value))),
        }
    }

    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|(n, _)| (**n).cmp(name)) {
            self.0.remove(i);
        }
    }

    pub fn without_name(&self) -> Labels {
        let mut l = self.clone();
        l.remove(METRIC_NAME);
        l
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (&**n, &**v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Only the named labels.
    pub fn keep(&self, names: &[String]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|(n, _)| names.iter().any(|k| **k == **n))
                .cloned()
                .collect(),
        )
    }

    /// All but the named labels (and `__name__`).
    pub fn drop(&self, names: &[String]) -> Labels {
        Labels(
            self.0
                .iter()
                .filter(|(n, _)| &**n != METRIC_NAME && !names.iter().any(|k| **k == **n))
                .cloned()
                .collect(),
        )
    }

    /// A key identifying the label set (for hashing groups).
    pub fn key(&self) -> String {
        let mut s = String::new();
        for (n, v) in &self.0 {
            s.push_str(n);
            s.push('\u{ff}');
            s.push_str(v);
            s.push('\u{fe}');
        }
        s
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.get(METRIC_NAME);
        if let Some(name) = name {
            f.write_str(name)?;
        }
        let rest: Vec<_> = self.0.iter().filter(|(n, _)| &**n != METRIC_NAME).collect();
        if rest.is_empty() && name.is_some() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (n, v)) in rest.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}
