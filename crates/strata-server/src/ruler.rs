//! The ruler: each tenant's Prometheus rule groups evaluated in the
//! background, as Prometheus evaluates its rule files.
//!
//! Rule files are read from `rules.directory`, one directory per tenant
//! (`<directory>/<tenant>/<namespace>.yaml`), checked as `promtool check
//! rules` checks them, and re-read every `rules.poll_interval` when they
//! change; groups posted through the ruler API (`routes/ruler_config.rs`)
//! come from the object store, at once after a change and every
//! `rules.store_poll_interval` (a directory group of the same key wins).
//! A group whose definition is unchanged runs on untouched; a
//! changed group takes over the state of its unchanged rules (alerts keep
//! their pending time); a removed group's series get stale markers. A file
//! that no longer parses keeps its previous groups running (and is logged
//! and counted), as Prometheus keeps its rules when a reload fails.
//!
//! Each group runs on its own task, on its interval (`rules.evaluation_interval`
//! when it sets none), at a fixed offset within the interval (a hash of the
//! group's name) so groups spread out; an iteration that overran its
//! interval skips the missed ones and counts them. Queries go through the
//! tenant's internal query slots (`ruler_max_concurrent_queries`, apart
//! from its dashboards') and the fair scheduler; recorded
//! series, `ALERTS` and `ALERTS_FOR_STATE` are written through the same
//! durable write path as remote write (WAL, the tenant's limits, usage).
//! Alerts go to the Alertmanagers of `rules.alertmanager_urls` (or the
//! tenant's `ruler_alertmanager_url`), see [`notify`]. The state the API
//! reads is a snapshot taken after each iteration ([`Snapshots`]).

mod notify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use parking_lot::RwLock;
use promql_parser::parser::Expr;
use strata_analytics::rules::group::Point;
use strata_analytics::rules::{Group, RuleContext, RuleFile, RuleGroup, RuleQuerier};
use strata_query_lang::promql::{Cancel, Value};
use strata_storage::rule_store;
use strata_types::TenantId;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::AppState;
use crate::error::Shape;

/// A group's identity: tenant, namespace (the file's name without its
/// extension) and group name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub tenant: TenantId,
    pub namespace: String,
    pub name: String,
}

impl GroupKey {
    /// Where in its interval the group is evaluated: a hash of its key,
    /// so groups with one interval do not all run at once.
    fn offset_ms(&self, interval_ms: i64) -> i64 {
        // FNV-1a, as Prometheus hashes a group's name and file.
        let key = format!("{}\u{ff}{}\u{ff}{}", self.tenant, self.namespace, self.name);
        let h = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        (h % interval_ms.max(1).unsigned_abs()) as i64
    }
}

/// The last evaluated state of every running group, for the API; and the
/// signal that the stored groups changed.
#[derive(Debug, Default)]
pub struct Snapshots {
    groups: RwLock<BTreeMap<GroupKey, Arc<Group>>>,
    changed: tokio::sync::Notify,
}

impl Snapshots {
    /// Tells the ruler to reload now (the ruler API changed a group).
    pub fn changed(&self) {
        self.changed.notify_one();
    }

    /// `tenant`'s groups, ordered by namespace and name.
    pub fn of(&self, tenant: &TenantId) -> Vec<(GroupKey, Arc<Group>)> {
        self.groups
            .read()
            .iter()
            .filter(|(k, _)| &k.tenant == tenant)
            .map(|(k, g)| (k.clone(), Arc::clone(g)))
            .collect()
    }

    fn set(&self, key: &GroupKey, g: &Group) {
        self.groups.write().insert(key.clone(), Arc::new(g.clone()));
    }

    fn remove(&self, key: &GroupKey) {
        self.groups.write().remove(key);
    }
}

/// A group's queries, through the tenant's internal query slots and the
/// fair scheduler, evaluated on the blocking pool.
struct Querier {
    state: Arc<AppState>,
    tenant: TenantId,
}

#[async_trait]
impl RuleQuerier for Querier {
    async fn query(&self, expr: &Expr, t_ms: i64) -> Result<Value, String> {
        let state = &self.state;
        let timeout = state.config.promql.timeout;
        let admitted = state
            .admit(
                &self.tenant,
                crate::frontend::query::INTERNAL_RULES,
                Shape::Json,
            )
            .await
            .map_err(|e| e.message)?;
        let engine = state.promql_engine(Some(&self.tenant), state.config.promql.lookback_delta);
        let source = state
            .query
            .promql_source(&self.tenant)
            .map_err(|e| e.to_string())?;
        let cancel = Cancel::new(Some(std::time::Instant::now() + timeout));
        let prepared =
            tokio::time::timeout(timeout, engine.prepare_instant_expr(&source, expr, t_ms))
                .await
                .map_err(|_| "query timed out".to_string())?
                .map_err(|e| e.to_string())?;
        let out = tokio::task::spawn_blocking(move || prepared.evaluate(&cancel))
            .await
            .map_err(|e| format!("query evaluation failed: {e}"))?
            .map_err(|e| e.to_string())?;
        admitted.read_samples(out.samples_loaded);
        Ok(out.value)
    }

