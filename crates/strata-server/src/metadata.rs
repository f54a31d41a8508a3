//! Metric metadata per tenant (type, help, unit), as senders describe their
//! metrics: what `/api/v1/metadata` answers.
//!
//! Kept in memory as Prometheus and Mimir keep it: senders repeat it
//! (Prometheus every minute, 2.0 and OTLP with every request), so after a
//! restart it is whole again within a minute. An entry not repeated within
//! `limits.active_series_window` is forgotten. Bounded per tenant by
//! `max_metadata_metrics` and `max_metadata_per_metric`, and each name,
//! help and unit by `max_label_value_length`: past them new metrics, new
//! descriptions and longer texts are dropped (counted in
//! `strata_ingest_skipped_total{kind="metadata"}`), never what is already
//! known.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use parking_lot::Mutex;
use strata_ingest::{MetricMetadata, MetricType};
use strata_types::TenantId;

/// One description of a metric, and when a sender last gave it (seconds).
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    kind: MetricType,
    help: String,
    unit: String,
    seen_s: i64,
}

/// A metric's descriptions, in the order they were first given.
type Metrics = BTreeMap<String, Vec<Entry>>;

/// What one tenant's metadata answer holds for a metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

/// A tenant's bounds on what is kept (0: unlimited).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub metrics: usize,
    pub per_metric: usize,
    /// Longest metric name, help or unit, in bytes.
    pub text_len: usize,
}

/// Every tenant's metric metadata.
#[derive(Debug)]
pub struct MetadataStore {
    retain_s: i64,
    tenants: Mutex<HashMap<TenantId, Metrics>>,
}

