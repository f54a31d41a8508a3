//! The fetch phase: every selector's time span is worked out, large
//! reduced selections are read in parts, a selection another contains is
//! filtered from that one's series, and the rest are fetched at once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::{AggregateExpr, Expr};

use super::super::aggregate::FoldOp;
use super::fold::Fold;
use super::parts::{Built, Table, read_in_parts, table_rows};
use super::precompute::PRE_CELLS;
use super::{
    AddrMap, AddrSet, Cancel, EngineConfig, Ev, Fetched, FetchedSeries, Matcher, Memo, Need,
    Planner, Prepared, PromError, Reducer, Series, Source, addr, is_stale, matches_all, ms,
    selector_matchers, too_many_samples,
};
use crate::promql::par_map;
use crate::promql::value::no_histograms;
use crate::promql::{HistogramPoint, ResetHint};
/// Fetches what `expr` needs over `start..=end` (every `step`; one step
/// for an instant query): a query ready to evaluate.
pub(crate) async fn prepare(
    cfg: &EngineConfig,
    source: &dyn Source,
    expr: Box<Expr>,
    start: i64,
    end: i64,
    step: i64,
    instant: bool,
) -> Result<Prepared, PromError> {
    let mut planner = Planner {
        cfg,
        start,
        end,
        needs: Vec::new(),
        in_subquery: 0,
        reducers: HashMap::new(),
        folds: HashMap::new(),
    };
    planner.walk(&expr, start, end);
    let mut data = HashMap::new();
    let mut loaded = 0usize;
    let mut needs = Vec::with_capacity(planner.needs.len());
    for need in planner.needs {
        let sets = selector_matchers(need.vs);
        if sets
            .iter()
            .any(|matchers| !matchers.iter().any(|m| !m.is_match("")))
        {
            return Err(PromError::bad_data(
                "vector selector must contain at least one non-empty matcher",
            ));
        }
        needs.push((need, sets));
    }
    let mut ev = Ev {
        data: Arc::default(),
        lookback: ms(&cfg.lookback),
        start,
        end,
        step,
        sub_step: ms(&cfg.default_subquery_step).max(1),
        max_samples: cfg.max_samples,
        pre: RefCell::default(),
        parted: Arc::default(),
        folded: Arc::default(),
        parted_selectors: Arc::default(),
        hist_selectors: Arc::default(),
        groupings: RefCell::default(),
        subs: RefCell::default(),
        pre_cells: std::cell::Cell::new(super::precompute::cells_bound()),
        memo: Memo::default(),
        cancel: Cancel::default(),
        warnings: RefCell::new(Vec::new()),
    };
    // Native histograms first: a selection with some is read whole and
    // evaluated step by step (the step tables hold floats).
    let hist_fetches = futures::future::try_join_all(needs.iter().map(|(need, sets)| async move {
        let mut found: Vec<Series> = Vec::new();
        for matchers in sets {
            found.extend(source.select_histograms(matchers, need.lo, need.hi).await?);
        }
        Ok::<_, PromError>((need.key, found))
    }))
    .await?;
    let mut hists: HashMap<usize, Vec<Series>> = HashMap::new();
    for (key, mut found) in hist_fetches {
        for s in &mut found {
            storage_hints(&mut s.histograms);
        }
        if !found.is_empty() {
            loaded += found.iter().map(|s| s.histograms.len()).sum::<usize>();
            hists.insert(key, found);
        }
    }
    if loaded > cfg.max_samples {
        return Err(too_many_samples());
    }
    // Selections that are only reduced at the query's steps are read part
    // by part (one part for a small one), each part reduced to its rows of
    // the step table, one series after another, before the next is read:
    // their points are never all held at once, and a long range's points
    // are written into one buffer instead of a fresh one per series.
    let steps = if instant {
        1
    } else {
        usize::try_from((end - start) / step.max(1) + 1).unwrap_or(usize::MAX)
    };
    // A selection that another selection of the query contains (same time
    // span, its matchers among this one's) is not read again: its series
    // are the other's that satisfy its matchers.
    let bases = shared_bases(&needs);
    let mut whole = Vec::with_capacity(needs.len());
    // Selections filtered from a base read whole: (key, matcher sets, base
    // key).
    let mut filtered: Vec<(usize, Vec<Vec<Matcher>>, usize)> = Vec::new();
    let mut parted = AddrMap::default();
    let mut folded = AddrMap::default();
    let mut parted_selectors = AddrSet::default();
    for (j, (need, sets)) in needs.iter().enumerate() {
        if bases[j].is_some() {
            continue;
        }
        let contained: Vec<&(Need, Vec<Vec<Matcher>>)> = (0..needs.len())
            .filter(|&i| bases[i] == Some(j))
            .map(|i| &needs[i])
            .collect();
        let reducer = planner
            .reducers
            .get(&need.key)
            .copied()
            .filter(|_| !hists.contains_key(&need.key));
        let parts = match (reducer, sets.as_slice()) {
            (Some(_), [matchers]) if cfg.part_series > 0 => source
                .series_estimate(matchers, need.lo, need.hi)
                .await?
                .filter(|&n| usize::try_from(n).is_ok_and(|n| n.saturating_mul(steps) <= PRE_CELLS))
                .map(|n| n.div_ceil(cfg.part_series as u64).max(1) as usize),
            _ => None,
        };
        let read = match (reducer, parts) {
            (Some(r), Some(parts)) => {
                // The read selection's table, then those of the contained
                // selections that are reduced too (the others are read on
                // their own).
                let (table_key, t) = table(&ev, need, r, steps, Vec::new(), &planner.folds)?;
                let (mut keys, mut table_keys, mut tables) =
                    (vec![need.key], vec![table_key], vec![t]);
                for (c, c_sets) in &contained {
                    if let (Some(r), [own], false) = (
                        planner.reducers.get(&c.key).copied(),
                        c_sets.as_slice(),
                        hists.contains_key(&c.key),
                    ) {
                        let (table_key, t) = table(&ev, c, r, steps, own.clone(), &planner.folds)?;
                        keys.push(c.key);
                        table_keys.push(table_key);
                        tables.push(t);
                    }
                }
                let at = (start, if steps > 1 { step } else { 1 }, steps);
                let room = cfg.max_samples.saturating_sub(loaded);
                read_in_parts(source, need, &sets[0], tables, at, parts, room)
                    .await?
                    .map(|(pres, points)| (keys, table_keys, pres, points))
            }
            _ => None,
        };
        match read {
            Some((keys, table_keys, pres, points)) => {
                loaded += points;
                for ((key, table_key), built) in keys.into_iter().zip(table_keys).zip(pres) {
                    match built {
                        Built::Table(pre) => {
                            parted.insert(table_key, pre);
                        }
                        Built::Folded(f) => {
                            folded.insert(table_key, f);
                        }
                    }
                    parted_selectors.insert(key);
                }
                for (c, c_sets) in contained {
                    if !parted_selectors.contains(&c.key) {
                        whole.push((*c, c_sets.clone()));
                    }
                }
            }
            None => {
                whole.push((*need, sets.clone()));
                filtered.extend(
                    contained
                        .into_iter()
                        .map(|(c, c_sets)| (c.key, c_sets.clone(), need.key)),
                );
            }
        }
    }
    ev.parted = Arc::new(parted);
    ev.folded = Arc::new(folded);
    ev.parted_selectors = Arc::new(parted_selectors);
    let needs = whole;
    // Every selector's series are fetched at once (a fetch waits on
    // storage and decodes on its own tasks), then checked in order.
    let fetches = futures::future::try_join_all(needs.iter().map(|(need, sets)| async move {
        let mut parts = Vec::with_capacity(sets.len());
        for matchers in sets {
            parts.push(source.select(matchers, need.lo, need.hi).await?);
        }
        Ok::<_, PromError>(parts)
    }))
    .await?;
    for ((need, sets), parts) in needs.into_iter().zip(fetches) {
        let mut selected: Vec<Series> = Vec::new();
        for part in parts {
            loaded += part.iter().map(|s| s.points.len()).sum::<usize>();
            selected.extend(part);
        }
        if loaded > cfg.max_samples {
            return Err(too_many_samples());
        }
        // In label order, as Prometheus' storage returns series: ties in
        // `topk` and friends then break the same way. A source answers each
        // series once; `or` groups may select one twice (the first counts).
        if sets.len() > 1 {
            selected.sort_by(|a, b| a.labels.cmp(&b.labels));
            selected.dedup_by(|b, a| a.labels == b.labels);
        } else {
            selected.sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        }
        // A look at every point: on every core when there are many.
        let fetched: Fetched = par_map(
            selected,
            |s| s.points.len(),
            |s| {
                let all = Arc::new(s.points);
                // Staleness markers end a series for instant selectors;
                // range selectors skip them. Most series have none.
                let live = if all.iter().any(|p| is_stale(p.1)) {
                    Arc::new(all.iter().copied().filter(|p| !is_stale(p.1)).collect())
                } else {
                    Arc::clone(&all)
                };
                FetchedSeries {
                    labels: Arc::new(s.labels),
                    all,
                    live,
                    hist: no_histograms(),
                    hist_live: no_histograms(),
                }
            },
        )?;
        let fetched = match hists.remove(&need.key) {
            Some(h) => with_histograms(fetched, h),
            None => fetched,
        };
        data.insert(need.key, fetched);
    }
    // The contained selections: their base's series (in label order, so
    // these are too) that satisfy their own matchers, sharing its points.
    for (key, own, base) in filtered {
        let subset: Fetched = data
            .get(&base)
            .into_iter()
            .flatten()
            .filter(|s| own.iter().any(|m| matches_all(&s.labels, m)))
            .map(|s| FetchedSeries {
                labels: Arc::clone(&s.labels),
                all: Arc::clone(&s.all),
                live: Arc::clone(&s.live),
                hist: Arc::clone(&s.hist),
                hist_live: Arc::clone(&s.hist_live),
            })
            .collect();
        data.insert(key, subset);
    }
    ev.hist_selectors = Arc::new(
        data.iter()
            .filter(|(_, f)| f.iter().any(|s| !s.hist.is_empty()))
            .map(|(k, _)| *k)
            .collect(),
    );
    ev.data = Arc::new(data);
    Ok(Prepared {
        expr,
        ev,
        instant,
        loaded: loaded as u64,
    })
}