    async fn write(&self, points: Vec<Point>) -> Result<(), String> {
        write(&self.state, &self.tenant, points).await
    }
}

/// Where a group came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A file of the rules directory.
    Dir,
    /// The ruler API (the object store).
    Store,
}

/// One group's definition and where it came from (its key names its
/// tenant and namespace).
#[derive(Debug, Clone, PartialEq)]
struct Loaded {
    def: strata_analytics::rules::RuleGroup,
    source: Source,
}

/// The groups loaded from every source; `broken`: the (tenant, namespace)
/// whose source could not be read or parsed (their groups stay as they
/// were).
#[derive(Debug, Default)]
struct LoadedSet {
    groups: BTreeMap<GroupKey, Loaded>,
    broken: Vec<(TenantId, String)>,
    /// The store could not be listed: its groups stay as they were.
    store_failed: bool,
}

fn file_error(state: &AppState, tenant: &TenantId) {
    state
        .metrics
        .rule_file_errors
        .get_or_create(&vec![("tenant", tenant.to_string())])
        .inc();
}

/// Reads every tenant's rule files under `dir` into `set`.
fn load_dir(state: &AppState, dir: &Path, set: &mut LoadedSet) {
    let Ok(tenants) = std::fs::read_dir(dir) else {
        warn!(dir = %dir.display(), "rules directory unreadable");
        return;
    };
    let mut tenants: Vec<PathBuf> = tenants.flatten().map(|e| e.path()).collect();
    tenants.sort();
    for tdir in tenants.into_iter().filter(|p| p.is_dir()) {
        let name = tdir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Ok(tenant) = TenantId::try_new(name) else {
            warn!(dir = %tdir.display(), "rules directory names an invalid tenant; skipped");
            continue;
        };
        if !state.config.node.evaluates(tenant.as_str()) {
            // Another compactor's tenant.
            continue;
        }
        let Ok(files) = std::fs::read_dir(&tdir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = files
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        files.sort();
        for path in files {
            let namespace = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string();
            let file = path.display().to_string();
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| RuleFile::parse(&text).map_err(|e| e.to_string()));
            let f = match parsed {
                Ok(f) => f,
                Err(error) => {
                    warn!(%tenant, file, %error, "rule file refused; its groups are kept as they were");
                    file_error(state, &tenant);
                    set.broken.push((tenant.clone(), namespace));
                    continue;
                }
            };
            for g in f.groups {
                let key = GroupKey {
                    tenant: tenant.clone(),
                    namespace: namespace.clone(),
                    name: g.name.clone(),
                };
                set.groups.insert(
                    key,
                    Loaded {
                        def: g,
                        source: Source::Dir,
                    },
                );
            }
        }
    }
}

/// The groups of the ruler API read so far, by object version: a group is
/// read again only when its object changed.
type StoreCache =
    BTreeMap<strata_storage::RuleGroupPath, (rule_store::Version, Result<RuleGroup, String>)>;

