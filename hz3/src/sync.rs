//! The atomics and the wait/wake primitives hz3's lock-free code is written against.
//!
//! The allocator gets `core` atomics and the real futex, so its code is unchanged. The loom models
//! (`hz3/tests/loom_*.rs`, run by `scripts/loom`) include the modelled modules by `#[path]`
//! together with this file, compiled with `--cfg loom` as a test crate, and get loom's atomics
//! and a modelled futex instead: the code checked is the code shipped.
//!
//! The switch needs `test` as well as `loom`: the allocator library is built under `--cfg loom`
//! too (the model tests link it), and loom is no dependency of the library.

#[cfg(not(all(loom, test)))]
pub use crate::os::{futex_wait, futex_wake_one};
#[cfg(not(all(loom, test)))]
pub use core::hint::spin_loop;
#[cfg(not(all(loom, test)))]
pub use core::sync::atomic::{AtomicU32, Ordering};

#[cfg(all(loom, test))]
pub use futex_model::{futex_wait, futex_wake_one};
#[cfg(all(loom, test))]
pub use loom::hint::spin_loop;
#[cfg(all(loom, test))]
pub use loom::sync::atomic::{AtomicU32, Ordering};

/// True when the model build was asked for the deliberately broken protocol variant `variant`
/// (`HZ3_LOOM_BROKEN=<variant>`, read at compile time by scripts/loom --broken, which expects
/// each model to fail on it). Always false in the allocator: it needs the model build's cfgs.
pub const fn broken(variant: &str) -> bool {
    #[cfg(all(loom, test))]
    if let Some(asked) = option_env!("HZ3_LOOM_BROKEN") {
        return same(asked.as_bytes(), variant.as_bytes());
    }
    let _ = variant;
    false
}

#[cfg(all(loom, test))]
const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The kernel futex as loom sees it. What the lock relies on: a wait compares the word and goes
/// to sleep atomically with respect to wakes on that word (the kernel's hash-bucket lock, here a
/// loom mutex), and a sleeper stays asleep until a wake picks it. A sleeper nobody wakes leaves
/// loom with no runnable thread, which it reports as a deadlock: that is a lost wake-up.
#[cfg(all(loom, test))]
mod futex_model {
    use loom::sync::atomic::{AtomicU32, Ordering};
    use loom::sync::{Condvar, Mutex};
    use std::vec::Vec;

    #[derive(Default)]
    struct Sleepers {
        /// (futex word address, sleeper id), oldest first.
        asleep: Vec<(usize, u64)>,
        next_id: u64,
    }

    struct Bucket {
        sleepers: Mutex<Sleepers>,
        woken: Condvar,
    }

    loom::lazy_static! {
        static ref BUCKET: Bucket = Bucket {
            sleepers: Mutex::new(Sleepers::default()),
            woken: Condvar::new(),
        };
    }

    fn addr(word: &AtomicU32) -> usize {
        word as *const AtomicU32 as usize
    }

    pub fn futex_wait(word: &AtomicU32, expected: u32) {
        let mut s = BUCKET.sleepers.lock().unwrap();
        // The bucket lock orders this load after any wake that already ran, as the kernel's does.
        if word.load(Ordering::Relaxed) != expected {
            return;
        }
        let id = s.next_id;
        s.next_id += 1;
        s.asleep.push((addr(word), id));
        while s.asleep.iter().any(|&(_, i)| i == id) {
            s = BUCKET.woken.wait(s).unwrap();
        }
    }

    pub fn futex_wake_one(word: &AtomicU32) {
        let mut s = BUCKET.sleepers.lock().unwrap();
        let a = addr(word);
        if let Some(k) = s.asleep.iter().position(|&(w, _)| w == a) {
            s.asleep.remove(k);
            BUCKET.woken.notify_all();
        }
    }
}
