//! The object-store layout, owned in one place.
//!
//! ```text
//! <root>/tenants/<tenant>/metrics/                       the Delta table
//! <root>/tenants/<tenant>/metrics/_delta_log/            its log
//! <root>/tenants/<tenant>/metrics/day=YYYY-MM-DD/<level>-<uuid>.parquet
//! <root>/tenants/<tenant>/logs/...                       the logs table
//! <root>/tenants/<tenant>/exemplars/...                  the exemplars table
//! <root>/tenants/<tenant>/histograms/...                 native histograms
//! <root>/tenants/<tenant>/rules/<namespace>/<group>.yaml  ruler API groups
//! ```
//!
//! Every key kind has a constructor and a parser; they round-trip.

use chrono::NaiveDate;
use object_store::path::Path;
use strata_types::TenantId;
use uuid::Uuid;

use crate::StorageError;

pub const TENANTS: &str = "tenants";
pub const METRICS: &str = "metrics";
pub const LOGS: &str = "logs";
pub const EXEMPLARS: &str = "exemplars";
pub const HISTOGRAMS: &str = "histograms";
pub const RULES: &str = "rules";

/// What a table holds: each tenant has one table per signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Signal {
    #[default]
    Metrics,
    Logs,
    Exemplars,
    Histograms,
}

impl Signal {
    /// Every signal: a tenant has at most one table of each.
    pub const ALL: [Signal; 4] = [
        Signal::Metrics,
        Signal::Logs,
        Signal::Exemplars,
        Signal::Histograms,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Metrics => METRICS,
            Self::Logs => LOGS,
            Self::Exemplars => EXEMPLARS,
            Self::Histograms => HISTOGRAMS,
        }
    }
}

/// Where one tenant's table of one signal lives, relative to the store
/// root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePath {
    tenant: TenantId,
    signal: Signal,
}

impl TablePath {
    pub fn metrics(tenant: TenantId) -> Self {
        Self {
            tenant,
            signal: Signal::Metrics,
        }
    }

    pub fn logs(tenant: TenantId) -> Self {
        Self {
            tenant,
            signal: Signal::Logs,
        }
    }

    pub fn of(tenant: TenantId, signal: Signal) -> Self {
        Self { tenant, signal }
    }

    /// `tenants/<tenant>/<signal>`, relative to the store's base.
    pub fn relative(&self) -> String {
        format!("{TENANTS}/{}/{}", self.tenant, self.signal.as_str())
    }

    /// The tenant named by a `tenants/<tenant>/...` key.
    pub fn parse_tenant(key: &str) -> Option<TenantId> {
        let mut parts = key.split('/');
        if parts.next()? != TENANTS {
            return None;
        }
        TenantId::try_new(parts.next()?).ok()
    }
}

/// How a data file came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileLevel {
    /// Written by a head flush.
    Flush,
    /// Flush files of one hour merged.
    Hour,
    /// Hour files of one day merged.
    Day,
}

impl FileLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flush => "flush",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "flush" => Some(Self::Flush),
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            _ => None,
        }
    }
}

/// A data file's key inside its table: `day=YYYY-MM-DD/<level>-<uuid>.parquet`.
/// Names are unique (a fresh UUID), so two writers never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFilePath {
    pub day: NaiveDate,
    pub level: FileLevel,
    pub id: Uuid,
}

impl DataFilePath {
    pub fn new(day: NaiveDate, level: FileLevel) -> Self {
        Self {
            day,
            level,
            id: Uuid::new_v4(),
        }
    }

    /// The partition value of `day`, as Delta writes it.
    pub fn day_value(&self) -> String {
        self.day.format("%Y-%m-%d").to_string()
    }

    /// The key relative to the table root (what the Delta log records).
    pub fn relative(&self) -> String {
        format!(
            "day={}/{}-{}.parquet",
            self.day_value(),
            self.level.as_str(),
            self.id.as_hyphenated()
        )
    }

    pub fn parse(relative: &str) -> Result<Self, StorageError> {
        let bad = || StorageError::BadPath {
            path: relative.to_owned(),
        };
        let (dir, file) = relative.split_once('/').ok_or_else(bad)?;
        let day = dir.strip_prefix("day=").ok_or_else(bad)?;
        let day = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| bad())?;
        let stem = file.strip_suffix(".parquet").ok_or_else(bad)?;
        let (level, id) = stem.split_once('-').ok_or_else(bad)?;
        Ok(Self {
            day,
            level: FileLevel::parse(level).ok_or_else(bad)?,
            id: Uuid::parse_str(id).map_err(|_| bad())?,
        })
    }

    /// The key from the store's root.
    pub fn under(&self, table: &Path) -> Path {
        crate::store::join_relative(table, &self.relative())
    }
}

