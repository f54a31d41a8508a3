//! Range queries' window-function calls computed for every step at once,
//! series by series, and aggregations reducing their step columns.

use std::collections::HashSet;
use std::sync::Arc;

use promql_parser::parser::{AggregateExpr, Expr, MatrixSelector, VectorSelector};

use super::super::aggregate::FoldOp;
use super::super::functions::{Pts, Scratch, Span, WindowFn};
use super::super::memo::{AddrMap, addr, ptr};
use super::super::value::Column;
use super::super::{Labels, PromError, Series};
use super::{Ev, Samp, ms, offset_ms};

/// Every step of one window-function call of a range query (`rate(x[5m])`
/// and the like), computed series by series with a sliding window before
/// the steps are evaluated: each series' points are read once, in order,
/// instead of searched at every step.
pub(super) struct Pre {
    from: i64,
    step: i64,
    steps: usize,
    labels: Vec<Arc<Labels>>,
    drop_name: bool,
    /// Step-major: the value of series `i` at step `k` is at
    /// `k * labels.len() + i`, when its bit in `present` is set.
    values: Vec<f64>,
    present: Vec<u64>,
}

impl Pre {
    pub(super) fn series(&self) -> usize {
        self.labels.len()
    }

    /// The step `t` is, when the table holds it.
    fn step_of(&self, t: i64) -> Option<usize> {
        step_index(self.from, self.step, self.steps, t)
    }
}

/// The step `t` is among `steps` steps `step` apart from `from`.
pub(super) fn step_index(from: i64, step: i64, steps: usize, t: i64) -> Option<usize> {
    if t < from || step <= 0 || (t - from) % step != 0 {
        return None;
    }
    usize::try_from((t - from) / step)
        .ok()
        .filter(|k| *k < steps)
}

/// Cells (series × steps) past which a call is evaluated step by step
/// instead (its table would hold too much memory); also the most one
/// evaluator's tables hold together.
pub(super) const PRE_CELLS: usize = 40_000_000;

#[cfg(test)]
thread_local! {
    /// A smaller bound for one evaluator's tables (tests set it).
    pub(super) static CELLS: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Cells one evaluator's step tables may hold together.
pub(super) fn cells_bound() -> usize {
    #[cfg(test)]
    if let Some(n) = CELLS.with(std::cell::Cell::get) {
        return n;
    }
    PRE_CELLS
}

/// Whether `e` is a number whatever the time (`4 * 3600`).
fn constant(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral(_) => true,
        Expr::Paren(p) => constant(&p.expr),
        Expr::Unary(u) => constant(&u.expr),
        Expr::Binary(b) => constant(&b.lhs) && constant(&b.rhs),
        _ => false,
    }
}

/// Each input series' group for one aggregation node, and the groups.
pub(super) type Grouping = (Vec<usize>, Vec<Arc<Labels>>);

/// The range selector of a window-function call whose every step can be
/// computed at once: a plain selector (no `@`), the other arguments
/// constant (evaluated once, so nothing could fail or warn differently at
/// another step).
pub(super) fn window_selector(c: &promql_parser::parser::Call) -> Option<&MatrixSelector> {
    if !super::super::functions::WINDOW_FNS.contains(&c.func.name) {
        return None;
    }
    let mut selector = None;
    for a in &c.args.args {
        match &**a {
            Expr::MatrixSelector(m) if selector.is_none() => selector = Some(m),
            a if constant(a) => {}
            _ => return None,
        }
    }
    selector.filter(|m| m.vs.at.is_none())
}

/// Where the steps of a window-function call's windows fall.
#[derive(Clone, Copy)]
pub(super) struct CallSteps {
    from: i64,
    step: i64,
    steps: usize,
    offset: i64,
    range: i64,
    /// For counters: decreases up to each point, so a window without one
    /// skips the reset scan (the sum is then the same).
    counter: bool,
}

