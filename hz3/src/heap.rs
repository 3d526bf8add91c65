//! Thread cache: one `Heap` per thread, holding bounded per-class stacks of object pointers that
//! only the owning thread touches (no lock, no atomic RMW).
//!
//! The stacks are arrays, not lists threaded through the objects: caching, spilling and refilling
//! never write into (or read from) object memory, so objects the program never touched stay
//! unfaulted and a malloc hit does not miss on a cold object. (A hit prefetches the next object's
//! first line: a hint, which never faults a page in.)
//!
//! Heaps are mapped page-aligned and never unmapped: run tags name them as owners, so a tag never
//! points at unmapped memory.

use crate::probes::{Counters, Event};
use crate::size_class::{self, NUM_CLASSES};
use core::ptr;
use core::sync::atomic::AtomicU32;

/// Upper bound on one class's cache in bytes: two 32 KiB batches of mid-size objects, so a spill
/// leaves a batch behind; objects in a cache are untouched by hz3, so the bound costs RSS only
/// for what the program itself wrote (docs/decisions.md, batch size A/B). Once written, full
/// caches are what threads that only free a class (consumers) pin, and a class's runs stay with it
/// while any thread caches its objects: so a class starts at one batch
/// and only a thread that swings between full and empty earns the rest (peak RSS, decisions.md).
const CLASS_BYTES: usize = 64 * 1024;
/// Largest cap of any bin: 4 batches of the smallest classes, which makes a `Bin` exactly 1 KiB,
/// so a class's bin sits at `class << 10` (a shift on the malloc and free hit paths instead of a
/// multiply); the bins' heads live apart, in `Heap::heads`.
pub const BIN_MAX: usize = 4 * size_class::BATCH_MAX;
const _: () = assert!(core::mem::size_of::<Bin>() == 1024);

/// A bin's fill and bound.
#[repr(C)]
pub struct BinHead {
    pub count: u32,
    pub cap: u32,
}

#[repr(C)]
pub struct Bin {
    pub slots: [*mut u8; BIN_MAX],
}

/// A thread-cache slow-path event, as `Heap::adapt_cap` reads it.
#[derive(Clone, Copy)]
pub enum SlowEvent {
    /// A bin was empty and took a batch.
    Refill,
    /// A bin was full and gave a batch back.
    Spill,
}

#[repr(C, align(4096))]
pub struct Heap {
    pub bins: [Bin; NUM_CLASSES],
    /// Every bin's head side by side: the heads share a few cache lines that every malloc and free
    /// touch, instead of one line per class at the top of its bin, where bins 1 KiB apart put
    /// every head in the same four L1 sets (measured: docs/decisions.md, `packed-heads`).
    heads: [BinHead; NUM_CLASSES],
    pub counters: Counters,
    pub stats_seen: crate::stats::CacheSeen,
    /// Classes whose last slow-path event was a spill (bit per class).
    spilled_last: u128,
    // Registry fields, changed under the registry lock.
    pub state: AtomicU32,
    pub tid: u64,
    pub all_next: *mut Heap,
    pub free_next: *mut Heap,
}

impl Heap {
    /// This heap as an owner: the value run tags and transfer-cache batches record for it.
    #[inline(always)]
    pub fn owner(&self) -> usize {
        self as *const Heap as usize
    }

    /// Sets a freshly mapped (all-zero) heap's cache bounds: one batch per class (a class earns
    /// more room by swinging between full and empty, so a thread that only frees a class never
    /// holds more than a batch of it, even at its start).
    pub fn init_caps(&mut self) {
        for class in 0..NUM_CLASSES {
            self.head(class).cap = min_cap(class);
        }
    }

    /// Adapts `class`'s bound after a slow-path event. A refill right
    /// after a spill: the class swings between full and empty, and a batch more room (up to the
    /// most) saves round trips. A second spill with no refill between: the thread frees more of the
    /// class than it allocates (a consumer), and a full cache would only sit idle, so the bound
    /// drops by a batch, down to one batch (`min_cap`).
    #[inline]
    pub fn adapt_cap(&mut self, class: usize, event: SlowEvent) {
        let bit = 1u128 << class;
        let after_spill = self.spilled_last & bit != 0;
        match event {
            SlowEvent::Spill => self.spilled_last |= bit,
            SlowEvent::Refill => self.spilled_last &= !bit,
        }
        if !after_spill {
            return;
        }
        let batch = size_class::batch_of(class);
        let most = max_cap(class);
        let head = self.head(class);
        head.cap = match event {
            SlowEvent::Spill => head.cap.saturating_sub(batch).max(min_cap(class)),
            SlowEvent::Refill => (head.cap + batch).min(most),
        };
    }

    #[inline(always)]
    fn bin(&mut self, class: usize) -> &mut Bin {
        // SAFETY: classes come from `class_of` or a run tag, both < NUM_CLASSES.
        unsafe { self.bins.get_unchecked_mut(class) }
    }

    #[inline(always)]
    fn head(&mut self, class: usize) -> &mut BinHead {
        // SAFETY: as in `bin`.
        unsafe { self.heads.get_unchecked_mut(class) }
    }

