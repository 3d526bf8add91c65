//! hz3: a small-object allocator for remote-heavy multi-thread workloads.
//!
//! # Use
//!
//! As Rust's global allocator ([`Hz3`] is a zero-sized handle), or as a `malloc` replacement for
//! any program through the preload library (`scripts/build-preload` in the repository builds
//! `libhz3_scale.so`; run a program with `LD_PRELOAD` set to it).
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: hz3::Hz3 = hz3::Hz3;
//!
//! let v: Vec<u32> = (0..1000).collect();
//! assert_eq!(v.iter().sum::<u32>(), 499_500);
//! ```
//!
//! # Statistics
//!
//! [`stats()`] answers "how much memory does the allocator hold, and where?" without a special
//! build: the counters are always on, kept where hz3 already touches shared state (refills and
//! spills of the thread caches, the central pool, the page source), never on a thread-cache hit.
//! [`Stats`] says which figures are exact and which are estimates. The preload library answers
//! the same figures through `mallinfo2`, `mallinfo`, `malloc_stats` and `malloc_info`, and prints
//! the summary on stderr at exit when the environment has `HZ3_STATS=1`.
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: hz3::Hz3 = hz3::Hz3;
//!
//! let before = hz3::stats();
//! let blocks: Vec<Box<[u8; 100]>> = (0..1000).map(|_| Box::new([7u8; 100])).collect();
//! let after = hz3::stats();
//! // 1000 live blocks of 100 bytes, each in the 112-byte class (plus the Vec's own buffer).
//! let grown = after.small_allocated - before.small_allocated;
//! assert!(grown >= 1000 * 112, "{grown}");
//! assert!(after.resident >= after.active && after.mapped >= after.resident);
//! drop(blocks);
//! ```
//!
//! # Usable size
//!
//! A block holds at least what was asked for, rounded up to its size class (or, above
//! [`SMALL_MAX`], to whole pages); [`usable_size`] says how much.
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: hz3::Hz3 = hz3::Hz3;
//!
//! let b = Box::new([0u8; 100]);
//! let p = Box::into_raw(b);
//! assert_eq!(hz3::usable_size(p.cast()), 112);
//! // SAFETY: `p` came from Box::into_raw above.
//! drop(unsafe { Box::from_raw(p) });
//! ```
//!
//! # Giving memory back
//!
//! Empty runs wait committed for reuse; [`trim`] hands the calling thread's cache back and
//! returns every such run to the kernel, like glibc's `malloc_trim(0)`.
//!
//! ```
//! #[global_allocator]
//! static GLOBAL: hz3::Hz3 = hz3::Hz3;
//!
//! let blocks: Vec<Vec<u8>> = (0..2000).map(|_| vec![1u8; 4000]).collect();
//! drop(blocks);
//! let before = hz3::stats();
//! hz3::trim();
//! let after = hz3::stats();
//! assert!(after.retained == 0 && after.resident < before.resident);
//! ```
//!
//! # Design
//!
//! Two compile-time lanes over the same boxes (`config`): `fast`, thread caches over the per-class
//! futex-mutex central pool alone (the lane that shows lock cost), and `scale`, the same plus a
//! transfer cache of whole batches in front of the central pool. Both keep a remote free in the
//! freeing thread's cache (adoption). Measured and retired alternatives: docs/decisions.md.
//!
//! Layers, top to bottom; a box calls only boxes below it (or beside it, in the order listed):
//!
//! 1. `c_abi` (the exported C functions, feature `preload`), `Hz3` (`GlobalAlloc`, here),
//!    `panic_abort` (the preload `.so`'s panic handler)
//! 2. `api` (the entry points)
//! 3. `lifecycle` (TLS heap slot, thread attach/exit, fork), `decay` (when emptied memory goes
//!    back: passes over `transfer`, `page_source` and `large`), `large` (the extent cache of
//!    blocks above the small limit)
//! 4. `slow_alloc` (thread-cache misses and spills), `remote` (a free of another thread's object)
//! 5. `heap` (the thread cache)
//! 6. `transfer` (the scale lane's batch cache)
//! 7. `central` (per-class pool), `page_source` (runs), `run_free` (a run's free set)
//! 8. `lock`, `raw_lock`, `sync`; `failfast`, `page_map`, `size_class`, `inject`
//! 9. `os` (syscalls, the one-line abort)
//! 10. `probes` (event counters), `stats` (always-on figures), `config` (compile-time knobs)
//!
//! The one exception: `probes` finds the calling thread's counters, and its dump the live heaps,
//! through `lifecycle` and `heap`, and the dump's book sits behind a `lock::Mutex` (observation
//! only, never an allocation decision), so every box can count events without holding a heap. Every other import follows the order above.
#![no_std]
// No std outside the unit tests. The LD_PRELOAD `.so` (feature `preload`) gets its panic handler
// from `panic_abort`, so none of std's unwinding, backtrace or formatting machinery (nor
// libgcc_s) is linked in; the rlib used as a Rust global allocator uses its host program's.
#[cfg(test)]
extern crate std;

