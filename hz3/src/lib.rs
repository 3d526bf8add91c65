//! hz3: a small-object allocator for remote-heavy multi-thread workloads.
//!
//! Two compile-time lanes over the same boxes: `fast` (the C hz3's mutex central pool, with
//! nothing in front of it) and `scale` (a transfer cache of whole batches in front of the central
//! pool). Both adopt remote frees; owner routing (`remote-inbox`, `remote-stash`) and every other
//! mechanism are cargo features so that each can be A/B-ed; see docs/decisions.md.
//!
//! Boxes (one module each): `size_class`, `heap` (thread cache), `page_map`, `remote`, `central`,
//! `run_free` (a run's free set), `transfer`, `slow_alloc`, `page_source`, `large`, `lifecycle`,
//! `lock`, `os`, `probes`; `api` is the entry layer, `c_abi` the exported C functions (feature
//! `preload`).
#![no_std]
// std is linked for its panic handler and, off x86-64, `thread_local!` (a const Cell without Drop);
// nothing on a malloc path calls into it.
extern crate std;

#[cfg(all(feature = "fast", feature = "scale"))]
compile_error!("hz3: pick exactly one lane: features `fast` and `scale` are both on (use --no-default-features --features fast)");
#[cfg(not(any(feature = "fast", feature = "scale")))]
compile_error!("hz3: pick exactly one lane: enable feature `fast` or `scale`");
#[cfg(all(loom, test))]
compile_error!("hz3: the unit tests do not build under --cfg loom; the loom models are the loom_* test targets (scripts/loom)");

mod api;
#[cfg(feature = "preload")]
mod c_abi;
mod central;
mod failfast;
mod heap;
mod inject;
mod large;
mod lifecycle;
mod lock;
// Compiled (and so checked) in every build; only the owner routings (remote-inbox, remote-stash) use it.
#[cfg_attr(not(any(feature = "remote-inbox", feature = "remote-stash")), allow(dead_code))]
mod mpsc;
mod os;
mod page_map;
mod page_source;
pub mod probes;
mod raw_lock;
mod remote;
mod run_free;
mod size_class;
mod slow_alloc;
mod sync;
#[cfg(feature = "transfer-cache")]
mod transfer;

use core::alloc::{GlobalAlloc, Layout};

/// The lane this build was compiled for.
#[cfg(feature = "fast")]
pub const LANE: &str = "fast";
#[cfg(all(feature = "scale", not(feature = "fast")))]
pub const LANE: &str = "scale";

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