/// Reads every tenant's stored groups into `set` (a directory group of the
/// same key wins).
async fn load_store(state: &AppState, cache: &mut StoreCache, set: &mut LoadedSet) {
    let store = state.storage.store();
    let listed = async {
        let mut all = Vec::new();
        for tenant in rule_store::tenants(store).await? {
            if !state.config.node.evaluates(tenant.as_str()) {
                continue;
            }
            all.extend(rule_store::versions(store, &tenant).await?);
        }
        Ok::<_, strata_storage::StorageError>(all)
    }
    .await;
    let listed = match listed {
        Ok(l) => l,
        Err(error) => {
            warn!(%error, "stored rule groups not listed; they are kept as they were");
            set.store_failed = true;
            return;
        }
    };
    let mut fresh = StoreCache::new();
    for (path, version) in listed {
        let cached = cache.remove(&path).filter(|(v, _)| *v == version);
        let parsed = match cached {
            Some((_, parsed)) => parsed,
            None => match rule_store::get(store, &path).await {
                Ok(Some(bytes)) => serde_norway::from_slice::<RuleGroup>(&bytes)
                    .map_err(|e| e.to_string())
                    .and_then(|g| g.check().map(|()| g).map_err(|e| e.to_string())),
                Ok(None) => continue,
                Err(error) => {
                    warn!(%error, tenant = %path.tenant, namespace = path.namespace, "stored rule group not read; kept as it was");
                    set.broken
                        .push((path.tenant.clone(), path.namespace.clone()));
                    continue;
                }
            },
        };
        match &parsed {
            Ok(g) => {
                let key = GroupKey {
                    tenant: path.tenant.clone(),
                    namespace: path.namespace.clone(),
                    name: g.name.clone(),
                };
                match set.groups.entry(key) {
                    std::collections::btree_map::Entry::Occupied(e) => {
                        let key = e.key();
                        warn!(tenant = %key.tenant, namespace = key.namespace, group = key.name,
                            "a rules directory group has the stored group's name; the directory's is evaluated");
                    }
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(Loaded {
                            def: g.clone(),
                            source: Source::Store,
                        });
                    }
                }
            }
            Err(error) => {
                warn!(tenant = %path.tenant, namespace = path.namespace, group = path.group, %error, "stored rule group refused; kept as it was");
                file_error(state, &path.tenant);
                set.broken
                    .push((path.tenant.clone(), path.namespace.clone()));
            }
        }
        fresh.insert(path, (version, parsed));
    }
    *cache = fresh;
}

/// Leaves out, per tenant in key order, groups past
/// `ruler_max_rules_per_group` or `ruler_max_rule_groups`.
fn apply_limits(state: &AppState, set: &mut LoadedSet) {
    let mut counts: BTreeMap<TenantId, usize> = BTreeMap::new();
    set.groups.retain(|key, loaded| {
        let limits = state.limits.of(&key.tenant);
        let rules = loaded.def.rules.len();
        if limits.ruler_max_rules_per_group > 0 && rules > limits.ruler_max_rules_per_group {
            warn!(tenant = %key.tenant, namespace = key.namespace, group = key.name, rules,
                limit = limits.ruler_max_rules_per_group,
                "rule group has more rules than ruler_max_rules_per_group; not evaluated");
            return false;
        }
        let n = counts.entry(key.tenant.clone()).or_default();
        *n += 1;
        if limits.ruler_max_rule_groups > 0 && *n > limits.ruler_max_rule_groups {
            warn!(tenant = %key.tenant, namespace = key.namespace, group = key.name,
                limit = limits.ruler_max_rule_groups,
                "tenant has more rule groups than ruler_max_rule_groups; not evaluated");
            return false;
        }
        true
    });
}

