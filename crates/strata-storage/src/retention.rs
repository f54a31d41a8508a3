//! Retention, legal hold and vacuum.
//!
//! Retention removes whole day partitions older than a tenant's period in
//! one commit (readers never see half a day). The files stay on the store,
//! and in older table versions for time travel, until vacuum deletes them
//! once they have been out of the table for the grace period. A tenant
//! under legal hold loses nothing: neither retention nor vacuum touches it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::store::humantime_serde_compat;

/// Retention for every tenant, with per-tenant overrides.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Keep data this long (by sample time, whole UTC days); unset keeps
    /// everything.
    #[serde(with = "humantime_serde_compat::option")]
    pub period: Option<Duration>,
    /// Removed files are physically deleted this long after their removal.
    #[serde(with = "humantime_serde_compat")]
    pub vacuum_grace: Duration,
    /// How often retention and vacuum run in the background.
    #[serde(with = "humantime_serde_compat")]
    pub interval: Duration,
    /// Per-tenant settings, by tenant id.
    pub tenants: BTreeMap<String, TenantRetention>,
}

/// One tenant's override.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TenantRetention {
    /// Overrides the default period: `Some(None)` (`"forever"`) keeps
    /// everything whatever the default says.
    #[serde(deserialize_with = "override_period")]
    pub period: Option<Option<Duration>>,
    /// Nothing of this tenant is removed or deleted while set.
    pub legal_hold: bool,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            period: None,
            // Delta's own default for vacuum.
            vacuum_grace: Duration::from_secs(7 * 24 * 3600),
            interval: Duration::from_secs(3600),
            tenants: BTreeMap::new(),
        }
    }
}

impl RetentionConfig {
    /// The period that applies to `tenant` (`None`: keep everything).
    pub fn period_for(&self, tenant: &str) -> Option<Duration> {
        match self.tenants.get(tenant).and_then(|t| t.period) {
            Some(overridden) => overridden,
            None => self.period,
        }
    }

    pub fn legal_hold(&self, tenant: &str) -> bool {
        self.tenants.get(tenant).is_some_and(|t| t.legal_hold)
    }
}

/// A present override: a duration, or `"forever"`.
fn override_period<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Duration>>, D::Error> {
    humantime_serde_compat::option::deserialize(d).map(Some)
}

/// What one retention pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionReport {
    pub tenants_held: usize,
    pub files_removed: usize,
    pub rows_removed: u64,
    pub files_deleted: usize,
}
