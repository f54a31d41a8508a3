//! A label index: symbols, each series' labels, and postings (a roaring
//! bitmap of series per label pair). The head keeps one per tenant, and
//! queries build one per data file, so matchers, label names and label
//! values are answered the same way from both, without materialising the
//! label sets of every series.

use std::collections::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::series::Sym;
use crate::{MatchOp, Matcher};

/// Symbols, labels and postings of a set of series, each known by its
/// position (0, 1, 2, … in the order added).
#[derive(Debug, Default)]
pub struct LabelIndex {
    symbols: HashMap<Arc<str>, Sym>,
    strings: Vec<Arc<str>>,
    /// (name, value) symbols of each series, sorted by name.
    labels: Vec<Box<[(Sym, Sym)]>>,
    /// (name, value) → series.
    postings: HashMap<(Sym, Sym), RoaringBitmap, PairHash>,
    /// name → values seen with it.
    values: HashMap<Sym, Vec<Sym>>,
    all: RoaringBitmap,
}

/// Hashes a pair of symbols (or of string numbers): the two `u32`s as one
/// word, multiplied and folded (symbols are small dense integers; SipHash
/// cost more than the postings lookups it served).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PairHash;

impl std::hash::BuildHasher for PairHash {
    type Hasher = PairHasher;
    fn build_hasher(&self) -> PairHasher {
        PairHasher(0)
    }
}

#[derive(Debug)]
pub(crate) struct PairHasher(u64);

impl std::hash::Hasher for PairHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(29) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn finish(&self) -> u64 {
        // The high bits are the well-mixed ones; hashbrown takes its
        // control byte from the top and its bucket from the bottom.
        self.0 ^ (self.0 >> 32)
    }
}

