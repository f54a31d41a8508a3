//! Per-series work over a large fetch, split across the cores.

use super::{ErrorKind, PromError};

/// Below this much weight (points) the work stays on the calling thread:
/// starting threads would cost more than it saves.
const PARALLEL_WEIGHT: usize = 1 << 20;

/// `f` of each item, in order, on one thread per core (at most 4) when the
/// items weigh [`PARALLEL_WEIGHT`] or more: consecutive items go to one
/// thread until it holds its share of the weight. Used for passes over a
/// fetch's points that are bound by memory, not by one thread's compute.
pub fn par_map<T: Send, R: Send>(
    items: Vec<T>,
    weight: impl Fn(&T) -> usize,
    f: impl Fn(T) -> R + Sync,
) -> Result<Vec<R>, PromError> {
    let chunks = par_chunks(items, weight, PARALLEL_WEIGHT, |chunk| {
        chunk.into_iter().map(&f).collect::<Vec<R>>()
    })?;
    Ok(chunks.into_iter().flatten().collect())
}

/// `f` of runs of consecutive items, in order: one run per core (at most
/// 4), each on a thread of its own and weighing about as much, when the
/// items weigh `at_least` or more; else one run on the calling thread.
pub(crate) fn par_chunks<T: Send, R: Send>(
    items: Vec<T>,
    weight: impl Fn(&T) -> usize,
    at_least: usize,
    f: impl Fn(Vec<T>) -> R + Sync,
) -> Result<Vec<R>, PromError> {
    let total: usize = items.iter().map(&weight).sum();
    let workers = if total >= at_least {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, 4)
    } else {
        1
    };
    if workers <= 1 || items.len() < 2 {
        return Ok(vec![f(items)]);
    }
    let share = total.div_ceil(workers);
    let mut chunks: Vec<Vec<T>> = vec![Vec::new()];
    let mut held = 0usize;
    for item in items {
        let w = weight(&item);
        if held >= share
            && let Some(last) = chunks.last()
            && !last.is_empty()
        {
            chunks.push(Vec::new());
            held = 0;
        }
        held += w;
        if let Some(last) = chunks.last_mut() {
            last.push(item);
        }
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                std::thread::Builder::new()
                    .name("strata-promql-fetch".into())
                    .spawn_scoped(scope, move || f(chunk))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h
                    .join()
                    .map_err(|_| PromError::new(ErrorKind::Internal, "query worker panicked")),
                Err(e) => Err(PromError::new(
                    ErrorKind::Internal,
                    format!("cannot start a query worker: {e}"),
                )),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Large or small, split or not, the answer is `f` of each item in
    /// order.
    #[test]
    fn par_map_keeps_the_order() {
        for (n, w) in [
            (0usize, 1usize),
            (1, PARALLEL_WEIGHT),
            (10, 1),
            (1000, 4096),
            (7, PARALLEL_WEIGHT),
        ] {
            let items: Vec<usize> = (0..n).collect();
            let got = par_map(items, |_| w, |i| i * 3).unwrap();
            assert_eq!(
                got,
                (0..n).map(|i| i * 3).collect::<Vec<_>>(),
                "{n} items of {w}"
            );
        }
    }
}