/// A running group's task.
struct Running {
    loaded: Loaded,
    stop: watch::Sender<bool>,
    task: JoinHandle<Group>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The aligned evaluation time at or before `now_ms`.
fn slot(now_ms: i64, interval_ms: i64, offset_ms: i64) -> i64 {
    let adj = now_ms - offset_ms;
    adj - adj.rem_euclid(interval_ms) + offset_ms
}

/// Writes `points` into `tenant` through the write path remote write
/// takes (the tenant's limits, the WAL, usage).
async fn write(state: &AppState, tenant: &TenantId, points: Vec<Point>) -> Result<(), String> {
    if points.is_empty() {
        return Ok(());
    }
    let names = state.limits.of(tenant).name_validation_scheme;
    let mut series = Vec::with_capacity(points.len());
    for (labels, t, v) in points {
        let pairs: Vec<(&str, &str)> = labels.iter().collect();
        let checked = names
            .check(pairs.iter().copied())
            .and_then(|()| strata_types::SeriesSamples::try_from_pairs(&pairs, &[(t, v)]));
        match checked {
            Ok(s) => series.push(s),
            Err(error) => warn!(%tenant, %error, "rule output not written: invalid labels"),
        }
    }
    let written = crate::frontend::write::write_internal(state, tenant, series).await;
    written.map(|_| ()).map_err(|e| {
        let error = e.message;
        warn!(%tenant, %error, "rule output not written");
        state
            .metrics
            .rule_write_failures
            .get_or_create(&vec![("tenant", tenant.to_string())])
            .inc();
        error
    })
}

/// One iteration of a group at `t_ms`: evaluate, restore pending times
/// after a restart, write, notify.
async fn iterate(state: &Arc<AppState>, key: &GroupKey, group: &mut Group, t_ms: i64) {
    let cfg = &state.config.rules;
    let ctx = RuleContext {
        external_labels: cfg.external_labels.clone(),
        external_url: state.config.rules_external_url(),
    };
    let q = Querier {
        state: Arc::clone(state),
        tenant: key.tenant.clone(),
    };
    let resend = i64::try_from(cfg.resend_delay.as_millis()).unwrap_or(i64::MAX);
    let out = group.evaluate(&q, &ctx, t_ms, resend).await;
    if group.needs_restore() {
        let tolerance = i64::try_from(cfg.outage_tolerance.as_millis()).unwrap_or(i64::MAX);
        let grace = i64::try_from(cfg.for_grace_period.as_millis()).unwrap_or(i64::MAX);
        if let Err(error) = group.restore(&q, t_ms, tolerance, grace).await {
            warn!(tenant = %key.tenant, group = key.name, %error, "alert pending times not restored");
        }
    }
    let tenant_label = vec![("tenant", key.tenant.to_string())];
    state
        .metrics
        .rule_group_iterations
        .get_or_create(&tenant_label)
        .inc();
    let failed = group
        .rules
        .iter()
        .filter(|r| {
            r.last_eval_ms == Some(t_ms) && r.health == strata_analytics::rules::Health::Err
        })
        .count();
    if failed > 0 {
        state
            .metrics
            .rule_evaluation_failures
            .get_or_create(&tenant_label)
            .inc_by(failed as u64);
    }
    if !out.alerts.is_empty() {
        notify::send(state, &key.tenant, group, out.alerts);
    }
}

/// Runs one group until told to stop; gives back its state.
async fn run_group(
    state: Arc<AppState>,
    key: GroupKey,
    mut group: Group,
    mut stop: watch::Receiver<bool>,
    snapshots: Arc<Snapshots>,
) -> Group {
    let interval = group.interval_ms;
    let offset = key.offset_ms(interval);
    let mut next = slot(now_ms(), interval, offset) + interval;
    snapshots.set(&key, &group);
    loop {
        let wait = Duration::from_millis(u64::try_from(next - now_ms()).unwrap_or(0));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return group,
        }
        let now = now_ms();
        let missed = (now - next) / interval;
        if missed > 0 {
            state
                .metrics
                .rule_group_iterations_missed
                .get_or_create(&vec![("tenant", key.tenant.to_string())])
                .inc_by(missed as u64);
            next += missed * interval;
        }
        iterate(&state, &key, &mut group, next).await;
        snapshots.set(&key, &group);
        next += interval;
    }
}

/// Stops a running group; its state.
async fn stop_group(r: Running) -> Option<Group> {
    let _ = r.stop.send(true);
    r.task.await.ok()
}

/// How long a compactor waits for its mirrors of the ingesters' heads
/// before it evaluates anyway (an ingester that is down has its unflushed
/// data in its WAL until it is back, whatever the wait).
const MIRRORS_WAIT: Duration = Duration::from_secs(30);

/// Waits until this node's queries see what rules and SLOs must read and
/// its writes can be stored: the single server once its WAL is replayed
/// (a restore would miss the `for` state it reads, and writes are refused
/// until then); a compactor once it mirrors every ingester's head, at most
/// [`MIRRORS_WAIT`]. False when told to stop first.
pub(crate) async fn ready_to_evaluate(state: &AppState, stop: &mut watch::Receiver<bool>) -> bool {
    let started = std::time::Instant::now();
    loop {
        let ready = if state.config.node.role.takes_writes() {
            state.wal().is_some()
        } else {
            let wanted = state.config.node.ingesters.len();
            let have = state.storage.mirrored();
            if have < wanted && started.elapsed() >= MIRRORS_WAIT {
                warn!(
                    mirrored = have,
                    ingesters = wanted,
                    "not every ingester's head is mirrored yet; evaluating rules and SLOs over what is"
                );
            }
            have >= wanted || started.elapsed() >= MIRRORS_WAIT
        };
        if ready {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.changed() => return false,
        }
    }
}

