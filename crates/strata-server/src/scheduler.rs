//! Fair query scheduling: queries run in a fixed number of slots (one per
//! CPU by default), and no tenant holds more than all but one of them, so
//! another tenant's query always finds a slot free or next. Waiting queries
//! queue per tenant and a freed slot goes to the next tenant in turn, not to
//! the oldest query: a tenant with a hundred queued dashboard panels delays
//! another tenant's query by at most the queries already running.
//!
//! CPU is shared by demand as well: a query whose tenant already has
//! another query running or waiting is *heavy* ([`Permit::heavy`]) and runs
//! on threads of lower CPU priority ([`low_priority`]), so while it computes
//! beside a tenant that asks one query at a time, the kernel gives the
//! lighter tenant the larger share of the cores; alone, it gets them all.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use strata_types::TenantId;
use tokio::sync::oneshot;

#[derive(Debug, Default)]
struct State {
    running: usize,
    /// Slots held, per tenant.
    held: std::collections::HashMap<TenantId, usize>,
    /// Tenants with waiting queries, in turn order, each with its queue.
    waiting: VecDeque<(TenantId, VecDeque<oneshot::Sender<Permit>>)>,
}

/// The slots and the per-tenant queues.
#[derive(Debug)]
pub struct FairScheduler {
    slots: usize,
    state: Mutex<State>,
}

/// A running query's slot; the next tenant in turn gets it when dropped.
#[derive(Debug)]
pub struct Permit {
    scheduler: Option<Arc<FairScheduler>>,
    tenant: TenantId,
    heavy: bool,
}

impl Permit {
    /// Whether the tenant had another query running or waiting when this
    /// one got its slot.
    pub fn heavy(&self) -> bool {
        self.heavy
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(s) = self.scheduler.take() {
            s.release(&self.tenant);
        }
    }
}

impl FairScheduler {
    pub fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: slots.max(1),
            state: Mutex::new(State::default()),
        })
    }

    /// Slots one tenant may hold: all but one, so others always get in.
    fn per_tenant(&self) -> usize {
        if self.slots > 1 { self.slots - 1 } else { 1 }
    }

    /// Waits for a slot. Dropping the future gives up the place in line.
    pub async fn acquire(self: &Arc<Self>, tenant: &TenantId) -> Permit {
        let rx = {
            let mut st = self.state.lock();
            let held = st.held.get(tenant).copied().unwrap_or(0);
            let queued = st.waiting.iter().any(|(t, _)| t == tenant);
            if st.running < self.slots && held < self.per_tenant() && !queued {
                st.running += 1;
                *st.held.entry(tenant.clone()).or_default() += 1;
                return Permit {
                    scheduler: Some(Arc::clone(self)),
                    tenant: tenant.clone(),
                    heavy: held > 0,
                };
            }
            let (tx, rx) = oneshot::channel();
            match st.waiting.iter_mut().find(|(t, _)| t == tenant) {
                Some((_, q)) => q.push_back(tx),
                None => st.waiting.push_back((tenant.clone(), VecDeque::from([tx]))),
            }
            rx
        };
        match rx.await {
            Ok(permit) => permit,
            // The scheduler went away (shutdown): run unscheduled.
            Err(_) => Permit {
                scheduler: None,
                tenant: tenant.clone(),
                heavy: false,
            },
        }
    }

    /// Frees `tenant`'s slot and hands free slots to the next tenants in
    /// turn that are under their share.
    fn release(self: &Arc<Self>, tenant: &TenantId) {
        let mut st = self.state.lock();
        st.running = st.running.saturating_sub(1);
        if let Some(h) = st.held.get_mut(tenant) {
            *h = h.saturating_sub(1);
            if *h == 0 {
                st.held.remove(tenant);
            }
        }
        self.dispatch(&mut st);
    }

    fn dispatch(self: &Arc<Self>, st: &mut State) {
        let mut turns = st.waiting.len();
        while st.running < self.slots && turns > 0 {
            turns -= 1;
            let Some((tenant, mut queue)) = st.waiting.pop_front() else {
                return;
            };
            if st.held.get(&tenant).copied().unwrap_or(0) >= self.per_tenant() {
                // At its share: keep its place for a later turn.
                st.waiting.push_back((tenant, queue));
                continue;
            }
            let held = st.held.get(&tenant).copied().unwrap_or(0);
            while let Some(tx) = queue.pop_front() {
                let permit = Permit {
                    scheduler: Some(Arc::clone(self)),
                    tenant: tenant.clone(),
                    heavy: held > 0 || !queue.is_empty(),
                };
                match tx.send(permit) {
                    Ok(()) => {
                        st.running += 1;
                        *st.held.entry(tenant.clone()).or_default() += 1;
                        turns = st.waiting.len() + 1;
                        break;
                    }
                    // The waiter left: its permit must not release a slot
                    // it never held.
                    Err(mut p) => p.scheduler = None,
                }
            }
            if !queue.is_empty() {
                // Served once: to the back of the line.
                st.waiting.push_back((tenant, queue));
            }
        }
    }

    /// Queries running and waiting (for metrics).
    pub fn load(&self) -> (usize, usize) {
        let st = self.state.lock();
        (st.running, st.waiting.iter().map(|(_, q)| q.len()).sum())
    }
}

