//! hz3: a small-object allocator for remote-heavy multi-thread workloads.
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
//! 3. `lifecycle` (TLS heap slot, thread attach/exit, fork), `large` (mmap'd blocks)
//! 4. `slow_alloc` (thread-cache misses and spills), `remote` (a free of another thread's object)
//! 5. `heap` (the thread cache)
//! 6. `transfer` (the scale lane's batch cache)
//! 7. `central` (per-class pool), `page_source` (runs), `run_free` (a run's free set)
//! 8. `lock`, `raw_lock`, `sync`; `failfast`, `page_map`, `size_class`, `inject`
//! 9. `os` (syscalls, the one-line abort)
//! 10. `probes` (event counters), `config` (compile-time knobs)
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
mod sync;
mod transfer;

use core::alloc::{GlobalAlloc, Layout};

/// The lane this build was compiled for: "fast" or "scale".
pub const LANE: &str = config::LANE;

pub use size_class::SMALL_MAX;

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
        if layout.align() <= api::MIN_ALIGN {
            api::calloc(1, layout.size())
        } else {
            let p = api::aligned_alloc(layout.align(), layout.size());
            if !p.is_null() {
                // SAFETY: `p` holds at least `layout.size()` bytes.
                unsafe { core::ptr::write_bytes(p, 0, layout.size()) };
            }
            p
        }
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

/// Bytes usable in a block hz3 returned (0 for null).
pub fn usable_size(ptr: *mut u8) -> usize {
    api::usable_size(ptr)
}

/// Returns cached memory to the kernel where possible (like `malloc_trim(0)`); true if any went back.
pub fn trim() -> bool {
    api::trim()
}
