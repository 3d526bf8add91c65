//! Thread cache: one `Heap` per thread, holding bounded per-class free lists that only the owning
//! thread touches (no lock, no atomic RMW), next to the per-class inbox other threads push remote
//! frees into and, in the scale lane, the stash of remote frees waiting to be batched.
//!
//! Heaps are mapped page-aligned and never unmapped: run tags name them as owners, so a late remote
//! free to a thread that has exited still lands in a live inbox.

use crate::central::Chain;
use crate::page_map::Node;
use crate::probes::{Counters, Event};
use crate::remote::{Inbox, Stash};
use crate::size_class::{self, NUM_CLASSES};
use core::ptr;
use core::sync::atomic::AtomicU32;

/// Upper bound on one class's cache in bytes: keeps a thread's cache within a few hundred KiB
/// for the classes a workload really uses, so 32 threads do not bloat RSS.
const CLASS_BYTES: usize = 32 * 1024;

#[repr(C)]
pub struct Bin {
    pub head: *mut Node,
    /// Objects pushed minus objects popped since the bin was last filled. Chains drained from the
    /// inbox are installed uncounted (counting them means walking cold objects), so this may go
    /// negative; it only decides when to spill.
    pub count: i32,
    pub cap: i32,
}

#[repr(C, align(4096))]
pub struct Heap {
    pub bins: [Bin; NUM_CLASSES],
    pub stash: Stash,
    pub counters: Counters,
    pub inbox: Inbox,
    // Registry fields, changed under the registry lock.
    pub state: AtomicU32,
    pub tid: u64,
    pub all_next: *mut Heap,
    pub free_next: *mut Heap,
}

impl Heap {
    /// Sets a freshly mapped (all-zero) heap's cache bounds.
    pub fn init_caps(&mut self) {
        for (class, bin) in self.bins.iter_mut().enumerate() {
            let batch = size_class::batch_of(class) as usize;
            let by_bytes = CLASS_BYTES / size_class::size_of(class);
            bin.cap = (4 * batch).min(by_bytes).max(batch) as i32;
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
        let obj = bin.head;
        if obj.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: cached objects are free hz3 objects whose first word is the list link.
        bin.head = unsafe { (*obj).next };
        bin.count -= 1;
        self.counters.add(Event::MallocCacheHit, 1);
        obj.cast()
    }

    /// Pushes a freed object of `class`; true when the bin went over its cap and must spill.
    #[inline(always)]
    pub fn push(&mut self, class: usize, obj: *mut u8) -> bool {
        let bin = self.bin(class);
        let node = obj.cast::<Node>();
        // SAFETY: the object is free and at least 16 bytes; its first word becomes the link.
        unsafe { (*node).next = bin.head };
        bin.head = node;
        bin.count += 1;
        let over = bin.count > bin.cap;
        self.counters.add(Event::FreeLocal, 1);
        over
    }

    /// Installs `chain` as the (empty) bin's content; `chain.count` may be 0 for an uncounted chain.
    pub fn fill(&mut self, class: usize, chain: Chain) {
        let bin = self.bin(class);
        bin.head = chain.head;
        bin.count = chain.count as i32;
    }

    /// Detaches the whole bin (uncounted chain).
    pub fn take_all(&mut self, class: usize) -> Chain {
        let bin = self.bin(class);
        let head = bin.head;
        bin.head = ptr::null_mut();
        bin.count = 0;
        Chain { head, count: 0 }
    }

    /// Detaches up to `n` objects from the top of the bin.
    pub fn take(&mut self, class: usize, n: u32) -> Chain {
        let bin = self.bin(class);
        let head = bin.head;
        let mut last = ptr::null_mut::<Node>();
        let mut cur = head;
        let mut taken = 0;
        while taken < n && !cur.is_null() {
            last = cur;
            // SAFETY: bin objects are free hz3 objects linked through their first word.
            cur = unsafe { (*cur).next };
            taken += 1;
        }
        if last.is_null() {
            return Chain::EMPTY;
        }
        // SAFETY: `last` is the n-th object of the list; cutting after it ends the chain.
        unsafe { (*last).next = ptr::null_mut() };
        bin.head = cur;
        bin.count -= taken as i32;
        Chain { head, count: taken }
    }
}
