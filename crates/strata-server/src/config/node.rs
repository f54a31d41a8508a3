//! `[node]`: what one process of a scale-out deployment does and who its
//! peers are (docs/DESIGN.md, "Scale-out").

use serde::Deserialize;

use super::ConfigError;

/// What one process of a scale-out deployment does (docs/DESIGN.md,
/// "Scale-out"). The default, `all`, is the single server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every role, sole writer of its tables.
    #[default]
    All,
    /// Takes writes into its own WAL and head and flushes them into the
    /// shared tables under its own WAL position (`strata-wal/<id>`).
    Ingester,
    /// Answers queries over the shared tables, re-read every
    /// `node.refresh_interval`; takes no writes.
    Querier,
    /// Compacts and applies retention to its share of the tenants and,
    /// with `node.ingesters`, evaluates their rules and SLOs (writing the
    /// results through an ingester); takes no writes.
    Compactor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Ingester => "ingester",
            Self::Querier => "querier",
            Self::Compactor => "compactor",
        }
    }

    /// Whether this role has a WAL and a head, and takes writes.
    pub fn takes_writes(self) -> bool {
        matches!(self, Self::All | Self::Ingester)
    }

    /// Whether this role compacts and applies retention.
    pub fn compacts(self) -> bool {
        matches!(self, Self::All | Self::Compactor)
    }

    /// Whether other processes commit to the tables this one reads.
    pub fn shares_tables(self) -> bool {
        self != Self::All
    }

    /// Whether this role keeps mirrors of the ingesters' heads (given
    /// their addresses): a querier for its queries, a compactor for the
    /// rules and SLOs it evaluates.
    pub fn mirrors_heads(self) -> bool {
        matches!(self, Self::Querier | Self::Compactor)
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Self::All),
            "ingester" => Ok(Self::Ingester),
            "querier" => Ok(Self::Querier),
            "compactor" => Ok(Self::Compactor),
            other => Err(format!(
                "unknown role {other:?} (all, ingester, querier, compactor)"
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    pub role: Role,
    /// This process's name among its peers: an ingester's WAL position is
    /// recorded under it, a compactor's ordinal is its trailing number.
    /// Default: the host name (a StatefulSet pod's name, `strata-ingester-0`).
    pub id: Option<String>,
    /// How many compactors divide the tenants (each takes those whose name
    /// hashes to its ordinal).
    pub compactor_replicas: usize,
    /// How often an ingester or a querier re-reads the shared tables
    /// (other ingesters' flushes, compactors' merges); a compactor re-reads
    /// the tables it owns before each of its passes instead.
    #[serde(deserialize_with = "crate::durations::duration")]
    pub refresh_interval: std::time::Duration,
    /// The cluster's ingesters (`http://host:9470`). A querier mirrors
    /// their heads so that its queries see every acknowledged write,
    /// flushed or not; a compactor mirrors them too and evaluates its
    /// tenants' rules and SLOs, writing their results through them; an
    /// ingester (whose own address may be among them) counts its tenants'
    /// series over all of them and splits the rate limits across those it
    /// hears from (global limits).
    pub ingesters: Vec<String>,
    /// The cluster's compactors (`http://host:9470`), for a querier: its
    /// `/api/v1/rules` and `/api/v1/alerts` gather what the compactors
    /// evaluating the tenant's rules hold (the caller's own credentials
    /// are passed on).
    pub compactors: Vec<String>,
    /// The token (operator role) a querier, compactor or ingester presents
    /// to the ingesters when their auth is on.
    pub ingester_token: Option<String>,
    /// How long a querier keeps the mirror of an ingester it cannot reach
    /// (what the ingester flushed stays visible; what it had not is back
    /// when it is).
    #[serde(deserialize_with = "crate::durations::duration")]
    pub mirror_retire_after: std::time::Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            role: Role::All,
            id: None,
            compactor_replicas: 1,
            refresh_interval: std::time::Duration::from_secs(10),
            ingesters: Vec::new(),
            compactors: Vec::new(),
            ingester_token: None,
            mirror_retire_after: std::time::Duration::from_secs(60),
        }
    }
}

