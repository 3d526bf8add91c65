//! Slow alloc: everything behind a thread-cache miss or a full bin.
//!
//! Miss order: the shared pool (transfer cache then central in the scale lane, central in the
//! fast lane) -> a fresh run (inside the central pool).
//! A full bin spills one batch from its top to the shared pool.

use crate::central;
use crate::config;
use crate::heap::{Heap, SlowEvent};
use crate::probes::{Counters, Event};
use crate::size_class::{self, BATCH_MAX};
use core::ptr;

/// Refills from the lane's shared pool into `out`; returns the count.
///
/// # Safety
/// `out` must have room for BATCH_MAX and `want` pointers.
#[inline]
pub unsafe fn pool_pop(class: usize, out: *mut *mut u8, want: u32, owner: usize) -> u32 {
    // SAFETY: forwarded contract.
    unsafe {
        if config::SCALE {
            crate::transfer::pop(class, out, want, owner)
        } else {
            central::pop(class, out, want, owner)
        }
    }
}

/// Spills to the lane's shared pool.
#[inline]
pub fn pool_push(class: usize, objs: &[*mut u8], owner: usize) {
    if objs.is_empty() {
        return;
    }
    if config::SCALE {
        crate::transfer::push(class, objs, owner);
    } else {
        central::push(class, objs);
    }
}

/// Serves a miss in `heap`'s bin for `class`: refills the bin and returns one object (null when
/// out of memory).
#[cold]
#[inline(never)]
pub fn refill(heap: &mut Heap, class: usize) -> *mut u8 {
    heap.counters.add(Event::MallocCacheMiss, 1);
    crate::inject::delay!("inject-slow-refill");
    let owner = heap.owner();
    // SAFETY: the bin is empty and holds BIN_MAX >= BATCH_MAX slots.
    let n = unsafe {
        pool_pop(
            class,
            heap.slots_for_refill(class),
            size_class::batch_of(class),
            owner,
        )
    };
    if n == 0 {
        return ptr::null_mut();
    }
    heap.set_count(class, n);
    heap.adapt_cap(class, SlowEvent::Refill);
    heap.counters.add(Event::SlowAllocRefill, 1);
    heap.counters.add(Event::SlowAllocObjects, n as u64);
    let obj = heap.pop(class);
    heap.publish_stats(class);
    obj
}

/// The bin for `class` is full: spills batches from its top to the shared pool until `obj` fits
/// (one batch), then caches it.
#[cold]
#[inline(never)]
pub fn spill_and_push(heap: &mut Heap, class: usize, obj: *mut u8) {
    heap.counters.add(Event::FreeCacheOverflow, 1);
    heap.adapt_cap(class, SlowEvent::Spill);
    let mut batch = [ptr::null_mut::<u8>(); BATCH_MAX];
    let owner = heap.owner();
    loop {
        let taken = heap.take_top(class, size_class::batch_of(class) as usize);
        let n = taken.len();
        batch[..n].copy_from_slice(taken);
        pool_push(class, &batch[..n], owner);
        if heap.push(class, obj) {
            heap.publish_stats(class);
            return;
        }
    }
}

/// Returns everything a heap's cache holds to the central pool: thread exit, trim.
pub fn flush_heap(heap: &mut Heap) {
    for class in 0..size_class::NUM_CLASSES {
        central::push(class, heap.take_all(class));
    }
    heap.publish_all_stats();
}

/// Allocation for a thread without a cache (its cache was torn down at thread exit).
#[cold]
pub fn alloc_uncached(class: usize) -> *mut u8 {
    Counters::shared().add(Event::MallocCacheMiss, 1);
    let mut obj = ptr::null_mut();
    // SAFETY: room for one pointer.
    unsafe { central::pop(class, &mut obj, 1, 0) };
    if crate::config::FAILFAST {
        crate::failfast::on_alloc(obj);
    }
    obj
}

/// Free for a thread without a cache.
#[cold]
pub fn free_uncached(class: usize, obj: *mut u8) {
    if crate::config::FAILFAST {
        crate::failfast::on_free(obj, class);
    }
    central::push(class, &[obj]);
}
