//! The lock's state-word protocol, without the value or the probes (those are `lock::Mutex`'s):
//! a CAS fast path, a short spin, then futex sleep.
//!
//! State word: 0 = free, 1 = held, 2 = held and someone may be asleep in futex wait. A thread
//! about to sleep first swaps in 2, so whoever releases after that swap sees 2 and wakes one
//! sleeper; the woken thread swaps in 2 again (it cannot know whether others still sleep), so
//! the next release wakes the next one. Unlock wakes only when the word said 2, so the
//! uncontended path is one CAS and one swap.
//!
//! Modelled by `hz3/tests/loom_lock.rs` (mutual exclusion, no lost wake-up).

use crate::sync::{self, AtomicU32, Ordering};

const FREE: u32 = 0;
const HELD: u32 = 1;
const CONTENDED: u32 = 2;

/// Spin iterations before sleeping: a lock hold here is a few list operations, so a short spin
/// catches most releases while a descheduled holder still costs the waiter only one futex wait.
/// The model spins twice: each spin is one more scheduling point for loom to explore, and the
/// protocol is the same for any limit.
const SPIN_LIMIT: u32 = if cfg!(all(loom, test)) { 2 } else { 100 };

/// Ordering of every successful acquire. `HZ3_LOOM_BROKEN=lock-relaxed` (model build only)
/// weakens it to show that the model catches the value being read before the last holder's writes.
const ACQUIRE: Ordering = if sync::broken("lock-relaxed") {
    Ordering::Relaxed
} else {
    Ordering::Acquire
};

/// What a sleeper writes before sleeping. `HZ3_LOOM_BROKEN=lock-sleep-held` (model
/// build only) marks it plain "held", so unlock does not know to wake it: a lost wake-up.
const SLEEPING: u32 = if sync::broken("lock-sleep-held") {
    HELD
} else {
    CONTENDED
};

pub struct RawLock {
    state: AtomicU32,
}

/// How a contended acquire ended, for the lock probes.
pub enum Acquired {
    /// Got the lock while spinning, after this many spins.
    Spun(u32),
    /// Slept at least once (after spinning this many times).
    Waited(u32),
}

impl RawLock {
    #[cfg(not(all(loom, test)))]
    pub const fn new() -> Self {
        RawLock {
            state: AtomicU32::new(FREE),
        }
    }

    /// loom's atomics have no const constructor.
    #[cfg(all(loom, test))]
    pub fn new() -> Self {
        RawLock {
            state: AtomicU32::new(FREE),
        }
    }

    /// The uncontended path: one CAS. False means call `lock_contended`.
    #[inline]
    pub fn try_lock(&self) -> bool {
        self.state
            .compare_exchange(FREE, HELD, ACQUIRE, Ordering::Relaxed)
            .is_ok()
    }

    /// The slow path: spin, then sleep. (`lock::Mutex` keeps its caller out of line.)
    #[inline]
    pub fn lock_contended(&self) -> Acquired {
        let mut spins = 0u32;
        while spins < SPIN_LIMIT {
            spins += 1;
            sync::spin_loop();
            if self.state.load(Ordering::Relaxed) == FREE && self.try_lock() {
                return Acquired::Spun(spins);
            }
        }
        // Announce a sleeper; whoever releases after this swap will wake us.
        while self.state.swap(SLEEPING, ACQUIRE) != FREE {
            sync::futex_wait(&self.state, SLEEPING);
        }
        Acquired::Waited(spins)
    }

    /// Releases the lock; true if a sleeper was woken.
    #[inline]
    pub fn unlock(&self) -> bool {
        if self.state.swap(FREE, Ordering::Release) == CONTENDED {
            sync::futex_wake_one(&self.state);
            return true;
        }
        false
    }

    /// Fork child: the only thread left holds every lock; reset without waking anyone.
    pub fn reset(&self) {
        self.state.store(FREE, Ordering::Relaxed);
    }

    #[allow(dead_code)] // tests and models
    pub fn is_free(&self) -> bool {
        self.state.load(Ordering::Relaxed) == FREE
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_waiter_spins_the_limit_then_sleeps_until_the_release() {
        let lock = Arc::new(RawLock::new());
        assert!(lock.try_lock());
        let waiter = {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || {
                let got = lock.lock_contended();
                lock.unlock();
                got
            })
        };
        // Held until the waiter has given up spinning and announced its sleep (however long the
        // scheduler keeps it from running).
        while lock.state.load(Ordering::Relaxed) != CONTENDED {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(lock.unlock(), "the release found no sleeper to wake");
        match waiter.join().unwrap() {
            Acquired::Waited(spins) => assert_eq!(spins, SPIN_LIMIT),
            Acquired::Spun(spins) => panic!("got the lock after {spins} spins while it was held"),
        }
        assert!(lock.is_free());
    }
}