/// One rule group a tenant manages through the ruler API, under the
/// tenant's prefix (so it moves and is kept with the tenant). Namespace and
/// group names are the user's (any UTF-8): one made only of ASCII letters,
/// digits, `-` and `_` is written as is, any other as `x.` and its bytes in
/// hex, so no name can reach outside its directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RuleGroupPath {
    pub tenant: TenantId,
    pub namespace: String,
    pub group: String,
}

fn encode_name(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(2 + 2 * s.len());
    out.push_str("x.");
    for b in s.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn decode_name(s: &str) -> Option<String> {
    let Some(hex) = s.strip_prefix("x.") else {
        let plain = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        return plain.then(|| s.to_string());
    };
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

impl RuleGroupPath {
    /// `tenants/<tenant>/rules`, relative to the store's base.
    pub fn prefix(tenant: &TenantId) -> String {
        format!("{TENANTS}/{tenant}/{RULES}")
    }

    /// The group's key, relative to the store's base.
    pub fn relative(&self) -> String {
        format!(
            "{}/{}/{}.yaml",
            Self::prefix(&self.tenant),
            encode_name(&self.namespace),
            encode_name(&self.group)
        )
    }

    /// The group a key (relative to the base) names.
    pub fn parse(relative: &str) -> Option<Self> {
        let mut parts = relative.split('/');
        let (Some(TENANTS), Some(tenant), Some(RULES), Some(ns), Some(file), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        Some(Self {
            tenant: TenantId::try_new(tenant).ok()?,
            namespace: decode_name(ns)?,
            group: decode_name(file.strip_suffix(".yaml")?)?,
        })
    }
}

/// UTC day of a millisecond timestamp.
pub fn day_of_ms(ts_ms: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(ts_ms)
        .map(|t| t.date_naive())
        .unwrap_or(NaiveDate::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_path_round_trips() {
        for level in [FileLevel::Flush, FileLevel::Hour, FileLevel::Day] {
            let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
            let p = DataFilePath::new(day, level);
            let rel = p.relative();
            assert!(rel.starts_with("day=2026-11-26/"), "{rel}");
            assert_eq!(DataFilePath::parse(&rel).unwrap(), p);
        }
    }

    #[test]
    fn bad_data_file_paths_are_refused() {
        for bad in [
            "x.parquet",
            "day=2026-13-01/flush-6d1c7b0e-5d4c-4c39-9a3e-2f1f8c7b6a59.parquet",
            "day=2026-11-26/weird-6d1c7b0e-5d4c-4c39-9a3e-2f1f8c7b6a59.parquet",
            "day=2026-11-26/flush-nope.parquet",
            "day=2026-11-26/flush-6d1c7b0e-5d4c-4c39-9a3e-2f1f8c7b6a59.csv",
        ] {
            assert!(DataFilePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn table_path_names_its_tenant() {
        let t = TenantId::try_new("acme").unwrap();
        let p = TablePath::metrics(t.clone());
        assert_eq!(p.relative(), "tenants/acme/metrics");
        assert_eq!(TablePath::parse_tenant(&p.relative()), Some(t));
        assert_eq!(TablePath::parse_tenant("tenants/../x"), None);
        assert_eq!(TablePath::parse_tenant("other/acme"), None);
    }

    #[test]
    fn rule_group_paths_round_trip_and_stay_in_their_directory() {
        let t = TenantId::try_new("acme").unwrap();
        for (ns, group, key) in [
            (
                "odoo",
                "picking-slo_1",
                "tenants/acme/rules/odoo/picking-slo_1.yaml",
            ),
            ("a/../b", "g", "tenants/acme/rules/x.612f2e2e2f62/g.yaml"),
            (
                "kube.rules",
                "ünïcode group",
                "tenants/acme/rules/x.6b7562652e72756c6573/x.c3bc6ec3af636f64652067726f7570.yaml",
            ),
            ("x.41", "..", "tenants/acme/rules/x.782e3431/x.2e2e.yaml"),
        ] {
            let p = RuleGroupPath {
                tenant: t.clone(),
                namespace: ns.into(),
                group: group.into(),
            };
            assert_eq!(p.relative(), key);
            assert_eq!(RuleGroupPath::parse(key), Some(p));
        }
        for bad in [
            "tenants/acme/rules/odoo/g.yml",
            "tenants/acme/rules/odoo/g.yaml/x",
            "tenants/acme/metrics/odoo/g.yaml",
            "tenants/acme/rules/x.6/g.yaml",
            "tenants/acme/rules/o.d/g.yaml",
            "tenants/acme/rules/x.ff/g.yaml",
        ] {
            assert_eq!(RuleGroupPath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_are_utc() {
        assert_eq!(day_of_ms(0), NaiveDate::from_ymd_opt(1970, 1, 1).unwrap());
        assert_eq!(
            day_of_ms(-1),
            NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()
        );
        assert_eq!(
            day_of_ms(1_764_201_599_999),
            NaiveDate::from_ymd_opt(2025, 11, 26).unwrap()
        );
    }
}
