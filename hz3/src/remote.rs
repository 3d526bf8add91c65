//! Remote free: the one way an object reaches a thread other than the one freeing it.
//!
//! Every heap has a per-class inbox, an MPSC Treiber stack: producers CAS-push, the owner takes the
//! whole list with one swap when its cache misses (taking everything at once means no ABA).
//! - `fast` lane: each remote free is pushed alone (one CAS per object), as the C hz3 does.
//! - `scale` lane: remote frees collect in a per-thread stash keyed by (owner, class); a chain goes
//!   to its owner with ONE CAS when it reaches a batch, and the whole stash is flushed every
//!   `FLUSH_EVERY` remote frees and on cache misses, at most `FLUSH_BUDGET` chains per call.
//! - `scale-adopt` never routes: the freeing thread keeps the object (see `api::free`).

use crate::central::Chain;
use crate::heap::Heap;
use crate::page_map::Node;
use crate::probes::Event;
use crate::size_class::NUM_CLASSES;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

pub struct Inbox {
    lists: [AtomicPtr<Node>; NUM_CLASSES],
}

impl Inbox {
    #[inline(always)]
    fn list(&self, class: usize) -> &AtomicPtr<Node> {
        // SAFETY: classes come from run tags or `class_of`, both < NUM_CLASSES.
        unsafe { self.lists.get_unchecked(class) }
    }

    /// Pushes the chain `head..=tail` with one CAS (per retry).
    fn push_chain(&self, class: usize, head: *mut Node, tail: *mut Node) {
        let list = self.list(class);
        let mut old = list.load(Ordering::Relaxed);
        loop {
            // SAFETY: the chain is ours until the CAS publishes it.
            unsafe { (*tail).next = old };
            match list.compare_exchange_weak(old, head, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => old = now,
            }
        }
    }

    /// Takes everything waiting for `class` (owner thread only). The chain is uncounted
    /// (`count == 0`): walking thousands of cold objects just to count them cost a fifth of the
    /// remote-heavy run. Probes builds count them (`counted`) for the drain counter.
    pub fn drain(&self, class: usize) -> Chain {
        let list = self.list(class);
        if list.load(Ordering::Relaxed).is_null() {
            return Chain::EMPTY;
        }
        Chain {
            head: list.swap(ptr::null_mut(), Ordering::Acquire),
            count: 0,
        }
    }
}

/// Objects in a null-terminated chain (a walk: for counters and tests only).
#[cfg(any(test, feature = "probes"))]
pub fn counted(head: *mut Node) -> u64 {
    let mut count = 0;
    let mut cur = head;
    while !cur.is_null() {
        count += 1;
        // SAFETY: chain objects are free hz3 objects linked through their first word.
        cur = unsafe { (*cur).next };
    }
    count
}

impl Inbox {}

/// Frees `obj` of `class` whose run belongs to heap `owner` (not `me`).
///
/// # Safety
/// `me` is the calling thread's heap, `owner` a heap address from a run tag, `obj` a live object.
#[inline]
pub unsafe fn free(me: &mut Heap, owner: usize, class: usize, obj: *mut u8) {
    me.counters.add(Event::RemoteFree, 1);
    // SAFETY: heaps are never unmapped, so the tag's owner is a valid heap.
    let owner_heap = unsafe { &*(owner as *const Heap) };
    let node = obj.cast::<Node>();
    #[cfg(not(feature = "remote-stash"))]
    {
        owner_heap.inbox.push_chain(class, node, node);
        me.counters.add(Event::RemoteEnqueue, 1);
    }
    #[cfg(feature = "remote-stash")]
    stash::put(me, owner_heap, class, node);
}

/// Sends everything still stashed (thread exit, trim).
pub fn flush_all(me: &mut Heap) {
    #[cfg(feature = "remote-stash")]
    stash::flush(me, usize::MAX);
    #[cfg(not(feature = "remote-stash"))]
    let _ = me;
}

/// Budgeted flush on a cache miss.
#[inline]
pub fn flush_some(me: &mut Heap) {
    #[cfg(feature = "remote-stash")]
    if me.stash.nonempty > 0 {
        stash::flush(me, stash::FLUSH_BUDGET);
    }
    #[cfg(not(feature = "remote-stash"))]
    let _ = me;
}

#[cfg(not(feature = "remote-stash"))]
pub struct Stash;

#[cfg(feature = "remote-stash")]
pub use stash::Stash;

