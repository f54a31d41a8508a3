//! Label sets derived once per series, not once per step, and the
//! address-keyed maps the evaluator's per-step work uses.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use super::Labels;

/// Label sets derived once per series, not once per step: a group's
/// labels, a matching signature, a result's labels. A derived set is
/// interned (equal sets are one `Arc`), so grouping and matching compare
/// pointers instead of hashing strings at every step.
#[derive(Default)]
pub(crate) struct Memo {
    pub(crate) interned: RefCell<std::collections::HashSet<Arc<Labels>>>,
    /// (node, kind, input pointers) → (inputs kept alive, derived set).
    pub(crate) derived: RefCell<AddrMap<DeriveKey, Derived>>,
}

impl Memo {
    /// The one `Arc` of the label set `l`.
    pub fn intern(&self, l: Labels) -> Arc<Labels> {
        if let Some(a) = self.interned.borrow().get(&l) {
            return Arc::clone(a);
        }
        let a = Arc::new(l);
        self.interned.borrow_mut().insert(Arc::clone(&a));
        a
    }

    /// `f(input)`, interned; computed once per input and `(node, kind)`.
    /// The input is kept alive, so its address is not reused meanwhile.
    pub fn derive(
        &self,
        node: usize,
        kind: u8,
        input: &Arc<Labels>,
        f: impl FnOnce(&Labels) -> Labels,
    ) -> Arc<Labels> {
        let key = (node, kind, Arc::as_ptr(input) as usize, 0);
        if let Some((_, _, out)) = self.derived.borrow().get(&key) {
            return Arc::clone(out);
        }
        let out = self.intern(f(input));
        self.derived
            .borrow_mut()
            .insert(key, (Arc::clone(input), None, Arc::clone(&out)));
        out
    }

    /// `f(a, b)`, interned; computed once per pair and `(node, kind)`.
    pub fn derive2(
        &self,
        node: usize,
        kind: u8,
        a: &Arc<Labels>,
        b: &Arc<Labels>,
        f: impl FnOnce(&Labels, &Labels) -> Labels,
    ) -> Arc<Labels> {
        let key = (node, kind, Arc::as_ptr(a) as usize, Arc::as_ptr(b) as usize);
        if let Some((_, _, out)) = self.derived.borrow().get(&key) {
            return Arc::clone(out);
        }
        let out = self.intern(f(a, b));
        self.derived
            .borrow_mut()
            .insert(key, (Arc::clone(a), Some(Arc::clone(b)), Arc::clone(&out)));
        out
    }
}

/// A hasher for addresses and small integer keys (FxHash's mix): the
/// evaluator's per-step maps are keyed by interned label sets' addresses,
/// where SipHash's resistance buys nothing and costs most of a lookup.
#[derive(Default, Clone, Copy)]
pub struct AddrHasher(u64);

impl std::hash::Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Maps and sets keyed by addresses.
pub type AddrMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<AddrHasher>>;
pub(crate) type AddrSet<K> =
    std::collections::HashSet<K, std::hash::BuildHasherDefault<AddrHasher>>;

/// (node, kind, input addresses).
type DeriveKey = (usize, u8, usize, usize);
/// The inputs (kept alive, so their addresses are not reused) and the
/// derived set.
type Derived = (Arc<Labels>, Option<Arc<Labels>>, Arc<Labels>);

/// A key for a label set known to be interned: its address.
pub(crate) fn ptr(l: &Arc<Labels>) -> usize {
    Arc::as_ptr(l) as usize
}

/// A key for any value: its address.
pub(crate) fn addr<T>(x: &T) -> usize {
    std::ptr::from_ref(x) as usize
}