impl MetadataStore {
    /// Entries not given again within `retain` are forgotten.
    pub fn new(retain: Duration) -> Self {
        Self {
            retain_s: i64::try_from(retain.as_secs()).unwrap_or(i64::MAX),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// Records what a tenant's accepted request described at `now_s`,
    /// within `bounds`; the entries dropped for them.
    pub fn record(
        &self,
        tenant: &TenantId,
        metadata: &[MetricMetadata],
        now_s: i64,
        bounds: Bounds,
    ) -> u64 {
        let Bounds {
            metrics: max_metrics,
            per_metric: max_per_metric,
            text_len,
        } = bounds;
        if metadata.is_empty() {
            return 0;
        }
        let mut dropped = 0;
        let before = now_s.saturating_sub(self.retain_s);
        // Forgotten entries are swept at most once a call, when the metric
        // bound is first reached (not once per new metric past it).
        let mut swept = false;
        let mut tenants = self.tenants.lock();
        let metrics = tenants.entry(tenant.clone()).or_default();
        for m in metadata {
            if text_len > 0
                && [&m.metric, &m.help, &m.unit]
                    .iter()
                    .any(|t| t.len() > text_len)
            {
                dropped += 1;
                continue;
            }
            let known = metrics.len();
            let entries = match metrics.get_mut(&m.metric) {
                Some(e) => e,
                None if max_metrics > 0 && known >= max_metrics => {
                    // Forgotten entries make room first.
                    if !swept {
                        expire(metrics, before);
                        swept = true;
                    }
                    if metrics.len() >= max_metrics {
                        dropped += 1;
                        continue;
                    }
                    metrics.entry(m.metric.clone()).or_default()
                }
                None => metrics.entry(m.metric.clone()).or_default(),
            };
            if let Some(e) = entries
                .iter_mut()
                .find(|e| e.kind == m.kind && e.help == m.help && e.unit == m.unit)
            {
                e.seen_s = e.seen_s.max(now_s);
                continue;
            }
            entries.retain(|e| e.seen_s >= before);
            if max_per_metric > 0 && entries.len() >= max_per_metric {
                dropped += 1;
                continue;
            }
            entries.push(Entry {
                kind: m.kind,
                help: m.help.clone(),
                unit: m.unit.clone(),
                seen_s: now_s,
            });
        }
        dropped
    }

    /// A tenant's metadata at `now_s`, by metric name: `metric` alone when
    /// given, at most `limit` metrics and `limit_per_metric` descriptions
    /// each (None: all).
    pub fn answer(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
        limit: Option<usize>,
        limit_per_metric: Option<usize>,
        now_s: i64,
    ) -> BTreeMap<String, Vec<Described>> {
        let before = now_s.saturating_sub(self.retain_s);
        let tenants = self.tenants.lock();
        let Some(metrics) = tenants.get(tenant) else {
            return BTreeMap::new();
        };
        let chosen: Box<dyn Iterator<Item = (&String, &Vec<Entry>)>> = match metric {
            Some(name) => Box::new(metrics.get_key_value(name).into_iter()),
            None => Box::new(metrics.iter()),
        };
        chosen
            .filter_map(|(name, entries)| {
                let live: Vec<Described> = entries
                    .iter()
                    .filter(|e| e.seen_s >= before)
                    .take(limit_per_metric.unwrap_or(usize::MAX))
                    .map(|e| Described {
                        kind: e.kind,
                        help: e.help.clone(),
                        unit: e.unit.clone(),
                    })
                    .collect();
                (!live.is_empty()).then(|| (name.clone(), live))
            })
            .take(limit.unwrap_or(usize::MAX))
            .collect()
    }

    /// A tenant's metrics at `now_s`, each with the description a sender
    /// gave last.
    pub fn latest(&self, tenant: &TenantId, now_s: i64) -> BTreeMap<String, Described> {
        let before = now_s.saturating_sub(self.retain_s);
        let tenants = self.tenants.lock();
        let Some(metrics) = tenants.get(tenant) else {
            return BTreeMap::new();
        };
        metrics
            .iter()
            .filter_map(|(name, entries)| {
                let e = entries
                    .iter()
                    .filter(|e| e.seen_s >= before)
                    .max_by_key(|e| e.seen_s)?;
                let described = Described {
                    kind: e.kind,
                    help: e.help.clone(),
                    unit: e.unit.clone(),
                };
                Some((name.clone(), described))
            })
            .collect()
    }

    /// Forgets what was not given again since `now_s - retain`; the
    /// entries forgotten.
    pub fn expire(&self, now_s: i64) -> usize {
        let before = now_s.saturating_sub(self.retain_s);
        let mut tenants = self.tenants.lock();
        let mut forgotten = 0;
        for metrics in tenants.values_mut() {
            forgotten += expire(metrics, before);
        }
        tenants.retain(|_, m| !m.is_empty());
        forgotten
    }
}

/// Drops the entries last seen before `before_s`, and metrics left with
/// none; how many entries went.
fn expire(metrics: &mut Metrics, before_s: i64) -> usize {
    let mut forgotten = 0;
    metrics.retain(|_, entries| {
        let n = entries.len();
        entries.retain(|e| e.seen_s >= before_s);
        forgotten += n - entries.len();
        !entries.is_empty()
    });
    forgotten
}

/// `system.metrics`' type, help and unit columns.
impl strata_query::MetricDescriptions for MetadataStore {
    fn describe(&self, tenant: &TenantId) -> BTreeMap<String, strata_query::MetricDescription> {
        let now_s = chrono::Utc::now().timestamp();
        self.latest(tenant, now_s)
            .into_iter()
            .map(|(name, d)| {
                let description = strata_query::MetricDescription {
                    kind: d.kind.as_str(),
                    help: d.help,
                    unit: d.unit,
                };
                (name, description)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(metric: &str, kind: MetricType, help: &str) -> MetricMetadata {
        MetricMetadata {
            metric: metric.into(),
            kind,
            help: help.into(),
            unit: String::new(),
        }
    }

    const NONE: Bounds = Bounds {
        metrics: 0,
        per_metric: 0,
        text_len: 0,
    };
    const TIGHT: Bounds = Bounds {
        metrics: 2,
        per_metric: 1,
        text_len: 0,
    };

    fn tenant(t: &str) -> TenantId {
        TenantId::try_new(t).unwrap()
    }

    #[test]
    fn answers_per_tenant_each_description_once_and_forgets_what_is_not_repeated() {
        let store = MetadataStore::new(Duration::from_secs(60));
        let (a, b) = (tenant("a"), tenant("b"));
        let up = meta("up", MetricType::Gauge, "Target up.");
        let reqs = meta("http_requests_total", MetricType::Counter, "Requests.");
        assert_eq!(store.record(&a, &[up.clone(), reqs.clone()], 100, NONE), 0);
        // Repeated (refreshes), and a second description of `up`.
        let up2 = meta("up", MetricType::Gauge, "Other target's help.");
        store.record(&a, &[up.clone(), up2.clone()], 130, NONE);
        store.record(&b, &[meta("b_only", MetricType::Summary, "")], 100, NONE);

        let all = store.answer(&a, None, None, None, 150);
        assert_eq!(
            all.keys().collect::<Vec<_>>(),
            ["http_requests_total", "up"]
        );
        assert_eq!(all["up"].len(), 2);
        assert_eq!(all["up"][0].help, "Target up.");
        assert!(!all.contains_key("b_only"), "another tenant's metadata");
        assert_eq!(
            store.answer(&a, Some("up"), None, Some(1), 150)["up"].len(),
            1
        );
        assert_eq!(store.answer(&a, None, Some(1), None, 150).len(), 1);
        assert!(store.answer(&a, Some("nope"), None, None, 150).is_empty());

        // `http_requests_total` was last given at 100: gone after 160.
        let later = store.answer(&a, None, None, None, 170);
        assert_eq!(later.keys().collect::<Vec<_>>(), ["up"]);
        assert_eq!(store.expire(170), 2, "http_requests_total and b_only");
        assert!(store.answer(&b, None, None, None, 170).is_empty());
    }

    #[test]
    fn bounds_drop_new_metrics_and_descriptions_not_known_ones() {
        let store = MetadataStore::new(Duration::from_secs(60));
        let a = tenant("a");
        let first = [
            meta("m1", MetricType::Counter, "one"),
            meta("m2", MetricType::Counter, "two"),
        ];
        assert_eq!(store.record(&a, &first, 0, TIGHT), 0);
        // A third metric and a second description of m1: both dropped;
        // m2 refreshed.
        let more = [
            meta("m3", MetricType::Gauge, "three"),
            meta("m1", MetricType::Gauge, "changed"),
            meta("m2", MetricType::Counter, "two"),
        ];
        assert_eq!(store.record(&a, &more, 50, TIGHT), 2);
        let now = store.answer(&a, None, None, None, 50);
        assert_eq!(now.keys().collect::<Vec<_>>(), ["m1", "m2"]);
        assert_eq!(now["m1"][0].help, "one");
        // Once m1 is forgotten there is room for m3; m1 then finds none.
        assert_eq!(
            store.record(&a, &more, 100, TIGHT),
            1,
            "m1 past the metric bound"
        );
        let after = store.answer(&a, None, None, None, 100);
        assert_eq!(after.keys().collect::<Vec<_>>(), ["m2", "m3"]);

        // A text longer than its bound is dropped (16 bytes pass, 17 not).
        let store = MetadataStore::new(Duration::from_secs(60));
        let texts = Bounds {
            text_len: 16,
            ..NONE
        };
        let both = [
            meta("m", MetricType::Counter, "sixteen bytes!!!"),
            meta("m", MetricType::Counter, "seventeen bytes!!"),
        ];
        assert_eq!(store.record(&a, &both, 0, texts), 1);
        let kept = store.answer(&a, None, None, None, 0);
        assert_eq!(kept["m"].len(), 1);
        assert_eq!(kept["m"][0].help, "sixteen bytes!!!");
    }
}
