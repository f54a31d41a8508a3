//! Column aggregations folded while their selection is read in parts:
//! `sum by (service) (rate(x[5m]))` over 100,000 series keeps one running
//! state per group and step instead of a value per series and step, and
//! its steps are answered without another pass over the series.

use std::collections::HashMap;
use std::sync::Arc;

use promql_parser::parser::LabelModifier;

use super::super::Labels;
use super::super::aggregate::{FoldOp, group_of};
use super::precompute::{PreBuilder, step_index};
use super::{Ev, Samp};

/// The aggregation a table read in parts is folded by.
pub(super) struct Fold {
    pub(super) op: FoldOp,
    pub(super) modifier: Option<LabelModifier>,
}

impl Fold {
    /// A row's group, as the aggregation's output labels.
    pub(super) fn group(&self, l: &Labels) -> Labels {
        group_of(&self.modifier, l)
    }
}

/// Every step of a folded aggregation.
pub(super) struct Folded {
    from: i64,
    step: i64,
    steps: usize,
    op: FoldOp,
    drop_name: bool,
    groups: Vec<Arc<Labels>>,
    /// Group-major: group `g`'s state at step `k` is at `g * steps + k`.
    value: Vec<f64>,
    comp: Vec<f64>,
    count: Vec<usize>,
    /// Each step's groups in the order of their first series (the order
    /// the general path answers them in).
    order: Vec<Vec<u32>>,
}

impl Folded {
    /// Folds every part's rows (each part's in label order, with their
    /// groups) in the label order of the whole selection: each group's
    /// values at a step are taken in the order the step's column would
    /// give them.
    pub(super) fn new(
        parts: &[PreBuilder],
        (from, step, steps): (i64, i64, usize),
        op: FoldOp,
        drop_name: bool,
    ) -> Folded {
        let mut index: HashMap<&Labels, u32> = HashMap::new();
        let mut groups: Vec<Arc<Labels>> = Vec::new();
        let global: Vec<Vec<u32>> = parts
            .iter()
            .map(|p| {
                p.groups
                    .iter()
                    .map(|g| {
                        *index.entry(g).or_insert_with(|| {
                            groups.push(Arc::new(g.clone()));
                            u32::try_from(groups.len() - 1).unwrap_or(u32::MAX)
                        })
                    })
                    .collect()
            })
            .collect();
        drop(index);
        let cells = groups.len().saturating_mul(steps);
        let mut value = vec![op.start(); cells];
        let mut comp = vec![0.0; cells];
        let mut count = vec![0usize; cells];
        let mut order: Vec<Vec<u32>> = vec![Vec::new(); steps];
        for (p, i) in PreBuilder::merge_order(parts) {
            let part = &parts[p];
            let Some(&g) = part
                .row_group
                .get(i)
                .and_then(|&local| global[p].get(local as usize))
            else {
                continue;
            };
            let base = g as usize * steps;
            for (k, first) in order.iter_mut().enumerate() {
                let Some(v) = part.cell(i, k) else {
                    continue;
                };
                let at = base + k;
                if count[at] == 0 {
                    first.push(g);
                }
                count[at] += 1;
                op.add(&mut value[at], &mut comp[at], v);
            }
        }
        Folded {
            from,
            step,
            steps,
            op,
            drop_name,
            groups,
            value,
            comp,
            count,
            order,
        }
    }

    pub(super) fn groups(&self) -> usize {
        self.groups.len()
    }
}

impl Ev {
    /// The folded aggregation `node`'s answer at `t`, its groups' labels
    /// interned in this worker's memo (once per query).
    pub(super) fn folded_at(&self, node: usize, t: i64) -> Option<Vec<Samp>> {
        let f = self.folded.get(&node)?;
        let k = step_index(f.from, f.step, f.steps, t)?;
        if !self.groupings.borrow().contains_key(&node) {
            let interned = f
                .groups
                .iter()
                .map(|g| self.memo.intern((**g).clone()))
                .collect();
            self.groupings
                .borrow_mut()
                .insert(node, (Vec::new(), interned));
        }
        let groupings = self.groupings.borrow();
        let (_, groups) = groupings.get(&node)?;
        f.order
            .get(k)?
            .iter()
            .map(|&g| {
                let g = g as usize;
                let at = g * f.steps + k;
                Some(Samp {
                    h: None,
                    labels: Arc::clone(groups.get(g)?),
                    t,
                    v: f.op.answer(f.value[at], f.comp[at], f.count[at]),
                    drop_name: f.drop_name,
                })
            })
            .collect()
    }
}