impl CallSteps {
    pub(super) fn new(
        c: &promql_parser::parser::Call,
        m: &MatrixSelector,
        from: i64,
        step: i64,
        steps: usize,
    ) -> Self {
        CallSteps {
            from,
            step,
            steps,
            offset: offset_ms(&m.vs.offset),
            range: ms(&m.range),
            counter: matches!(c.func.name, "rate" | "increase"),
        }
    }
}

impl CallSteps {
    pub(super) fn steps(&self) -> usize {
        self.steps
    }
}

/// What `a` aggregates (parentheses taken off) when it is a `sum`,
/// `count`, `min`, `max` or `group` without parameter: an aggregation that
/// can reduce a column at every step.
fn column_operand(a: &AggregateExpr) -> Option<&Expr> {
    if a.param.is_some() || FoldOp::of(&a.op.to_string().to_lowercase()).is_none() {
        return None;
    }
    let mut inner = &*a.expr;
    while let Expr::Paren(p) = inner {
        inner = &p.expr;
    }
    Some(inner)
}

/// The plain selector (no `@`) that `a`, a `sum`, `count`, `min`, `max`
/// or `group` without parameter, reduces by column at every step.
pub(super) fn column_selector(a: &AggregateExpr) -> Option<&VectorSelector> {
    match column_operand(a)? {
        Expr::VectorSelector(vs) if vs.at.is_none() => Some(vs),
        _ => None,
    }
}

/// The window-function call (its range a plain selector, no `@`) that
/// `a`, a `sum`, `count`, `min`, `max` or `group` without parameter,
/// reduces by column at every step.
pub(super) fn column_call(a: &AggregateExpr) -> Option<&promql_parser::parser::Call> {
    match column_operand(a)? {
        Expr::Call(c) if window_selector(c).is_some() => Some(c),
        _ => None,
    }
}

/// One series' value at each step of a window-function call.
pub(super) struct CallRow<'a> {
    f: &'a WindowFn<'static>,
    at: CallSteps,
    drops: Vec<u32>,
    scratch: Scratch,
}

