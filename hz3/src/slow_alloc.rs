//! Slow alloc: everything behind a thread-cache miss or overflow.
//!
//! Miss order: own inbox (objects other threads freed back to us) -> the shared pool (transfer
//! cache then central in the scale lane, central in the fast lane) -> a fresh run (inside the
//! central pool). Overflow spills one batch from the top of the bin to the shared pool.

use crate::central::{self, Chain};
use crate::heap::Heap;
use crate::probes::{Counters, Event};
use crate::remote;
use crate::size_class;
use core::ptr;

/// The shared pool the lane's caches refill from.
#[inline]
pub fn pool_pop(class: usize, want: u32, owner: usize) -> Chain {
    #[cfg(feature = "transfer-cache")]
    return crate::transfer::pop(class, want, owner);
    #[cfg(not(feature = "transfer-cache"))]
    return central::pop(class, want, owner);
}

/// The shared pool the lane's caches spill to.
#[inline]
pub fn pool_push(class: usize, chain: Chain) {
    #[cfg(feature = "transfer-cache")]
    crate::transfer::push(class, chain);
    #[cfg(not(feature = "transfer-cache"))]
    central::push(class, chain);
}

/// Serves a miss in `heap`'s bin for `class`: refills the bin and returns one object (null when
/// out of memory).
#[cold]
#[inline(never)]
pub fn refill(heap: &mut Heap, class: usize) -> *mut u8 {
    heap.counters.add(Event::MallocCacheMiss, 1);
    remote::flush_some(heap);
    let mut chain = heap.inbox.drain(class);
    if !chain.head.is_null() {
        heap.counters.add(Event::RemoteDrainCalls, 1);
        #[cfg(feature = "probes")]
        heap.counters
            .add(Event::RemoteDrainObjects, remote::counted(chain.head));
    } else {
        chain = pool_pop(
            class,
            size_class::batch_of(class),
            heap as *mut Heap as usize,
        );
        if chain.count == 0 {
            return ptr::null_mut();
        }
        heap.counters.add(Event::SlowAllocRefill, 1);
        heap.counters
            .add(Event::SlowAllocObjects, chain.count as u64);
    }
    heap.fill(class, chain);
    heap.pop(class)
}

/// The bin for `class` went over its cap: hands one batch to the shared pool.
#[cold]
#[inline(never)]
pub fn spill(heap: &mut Heap, class: usize) {
    heap.counters.add(Event::FreeCacheOverflow, 1);
    let chain = heap.take(class, size_class::batch_of(class));
    pool_push(class, chain);
}

/// Returns everything a heap holds (cache, stash, inbox) to the shared pools: thread exit, trim.
pub fn flush_heap(heap: &mut Heap) {
    remote::flush_all(heap);
    for class in 0..size_class::NUM_CLASSES {
        let chain = heap.take_all(class);
        if !chain.head.is_null() {
            central::push(class, chain);
        }
        let inbox = heap.inbox.drain(class);
        if !inbox.head.is_null() {
            central::push(class, inbox);
        }
    }
}

/// Allocation for a thread without a cache (its cache was torn down at thread exit).
#[cold]
pub fn alloc_uncached(class: usize) -> *mut u8 {
    Counters::shared().add(Event::MallocCacheMiss, 1);
    central::pop(class, 1, 0).head.cast()
}

/// Free for a thread without a cache.
#[cold]
pub fn free_uncached(class: usize, obj: *mut u8) {
    let node = obj.cast::<crate::page_map::Node>();
    // SAFETY: the object is being freed; its first word becomes the one-element chain's end.
    unsafe { (*node).next = ptr::null_mut() };
    central::push(
        class,
        Chain {
            head: node,
            count: 1,
        },
    );
}
