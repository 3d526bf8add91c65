//! The allocator's entry points in Rust terms; the C ABI and `GlobalAlloc` are thin layers over
//! these. Null means "out of memory" (or an impossible request); callers set errno.

use crate::large;
use crate::lifecycle::{self, NO_HEAP_MAX};
use crate::os;
use crate::page_map::{self, KIND_LARGE, KIND_SMALL};
use crate::size_class::{self, SMALL_MAX};
use crate::slow_alloc;
use core::ptr;

/// Smallest alignment every allocation has.
pub const MIN_ALIGN: usize = 16;

#[inline(always)]
pub fn malloc(size: usize) -> *mut u8 {
    if size <= SMALL_MAX {
        alloc_class(size_class::class_of(size))
    } else {
        large::alloc(size, MIN_ALIGN)
    }
}

#[inline(always)]
fn alloc_class(class: usize) -> *mut u8 {
    let heap = lifecycle::current_raw();
    if heap as usize > NO_HEAP_MAX {
        // SAFETY: a non-sentinel TLS value is this thread's attached heap.
        let heap = unsafe { &mut *heap };
        let obj = heap.pop(class);
        if !obj.is_null() {
            return obj;
        }
        return slow_alloc::refill(heap, class);
    }
    alloc_without_heap(class)
}

#[cold]
#[inline(never)]
fn alloc_without_heap(class: usize) -> *mut u8 {
    match lifecycle::attach() {
        // SAFETY: attach returns this thread's heap.
        Some(heap) => {
            let heap = unsafe { &mut *heap };
            let obj = heap.pop(class);
            if obj.is_null() {
                slow_alloc::refill(heap, class)
            } else {
                obj
            }
        }
        None => slow_alloc::alloc_uncached(class),
    }
}

/// Frees `p` (null is ignored). Pointers hz3 did not hand out abort with a message.
#[inline(always)]
pub fn free(p: *mut u8) {
    if p.is_null() {
        return;
    }
    if crate::config::FLAT_PAGE_MAP {
        match page_map::flat_tag(p as usize) {
            Some(tag) => free_tagged(p, tag),
            None => free_outside_flat(p),
        }
    } else {
        free_tagged(p, page_map::tag_of(p as usize));
    }
}

/// Large blocks, runs mapped outside the flat range, and foreign pointers.
#[cold]
#[inline(never)]
fn free_outside_flat(p: *mut u8) {
    free_tagged(p, page_map::tag_of(p as usize));
}

#[inline(always)]
fn free_tagged(p: *mut u8, tag: usize) {
    if !page_map::tag_is_small(tag) {
        return free_other(p, tag);
    }
    let class = page_map::tag_class(tag);
    let heap = lifecycle::current_raw();
    if heap as usize <= NO_HEAP_MAX {
        return free_without_heap(class, p);
    }
    // SAFETY: a non-sentinel TLS value is this thread's attached heap.
    let heap = unsafe { &mut *heap };
    if crate::config::FAILFAST {
        crate::failfast::on_free(p, class);
    }
    crate::remote::count_kept(heap, page_map::tag_owner(tag));
    if !heap.push(class, p) {
        slow_alloc::spill_and_push(heap, class, p);
    }
}

#[cold]
#[inline(never)]
fn free_without_heap(class: usize, p: *mut u8) {
    match lifecycle::attach() {
        Some(_) => free(p),
        None => slow_alloc::free_uncached(class, p),
    }
}

#[cold]
#[inline(never)]
fn free_other(p: *mut u8, tag: usize) {
    if page_map::tag_kind(tag) == KIND_LARGE {
        if crate::config::FAILFAST {
            crate::failfast::check_large_free(p);
        }
        large::free(p);
    } else {
        if crate::config::FAILFAST {
            crate::failfast::fail_foreign(p);
        }
        os::fail(
            "page_map",
            "free() of a pointer hz3 did not allocate (foreign, or already freed)",
        );
    }
}

/// Bytes usable at `p` (0 for null). Aborts on a foreign pointer.
pub fn usable_size(p: *mut u8) -> usize {
    if p.is_null() {
        return 0;
    }
    let tag = page_map::tag_of(p as usize);
    match page_map::tag_kind(tag) {
        KIND_SMALL => size_class::size_of(page_map::tag_class(tag)),
        KIND_LARGE => large::usable_size(p),
        _ => os::fail(
            "page_map",
            "malloc_usable_size() of a pointer hz3 did not allocate",
        ),
    }
}

/// `size` bytes aligned to `align` (a power of two).
pub fn aligned_alloc(align: usize, size: usize) -> *mut u8 {
    if align <= MIN_ALIGN {
        return malloc(size);
    }
    match size_class::class_for_aligned(size, align) {
        Some(class) => alloc_class(class),
        None => large::alloc(size, align),
    }
}

/// glibc realloc: null -> malloc, size 0 -> free and null; keeps `p` when the new size still fits
/// and would not waste more than half; on failure `p` is untouched.
pub fn realloc(p: *mut u8, size: usize) -> *mut u8 {
    if p.is_null() {
        return malloc(size);
    }
    if size == 0 {
        free(p);
        return ptr::null_mut();
    }
    if crate::config::FAILFAST {
        crate::failfast::check_live(p);
    }
    let old = usable_size(p);
    if size <= old && size > old / 2 {
        return p;
    }
    let q = malloc(size);
    if !q.is_null() {
        // SAFETY: both blocks are at least min(old, size) bytes and distinct.
        unsafe { ptr::copy_nonoverlapping(p, q, old.min(size)) };
        free(p);
    }
    q
}

/// Zeroed `n * size` bytes; null on overflow.
pub fn calloc(n: usize, size: usize) -> *mut u8 {
    let Some(total) = n.checked_mul(size) else {
        return ptr::null_mut();
    };
    let p = malloc(total);
    if !p.is_null() && total <= SMALL_MAX {
        // SAFETY: `p` holds at least `total` bytes. Large blocks are fresh mappings, already zero.
        unsafe { ptr::write_bytes(p, 0, total) };
    }
    p
}

/// malloc_trim: returns this thread's cache and the shared caches' batches to the central pool,
/// then decommits the free runs held by the page source. True if memory went back to the kernel.
pub fn trim() -> bool {
    lifecycle::flush_current();
    if crate::config::SCALE {
        crate::transfer::drain_to_central();
    }
    crate::page_source::trim() > 0
}
