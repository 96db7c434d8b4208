//! Layers of a wave run by one runner per pool thread, each taking the next
//! layer in order until none is left: never as jobs other threads can steal.
//!
//! Why not `par_iter` over the wave: a layer's build waits inside the pool
//! (its read-ahead, its parallel reads of small files), and a rayon thread
//! that waits runs any job it can steal meanwhile, a whole other layer
//! included. Layers then nested on one thread: the outer layer's writer
//! stalled until the inner one finished (two large layers ran one after the
//! other while the second pool thread only had the first one's chunks to
//! compress), and every layer on the stack kept its buffers, so the peak
//! memory of a cold compose grew with the number of layers in the wave
//! (200 images of three layers each: 444 MB). A broadcast job runs only on
//! the thread it was given to, so each thread builds one layer at a time,
//! and waits only ever run short jobs: compression chunks and reads.
//!
//! Invariants: every item is run exactly once; results come back in the
//! items' order; at most one item per pool thread is in flight.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `run` applied to every item, on every thread of the current pool, one
/// item at a time per thread, in order of the items; results in that order.
pub(crate) fn each<T: Sync, R: Send>(items: &[T], run: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    rayon::broadcast(|_| {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return;
            };
            let r = run(item);
            *results[i]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(r);
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                // Every index below `items.len()` was taken by one runner,
                // and a runner that took one stored its result (a panic in
                // `run` propagates out of `broadcast` before this point).
                .expect("each item ran")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_once_in_order() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let items: Vec<u32> = (0..100).collect();
        let runs = AtomicUsize::new(0);
        let out = pool.install(|| {
            each(&items, |&i| {
                runs.fetch_add(1, Ordering::Relaxed);
                i * 2
            })
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(runs.load(Ordering::Relaxed), 100);
    }

    #[test]
    fn at_most_one_item_per_thread_at_a_time() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let items: Vec<u32> = (0..20).collect();
        let in_flight = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        pool.install(|| {
            each(&items, |_| {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // A wait inside the pool, as a layer's build has: it must
                // not start another item on this thread.
                rayon::join(
                    || std::thread::sleep(std::time::Duration::from_millis(2)),
                    || std::thread::sleep(std::time::Duration::from_millis(2)),
                );
                in_flight.fetch_sub(1, Ordering::SeqCst);
            })
        });
        assert!(most.load(Ordering::SeqCst) <= 2);
    }
}