#[cfg(feature = "remote-stash")]
mod stash {
    use super::*;
    use crate::size_class;

    const SLOTS: usize = 64;
    /// Remote frees between two budgeted flushes: bounds how long an object can sit stashed.
    const FLUSH_EVERY: u32 = 64;
    /// Chains sent per budgeted flush.
    pub const FLUSH_BUDGET: usize = 8;

    #[derive(Clone, Copy)]
    struct Slot {
        owner: *const Heap,
        class: u32,
        count: u32,
        head: *mut Node,
        tail: *mut Node,
    }

    pub struct Stash {
        slots: [Slot; SLOTS],
        pub nonempty: u32,
        cursor: u32,
        since_flush: u32,
    }

    #[inline(always)]
    fn slot_of(owner: *const Heap, class: usize) -> usize {
        // Heaps are page aligned: mix the page number with the class.
        (((owner as usize) >> 12).wrapping_mul(0x9E37_79B9) ^ class.wrapping_mul(7)) & (SLOTS - 1)
    }

    pub fn put(me: &mut Heap, owner: &Heap, class: usize, node: *mut Node) {
        let i = slot_of(owner, class);
        let owner_ptr = owner as *const Heap;
        let s = me.stash.slots[i];
        if s.count > 0 && (s.owner != owner_ptr || s.class as usize != class) {
            send(me, i);
        }
        let slot = &mut me.stash.slots[i];
        if slot.count == 0 {
            slot.owner = owner_ptr;
            slot.class = class as u32;
            slot.tail = node;
            // SAFETY: the object is free; its first word becomes the chain link.
            unsafe { (*node).next = ptr::null_mut() };
            me.stash.nonempty += 1;
        } else {
            // SAFETY: as above.
            unsafe { (*node).next = slot.head };
        }
        slot.head = node;
        slot.count += 1;
        if slot.count >= size_class::batch_of(class) {
            send(me, i);
        }
        me.stash.since_flush += 1;
        if me.stash.since_flush >= FLUSH_EVERY {
            flush(me, FLUSH_BUDGET);
        }
    }

    /// Sends slot `i`'s chain to its owner with one CAS.
    fn send(me: &mut Heap, i: usize) {
        let slot = &mut me.stash.slots[i];
        let n = slot.count;
        // SAFETY: stash owners are heap addresses from run tags; heaps are never unmapped.
        let owner = unsafe { &*slot.owner };
        owner
            .inbox
            .push_chain(slot.class as usize, slot.head, slot.tail);
        slot.count = 0;
        slot.head = ptr::null_mut();
        me.stash.nonempty -= 1;
        me.counters.add(Event::RemoteEnqueue, 1);
        me.counters.add(Event::RemoteFlushObjects, n as u64);
        me.counters
            .add(crate::probes::flush_batch_event(n as usize), 1);
    }

    /// Sends at most `budget` chains, continuing round-robin from where the last flush stopped.
    pub fn flush(me: &mut Heap, budget: usize) {
        me.stash.since_flush = 0;
        me.counters.add(Event::RemoteFlush, 1);
        let mut sent = 0;
        let mut scanned = 0;
        while me.stash.nonempty > 0 && scanned < SLOTS {
            if sent == budget {
                me.counters.add(Event::RemoteFlushBudgetStop, 1);
                return;
            }
            let i = me.stash.cursor as usize & (SLOTS - 1);
            me.stash.cursor = me.stash.cursor.wrapping_add(1);
            scanned += 1;
            if me.stash.slots[i].count > 0 {
                send(me, i);
                sent += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_drain_counts_and_empties() {
        let inbox = Inbox {
            lists: [const { AtomicPtr::new(ptr::null_mut()) }; NUM_CLASSES],
        };
        let mut nodes = [const {
            Node {
                next: ptr::null_mut(),
            }
        }; 5];
        let base = nodes.as_mut_ptr();
        // SAFETY: test-local nodes; chains of one and of four.
        unsafe {
            inbox.push_chain(3, base, base);
            for i in 1..4 {
                (*base.add(i)).next = base.add(i + 1);
            }
            inbox.push_chain(3, base.add(1), base.add(4));
        }
        assert!(inbox.drain(2).head.is_null());
        let got = inbox.drain(3);
        assert_eq!(counted(got.head), 5);
        assert_eq!(got.head, unsafe { base.add(1) });
        assert!(inbox.drain(3).head.is_null());
    }
}
