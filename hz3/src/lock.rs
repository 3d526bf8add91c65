//! The one lock type: a futex mutex with a CAS fast path and a short spin before sleeping.
//!
//! State word: 0 = free, 1 = held, 2 = held and someone may be asleep in futex wait. Unlock wakes
//! one sleeper only when the word said 2, so the uncontended path is one CAS and one swap.
//! Each lock names its probe site so the counters split uncontended / spun / waited per site.

use crate::os;
use crate::probes::{self, LockSite, LockStat};
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicU32, Ordering};

const FREE: u32 = 0;
const HELD: u32 = 1;
const CONTENDED: u32 = 2;
/// Spin iterations before sleeping: a lock hold here is a few list operations, so a short spin
/// catches most releases while a descheduled holder still costs the waiter only one futex wait.
const SPIN_LIMIT: u32 = 100;

pub struct Mutex<T> {
    state: AtomicU32,
    site: Option<LockSite>,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, and the state word grants one guard at a time.
unsafe impl<T: Send> Sync for Mutex<T> {}
// SAFETY: moving the mutex moves the value; nothing in it is tied to a thread.
unsafe impl<T: Send> Send for Mutex<T> {}

pub struct Guard<'a, T> {
    lock: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    pub const fn new(site: Option<LockSite>, value: T) -> Self {
        Mutex {
            state: AtomicU32::new(FREE),
            site,
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        if self
            .state
            .compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        } else {
            self.note(LockStat::Uncontended, 1);
        }
        Guard { lock: self }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let start = if cfg!(feature = "probes") {
            os::now_ns()
        } else {
            0
        };
        let mut spins = 0u32;
        while spins < SPIN_LIMIT {
            spins += 1;
            core::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == FREE
                && self
                    .state
                    .compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                self.note(LockStat::Spun, 1);
                self.note(LockStat::SpinIters, spins as u64);
                self.note_wait(start);
                return;
            }
        }
        self.note(LockStat::SpinIters, spins as u64);
        // Announce a sleeper; whoever releases after this swap will wake us.
        while self.state.swap(CONTENDED, Ordering::Acquire) != FREE {
            os::futex_wait(&self.state, CONTENDED);
        }
        self.note(LockStat::Waited, 1);
        self.note_wait(start);
    }

    #[inline(always)]
    fn note(&self, stat: LockStat, n: u64) {
        if let Some(site) = self.site {
            probes::lock_stat(site, stat, n);
        }
    }

    #[inline(always)]
    fn note_wait(&self, start: u64) {
        if cfg!(feature = "probes") {
            self.note(LockStat::WaitNs, os::now_ns().saturating_sub(start));
        }
    }

    #[inline]
    fn unlock(&self) {
        if self.state.swap(FREE, Ordering::Release) == CONTENDED {
            os::futex_wake_one(&self.state);
            self.note(LockStat::Wakes, 1);
        }
    }

    /// Takes the lock for a fork and leaves it held (no guard): `fork_release` ends it.
    pub fn fork_acquire(&self) {
        core::mem::forget(self.lock());
    }

    /// Parent after fork: releases a lock taken by `fork_acquire`.
    pub fn fork_release(&self) {
        self.unlock();
    }

    /// Child after fork: the only thread left holds every lock; reset without waking anyone.
    pub fn fork_reset(&self) {
        self.state.store(FREE, Ordering::Relaxed);
    }

    /// The value without locking, for code that provably runs alone (fork child, tests).
    ///
    /// # Safety
    /// No other thread may access the value concurrently.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get_unlocked(&self) -> &mut T {
        // SAFETY: exclusivity is the caller's promise.
        unsafe { &mut *self.value.get() }
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard's existence means this thread holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in deref; `&mut self` keeps the borrow unique.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_stay_exact_under_contention() {
        let m = Arc::new(Mutex::new(None, 0u64));
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), 80_000);
        assert_eq!(m.state.load(Ordering::Relaxed), FREE);
    }
}