#[cfg(all(loom, test))]
compile_error!("hz3: the unit tests do not build under --cfg loom; the loom models are the loom_* test targets (scripts/loom)");

mod api;
#[cfg(feature = "preload")]
mod c_abi;
mod central;
mod config;
mod decay;
mod failfast;
mod heap;
mod inject;
mod large;
mod lifecycle;
mod lock;
mod os;
mod page_map;
mod page_source;
#[cfg(all(feature = "preload", not(test)))]
mod panic_abort;
pub mod probes;
mod raw_lock;
mod remote;
mod run_free;
mod size_class;
mod slow_alloc;
mod stats;
mod sync;
mod transfer;

use core::alloc::{GlobalAlloc, Layout};

/// The lane this build was compiled for: "fast" or "scale".
pub const LANE: &str = config::LANE;

pub use size_class::{NUM_CLASSES, SMALL_MAX};
pub use stats::{ClassStats, Stats};

/// hz3 as a Rust global allocator: `#[global_allocator] static A: hz3::Hz3 = hz3::Hz3;`.
pub struct Hz3;

// SAFETY: every block comes from hz3's own pools or mappings with at least the layout's size and
// alignment, and is only reused after `dealloc`.
unsafe impl GlobalAlloc for Hz3 {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= api::MIN_ALIGN {
            api::malloc(layout.size())
        } else {
            api::aligned_alloc(layout.align(), layout.size())
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        api::free(ptr)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        api::aligned_alloc_zeroed(layout.align(), layout.size())
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= api::MIN_ALIGN {
            return api::realloc(ptr, new_size);
        }
        let q = api::aligned_alloc(layout.align(), new_size);
        if !q.is_null() {
            // SAFETY: both blocks hold at least min(old, new) bytes and are distinct.
            unsafe { core::ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size)) };
            api::free(ptr);
        }
        q
    }
}

/// Bytes usable in a block hz3 returned (0 for null): the size class for small blocks, the whole
/// 64 KiB runs a large block holds (more after a geometric `mremap` growth). Aborts with a one-line message on a pointer hz3 did not
/// hand out.
pub fn usable_size(ptr: *mut u8) -> usize {
    api::usable_size(ptr)
}

/// Returns cached memory to the kernel where possible (like `malloc_trim(0)`): the calling
/// thread's cache and the transfer cache go back to the central pool, and every empty run the
/// page source kept committed is decommitted. True if any memory went back.
pub fn trim() -> bool {
    api::trim()
}

/// A snapshot of the allocator's memory figures; see [`Stats`] for what each means and which
/// are estimates. Allocates nothing; costs one pass over the size classes.
pub fn stats() -> Stats {
    lifecycle::current_stats()
}