    /// Objects cached for `class`.
    #[inline]
    pub fn count(&mut self, class: usize) -> u32 {
        self.head(class).count
    }

    /// The bound of `class`'s cache.
    #[cfg(test)]
    pub fn cap(&mut self, class: usize) -> u32 {
        self.head(class).cap
    }

    /// Pops a cached object of `class`, or null on a miss.
    #[inline(always)]
    pub fn pop(&mut self, class: usize) -> *mut u8 {
        let head = self.head(class);
        if head.count == 0 {
            return ptr::null_mut();
        }
        head.count -= 1;
        let at = head.count as usize;
        // SAFETY: count <= cap <= BIN_MAX, so count - 1 indexes a filled slot, and bins only ever
        // receive objects (free ignores null; refills write what the pool handed out). Telling the
        // compiler lets `malloc` drop its second null test and errno check on the hit path.
        let obj = unsafe {
            let obj = *self.bin(class).slots.get_unchecked(at);
            core::hint::assert_unchecked(!obj.is_null());
            obj
        };
        // The object this class hands out next (this one again when the bin is now empty): under
        // adoption it was often last written on another core, and the program will write it;
        // asking for its first line now overlaps that trip with other work (docs/decisions.md,
        // `prefetch-next`: 9-10% less CPU per op on the 32-thread remote rows). Not for big
        // classes: one line of a big object buys nothing, and its page may not be faulted in yet,
        // which costs a page walk (`prefetch-small`).
        if !size_class::is_big(class) {
            // SAFETY: at.saturating_sub(1) <= at, a slot of this bin.
            let next = unsafe { *self.bin(class).slots.get_unchecked(at.saturating_sub(1)) };
            prefetch_for_write(next);
        }
        self.counters.add_own(Event::MallocCacheHit, 1);
        if crate::config::FAILFAST {
            crate::failfast::on_alloc(obj);
        }
        obj
    }

    /// Caches a freed object of `class`; false (nothing done) when the bin is full.
    #[inline(always)]
    pub fn push(&mut self, class: usize, obj: *mut u8) -> bool {
        let head = self.head(class);
        let at = head.count;
        if at >= head.cap {
            return false;
        }
        head.count = at + 1;
        // SAFETY: count < cap <= BIN_MAX.
        unsafe { *self.bin(class).slots.get_unchecked_mut(at as usize) = obj };
        true
    }

    /// Removes the top `n` objects (at most `count`) and returns them; the slice stays valid until
    /// the bin is next written.
    pub fn take_top(&mut self, class: usize, n: usize) -> &[*mut u8] {
        let head = self.head(class);
        let n = n.min(head.count as usize);
        head.count -= n as u32;
        let at = head.count as usize;
        // SAFETY: at + n is the old count, <= cap <= BIN_MAX.
        unsafe { self.bin(class).slots.get_unchecked(at..at + n) }
    }

    /// Removes every cached object of `class`.
    pub fn take_all(&mut self, class: usize) -> &[*mut u8] {
        let n = self.count(class) as usize;
        self.take_top(class, n)
    }

    /// The (empty) bin's slot array, for a refill to write into; `set_count` publishes it.
    pub fn slots_for_refill(&mut self, class: usize) -> *mut *mut u8 {
        self.bin(class).slots.as_mut_ptr()
    }

    pub fn set_count(&mut self, class: usize, n: u32) {
        self.head(class).count = n;
    }

    /// Publishes this cache's count for `class` to the statistics (slow paths only).
    #[inline]
    pub fn publish_stats(&mut self, class: usize) {
        let now = self.count(class);
        self.stats_seen.publish(class, now);
    }

    /// Publishes every class's count (a flush, a snapshot by the owning thread).
    pub fn publish_all_stats(&mut self) {
        for class in 0..NUM_CLASSES {
            self.publish_stats(class);
        }
    }
}