impl NodeConfig {
    /// `id`, else the host name, else `strata`.
    pub fn resolved_id(&self) -> String {
        if let Some(id) = self.id.as_ref().filter(|s| !s.is_empty()) {
            return id.clone();
        }
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "strata".to_owned())
    }

    /// Whether this node evaluates `tenant`'s rules and SLOs: the single
    /// server all of them; in the split roles the compactor that owns the
    /// tenant, when it mirrors the ingesters (it reads their heads and
    /// writes the results through them).
    pub fn evaluates(&self, tenant: &str) -> bool {
        match self.role {
            Role::All => true,
            Role::Compactor => {
                !self.ingesters.is_empty()
                    && compactor_owns(tenant, self.ordinal(), self.compactor_replicas)
            }
            Role::Ingester | Role::Querier => false,
        }
    }

    /// Whether this node runs the ruler and the analytics loop at all.
    pub fn evaluates_any(&self) -> bool {
        match self.role {
            Role::All => true,
            Role::Compactor => !self.ingesters.is_empty(),
            Role::Ingester | Role::Querier => false,
        }
    }

    /// Whether this node is an ingester holding its tenants' limits
    /// together with the other ingesters (see [`crate::peers`]).
    pub fn shares_limits(&self) -> bool {
        self.role == Role::Ingester && !self.ingesters.is_empty()
    }

    /// A compactor's ordinal among `compactor_replicas`: the trailing
    /// number of its id (`strata-compactor-2` is 2), 0 without one.
    pub fn ordinal(&self) -> usize {
        let id = self.resolved_id();
        let digits = id.len() - id.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        id[id.len() - digits..].parse().unwrap_or(0)
    }
}

/// Whether the compactor with `ordinal` of `replicas` takes `tenant`: a
/// stable hash (FNV-1a) of its name, so every compactor agrees without
/// talking to the others.
pub fn compactor_owns(tenant: &str, ordinal: usize, replicas: usize) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let replicas = replicas.max(1) as u64;
    h % replicas == ordinal as u64 % replicas
}

impl NodeConfig {
    /// Refuses settings no node of its role could run with.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.compactor_replicas == 0 {
            return invalid("node.compactor_replicas", "must be at least 1");
        }
        if self.refresh_interval < std::time::Duration::from_secs(1) {
            return invalid("node.refresh_interval", "must be at least 1s");
        }
        for (field, urls) in [
            ("node.ingesters", &self.ingesters),
            ("node.compactors", &self.compactors),
        ] {
            for url in urls {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid {
                        field,
                        reason: format!("{url:?}: an http:// or https:// address"),
                    });
                }
            }
        }
        if !self.compactors.is_empty() && self.role != Role::Querier {
            return invalid(
                "node.compactors",
                "a querier asks the compactors for the rules they evaluate; other roles answer their own",
            );
        }
        if !self.ingesters.is_empty() && self.role == Role::All {
            return invalid(
                "node.ingesters",
                "queriers and compactors mirror the ingesters and ingesters share limits with them; a node of role \"all\" is its own ingester",
            );
        }
        if self.role.shares_tables() {
            let id = self.resolved_id();
            if id.len() > 128
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(ConfigError::Invalid {
                    field: "node.id",
                    reason: format!(
                        "{id:?}: at most 128 letters, digits, '-', '_' or '.' (it names this node's WAL position in the tables)"
                    ),
                });
            }
            if self.role == Role::Compactor && self.ordinal() >= self.compactor_replicas {
                return Err(ConfigError::Invalid {
                    field: "node.compactor_replicas",
                    reason: format!(
                        "compactor {id:?} has ordinal {} but there are {} compactors: it would own no tenant",
                        self.ordinal(),
                        self.compactor_replicas
                    ),
                });
            }
        }
        Ok(())
    }
}
