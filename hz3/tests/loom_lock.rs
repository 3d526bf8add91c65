//! loom model of `hz3/src/raw_lock.rs`, the futex lock under the central pool, the transfer
//! cache, the page source and the heap registry: mutual exclusion, and no lost wake-up (a sleeper
//! nobody wakes leaves loom without a runnable thread, which it reports as a deadlock). The
//! futex itself is `sync.rs`'s model. Run with scripts/loom (`--cfg loom`).
#![cfg(loom)]

mod loom_util;
#[allow(dead_code)] // fork reset and the probe counts are the allocator's
#[path = "../src/raw_lock.rs"]
mod raw_lock;
#[path = "../src/sync.rs"]
mod sync;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use loom_util::Witness;
use raw_lock::{Acquired, RawLock};
use std::sync::Arc as StdArc;

/// The lock around a value, as `lock::Mutex` uses it (that type adds only the probes). The value
/// is a loom cell, so a holder that could overlap another, or read before the previous holder's
/// writes are visible, is reported.
struct Locked<T> {
    raw: RawLock,
    value: UnsafeCell<T>,
    /// Sleepers woken in this execution (model bookkeeping, outside loom's view).
    wakes: std::sync::atomic::AtomicUsize,
}

// SAFETY: the value is reached only under the lock, which is what the model checks.
unsafe impl<T: Send> Sync for Locked<T> {}

impl<T> Locked<T> {
    fn new(value: T) -> Self {
        Locked {
            raw: RawLock::new(),
            value: UnsafeCell::new(value),
            wakes: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn with<R>(&self, w: &Witness, f: impl FnOnce(&mut T) -> R) -> R {
        if !self.raw.try_lock() {
            match self.raw.lock_contended() {
                Acquired::Spun(_) => w.hit("acquired while spinning"),
                Acquired::Waited(_) => w.hit("acquired after sleeping"),
            }
        }
        // SAFETY: this thread holds the lock.
        let r = self.value.with_mut(|v| f(unsafe { &mut *v }));
        // A holder can be descheduled mid-hold; without a scheduling point here loom would
        // always let it release before a waiter ran out of spins, and never model a sleep.
        thread::yield_now();
        if self.raw.unlock() {
            w.hit("unlock woke a sleeper");
            if self
                .wakes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                == 1
            {
                w.hit("a second wake-up in one execution");
            }
        }
        r
    }
}

/// `threads` threads (the model's main thread among them) each add 1 under the lock
/// `rounds` times; the total must be exact and the lock free at the end.
fn counter_model(threads: usize, rounds: usize, w: &StdArc<Witness>) {
    let lock = Arc::new(Locked::new(0usize));
    let handles: Vec<_> = (1..threads)
        .map(|_| {
            let (lock, w) = (lock.clone(), w.clone());
            thread::spawn(move || {
                for _ in 0..rounds {
                    lock.with(&w, |n| *n += 1);
                }
            })
        })
        .collect();
    for _ in 0..rounds {
        lock.with(w, |n| *n += 1);
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(lock.with(w, |n| *n), threads * rounds);
    assert!(lock.raw.is_free());
}

const CONTENDED_PATHS: &[&str] = &[
    "acquired while spinning",
    "acquired after sleeping",
    "unlock woke a sleeper",
];

#[test]
fn two_threads_two_rounds() {
    loom_util::check("lock 2 threads x 2 rounds", CONTENDED_PATHS, |w| {
        counter_model(2, 2, w)
    });
}

/// Three threads are needed for two sleepers at once: the woken one must re-mark the word as
/// contended, or the second sleeper is never woken.
#[test]
fn three_threads_one_round() {
    let must_see = [CONTENDED_PATHS, &["a second wake-up in one execution"]].concat();
    loom_util::check("lock 3 threads x 1 round", &must_see, |w| {
        counter_model(3, 1, w)
    });
}

/// The transfer cache's discipline under this lock: a bounded stack of whole batches, pushed
/// (or, when full, passed on to the central pool) and popped (or, when empty, missed) by two
/// threads at once. transfer.rs itself cannot be built into a model (its slots are statics next
/// to the central pool), so this keeps its shape: copy in / copy out under one lock hold.
#[test]
fn transfer_batches_neither_lost_nor_duplicated() {
    const SLOTS: usize = 1;
    type Cache = Locked<Vec<[u32; 2]>>;
    /// What bypassed the cache: the central pool in transfer.rs.
    type Central = Locked<Vec<u32>>;
    fn worker(batch: [u32; 2], cache: &Cache, central: &Central, w: &Witness) -> Option<[u32; 2]> {
        let full = cache.with(w, |slots| {
            if slots.len() < SLOTS {
                slots.push(batch);
                false
            } else {
                true
            }
        });
        if full {
            w.hit("cache full: batch went to central");
            central.with(w, |c| c.extend_from_slice(&batch));
        }
        let popped = cache.with(w, |slots| slots.pop());
        match popped {
            Some(b) if b != batch => w.hit("popped the other thread's batch"),
            None => w.hit("cache empty: pop missed"),
            _ => {}
        }
        popped
    }
    let must_see = &[
        "cache full: batch went to central",
        "popped the other thread's batch",
        "cache empty: pop missed",
        "acquired after sleeping",
    ];
    loom_util::check("transfer batches 2 threads", must_see, |w| {
        let cache = Arc::new(Cache::new(Vec::with_capacity(SLOTS)));
        let central = Arc::new(Central::new(Vec::new()));
        let (c2, p2, w2) = (cache.clone(), central.clone(), w.clone());
        let other = thread::spawn(move || worker([3, 4], &c2, &p2, &w2));
        let mine = worker([1, 2], &cache, &central, w);
        let theirs = other.join().unwrap();
        let mut all: Vec<u32> = central.with(w, |c| c.clone());
        for b in [mine, theirs].into_iter().flatten() {
            all.extend_from_slice(&b);
        }
        for b in cache.with(w, |slots| slots.clone()) {
            all.extend_from_slice(&b);
        }
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3, 4], "a batch was lost or duplicated");
    });
}
