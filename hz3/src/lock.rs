//! The one lock type: a futex mutex (the state-word protocol is `raw_lock::RawLock`: a CAS fast
//! path, a short spin, then futex sleep) around a value, reached only through a guard.
//! Each lock names its probe site so the counters split uncontended / spun / waited per site.

use crate::os;
use crate::probes::{self, LockSite, LockStat};
use crate::raw_lock::{Acquired, RawLock};
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

pub struct Mutex<T> {
    raw: RawLock,
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
            raw: RawLock::new(),
            site,
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    pub fn lock(&self) -> Guard<'_, T> {
        if self.raw.try_lock() {
            self.note(LockStat::Uncontended, 1);
        } else {
            self.lock_contended();
        }
        Guard { lock: self }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let start = if crate::config::PROBES {
            os::now_ns()
        } else {
            0
        };
        let (stat, spins) = match self.raw.lock_contended() {
            Acquired::Spun(spins) => (LockStat::Spun, spins),
            Acquired::Waited(spins) => (LockStat::Waited, spins),
        };
        self.note(stat, 1);
        self.note(LockStat::SpinIters, spins as u64);
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
        if crate::config::PROBES {
            self.note(LockStat::WaitNs, os::now_ns().saturating_sub(start));
        }
    }

    #[inline]
    fn unlock(&self) {
        if self.raw.unlock() {
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
        self.raw.reset();
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
        assert!(m.raw.is_free());
    }
}
