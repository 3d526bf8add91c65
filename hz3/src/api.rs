//! The allocator's entry points in Rust terms; the C ABI and `GlobalAlloc` are thin layers over
//! these. Null means "out of memory" (or an impossible request); callers set errno.

use crate::decay;
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
    malloc_with::<false>(size)
}

/// `malloc` for the C ABI: a null result has set errno to ENOMEM. Each miss sets it on its own
/// path and is reached by a tail call, so the hit path calls nothing it must come back from and
/// saves no register (decisions.md, "Local hot path").
#[cfg(feature = "preload")]
#[inline(always)]
pub fn malloc_enomem(size: usize) -> *mut u8 {
    malloc_with::<true>(size)
}

/// `ENOMEM`: a null result sets errno (the C `malloc`); otherwise errno is the caller's business.
#[inline(always)]
fn malloc_with<const ENOMEM: bool>(size: usize) -> *mut u8 {
    // One unsigned test for 1..=SMALL_MAX: size 0 wraps and takes the cold path with the large
    // sizes, which serves it from the smallest class.
    if size.wrapping_sub(1) < SMALL_MAX {
        alloc_class::<ENOMEM>(size_class::class_of_nonzero(size))
    } else {
        malloc_cold::<ENOMEM>(size)
    }
}

/// `malloc` of 0 bytes (the smallest class, as glibc gives a minimum chunk) or above the small
/// limit.
#[cold]
#[inline(never)]
fn malloc_cold<const ENOMEM: bool>(size: usize) -> *mut u8 {
    if size == 0 {
        return enomem_if_null::<ENOMEM>(alloc_class::<false>(0));
    }
    alloc_large::<ENOMEM>(size, MIN_ALIGN, false)
}

/// errno ENOMEM when `p` is null and the caller is the C `malloc`.
#[inline(always)]
fn enomem_if_null<const ENOMEM: bool>(p: *mut u8) -> *mut u8 {
    if ENOMEM && p.is_null() {
        os::set_errno(libc::ENOMEM);
    }
    p
}

/// A block above the small limit. The decay beat runs on the large paths and on spills, never on
/// a cache hit.
#[cold]
#[inline(never)]
fn alloc_large<const ENOMEM: bool>(size: usize, align: usize, zero: bool) -> *mut u8 {
    decay::tick();
    enomem_if_null::<ENOMEM>(large::alloc(size, align, zero))
}

#[inline(always)]
fn alloc_class<const ENOMEM: bool>(class: usize) -> *mut u8 {
    let heap = lifecycle::current_raw();
    if heap as usize > NO_HEAP_MAX {
        // SAFETY: a non-sentinel TLS value is this thread's attached heap.
        let heap = unsafe { &mut *heap };
        let obj = heap.pop(class);
        if !obj.is_null() {
            return obj;
        }
        return refill::<ENOMEM>(heap, class);
    }
    alloc_without_heap::<ENOMEM>(class)
}

/// The thread cache's class is empty.
#[cold]
#[inline(never)]
fn refill<const ENOMEM: bool>(heap: &mut crate::heap::Heap, class: usize) -> *mut u8 {
    enomem_if_null::<ENOMEM>(or_release(slow_alloc::refill(heap, class), class))
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
        alloc_class::<false>(class)
    } else {
        ptr::null_mut()
    }
}

#[cold]
#[inline(never)]
fn alloc_without_heap<const ENOMEM: bool>(class: usize) -> *mut u8 {
    let obj = match lifecycle::attach() {
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
    };
    enomem_if_null::<ENOMEM>(obj)
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
    if !page_map::tag_is_small(tag) {
        return free_other(p, tag);
    }
    let class = page_map::tag_class(tag);
    let heap = lifecycle::current_raw();
    if heap as usize <= NO_HEAP_MAX {
        return free_without_heap(p);
    }
    // SAFETY: a non-sentinel TLS value is this thread's attached heap.
    let heap = unsafe { &mut *heap };
    if crate::config::FAILFAST {
        crate::failfast::on_free(p, class);
    }
    crate::remote::count_kept(heap, page_map::tag_owner(tag));
    if !heap.push(class, p) {
        spill(heap, p);
    }
}

/// The class of a small block `p`, read again from the page map: the cold paths of `free` take
/// only `p`, so the hit path keeps no class beside the bin offset it computes from the tag.
fn small_class_of(p: *mut u8) -> usize {
    page_map::tag_class(page_map::tag_of(p as usize))
}

/// The thread cache's class is full: a batch goes back, and the decay beat runs (a coarse-clock
/// read; a pass at most every quarter period). Every spill, not only while empty runs wait: a
/// burst of frees the transfer cache holds empties no run, and must still go back.
#[cold]
#[inline(never)]
fn spill(heap: &mut crate::heap::Heap, p: *mut u8) {
    slow_alloc::spill_and_push(heap, small_class_of(p), p);
    decay::tick();
}

#[cold]
#[inline(never)]
fn free_without_heap(p: *mut u8) {
    match lifecycle::attach() {
        Some(_) => free(p),
        None => slow_alloc::free_uncached(small_class_of(p), p),
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
            let p = alloc_class::<false>(class);
            if zero && !p.is_null() {
                // SAFETY: the class holds at least `size` bytes.
                unsafe { ptr::write_bytes(p, 0, size) };
            }
            p
        }
        None => alloc_large::<false>(size, align, zero),
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
        return alloc_large::<false>(total, MIN_ALIGN, true);
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
