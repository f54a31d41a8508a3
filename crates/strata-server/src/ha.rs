//! Deduplication of Prometheus HA pairs, as Mimir's HA tracker does it.
//!
//! Two (or more) Prometheus replicas scrape the same targets and all
//! remote-write, each with the same `cluster` label and its own
//! `__replica__` label (external labels; both names are per-tenant limits).
//! For each tenant and cluster one replica is elected: its writes are
//! stored with the replica label taken off, so the series are the same
//! whichever replica is elected; the others' writes are answered 202 and
//! stored nowhere (a 2xx, so they do not retry). When the elected replica
//! has not written for `ha_failover_timeout`, the next replica to write is
//! elected. A write whose first series lacks either label is not
//! deduplicated. Elections are kept in memory: after a restart the first
//! replica to write is elected again (as with Mimir's in-memory KV store).
//!
//! The labels are read from the request's first series, as Mimir reads
//! them; a tenant holds at most `ha_max_clusters` clusters (400 past it,
//! as Mimir). A cluster not heard from for [`FORGET_AFTER`] is forgotten.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use strata_types::TenantId;

/// A cluster not written to for this long is forgotten (its slot under
/// `ha_max_clusters` freed), as Mimir's tracker cleans up its KV store.
pub const FORGET_AFTER: Duration = Duration::from_secs(30 * 60);

/// One tenant's HA settings (from its limits).
#[derive(Debug, Clone, Copy)]
pub struct HaSettings {
    /// Clusters a tenant may have (0: any number).
    pub max_clusters: usize,
    pub failover_timeout: Duration,
}

#[derive(Debug)]
struct Elected {
    replica: String,
    received_at: Instant,
}

/// What a write from `replica` of `cluster` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The elected replica (perhaps just elected): store it, the replica
    /// label taken off.
    Elected,
    /// Another replica is elected: store nothing, answer 202.
    NotElected { replica: String, elected: String },
    /// A new cluster past the tenant's `ha_max_clusters`: 400.
    TooManyClusters { limit: usize },
}

/// Elected replicas per tenant and cluster.
#[derive(Debug, Default)]
pub struct HaTracker {
    elected: Mutex<HashMap<TenantId, HashMap<String, Elected>>>,
}

impl HaTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decides a write of `replica` of `cluster` for `tenant` at `now`,
    /// electing or failing over as needed.
    pub fn check(
        &self,
        tenant: &TenantId,
        cluster: &str,
        replica: &str,
        settings: &HaSettings,
        now: Instant,
    ) -> Verdict {
        let mut all = self.elected.lock();
        let clusters = all.entry(tenant.clone()).or_default();
        if let Some(e) = clusters.get_mut(cluster) {
            if e.replica == replica {
                e.received_at = now;
                return Verdict::Elected;
            }
            if now.saturating_duration_since(e.received_at) <= settings.failover_timeout {
                return Verdict::NotElected {
                    replica: replica.to_owned(),
                    elected: e.replica.clone(),
                };
            }
            // The elected replica went quiet: this one takes over.
            e.replica = replica.to_owned();
            e.received_at = now;
            return Verdict::Elected;
        }
        if settings.max_clusters > 0 && clusters.len() >= settings.max_clusters {
            clusters.retain(|_, e| now.saturating_duration_since(e.received_at) < FORGET_AFTER);
            if clusters.len() >= settings.max_clusters {
                return Verdict::TooManyClusters {
                    limit: settings.max_clusters,
                };
            }
        }
        clusters.insert(
            cluster.to_owned(),
            Elected {
                replica: replica.to_owned(),
                received_at: now,
            },
        );
        Verdict::Elected
    }

    /// Forgets clusters not written to since `now - FORGET_AFTER`; the
    /// number forgotten.
    pub fn expire(&self, now: Instant) -> usize {
        let mut all = self.elected.lock();
        let mut forgotten = 0;
        all.retain(|_, clusters| {
            let before = clusters.len();
            clusters.retain(|_, e| now.saturating_duration_since(e.received_at) < FORGET_AFTER);
            forgotten += before - clusters.len();
            !clusters.is_empty()
        });
        forgotten
    }

    /// The replica elected for `tenant`'s `cluster`, if any.
    pub fn elected(&self, tenant: &TenantId, cluster: &str) -> Option<String> {
        self.elected
            .lock()
            .get(tenant)
            .and_then(|c| c.get(cluster))
            .map(|e| e.replica.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_clusters: usize) -> HaSettings {
        HaSettings {
            max_clusters,
            failover_timeout: Duration::from_secs(30),
        }
    }

    #[test]
    fn one_replica_per_cluster_until_it_goes_quiet() {
        let ha = HaTracker::new();
        let t = TenantId::try_new("acme").unwrap();
        let s = settings(0);
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        assert_eq!(ha.check(&t, "eu", "a", &s, at(0)), Verdict::Elected);
        assert_eq!(
            ha.check(&t, "eu", "b", &s, at(1)),
            Verdict::NotElected {
                replica: "b".into(),
                elected: "a".into()
            }
        );
        // Each write of the elected one keeps it elected.
        assert_eq!(ha.check(&t, "eu", "a", &s, at(20)), Verdict::Elected);
        assert!(matches!(
            ha.check(&t, "eu", "b", &s, at(50)),
            Verdict::NotElected { .. }
        ));
        // Quiet for longer than the failover timeout: b takes over, and a
        // is now the one refused.
        assert_eq!(ha.check(&t, "eu", "b", &s, at(51)), Verdict::Elected);
        assert!(matches!(
            ha.check(&t, "eu", "a", &s, at(52)),
            Verdict::NotElected { .. }
        ));
        assert_eq!(ha.elected(&t, "eu").as_deref(), Some("b"));
        // Clusters and tenants are apart.
        assert_eq!(ha.check(&t, "us", "a", &s, at(52)), Verdict::Elected);
        let other = TenantId::try_new("other").unwrap();
        assert_eq!(ha.check(&other, "eu", "a", &s, at(52)), Verdict::Elected);
    }

    #[test]
    fn clusters_are_bounded_per_tenant_and_forgotten_when_quiet() {
        let ha = HaTracker::new();
        let t = TenantId::try_new("acme").unwrap();
        let s = settings(2);
        let t0 = Instant::now();
        assert_eq!(ha.check(&t, "c1", "a", &s, t0), Verdict::Elected);
        assert_eq!(ha.check(&t, "c2", "a", &s, t0), Verdict::Elected);
        assert_eq!(
            ha.check(&t, "c3", "a", &s, t0),
            Verdict::TooManyClusters { limit: 2 }
        );
        // Known clusters still write.
        assert_eq!(ha.check(&t, "c2", "a", &s, t0), Verdict::Elected);
        // Another tenant has its own bound.
        let other = TenantId::try_new("other").unwrap();
        assert_eq!(ha.check(&other, "c3", "a", &s, t0), Verdict::Elected);
        // c1 quiet for FORGET_AFTER frees its slot.
        let later = t0 + FORGET_AFTER + Duration::from_secs(1);
        assert_eq!(ha.check(&t, "c2", "a", &s, later), Verdict::Elected);
        assert_eq!(ha.check(&t, "c3", "a", &s, later), Verdict::Elected);
        assert_eq!(ha.elected(&t, "c1"), None);
        // The periodic sweep forgets the rest.
        assert_eq!(ha.expire(later + FORGET_AFTER), 3);
        assert_eq!(ha.elected(&t, "c2"), None);
    }
}
