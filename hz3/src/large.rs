//! Large objects (above `SMALL_MAX`) and alignments no size class provides: each gets its own
//! mapping, aligned to at least a run so that its first run's page-map descriptor is its alone
//! and records the mapped length.

use crate::os;
use crate::page_map::{self, KIND_LARGE, RUN_SIZE};
use crate::probes::{self, Event};
use core::ptr;
use core::sync::atomic::Ordering;

/// Maps `size` bytes aligned to `align` (a power of two); null when the size is impossible or the
/// kernel refuses. The memory reads as zeroes.
pub fn alloc(size: usize, align: usize) -> *mut u8 {
    let page = os::page_size();
    let Some(len) = size.max(1).checked_add(page - 1).map(|n| n & !(page - 1)) else {
        return ptr::null_mut();
    };
    if len > isize::MAX as usize {
        return ptr::null_mut();
    }
    let mut p = os::map_aligned(len, align.max(RUN_SIZE), false);
    if p.is_null() && crate::page_source::release_address_space() {
        p = os::map_aligned(len, align.max(RUN_SIZE), false);
    }
    if p.is_null() {
        return p;
    }
    let run = page_map::ensure(p as usize);
    if run.is_null() {
        os::unmap(p, len);
        return ptr::null_mut();
    }
    // SAFETY: the mapping starts this run and nothing else uses its descriptor.
    unsafe {
        (*run).large_len = len;
        (*run).base = p as usize;
        (*run).tag.store(KIND_LARGE, Ordering::Release);
    }
    crate::stats::large(len, false);
    probes::here(|c| c.add(Event::LargeAlloc, 1));
    p
}

/// Mapped length of the large object at `p`.
pub fn usable_size(p: *mut u8) -> usize {
    let run = page_map::lookup(p as usize);
    // SAFETY: the caller found a large tag for `p`, so the descriptor exists.
    unsafe { (*run).large_len }
}

pub fn free(p: *mut u8) {
    let run = page_map::lookup(p as usize);
    // SAFETY: the caller found a large tag for `p`, so the descriptor exists; clearing the tag
    // first makes a double free fail fast instead of unmapping someone else's memory.
    let len = unsafe {
        if (*run).base != p as usize {
            os::fail("large", "free of a pointer inside a large object");
        }
        (*run).tag.store(0, Ordering::Release);
        (*run).large_len
    };
    os::unmap(p, len);
    crate::stats::large(len, true);
    probes::here(|c| c.add(Event::LargeFree, 1));
}