/// Starts fetching the line at `p` in a writable state; a hint only (never faults, any address).
#[inline(always)]
fn prefetch_for_write(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: prefetchw only hints the cache: it reads no memory architecturally and never faults
    // (Intel x86-64 parts from before PRFCHW, Broadwell, execute the opcode as a NOP).
    unsafe {
        core::arch::asm!("prefetchw [{}]", in(reg) p, options(nostack, preserves_flags, readonly));
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = p;
}

/// A class's largest cache bound: CLASS_BYTES, and between one batch and four; a big class
/// (`size_class::is_big`) four batches whatever their bytes.
fn max_cap(class: usize) -> u32 {
    let batch = size_class::batch_of(class) as usize;
    let by_bytes = if size_class::is_big(class) {
        usize::MAX
    } else {
        CLASS_BYTES / size_class::size_of(class)
    };
    (4 * batch).min(by_bytes).max(batch).min(BIN_MAX) as u32
}

/// The least a class's bound drops to, and where it starts: one batch (half a batch held less
/// for consumers but doubled their spills: docs/decisions.md, `cap-floor-half`).
fn min_cap(class: usize) -> u32 {
    size_class::batch_of(class)
}

const _: () = assert!(NUM_CLASSES <= 128, "spilled_last has a bit per class");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(
        feature = "failfast",
        ignore = "pops made-up pointers, which failfast rejects"
    )]
    fn caps_fit_and_allow_a_batch() {
        let mut heap = fresh_heap();
        for class in 0..NUM_CLASSES {
            let cap = heap.cap(class) as usize;
            assert!(cap <= BIN_MAX && cap >= size_class::batch_of(class) as usize);
        }
        let objs = [0x1000 as *mut u8, 0x2000 as *mut u8, 0x3000 as *mut u8];
        for &o in &objs {
            assert!(heap.push(5, o));
        }
        assert_eq!(heap.take_top(5, 2), &objs[1..]);
        assert_eq!(heap.pop(5), objs[0]);
        assert!(heap.pop(5).is_null());
        let cap = heap.cap(7) as usize;
        for i in 0..cap {
            assert!(heap.push(7, (0x10 * (i + 1)) as *mut u8));
        }
        assert!(!heap.push(7, 0x99 as *mut u8), "a full bin refuses");
        assert_eq!(heap.take_all(7).len(), cap);
        for class in 0..NUM_CLASSES {
            let (batch, cap) = (
                size_class::batch_of(class) as usize,
                max_cap(class) as usize,
            );
            let bound = if size_class::is_big(class) {
                4 * batch * size_class::size_of(class)
            } else {
                CLASS_BYTES.max(batch * size_class::size_of(class))
            };
            assert!(cap * size_class::size_of(class) <= bound, "class {class}");
        }
    }

    #[test]
    fn adaptive_bounds_start_at_a_batch_and_follow_the_swings() {
        let mut heap = fresh_heap();
        let class = size_class::class_of(512);
        let batch = size_class::batch_of(class);
        let most = max_cap(class);
        assert!(
            most >= 3 * batch,
            "the test needs room for three batches: {most}"
        );
        assert_eq!(heap.cap(class), batch, "a class starts at one batch");
        heap.adapt_cap(class, SlowEvent::Spill);
        assert_eq!(heap.cap(class), batch, "a first spill changes nothing");
        heap.adapt_cap(class, SlowEvent::Refill);
        assert_eq!(
            heap.cap(class),
            2 * batch,
            "a refill right after a spill adds a batch"
        );
        heap.adapt_cap(class, SlowEvent::Refill);
        assert_eq!(
            heap.cap(class),
            2 * batch,
            "a refill after a refill adds nothing"
        );
        for _ in 0..8 {
            heap.adapt_cap(class, SlowEvent::Spill);
            heap.adapt_cap(class, SlowEvent::Refill);
        }
        assert_eq!(
            heap.cap(class),
            most,
            "swings raise the bound to its most, no further"
        );
        heap.adapt_cap(class, SlowEvent::Spill);
        assert_eq!(heap.cap(class), most);
        heap.adapt_cap(class, SlowEvent::Spill);
        assert_eq!(
            heap.cap(class),
            most - batch,
            "a second spill in a row drops a batch"
        );
        for _ in 0..8 {
            heap.adapt_cap(class, SlowEvent::Spill);
        }
        assert_eq!(
            heap.cap(class),
            min_cap(class),
            "spills alone bring it to the least"
        );
        let other = size_class::class_of(100);
        assert_eq!(
            heap.cap(other),
            size_class::batch_of(other),
            "classes adapt alone"
        );
    }

    fn fresh_heap() -> std::boxed::Box<Heap> {
        // SAFETY: zeroed memory is a valid empty heap (pointers null, counts zero).
        let mut heap: std::boxed::Box<Heap> =
            unsafe { std::boxed::Box::new_zeroed().assume_init() };
        heap.init_caps();
        heap
    }

    /// Swings `class` (spill, refill) until its bound stops moving; returns the bound.
    fn swing_to_the_top(heap: &mut Heap, class: usize) -> u32 {
        for _ in 0..8 {
            heap.adapt_cap(class, SlowEvent::Spill);
            heap.adapt_cap(class, SlowEvent::Refill);
        }
        heap.cap(class)
    }

    #[test]
    fn big_classes_move_bigger_batches_and_grow_past_the_class_bound() {
        let mut heap = fresh_heap();
        let big = size_class::class_of(16384);
        assert!(size_class::is_big(big) && !size_class::is_big(size_class::class_of(4096)));
        assert_eq!(size_class::batch_of(big), 4, "64 KiB of 16 KiB objects");
        assert_eq!(heap.cap(big), 4, "a big class starts at one batch");
        assert_eq!(
            swing_to_the_top(&mut heap, big),
            16,
            "four batches, 256 KiB, past the 64 KiB class bound"
        );
        let small = size_class::class_of(4096);
        assert_eq!(
            swing_to_the_top(&mut heap, small) as usize * 4096,
            CLASS_BYTES,
            "classes up to 4 KiB keep the class bound"
        );
    }
}