/// The counter-reset hints of a series' histograms as Prometheus' storage
/// gives them back: a sample whose sender did not know (`Unknown`) gets
/// `Reset` or `NotReset` from comparing it with the one before; the first
/// keeps its own, as do gauges and samples the sender marked.
fn storage_hints(points: &mut [HistogramPoint]) {
    for i in 1..points.len() {
        let (before, rest) = points.split_at_mut(i);
        let (prev, cur) = (&before[i - 1].1, &mut rest[0].1);
        if cur.hint != ResetHint::Unknown || is_stale(cur.sum) || is_stale(prev.sum) {
            continue;
        }
        let hint = if cur.detect_reset(prev) {
            ResetHint::Reset
        } else {
            ResetHint::NotReset
        };
        Arc::make_mut(cur).hint = hint;
    }
}

/// Float series and native-histogram series of one selection as one list
/// in label order (a series with both has both).
fn with_histograms(floats: Fetched, hists: Vec<Series>) -> Fetched {
    let mut hists: Vec<Series> = hists;
    hists.sort_by(|a, b| a.labels.cmp(&b.labels));
    hists.dedup_by(|b, a| a.labels == b.labels);
    let mut out = Vec::with_capacity(floats.len() + hists.len());
    let mut h = hists.into_iter().peekable();
    for f in floats {
        while h.peek().is_some_and(|x| x.labels < *f.labels) {
            out.push(hist_only(h.next()));
        }
        if h.peek().is_some_and(|x| x.labels == *f.labels) {
            let (hist, hist_live) = with_live(h.next().map(|x| x.histograms).unwrap_or_default());
            out.push(FetchedSeries {
                hist,
                hist_live,
                ..f
            });
        } else {
            out.push(f);
        }
    }
    out.extend(h.map(|x| hist_only(Some(x))));
    out
}

