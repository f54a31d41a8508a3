//! Fair query scheduling: queries run in a fixed number of slots (one per
//! CPU by default), and no tenant holds more than all but one of them, so
//! another tenant's query always finds a slot free or next. Waiting queries
//! queue per tenant and a freed slot goes to the next tenant in turn, not to
//! the oldest query: a tenant with a hundred queued dashboard panels delays
//! another tenant's query by at most the queries already running.

use std::collections::VecDeque;
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
            while let Some(tx) = queue.pop_front() {
                let permit = Permit {
                    scheduler: Some(Arc::clone(self)),
                    tenant: tenant.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

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