/// Runs until `stop` changes; nothing to do without a rules directory.
pub(crate) async fn run(state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
    if !ready_to_evaluate(&state, &mut stop).await {
        return;
    }
    let cfg = &state.config.rules;
    let dir = cfg.directory.clone();
    let snapshots = Arc::clone(&state.rules);
    let default_interval = i64::try_from(cfg.evaluation_interval.as_millis())
        .unwrap_or(60_000)
        .max(1);
    info!(
        dir = dir
            .as_ref()
            .map_or("none".into(), |d| d.display().to_string()),
        "evaluating rule groups (the rules directory's and the ruler API's)"
    );
    let mut running: BTreeMap<GroupKey, Running> = BTreeMap::new();
    let mut first = true;
    let mut seen: Option<Vec<(PathBuf, Option<SystemTime>, u64)>> = None;
    let mut cache = StoreCache::new();
    let mut store_read: Option<std::time::Instant> = None;
    let mut tick = tokio::time::interval(cfg.poll_interval.max(Duration::from_millis(100)));
    loop {
        let mut changed = false;
        tokio::select! {
            _ = tick.tick() => {}
            _ = snapshots.changed.notified() => changed = true,
            _ = stop.changed() => break,
        }
        // Re-read when a file changed (or appeared, or went away), the API
        // changed a group, or the store is due to be listed again (another
        // server may have changed it).
        let stamp = dir.as_deref().map(stamps).unwrap_or_default();
        let store_due = store_read.is_none_or(|t| t.elapsed() >= cfg.store_poll_interval);
        if seen.as_ref() == Some(&stamp) && !changed && !store_due {
            continue;
        }
        seen = Some(stamp);
        store_read = Some(std::time::Instant::now());
        let mut set = LoadedSet::default();
        if let Some(dir) = &dir {
            load_dir(&state, dir, &mut set);
        }
        load_store(&state, &mut cache, &mut set).await;
        apply_limits(&state, &mut set);
        let keep = |k: &GroupKey, r: &Running| {
            (set.store_failed && r.loaded.source == Source::Store)
                || set
                    .broken
                    .iter()
                    .any(|(t, ns)| t == &k.tenant && ns == &k.namespace)
        };
        let gone: Vec<GroupKey> = running
            .iter()
            .filter(|(k, r)| !set.groups.contains_key(*k) && !keep(k, r))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(r) = running.remove(&key) {
                if let Some(g) = stop_group(r).await {
                    // Logged and counted inside; nothing more to do.
                    let _ = write(&state, &key.tenant, g.stale_all(now_ms())).await;
                }
                snapshots.remove(&key);
                info!(tenant = %key.tenant, namespace = key.namespace, group = key.name, "rule group removed");
            }
        }
        for (key, loaded) in set.groups {
            if running.get(&key).is_some_and(|r| r.loaded == loaded) {
                continue;
            }
            let mut group = match Group::new(&loaded.def, default_interval, first) {
                Ok(g) => g,
                Err(error) => {
                    warn!(tenant = %key.tenant, group = key.name, %error, "rule group not loaded");
                    continue;
                }
            };
            if let Some(old) = running.remove(&key)
                && let Some(old) = stop_group(old).await
            {
                group.copy_state(&old);
            }
            let (tx, rx) = watch::channel(false);
            let task = tokio::spawn(run_group(
                Arc::clone(&state),
                key.clone(),
                group,
                rx,
                Arc::clone(&snapshots),
            ));
            running.insert(
                key,
                Running {
                    loaded,
                    stop: tx,
                    task,
                },
            );
        }
        first = false;
    }
    for (_, r) in std::mem::take(&mut running) {
        stop_group(r).await;
    }
}

/// Loads every group and evaluates each once at `t_ms`: the in-process
/// API tests run no background tasks.
#[cfg(test)]
pub(crate) async fn evaluate_once(state: &Arc<AppState>, t_ms: i64) {
    let mut set = LoadedSet::default();
    if let Some(dir) = &state.config.rules.directory {
        load_dir(state, dir, &mut set);
    }
    load_store(state, &mut StoreCache::new(), &mut set).await;
    apply_limits(state, &mut set);
    for (key, loaded) in set.groups {
        let Ok(mut g) = Group::new(&loaded.def, 60_000, false) else {
            continue;
        };
        iterate(state, &key, &mut g, t_ms).await;
        state.rules.set(&key, &g);
    }
}

/// Every rule file's path, modification time and length, to tell when to
/// re-read.
fn stamps(dir: &Path) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(t.path()).into_iter().flatten().flatten() {
            let meta = f.metadata().ok();
            out.push((
                f.path(),
                meta.as_ref().and_then(|m| m.modified().ok()),
                meta.map_or(0, |m| m.len()),
            ));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluation_slots_are_aligned_to_the_interval_at_the_groups_offset() {
        assert_eq!(slot(125_000, 60_000, 5_000), 125_000);
        assert_eq!(slot(124_999, 60_000, 5_000), 65_000);
        assert_eq!(slot(3_000, 60_000, 5_000), -55_000);
        let k = GroupKey {
            tenant: TenantId::try_new("t").unwrap(),
            namespace: "n".into(),
            name: "g".into(),
        };
        assert!((0..60_000).contains(&k.offset_ms(60_000)));
        assert_eq!(k.offset_ms(60_000), k.offset_ms(60_000));
    }
}