fn hist_only(s: Option<Series>) -> FetchedSeries {
    let s = s.unwrap_or_default();
    let none = Arc::new(Vec::new());
    let (hist, hist_live) = with_live(s.histograms);
    FetchedSeries {
        labels: Arc::new(s.labels),
        all: Arc::clone(&none),
        live: none,
        hist,
        hist_live,
    }
}

/// A series' histograms, and those without stale markers (the same ones
/// when there are none, as for most series).
fn with_live(all: Vec<HistogramPoint>) -> (Arc<Vec<HistogramPoint>>, Arc<Vec<HistogramPoint>>) {
    let all = Arc::new(all);
    let live = if all.iter().any(|(_, h)| is_stale(h.sum)) {
        Arc::new(
            all.iter()
                .filter(|(_, h)| !is_stale(h.sum))
                .cloned()
                .collect(),
        )
    } else {
        Arc::clone(&all)
    };
    (all, live)
}

/// The table a reduced selection read in parts fills, keeping the series
/// that satisfy `keep`: its key and how it is built. A table a column
/// aggregation reduces (`folds`, by table key) is folded by it as it is
/// read, under the aggregation's key.
fn table(
    ev: &Ev,
    need: &Need<'_>,
    reducer: Reducer<'_>,
    steps: usize,
    keep: Vec<Matcher>,
    folds: &HashMap<usize, &AggregateExpr>,
) -> Result<(usize, Table), PromError> {
    let (key, drop_name, rows) = table_rows(ev, need, reducer, steps)?;
    let fold = folds.get(&key).and_then(|a| {
        let op = FoldOp::of(&a.op.to_string().to_lowercase())?;
        Some((
            addr(*a),
            Fold {
                op,
                modifier: a.modifier.clone(),
            },
        ))
    });
    let (key, fold) = match fold {
        Some((node, f)) => (node, Some(f)),
        None => (key, None),
    };
    Ok((
        key,
        Table {
            rows,
            drop_name,
            keep,
            fold,
        },
    ))
}

/// For each need, the need read for it (`None`: read itself): among the
/// needs with the same time span and one matcher set whose every matcher
/// is among its own (so whose series include all of its own), the one
/// with the fewest matchers, then the first. That one is never read for
/// another in turn (whatever contains it also contains this one and comes
/// first), so a base is always read itself.
fn shared_bases(needs: &[(Need<'_>, Vec<Vec<Matcher>>)]) -> Vec<Option<usize>> {
    let single = |i: usize| match needs.get(i).map(|(_, sets)| sets.as_slice()) {
        Some([m]) => Some(m),
        _ => None,
    };
    (0..needs.len())
        .map(|i| {
            let mine = single(i)?;
            let me = &needs[i].0;
            (0..needs.len())
                .filter(|&j| j != i)
                .filter_map(|j| {
                    let theirs = single(j)?;
                    let them = &needs[j].0;
                    (them.lo == me.lo
                        && them.hi == me.hi
                        && (theirs.len(), j) < (mine.len(), i)
                        && theirs.iter().all(|m| mine.contains(m)))
                    .then_some((theirs.len(), j))
                })
                .min()
                .map(|(_, j)| j)
        })
        .collect()
}