impl LabelIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Series held.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub(crate) fn sym(&self, s: &str) -> Option<Sym> {
        self.symbols.get(s).copied()
    }

    fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.symbols.get(s) {
            return id;
        }
        let id = self.strings.len() as Sym;
        let s: Arc<str> = Arc::from(s);
        self.strings.push(Arc::clone(&s));
        self.symbols.insert(s, id);
        id
    }

    pub(crate) fn str(&self, sym: Sym) -> &Arc<str> {
        &self.strings[sym as usize]
    }

    /// Adds a series with these labels (sorted by name); its position.
    pub fn add<'a>(&mut self, labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> u32 {
        let labels: Box<[(Sym, Sym)]> = labels
            .into_iter()
            .map(|(name, value)| (self.intern(name), self.intern(value)))
            .collect();
        self.add_symbols(labels)
    }

    /// Adds series whose labels are numbers into `strings` (each series'
    /// pairs sorted by name), as a file's series index stores them: each
    /// string is interned once, not once per series, and each pair's
    /// postings are gathered in one flat list and made a bitmap once (a
    /// bitmap container's `push` looks for its maximum each time). A
    /// number past `strings` is no label (the index's decoder refuses
    /// those).
    pub fn extend_numbered<'s>(
        &mut self,
        strings: impl Iterator<Item = &'s str>,
        series: impl Iterator<Item = &'s [(u32, u32)]> + Clone,
    ) {
        let syms: Vec<Sym> = strings.map(|s| self.intern(s)).collect();
        let sym = |n: u32| syms.get(n as usize).copied();
        // Postings by the file's string numbers: each pair's count first,
        // then every position written into one flat list (its positions
        // contiguous and in order), so no list per pair is grown.
        let mut slots: HashMap<(u32, u32), u32, PairHash> = HashMap::default();
        let mut counts: Vec<u32> = Vec::new();
        for pairs in series.clone() {
            for &p in pairs {
                let next = counts.len() as u32;
                let slot = *slots.entry(p).or_insert(next);
                match counts.get_mut(slot as usize) {
                    Some(c) => *c += 1,
                    None => counts.push(1),
                }
            }
        }
        let mut starts: Vec<usize> = Vec::with_capacity(counts.len() + 1);
        let mut total = 0usize;
        for &c in &counts {
            starts.push(total);
            total += c as usize;
        }
        let mut fill = starts.clone();
        starts.push(total);
        let mut flat = vec![0u32; total];
        let first = self.labels.len() as u32;
        for pairs in series {
            let r = self.labels.len() as u32;
            let labels: Box<[(Sym, Sym)]> = pairs
                .iter()
                .filter_map(|&(n, v)| {
                    if let Some(at) = slots
                        .get(&(n, v))
                        .and_then(|&slot| fill.get_mut(slot as usize))
                    {
                        if let Some(cell) = flat.get_mut(*at) {
                            *cell = r;
                        }
                        *at += 1;
                    }
                    Some((sym(n)?, sym(v)?))
                })
                .collect();
            self.labels.push(labels);
        }
        let last = self.labels.len() as u32;
        for ((n, v), slot) in slots {
            let (Some(n), Some(v)) = (sym(n), sym(v)) else {
                continue;
            };
            let (Some(&lo), Some(&hi)) = (starts.get(slot as usize), starts.get(slot as usize + 1))
            else {
                continue;
            };
            // In position order, so this cannot fail.
            let Ok(new) = RoaringBitmap::from_sorted_iter(
                flat.get(lo..hi).unwrap_or_default().iter().copied(),
            ) else {
                continue;
            };
            let postings = self.postings.entry((n, v)).or_default();
            if postings.is_empty() {
                self.values.entry(n).or_default().push(v);
            }
            *postings |= new;
        }
        self.all.insert_range(first..last);
    }

    fn add_symbols(&mut self, labels: Box<[(Sym, Sym)]>) -> u32 {
        let r = self.labels.len() as u32;
        for &(n, v) in labels.iter() {
            let postings = self.postings.entry((n, v)).or_default();
            if postings.is_empty() {
                self.values.entry(n).or_default().push(v);
            }
            postings.insert(r);
        }
        self.all.insert(r);
        self.labels.push(labels);
        r
    }

    /// The symbols of series `r`'s labels.
    pub(crate) fn syms(&self, r: u32) -> &[(Sym, Sym)] {
        self.labels.get(r as usize).map_or(&[], |l| &l[..])
    }

    /// Series `r`'s labels, sorted by name.
    pub fn labels(&self, r: u32) -> impl Iterator<Item = (&Arc<str>, &Arc<str>)> + '_ {
        self.syms(r)
            .iter()
            .map(|(n, v)| (self.str(*n), self.str(*v)))
    }

    /// Series `r`'s labels as its own list of the index's strings (shared,
    /// not copied).
    pub fn shared_labels(&self, r: u32) -> Vec<(Arc<str>, Arc<str>)> {
        self.labels(r)
            .map(|(n, v)| (Arc::clone(n), Arc::clone(v)))
            .collect()
    }

    /// Series `r`'s value of `name`.
    pub fn label(&self, r: u32, name: &str) -> Option<&Arc<str>> {
        let n = self.sym(name)?;
        self.syms(r)
            .iter()
            .find(|(ln, _)| *ln == n)
            .map(|(_, v)| self.str(*v))
    }

    /// Union of the postings of every value of `name` accepted by `keep`.
    fn union_values(&self, name: &str, keep: impl Fn(&str) -> bool) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        let Some(n) = self.sym(name) else {
            return out;
        };
        for &v in self.values.get(&n).map(Vec::as_slice).unwrap_or_default() {
            if keep(self.str(v))
                && let Some(p) = self.postings.get(&(n, v))
            {
                out |= p;
            }
        }
        out
    }

    fn postings_for(&self, m: &Matcher) -> RoaringBitmap {
        // A series lacking the label has the empty value. If the matcher
        // accepts "", start from every series and remove those whose value
        // is rejected; otherwise take the union of accepted values.
        if m.matches("") {
            let rejected = self.union_values(&m.name, |v| !m.matches(v));
            &self.all - &rejected
        } else {
            match &m.op {
                MatchOp::Equal(v) => self
                    .sym(&m.name)
                    .zip(self.sym(v))
                    .and_then(|k| self.postings.get(&k).cloned())
                    .unwrap_or_default(),
                _ => self.union_values(&m.name, |v| m.matches(v)),
            }
        }
    }

    /// Series matching every matcher (all series if there are none).
    pub fn select(&self, matchers: &[Matcher]) -> RoaringBitmap {
        // The most selective equality first: intersections then start
        // small.
        let mut order: Vec<&Matcher> = matchers.iter().collect();
        order.sort_by_key(|m| !matches!(m.op, MatchOp::Equal(ref v) if !v.is_empty()));
        let mut out: Option<RoaringBitmap> = None;
        for m in order {
            if out.as_ref().is_some_and(RoaringBitmap::is_empty) {
                break;
            }
            let p = self.postings_for(m);
            out = Some(match out {
                None => p,
                Some(o) => o & p,
            });
        }
        out.unwrap_or_else(|| self.all.clone())
    }

    /// Label names of the selected series (of all with `None`), unordered.
    pub fn label_names(&self, selection: Option<&RoaringBitmap>) -> Vec<Arc<str>> {
        match selection {
            None => self
                .values
                .keys()
                .map(|n| Arc::clone(self.str(*n)))
                .collect(),
            Some(sel) => {
                let mut seen: Vec<Sym> = Vec::new();
                let mut mark = std::collections::HashSet::new();
                for r in sel {
                    for (n, _) in self.syms(r) {
                        if mark.insert(*n) {
                            seen.push(*n);
                        }
                    }
                    if mark.len() == self.values.len() {
                        break;
                    }
                }
                seen.into_iter().map(|n| Arc::clone(self.str(n))).collect()
            }
        }
    }

    /// Values of `name` among the selected series (all with `None`),
    /// unordered.
    pub fn label_values(&self, name: &str, selection: Option<&RoaringBitmap>) -> Vec<Arc<str>> {
        let Some(n) = self.sym(name) else {
            return Vec::new();
        };
        let values = self.values.get(&n).map(Vec::as_slice).unwrap_or_default();
        match selection {
            None => values.iter().map(|v| Arc::clone(self.str(*v))).collect(),
            // Few series: read their labels. Many: test each value's
            // postings against the selection.
            Some(sel) if sel.len() < values.len() as u64 * 4 => {
                let mut mark = std::collections::HashSet::new();
                for r in sel {
                    if let Some((_, v)) = self.syms(r).iter().find(|(ln, _)| *ln == n) {
                        mark.insert(*v);
                    }
                }
                mark.into_iter().map(|v| Arc::clone(self.str(v))).collect()
            }
            Some(sel) => values
                .iter()
                .filter(|v| {
                    self.postings
                        .get(&(n, **v))
                        .is_some_and(|p| !p.is_disjoint(sel))
                })
                .map(|v| Arc::clone(self.str(*v)))
                .collect(),
        }
    }

    /// Every label name with its number of distinct values and of series
    /// carrying it.
    pub fn label_name_cardinality(&self) -> Vec<(Arc<str>, u64, u64)> {
        self.values
            .iter()
            .map(|(n, vals)| {
                let series: u64 = vals
                    .iter()
                    .filter_map(|v| self.postings.get(&(*n, *v)))
                    .map(RoaringBitmap::len)
                    .sum();
                (Arc::clone(self.str(*n)), vals.len() as u64, series)
            })
            .collect()
    }

    /// Values of `name` with the number of series carrying each.
    pub fn label_value_cardinality(&self, name: &str) -> Vec<(Arc<str>, u64)> {
        let Some(n) = self.sym(name) else {
            return Vec::new();
        };
        self.values
            .get(&n)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|v| {
                let count = self.postings.get(&(n, *v)).map_or(0, RoaringBitmap::len);
                (Arc::clone(self.str(*v)), count)
            })
            .collect()
    }

    /// Series carrying `name = value`.
    pub fn count(&self, name: &str, value: &str) -> u64 {
        self.sym(name)
            .zip(self.sym(value))
            .and_then(|k| self.postings.get(&k))
            .map_or(0, RoaringBitmap::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> LabelIndex {
        let mut ix = LabelIndex::new();
        for (job, inst, extra) in [
            ("api", "a", None),
            ("api", "b", Some("x")),
            ("db", "a", None),
        ] {
            let mut l = vec![("__name__", "up"), ("instance", inst), ("job", job)];
            if let Some(e) = extra {
                l.insert(0, ("canary", e));
            }
            ix.add(l);
        }
        ix
    }

    fn sorted(mut v: Vec<Arc<str>>) -> Vec<String> {
        v.sort();
        v.into_iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_and_values_of_all_and_of_a_selection() {
        let ix = index();
        assert_eq!(
            sorted(ix.label_names(None)),
            ["__name__", "canary", "instance", "job"]
        );
        let api = ix.select(&[Matcher::equal("job", "api")]);
        assert_eq!(api.len(), 2);
        assert_eq!(sorted(ix.label_values("instance", Some(&api))), ["a", "b"]);
        let db = ix.select(&[Matcher::equal("job", "db")]);
        assert_eq!(
            sorted(ix.label_names(Some(&db))),
            ["__name__", "instance", "job"]
        );
        assert_eq!(sorted(ix.label_values("job", None)), ["api", "db"]);
        // A missing label is "": `canary=""` selects series without it.
        assert_eq!(ix.select(&[Matcher::equal("canary", "")]).len(), 2);
        let re = Matcher::regex("instance", "a|c").unwrap();
        assert_eq!(ix.select(&[re, Matcher::not_equal("job", "db")]).len(), 1);
        assert_eq!(ix.select(&[]).len(), 3);
        assert_eq!(ix.label(2, "canary").map(|s| &**s), None);
        assert_eq!(ix.label(1, "canary").map(|s| &**s), Some("x"));
    }

    #[test]
    fn many_series_select_values_through_postings() {
        let mut ix = LabelIndex::new();
        for i in 0..1000 {
            let pod = format!("p{}", i % 10);
            let job = if i % 2 == 0 { "even" } else { "odd" };
            ix.add([("job", job), ("pod", pod.as_str())]);
        }
        let even = ix.select(&[Matcher::equal("job", "even")]);
        assert_eq!(even.len(), 500);
        assert_eq!(
            sorted(ix.label_values("pod", Some(&even))),
            ["p0", "p2", "p4", "p6", "p8"]
        );
    }
}