impl<'a> CallRow<'a> {
    pub(super) fn new(f: &'a WindowFn<'static>, at: CallSteps) -> Self {
        CallRow {
            f,
            at,
            drops: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// `put(k, v)` for each step `k` with a value, given the series'
    /// points without staleness markers.
    pub(super) fn fill(&mut self, pts: &[(i64, f64)], mut put: impl FnMut(usize, f64)) {
        let at = self.at;
        // Whether a window holds a counter reset: from a running count of
        // drops when windows overlap (each point is in several), by
        // looking at the window's own points when they do not (a 5m rate
        // at a 10m step reads half the points and never the others).
        let overlapping = at.range >= at.step;
        if at.counter && overlapping {
            self.drops.clear();
            let mut n = 0u32;
            self.drops.push(0);
            for w in pts.windows(2) {
                n += u32::from(w[1].1 < w[0].1);
                self.drops.push(n);
            }
        }
        let (mut lo, mut hi) = (0usize, 0usize);
        for k in 0..at.steps {
            let t = at.from + k as i64 * at.step;
            let end = t - at.offset;
            let start = end - at.range;
            lo = after(pts, lo, start);
            hi = after(pts, hi.max(lo), end);
            if lo < hi {
                let window = &pts[lo..hi];
                let monotone = at.counter
                    && if overlapping {
                        self.drops.get(hi - 1) == self.drops.get(lo)
                    } else {
                        window.windows(2).all(|w| w[1].1 >= w[0].1)
                    };
                if let Some(v) = (self.f)(
                    &Pts(window, monotone),
                    &Span { start, end, t },
                    &mut self.scratch,
                ) {
                    put(k, v);
                }
            }
        }
    }
}

/// The first index from `i` on whose point is after `t` (points in time
/// order): a few points one by one (a dashboard's step passes one or two),
/// then by galloping (a step far longer than the sample interval skips
/// most points unread).
fn after(pts: &[(i64, f64)], mut i: usize, t: i64) -> usize {
    for _ in 0..4 {
        match pts.get(i) {
            Some(p) if p.0 <= t => i += 1,
            _ => return i,
        }
    }
    let mut bound = 1usize;
    while pts.get(i + bound).is_some_and(|p| p.0 <= t) {
        bound *= 2;
    }
    let hi = (i + bound + 1).min(pts.len());
    i + pts[i..hi].partition_point(|p| p.0 <= t)
}

/// One series' sample at each step of an instant selector: its latest
/// within the lookback, unless that is a staleness marker (as
/// [`Ev::select`] answers one step).
#[derive(Clone, Copy)]
pub(super) struct SelectorRow {
    pub from: i64,
    pub step: i64,
    pub steps: usize,
    pub offset: i64,
    pub lookback: i64,
}

impl SelectorRow {
    /// `put(k, v)` for each step `k` with a sample, given every point.
    pub(super) fn fill(&self, pts: &[(i64, f64)], mut put: impl FnMut(usize, f64)) {
        // Points at or before the step's time: the last is its sample.
        let mut upto = 0usize;
        for k in 0..self.steps {
            let r = self.from + k as i64 * self.step - self.offset;
            while upto < pts.len() && pts[upto].0 <= r {
                upto += 1;
            }
            let Some(&(ts, v)) = upto.checked_sub(1).and_then(|i| pts.get(i)) else {
                continue;
            };
            if ts <= r - self.lookback || super::is_stale(v) {
                continue;
            }
            put(k, v);
        }
    }
}

/// A [`Pre`] table built part by part, for a selection read in parts (so
/// its points are never all held at once): each part's rows of steps in
/// label order, merged by [`PreBuilder::finish`].
pub(super) struct PreBuilder {
    steps: usize,
    labels: Vec<Arc<Labels>>,
    /// Series-major: series `i`'s value at step `k` is at `i * steps + k`.
    values: Vec<f64>,
    present: Vec<u64>,
    /// For a table folded by an aggregation: each row's group, an index
    /// into `groups` (this part's groups).
    pub(super) row_group: Vec<u32>,
    pub(super) groups: Vec<Labels>,
}

impl PreBuilder {
    pub(super) fn series(&self) -> usize {
        self.labels.len()
    }

    /// A builder for `series` rows of `steps` steps.
    pub(super) fn new(steps: usize, series: usize) -> Self {
        let cells = steps.saturating_mul(series);
        PreBuilder {
            steps,
            labels: Vec::with_capacity(series),
            values: Vec::with_capacity(cells),
            present: Vec::with_capacity(cells.div_ceil(64)),
            row_group: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// Row `i`'s value at step `k`, when it has one.
    #[inline]
    pub(super) fn cell(&self, i: usize, k: usize) -> Option<f64> {
        if k >= self.steps {
            return None;
        }
        let cell = i * self.steps + k;
        let bits = self.present.get(cell / 64)?;
        if bits & (1 << (cell % 64)) == 0 {
            return None;
        }
        self.values.get(cell).copied()
    }

    /// Each row's group: `group` of its labels, told apart within the part.
    pub(super) fn group_rows(&mut self, group: impl Fn(&Labels) -> Labels) {
        let mut index: std::collections::HashMap<Labels, u32> = std::collections::HashMap::new();
        self.row_group = self
            .labels
            .iter()
            .map(|l| {
                let next = u32::try_from(index.len()).unwrap_or(u32::MAX);
                *index.entry(group(l)).or_insert(next)
            })
            .collect();
        let mut groups: Vec<(u32, Labels)> = index.into_iter().map(|(l, i)| (i, l)).collect();
        groups.sort_unstable_by_key(|(i, _)| *i);
        self.groups = groups.into_iter().map(|(_, l)| l).collect();
    }

    /// Every part's rows in label order (each part's rows are): (part,
    /// row), by a k-way merge.
    pub(super) fn merge_order(parts: &[PreBuilder]) -> Vec<(usize, usize)> {
        let n: usize = parts.iter().map(PreBuilder::series).sum();
        let mut order: Vec<(usize, usize)> = Vec::with_capacity(n);
        let mut heads: std::collections::BinaryHeap<std::cmp::Reverse<(&Labels, usize, usize)>> =
            parts
                .iter()
                .enumerate()
                .filter_map(|(p, b)| b.labels.first().map(|l| std::cmp::Reverse((&**l, p, 0))))
                .collect();
        while let Some(std::cmp::Reverse((_, p, i))) = heads.pop() {
            order.push((p, i));
            if let Some(l) = parts[p].labels.get(i + 1) {
                heads.push(std::cmp::Reverse((&**l, p, i + 1)));
            }
        }
        order
    }

    /// Adds one series' row, `fill` putting its value at each step.
    pub(super) fn push(
        &mut self,
        labels: Arc<Labels>,
        fill: impl FnOnce(&mut dyn FnMut(usize, f64)),
    ) {
        let base = self.values.len();
        self.labels.push(labels);
        self.values.resize(base + self.steps, 0.0);
        self.present.resize((base + self.steps).div_ceil(64), 0);
        let (values, present) = (&mut self.values, &mut self.present);
        fill(&mut |k, v| {
            let cell = base + k;
            values[cell] = v;
            present[cell / 64] |= 1 << (cell % 64);
        });
    }

    /// The step-major table of every part's rows (each part in label
    /// order), its series in label order (as a selector's series are
    /// everywhere else): the parts are merged, not sorted again.
    pub(super) fn finish(
        parts: Vec<PreBuilder>,
        from: i64,
        step: i64,
        steps: usize,
        drop_name: bool,
    ) -> Pre {
        let n: usize = parts.iter().map(PreBuilder::series).sum();
        let order = Self::merge_order(&parts);
        let labels = order
            .iter()
            .map(|&(p, i)| Arc::clone(&parts[p].labels[i]))
            .collect();
        let mut rank: Vec<Vec<usize>> = parts.iter().map(|b| vec![0; b.labels.len()]).collect();
        for (r, &(p, i)) in order.iter().enumerate() {
            rank[p][i] = r;
        }
        drop(order);
        let mut values = vec![0.0; steps * n];
        let mut present = vec![0u64; (steps * n).div_ceil(64)];
        // Part by part, each freed once its rows are placed.
        for (part, rank) in parts.into_iter().zip(rank) {
            for (i, r) in rank.into_iter().enumerate() {
                for k in 0..steps {
                    if let Some(v) = part.cell(i, k) {
                        let cell = k * n + r;
                        values[cell] = v;
                        present[cell / 64] |= 1 << (cell % 64);
                    }
                }
            }
        }
        Pre {
            from,
            step,
            steps,
            labels,
            drop_name,
            values,
            present,
        }
    }
}

impl Ev {
    /// Computes every step `from..=to` of the window-function calls in
    /// `e` whose range argument is a plain selector (no `@`) and whose
    /// other arguments are constant; under a subquery, at the steps of
    /// its grid (see [`Self::precompute_grid`]). With `tables` false (an
    /// instant query, evaluated once anyway) only the calls under
    /// subqueries get tables.
    pub(super) fn precompute(
        &self,
        e: &Expr,
        (from, to, step): (i64, i64, i64),
        tables: bool,
    ) -> Result<(), PromError> {
        let at = (from, to, step);
        match e {
            Expr::Subquery(sq) => self.precompute_grid(sq, at),
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::Extension(_) => Ok(()),
            Expr::Paren(p) => self.precompute(&p.expr, at, tables),
            Expr::Unary(u) => self.precompute(&u.expr, at, tables),
            Expr::Binary(b) => {
                self.precompute(&b.lhs, at, tables)?;
                self.precompute(&b.rhs, at, tables)
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    self.precompute(p, at, tables)?;
                }
                match column_selector(a).filter(|_| tables) {
                    // `sum(metric)` and friends: the selector's value at
                    // every step, for the aggregation to reduce by column.
                    Some(vs) => {
                        self.precompute_selector(vs, from, to, step);
                        Ok(())
                    }
                    None => self.precompute(&a.expr, at, tables),
                }
            }
            Expr::Call(c) if tables && window_selector(c).is_some() => {
                self.precompute_call(c, from, to, step)
            }
            Expr::Call(c) => c
                .args
                .args
                .iter()
                .try_for_each(|a| self.precompute(a, at, tables)),
        }
    }

    /// Takes `cells` from what this evaluator's tables may hold, if they
    /// fit.
    fn take_cells(&self, cells: usize) -> bool {
        let left = self.pre_cells.get();
        if cells > left {
            return false;
        }
        self.pre_cells.set(left - cells);
        true
    }

    /// For a subquery whose windows at steps `from..=to` (`step` apart)
    /// cover its grid: the calls in its expression at every grid step
    /// those windows hold, so each grid step's evaluation reads them off
    /// (the grid is evaluated step by step, [`SubGrid`](super::SubGrid)
    /// keeping what the next windows share). Windows shorter than the
    /// step between them leave grid steps unread: those are computed at
    /// their own steps, as are grids longer than the sample limit (the
    /// evaluation refuses them).
    fn precompute_grid(
        &self,
        sq: &promql_parser::parser::SubqueryExpr,
        (from, to, step): (i64, i64, i64),
    ) -> Result<(), PromError> {
        let range = ms(&sq.range);
        let (lo, hi) = (
            self.ref_time(from, &sq.at, &sq.offset),
            self.ref_time(to, &sq.at, &sq.offset),
        );
        if hi > lo && step > range {
            return Ok(());
        }
        let sub = self.sub_step_of(sq);
        let first = super::grid_after(lo - range, sub);
        let steps = if first <= hi {
            (hi - first) / sub + 1
        } else {
            0
        };
        if steps == 0 || steps > i64::try_from(self.max_samples).unwrap_or(i64::MAX) {
            return Ok(());
        }
        self.precompute(&sq.expr, (first, hi, sub), true)
    }

    /// Every step `from..=to` of an instant selector (no `@`): each
    /// series' latest sample within the lookback, unless it is a
    /// staleness marker (as [`Ev::select`] answers one step).
    fn precompute_selector(
        &self,
        vs: &promql_parser::parser::VectorSelector,
        from: i64,
        to: i64,
        step: i64,
    ) {
        if vs.at.is_some() || step <= 0 || to < from || self.hist_selectors.contains(&addr(vs)) {
            return;
        }
        let Some(data) = self.data.get(&addr(vs)) else {
            return;
        };
        let steps = usize::try_from((to - from) / step + 1).unwrap_or(usize::MAX);
        let n = data.len();
        if !self.take_cells(steps.saturating_mul(n)) {
            return;
        }
        let offset = offset_ms(&vs.offset);
        let mut values = vec![0.0; steps * n];
        let mut present = vec![0u64; (steps * n).div_ceil(64)];
        let row = SelectorRow {
            from,
            step,
            steps,
            offset,
            lookback: self.lookback,
        };
        for (si, series) in data.iter().enumerate() {
            row.fill(&series.all, |k, v| {
                let cell = k * n + si;
                values[cell] = v;
                present[cell / 64] |= 1 << (cell % 64);
            });
        }
        self.pre.borrow_mut().insert(
            addr(vs),
            Pre {
                from,
                step,
                steps,
                labels: data.iter().map(|s| Arc::clone(&s.labels)).collect(),
                drop_name: false,
                values,
                present,
            },
        );
    }

    fn precompute_call(
        &self,
        c: &promql_parser::parser::Call,
        from: i64,
        to: i64,
        step: i64,
    ) -> Result<(), PromError> {
        // Only constant scalar arguments: they are evaluated once, here
        // (nothing that could fail or warn differently at another step).
        if step <= 0 || to < from {
            return Ok(());
        }
        let Some(m) = window_selector(c) else {
            return Ok(());
        };
        if self.hist_selectors.contains(&addr(&m.vs)) {
            return Ok(());
        }
        let Some(data) = self.data.get(&addr(&m.vs)) else {
            return Ok(());
        };
        let steps = usize::try_from((to - from) / step + 1).unwrap_or(usize::MAX);
        let n = data.len();
        if !self.take_cells(steps.saturating_mul(n)) {
            return Ok(());
        }
        let (_, keep_name, f) = super::super::functions::window_fn(self, c, from)?;
        let mut values = vec![0.0; steps * n];
        let mut present = vec![0u64; (steps * n).div_ceil(64)];
        let mut row = CallRow::new(&f, CallSteps::new(c, m, from, step, steps));
        for (si, series) in data.iter().enumerate() {
            self.cancel.check()?;
            row.fill(&series.live, |k, v| {
                let cell = k * n + si;
                values[cell] = v;
                present[cell / 64] |= 1 << (cell % 64);
            });
        }
        self.pre.borrow_mut().insert(
            addr(c),
            Pre {
                from,
                step,
                steps,
                labels: data.iter().map(|s| Arc::clone(&s.labels)).collect(),
                drop_name: !keep_name,
                values,
                present,
            },
        );
        Ok(())
    }

    /// For an aggregation (node `node`) over a precomputed call: `f` of the
    /// call's column at `t`, with each input series' group (`group` of its
    /// labels, found once per query).
    pub(super) fn precomputed_column_at<R>(
        &self,
        key: usize,
        t: i64,
        node: usize,
        group: impl Fn(&Labels) -> Labels,
        f: impl FnOnce(&Column<'_>) -> R,
    ) -> Option<R> {
        let pre = self.pre.borrow();
        let p = pre.get(&key).or_else(|| self.parted.get(&key))?;
        let k = p.step_of(t)?;
        if !self.groupings.borrow().contains_key(&node) {
            let mut index: AddrMap<usize, usize> = AddrMap::default();
            let mut groups: Vec<Arc<Labels>> = Vec::new();
            let group_of = p
                .labels
                .iter()
                .map(|l| {
                    let g = self.memo.derive(node, 0, l, &group);
                    *index.entry(ptr(&g)).or_insert_with(|| {
                        groups.push(g);
                        groups.len() - 1
                    })
                })
                .collect();
            self.groupings.borrow_mut().insert(node, (group_of, groups));
        }
        let groupings = self.groupings.borrow();
        let (group_of, groups) = groupings.get(&node)?;
        Some(f(&Column {
            values: &p.values,
            present: &p.present,
            series: p.labels.len(),
            k,
            group_of,
            groups,
            drop_name: p.drop_name,
        }))
    }

    /// The call's value at `t` when [`Self::precompute`] computed it.
    pub(super) fn precomputed_at(
        &self,
        c: &promql_parser::parser::Call,
        t: i64,
    ) -> Option<Vec<Samp>> {
        let pre = self.pre.borrow();
        let p = pre.get(&addr(c)).or_else(|| self.parted.get(&addr(c)))?;
        let k = p.step_of(t)?;
        let n = p.labels.len();
        let mut out = Vec::new();
        for (i, labels) in p.labels.iter().enumerate() {
            let cell = k * n + i;
            if p.present[cell / 64] & (1 << (cell % 64)) != 0 {
                out.push(Samp {
                    h: None,
                    labels: Arc::clone(labels),
                    t,
                    v: p.values[cell],
                    drop_name: p.drop_name,
                });
            }
        }
        Some(out)
    }
}

impl Ev {
    /// A range query's answer read off whole when the query is one
    /// precomputed window-function call (`rate(x[5m])`) or one plain
    /// selector: each series' points straight from its row or its
    /// samples, no step evaluated (a panel of 10,000 rates spent most of
    /// its time building each step's vector). `None` for any other
    /// expression, or when two series would share their labels once
    /// `__name__` is dropped (the step-by-step evaluation reports that
    /// where it happens).
    pub(super) fn read_off(
        &self,
        e: &Expr,
        from: i64,
        to: i64,
        step: i64,
    ) -> Result<Option<Vec<Series>>, PromError> {
        if step <= 0 || to < from {
            return Ok(None);
        }
        let steps = usize::try_from((to - from) / step + 1).unwrap_or(usize::MAX);
        match e {
            Expr::Paren(p) => self.read_off(&p.expr, from, to, step),
            Expr::Call(c) => {
                let pre = self.pre.borrow();
                let Some(p) = pre.get(&addr(c)).or_else(|| self.parted.get(&addr(c))) else {
                    return Ok(None);
                };
                // A worker's steps are a stretch of the table's.
                let Some(k0) = p
                    .step_of(from)
                    .filter(|k| p.step == step && k + steps <= p.steps)
                else {
                    return Ok(None);
                };
                let n = p.labels.len();
                let mut out = Vec::new();
                let mut seen: HashSet<Labels> = HashSet::new();
                for (i, labels) in p.labels.iter().enumerate() {
                    if i % 1024 == 0 {
                        self.cancel.check()?;
                    }
                    let mut points = Vec::new();
                    for k in k0..k0 + steps {
                        let cell = k * n + i;
                        if p.present[cell / 64] & (1 << (cell % 64)) != 0 {
                            points.push((p.from + k as i64 * p.step, p.values[cell]));
                        }
                    }
                    if points.is_empty() {
                        continue;
                    }
                    let labels = if p.drop_name {
                        let l = labels.without_name();
                        if !seen.insert(l.clone()) {
                            return Ok(None);
                        }
                        l
                    } else {
                        (**labels).clone()
                    };
                    out.push(Series {
                        labels,
                        points,
                        histograms: Vec::new(),
                    });
                }
                Ok(Some(out))
            }
            Expr::VectorSelector(vs)
                if vs.at.is_none() && !self.hist_selectors.contains(&addr(vs)) =>
            {
                let Some(data) = self.data.get(&addr(vs)) else {
                    return Ok(None);
                };
                let row = SelectorRow {
                    from,
                    step,
                    steps,
                    offset: offset_ms(&vs.offset),
                    lookback: self.lookback,
                };
                let mut out = Vec::new();
                for (i, s) in data.iter().enumerate() {
                    if i % 1024 == 0 {
                        self.cancel.check()?;
                    }
                    let mut points = Vec::new();
                    row.fill(&s.all, |k, v| points.push((from + k as i64 * step, v)));
                    if !points.is_empty() {
                        out.push(Series {
                            histograms: Vec::new(),
                            labels: (*s.labels).clone(),
                            points,
                        });
                    }
                }
                Ok(Some(out))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::after;

    /// `after` finds what a scan point by point finds, from any start,
    /// for times before, between, on and past the points.
    #[test]
    fn after_agrees_with_a_linear_scan() {
        let pts: Vec<(i64, f64)> = (0..200).map(|i| (i * 15 + i % 7, 0.0)).collect();
        for from in [0, 1, 3, 50, 199, 200] {
            for t in (-20..3_100).step_by(7) {
                let mut want = from;
                while want < pts.len() && pts[want].0 <= t {
                    want += 1;
                }
                assert_eq!(after(&pts, from, t), want, "from {from}, t {t}");
            }
        }
        assert_eq!(after(&[], 0, 5), 0);
    }
}
