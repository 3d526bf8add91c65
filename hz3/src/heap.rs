//! Thread cache: one `Heap` per thread, holding bounded per-class stacks of object pointers that
//! only the owning thread touches (no lock, no atomic RMW).
//!
//! The stacks are arrays, not lists threaded through the objects: caching, spilling and refilling
//! never write into (or read from) object memory, so objects the program never touched stay
//! unfaulted and a malloc hit does not miss on a cold object.
//!
//! Heaps are mapped page-aligned and never unmapped: run tags name them as owners, so a tag never
//! points at unmapped memory.

use crate::probes::{Counters, Event};
use crate::size_class::{self, NUM_CLASSES};
use core::ptr;
use core::sync::atomic::AtomicU32;

/// Upper bound on one class's cache in bytes: two 32 KiB batches of mid-size objects, so a spill
/// leaves a batch behind; objects in a cache are untouched by hz3, so the bound costs RSS only
/// for what the program itself wrote (docs/decisions.md, batch size A/B).
const CLASS_BYTES: usize = 64 * 1024;
/// Largest cap of any bin: 4 batches of the smallest classes, less the one slot that makes a
/// `Bin` exactly 1 KiB, so a class's bin sits at `class << 10` (a shift on the malloc and free
/// hit paths instead of a multiply by 1032).
pub const BIN_MAX: usize = 4 * size_class::BATCH_MAX - 1;
const _: () = assert!(core::mem::size_of::<Bin>() == 1024);

#[repr(C)]
pub struct Bin {
    pub count: u32,
    pub cap: u32,
    pub slots: [*mut u8; BIN_MAX],
}

#[repr(C, align(4096))]
pub struct Heap {
    pub bins: [Bin; NUM_CLASSES],
    pub counters: Counters,
    pub stats_seen: crate::stats::CacheSeen,
    // Registry fields, changed under the registry lock.
    pub state: AtomicU32,
    pub tid: u64,
    pub all_next: *mut Heap,
    pub free_next: *mut Heap,
}

impl Heap {
    /// Sets a freshly mapped (all-zero) heap's cache bounds: CLASS_BYTES per class, and between
    /// one batch and four.
    pub fn init_caps(&mut self) {
        for (class, bin) in self.bins.iter_mut().enumerate() {
            let batch = size_class::batch_of(class) as usize;
            bin.cap = if let Some(batches) = crate::config::DEEP_BIN_BATCHES {
                (batches * batch).min(BIN_MAX) as u32
            } else {
                let by_bytes = CLASS_BYTES / size_class::size_of(class);
                (4 * batch).min(by_bytes).max(batch).min(BIN_MAX) as u32
            };
        }
    }

    #[inline(always)]
    pub fn bin(&mut self, class: usize) -> &mut Bin {
        // SAFETY: classes come from `class_of` or a run tag, both < NUM_CLASSES.
        unsafe { self.bins.get_unchecked_mut(class) }
    }

    /// Pops a cached object of `class`, or null on a miss.
    #[inline(always)]
    pub fn pop(&mut self, class: usize) -> *mut u8 {
        let bin = self.bin(class);
        if bin.count == 0 {
            return ptr::null_mut();
        }
        bin.count -= 1;
        // SAFETY: count <= cap <= BIN_MAX, so count - 1 indexes a filled slot, and bins only ever
        // receive objects (free ignores null; refills write what the pool handed out). Telling the
        // compiler lets `malloc` drop its second null test and errno check on the hit path.
        let obj = unsafe {
            let obj = *bin.slots.get_unchecked(bin.count as usize);
            core::hint::assert_unchecked(!obj.is_null());
            obj
        };
        self.counters.add_own(Event::MallocCacheHit, 1);
        if crate::config::FAILFAST {
            crate::failfast::on_alloc(obj);
        }
        obj
    }

    /// Caches a freed object of `class`; false (nothing done) when the bin is full.
    #[inline(always)]
    pub fn push(&mut self, class: usize, obj: *mut u8) -> bool {
        let bin = self.bin(class);
        if bin.count >= bin.cap {
            return false;
        }
        // SAFETY: count < cap <= BIN_MAX.
        unsafe { *bin.slots.get_unchecked_mut(bin.count as usize) = obj };
        bin.count += 1;
        true
    }

    /// Removes the top `n` objects (at most `count`) and returns them; the slice stays valid until
    /// the bin is next written.
    pub fn take_top(&mut self, class: usize, n: usize) -> &[*mut u8] {
        let bin = self.bin(class);
        let n = n.min(bin.count as usize);
        bin.count -= n as u32;
        let at = bin.count as usize;
        // SAFETY: at + n is the old count, <= cap <= BIN_MAX.
        unsafe { bin.slots.get_unchecked(at..at + n) }
    }

    /// Removes every cached object of `class`.
    pub fn take_all(&mut self, class: usize) -> &[*mut u8] {
        let n = self.bin(class).count as usize;
        self.take_top(class, n)
    }

    /// The (empty) bin's slot array, for a refill to write into; `set_count` publishes it.
    pub fn slots_for_refill(&mut self, class: usize) -> *mut *mut u8 {
        self.bin(class).slots.as_mut_ptr()
    }

    pub fn set_count(&mut self, class: usize, n: u32) {
        self.bin(class).count = n;
    }

    /// Publishes this cache's count for `class` to the statistics (slow paths only).
    #[inline]
    pub fn publish_stats(&mut self, class: usize) {
        let now = self.bin(class).count;
        self.stats_seen.publish(class, now);
    }

    /// Publishes every class's count (a flush, a snapshot by the owning thread).
    pub fn publish_all_stats(&mut self) {
        for class in 0..NUM_CLASSES {
            self.publish_stats(class);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        feature = "failfast",
        ignore = "pops made-up pointers, which failfast rejects"
    )]
    fn caps_fit_and_allow_a_batch() {
        // SAFETY: zeroed memory is a valid empty heap (pointers null, counts zero).
        let mut heap: std::boxed::Box<Heap> =
            unsafe { std::boxed::Box::new_zeroed().assume_init() };
        heap.init_caps();
        for class in 0..NUM_CLASSES {
            let cap = heap.bin(class).cap as usize;
            assert!(cap <= BIN_MAX && cap >= size_class::batch_of(class) as usize);
        }
        let objs = [0x1000 as *mut u8, 0x2000 as *mut u8, 0x3000 as *mut u8];
        for &o in &objs {
            assert!(heap.push(5, o));
        }
        assert_eq!(heap.take_top(5, 2), &objs[1..]);
        assert_eq!(heap.pop(5), objs[0]);
        assert!(heap.pop(5).is_null());
        let cap = heap.bin(7).cap as usize;
        for i in 0..cap {
            assert!(heap.push(7, (0x10 * (i + 1)) as *mut u8));
        }
        assert!(!heap.push(7, 0x99 as *mut u8), "a full bin refuses");
        assert_eq!(heap.take_all(7).len(), cap);
        for class in 0..NUM_CLASSES {
            let (batch, cap) = (
                size_class::batch_of(class) as usize,
                heap.bin(class).cap as usize,
            );
            if let Some(batches) = crate::config::DEEP_BIN_BATCHES {
                assert_eq!(cap, (batches * batch).min(BIN_MAX), "class {class}");
            } else {
                assert!(
                    cap * size_class::size_of(class)
                        <= CLASS_BYTES.max(batch * size_class::size_of(class)),
                    "class {class}"
                );
            }
        }
    }
}