/// The calling thread's nice value (-1 also when it cannot be read).
#[allow(unsafe_code)]
fn own_priority() -> i32 {
    // SAFETY: gettid and getpriority take no pointers and read the
    // calling thread only.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid);
        libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t)
    }
}

/// Sets the calling thread's nice value (raising it). On Linux the nice value is per
/// thread, and raising it needs no privilege; a failure leaves the thread
/// at normal priority, which is only less fair.
#[allow(unsafe_code)]
fn lower_thread_priority(nice: i32) {
    // SAFETY: gettid and setpriority take no pointers and act on the
    // calling thread only.
    let done = unsafe {
        let tid = libc::syscall(libc::SYS_gettid);
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if done != 0 {
        tracing::debug!("could not lower a thread's priority");
    }
}

/// A runtime whose threads (workers and blocking pool) run at a lower CPU
/// priority (`nice`; at 10 about a tenth of the CPU of a normal thread
/// when both want it), for heavy queries and compaction; none for 0.
/// Started on first use, one per nice value for the process' life.
pub fn low_priority(nice: i32) -> Option<tokio::runtime::Handle> {
    if nice <= 0 {
        return None;
    }
    static LOW: std::sync::LazyLock<Mutex<HashMap<i32, tokio::runtime::Runtime>>> =
        std::sync::LazyLock::new(Default::default);
    let mut runtimes = LOW.lock();
    if let Some(rt) = runtimes.get(&nice) {
        return Some(rt.handle().clone());
    }
    // Relative to the caller's own priority (a server started under
    // `nice` keeps its heavy work below its other work), at most 19; the
    // pool's threads are set to it as they start (threads they spawn
    // would otherwise inherit theirs).
    let own = own_priority();
    let target = (own + nice).min(19);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, usize::from))
        .thread_name(format!("strata-nice-{nice}"))
        .thread_stack_size(crate::THREAD_STACK_BYTES)
        .on_thread_start(move || lower_thread_priority(target))
        .enable_all()
        .build()
        .map_err(|error| {
            tracing::warn!(%error, "no low-priority runtime: its work runs at normal priority")
        })
        .ok()?;
    let handle = rt.handle().clone();
    runtimes.insert(nice, rt);
    Some(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nice value of the calling thread, from /proc (Linux).
    fn own_nice() -> Option<i32> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        // Fields after the command's closing parenthesis: state is the
        // 3rd field of the line, nice the 19th.
        let rest = &stat[stat.rfind(')')? + 2..];
        rest.split_whitespace().nth(16)?.parse().ok()
    }

    #[test]
    fn heavy_queries_compute_on_lower_priority_threads() {
        let Some(normal) = own_nice() else {
            return; // not Linux: nothing to check
        };
        let low = low_priority(10).unwrap();
        // Spawned as the query route spawns its work (block_on alone would
        // run on this thread).
        let task = low.spawn(async {
            let worker = own_nice();
            let blocking = tokio::task::spawn_blocking(own_nice).await.unwrap();
            (worker, blocking)
        });
        let (on_worker, on_blocking) = low.block_on(task).unwrap();
        assert_eq!(on_worker, Some((normal + 10).min(19)));
        assert_eq!(on_blocking, Some((normal + 10).min(19)));
        assert!(low_priority(0).is_none(), "0 turns it off");
    }

    #[tokio::test]
    async fn a_tenants_concurrent_queries_are_heavy_a_lone_one_is_not() {
        let s = FairScheduler::new(3);
        let a = TenantId::try_new("a").unwrap();
        let b = TenantId::try_new("b").unwrap();
        let first = s.acquire(&a).await;
        assert!(!first.heavy());
        let second = s.acquire(&a).await;
        assert!(second.heavy(), "a already runs one");
        let lone = s.acquire(&b).await;
        assert!(!lone.heavy());
        // a's third waits (a holds all but one slot); granted while a
        // still runs another, it is heavy.
        let third = {
            let s = Arc::clone(&s);
            let a = a.clone();
            tokio::spawn(async move { s.acquire(&a).await.heavy() })
        };
        tokio::task::yield_now().await;
        drop(second);
        assert!(third.await.unwrap());
        drop((first, lone));
        assert!(!s.acquire(&a).await.heavy(), "alone again");
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_the_next_tenant_in_turn() {
        let s = FairScheduler::new(1);
        let a = TenantId::try_new("a").unwrap();
        let b = TenantId::try_new("b").unwrap();
        let first = s.acquire(&a).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Tenant a queues five queries, then tenant b one.
        for (i, t) in [(0, &a), (1, &a), (2, &a), (3, &a), (4, &a), (5, &b)] {
            let (s, t, order) = (Arc::clone(&s), t.clone(), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let _p = s.acquire(&t).await;
                order.lock().push(i);
            }));
            tokio::task::yield_now().await;
        }
        while s.load().1 < 6 {
            tokio::task::yield_now().await;
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        // b's query runs second, not sixth.
        assert_eq!(order.lock()[..2], [0, 5]);
        assert_eq!(s.load(), (0, 0));
    }

    #[tokio::test]
    async fn one_tenant_never_holds_every_slot() {
        let s = FairScheduler::new(2);
        let a = TenantId::try_new("a").unwrap();
        let b = TenantId::try_new("b").unwrap();
        let first = s.acquire(&a).await;
        // a's second query waits although a slot is free...
        let second = tokio::spawn({
            let (s, a) = (Arc::clone(&s), a.clone());
            async move { s.acquire(&a).await }
        });
        while s.load().1 < 1 {
            tokio::task::yield_now().await;
        }
        // ...which b gets at once.
        let _b = tokio::time::timeout(std::time::Duration::from_secs(1), s.acquire(&b))
            .await
            .unwrap();
        drop(first);
        let _second = second.await.unwrap();
        assert_eq!(s.load(), (2, 0));
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_does_not_leak_a_slot() {
        let s = FairScheduler::new(1);
        let a = TenantId::try_new("a").unwrap();
        let held = s.acquire(&a).await;
        let waiting = tokio::spawn({
            let (s, a) = (Arc::clone(&s), a.clone());
            async move { s.acquire(&a).await }
        });
        while s.load().1 < 1 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        drop(held);
        // The slot is free again.
        let _p = tokio::time::timeout(std::time::Duration::from_secs(1), s.acquire(&a))
            .await
            .unwrap();
        assert_eq!(s.load(), (1, 0));
    }
}
