//! The allocator's entry points in Rust terms; the C ABI and `GlobalAlloc` are thin layers over
//! these. Null means "out of memory" (or an impossible request); callers set errno.

use crate::decay;
use crate::heap::Heap;
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
        alloc_large(size, MIN_ALIGN, false)
    }
}

/// A block above the small limit. The decay beat runs on the large paths and on spills, never on
/// a cache hit.
#[cold]
#[inline(never)]
fn alloc_large(size: usize, align: usize, zero: bool) -> *mut u8 {
    decay::tick();
    large::alloc(size, align, zero)
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
        return or_release(slow_alloc::refill(heap, class), class);
    }
    alloc_without_heap(class)
}

/// `obj`, or when it is null (out of memory: no run could be mapped) another try after the large
/// box gave back the address space it caches (RLIMIT_AS); null if it had none.
#[inline(always)]
fn or_release(obj: *mut u8, class: usize) -> *mut u8 {
    if obj.is_null() {
        return retry_after_release(class);
    }
    obj
}

#[cold]
#[inline(never)]
fn retry_after_release(class: usize) -> *mut u8 {
    if large::release_address_space() {
        alloc_class(class)
    } else {
        ptr::null_mut()
    }
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
                or_release(slow_alloc::refill(heap, class), class)
            } else {
                obj
            }
        }
        None => or_release(slow_alloc::alloc_uncached(class), class),
    }
}

/// Frees `p` (null is ignored). Pointers hz3 did not hand out abort with a message.
#[inline(always)]
pub fn free(p: *mut u8) {
    if p.is_null() {
        return;
    }
    free_tagged(p, page_map::tag_of(p as usize));
}

#[inline(always)]
fn free_tagged(p: *mut u8, tag: usize) {
    if crate::config::HOME {
        return free_home(p, tag);
    }
    small_with_heap(p, tag, |heap, class| keep(heap, class, p, tag));
}

/// Runs `f` with the calling thread's heap and the class of `p` when `p` is a small object and
/// the thread has a heap; otherwise frees `p` another way (large or foreign, or no heap).
#[inline(always)]
fn small_with_heap(p: *mut u8, tag: usize, f: impl FnOnce(&mut Heap, usize)) {
    if !page_map::tag_is_small(tag) {
        return free_other(p, tag);
    }
    let class = page_map::tag_class(tag);
    let heap = lifecycle::current_raw();
    if heap as usize <= NO_HEAP_MAX {
        return free_without_heap(class, p);
    }
    // SAFETY: a non-sentinel TLS value is this thread's attached heap.
    f(unsafe { &mut *heap }, class)
}

/// Caches `p` in the calling thread's `heap`, spilling a batch when its class is full.
#[inline(always)]
fn keep(heap: &mut Heap, class: usize, p: *mut u8, tag: usize) {
    if crate::config::FAILFAST {
        crate::failfast::on_free(p, class);
    }
    crate::remote::count_kept(heap, page_map::tag_owner(tag));
    if !heap.push(class, p) {
        spill(heap, class, p);
    }
}

/// `home-runs`: only this heap's own small objects are cached here; the hit path tests owner and
/// kind at once and finds the class in the same word.
#[inline(always)]
fn free_home(p: *mut u8, tag: usize) {
    let heap = lifecycle::current_raw();
    match page_map::own_small_class(page_map::tag_vs_owner(tag, heap as usize)) {
        // SAFETY: a non-sentinel TLS value is this thread's attached heap.
        Some(class) if heap as usize > NO_HEAP_MAX => keep(unsafe { &mut *heap }, class, p, tag),
        _ => free_not_own(p, tag),
    }
}

/// `home-runs`: a free that is not of the calling heap's own small objects: large or foreign,
/// without a heap, or another heap's object, which goes back to it (`remote::free_away`).
#[cold]
#[inline(never)]
fn free_not_own(p: *mut u8, tag: usize) {
    small_with_heap(p, tag, |heap, class| {
        if crate::config::FAILFAST {
            crate::failfast::on_free(p, class);
        }
        crate::remote::count_kept(heap, page_map::tag_owner(tag));
        crate::remote::free_away(heap, class, p, page_map::tag_owner(tag));
    });
}

/// The thread cache's class is full: a batch goes back, and if empty runs wait for decay, the
/// decay beat runs.
#[cold]
#[inline(never)]
fn spill(heap: &mut Heap, class: usize, p: *mut u8) {
    slow_alloc::spill_and_push(heap, class, p);
    if crate::page_source::runs_waiting() {
        decay::tick();
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
        decay::tick();
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
    aligned(align, size, false)
}

/// As `aligned_alloc`, zeroed (`GlobalAlloc::alloc_zeroed`): a large block is zeroed only when
/// the cache hands it back committed, as for `calloc`; fresh and decommitted memory reads as zero.
pub fn aligned_alloc_zeroed(align: usize, size: usize) -> *mut u8 {
    aligned(align, size, true)
}

fn aligned(align: usize, size: usize, zero: bool) -> *mut u8 {
    if align <= MIN_ALIGN {
        return if zero { calloc(1, size) } else { malloc(size) };
    }
    match size_class::class_for_aligned(size, align) {
        Some(class) => {
            let p = alloc_class(class);
            if zero && !p.is_null() {
                // SAFETY: the class holds at least `size` bytes.
                unsafe { ptr::write_bytes(p, 0, size) };
            }
            p
        }
        None => alloc_large(size, align, zero),
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
    if size > SMALL_MAX && page_map::tag_kind(page_map::tag_of(p as usize)) == KIND_LARGE {
        let q = large::resize(p, size);
        if !q.is_null() {
            return q;
        }
    } else if size <= old && size > old / 2 {
        return p;
    }
    let q = if size > SMALL_MAX {
        alloc_large_growing(size)
    } else {
        malloc(size)
    };
    if !q.is_null() {
        let copied = old.min(size);
        // SAFETY: both blocks are at least min(old, size) bytes and distinct.
        unsafe { ptr::copy_nonoverlapping(p, q, copied) };
        crate::probes::here(|c| {
            c.add(crate::probes::Event::ReallocCopy, 1);
            c.add(crate::probes::Event::ReallocCopyBytes, copied as u64);
        });
        free(p);
    }
    q
}

/// A large block that realloc moves because it grows: placed with room to keep growing in place.
#[cold]
#[inline(never)]
fn alloc_large_growing(size: usize) -> *mut u8 {
    decay::tick();
    large::alloc_growing(size)
}

/// Zeroed `n * size` bytes; null on overflow.
pub fn calloc(n: usize, size: usize) -> *mut u8 {
    let Some(total) = n.checked_mul(size) else {
        return ptr::null_mut();
    };
    if total > SMALL_MAX {
        // Zeroes only what the cache hands back dirty; fresh and decommitted memory reads as zero.
        return alloc_large(total, MIN_ALIGN, true);
    }
    let p = malloc(total);
    if !p.is_null() {
        // SAFETY: `p` holds at least `total` bytes.
        unsafe { ptr::write_bytes(p, 0, total) };
    }
    p
}

/// malloc_trim: returns this thread's cache and the shared caches' batches to the central pool,
/// then decommits the free runs held by the page source and the large box's dirty extents,
/// whatever their age. True if memory went back to the kernel.
pub fn trim() -> bool {
    lifecycle::flush_current();
    if crate::config::SCALE {
        crate::transfer::drain_to_central();
    }
    crate::page_source::trim() + large::trim() > 0
}
