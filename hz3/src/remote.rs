//! Remote free: the one way an object reaches a thread other than the one freeing it.
//!
//! - Adoption (both lanes' default): no routing; the freeing thread keeps the object in its own
//!   cache, as tcmalloc and jemalloc do; nothing crosses threads until a bin spills to the shared
//!   pool. Measured 3.5x (fast) and 2.2x (scale) the owner-routed forms on remote-heavy-small.
//! - `remote-inbox`: each remote free is pushed alone onto the owner's per-class inbox, an MPSC
//!   Treiber stack threaded through the objects (one CAS per object), as the C hz3 does. The
//!   owner takes a whole list with one swap on a cache miss (taking everything means no ABA).
//! - `remote-stash`: remote frees collect per (owner, class) in a per-thread stash of
//!   pointer arrays; a full batch is copied into a message block and pushed to the owner with ONE CAS,
//!   and the stash is flushed every `FLUSH_EVERY` remote frees and on cache misses, at most
//!   `FLUSH_BUDGET` messages per call. Nothing is written into the objects.

use crate::heap::Heap;
#[cfg(any(feature = "remote-inbox", feature = "remote-stash"))]
use crate::mpsc;
use crate::probes::Event;

#[cfg(all(feature = "remote-inbox", feature = "remote-stash"))]
compile_error!("hz3: features `remote-inbox` and `remote-stash` are two routings; pick one");

#[cfg(not(any(feature = "remote-inbox", feature = "remote-stash")))]
pub use adopt::{collect, free, return_all, Inbox, Stash};
#[cfg(feature = "remote-inbox")]
pub use per_object::{collect, free, return_all, Inbox, Stash};
#[cfg(feature = "remote-stash")]
pub use stash::{collect, free, return_all, Inbox, Stash};

/// The freeing thread keeps other threads' objects: `api::free` then skips the owner test.
pub const ADOPT: bool = cfg!(not(any(feature = "remote-inbox", feature = "remote-stash")));

/// Counts a free that stays in `me`'s cache; under adoption, one of another thread's objects is
/// also counted as a remote free. Branch-free, and nothing at all without probes.
#[inline(always)]
pub fn count_kept(me: &mut Heap, owner: usize) {
    me.counters.add_own(Event::FreeLocal, 1);
    if ADOPT {
        let foreign = owner != 0 && owner != me as *mut Heap as usize;
        me.counters.add_own(Event::RemoteFree, foreign as u64);
    }
}

/// Sends everything still stashed under the flush budget (on a cache miss).
#[inline]
pub fn flush_some(me: &mut Heap) {
    #[cfg(feature = "remote-stash")]
    if me.stash.nonempty > 0 {
        stash::flush(me, stash::FLUSH_BUDGET);
    }
    #[cfg(not(feature = "remote-stash"))]
    let _ = me;
}

/// Caches `obj` in `me`'s own bin (spilling a batch first when the bin is full).
#[inline]
fn keep(me: &mut Heap, class: usize, obj: *mut u8) {
    if !me.push(class, obj) {
        crate::slow_alloc::spill_and_push(me, class, obj);
    }
}

#[cfg(not(any(feature = "remote-inbox", feature = "remote-stash")))]
mod adopt {
    use super::*;

    /// Nothing is ever sent to a thread.
    pub struct Inbox;
    pub struct Stash;

    /// Not reached: `api::free` keeps every object when `ADOPT`.
    ///
    /// # Safety
    /// As the routed lanes' `free`.
    #[inline]
    pub unsafe fn free(me: &mut Heap, owner: usize, class: usize, obj: *mut u8) {
        count_kept(me, owner);
        keep(me, class, obj);
    }

    #[inline(always)]
    pub fn collect(_me: &mut Heap, _class: usize) -> bool {
        false
    }

    pub fn return_all(_me: &mut Heap) {}
}

#[cfg(feature = "remote-inbox")]
mod per_object {
    use super::*;
    use crate::central;
    use crate::page_map::Node;
    use crate::size_class::NUM_CLASSES;

    pub struct Inbox {
        lists: [mpsc::Stack<Node>; NUM_CLASSES],
    }

    /// No owner-side state in this lane.
    pub struct Stash;

    impl Inbox {
        #[inline(always)]
        fn list(&self, class: usize) -> &mpsc::Stack<Node> {
            // SAFETY: classes come from run tags or `class_of`, both < NUM_CLASSES.
            unsafe { self.lists.get_unchecked(class) }
        }

        fn push(&self, class: usize, node: *mut Node) {
            // SAFETY: the object is being freed and is ours until the CAS publishes it.
            self.list(class).push(node, |old| unsafe {
                (*node).next = crate::failfast::seal_link(node, old)
            });
        }

        /// Takes everything waiting for `class` (owner thread only).
        fn drain(&self, class: usize) -> *mut Node {
            self.list(class).take_all()
        }
    }

    /// Frees `obj` of `class` whose run belongs to heap `owner` (not `me`).
    ///
    /// # Safety
    /// `owner` is a heap address from a run tag, `obj` a live object of `class`.
    #[inline]
    pub unsafe fn free(me: &mut Heap, owner: usize, class: usize, obj: *mut u8) {
        me.counters.add(Event::RemoteFree, 1);
        // SAFETY: heaps are never unmapped, so the tag's owner is a valid heap.
        let owner_heap = unsafe { &*(owner as *const Heap) };
        if !crate::lifecycle::is_active(owner_heap) {
            keep(me, class, obj);
            return;
        }
        owner_heap.inbox.push(class, obj.cast());
        me.counters.add(Event::RemoteEnqueue, 1);
    }

    /// Caches everything other threads sent back for `class` (a full bin spills a batch to the
    /// shared pool first, so objects beyond what this thread needs are not stranded here).
    /// True if the bin holds any now.
    pub fn collect(me: &mut Heap, class: usize) -> bool {
        let mut cur = me.inbox.drain(class);
        if cur.is_null() {
            return false;
        }
        me.counters.add(Event::RemoteDrainCalls, 1);
        let mut moved = 0;
        while !cur.is_null() {
            // SAFETY: inbox objects are free hz3 objects linked through their first word.
            let next = unsafe { crate::failfast::take_link(cur, class) };
            keep(me, class, cur.cast());
            cur = next;
            moved += 1;
        }
        me.counters.add(Event::RemoteDrainObjects, moved);
        true
    }

    /// Thread exit: everything waiting in the inbox goes to the central pool.
    pub fn return_all(me: &mut Heap) {
        for class in 0..NUM_CLASSES {
            central::push_chain(class, me.inbox.drain(class));
        }
    }
}

#[cfg(feature = "remote-stash")]
mod stash {
    use super::*;
    use crate::size_class::{self, BATCH_MAX};

    /// (owner, class) pairs stashed at once (direct-mapped).
    const SLOTS: usize = 64;
    /// Remote frees between two budgeted flushes: bounds how long an object can sit stashed.
    const FLUSH_EVERY: u32 = 64;
    /// Messages sent per budgeted flush.
    pub const FLUSH_BUDGET: usize = 8;

    /// One batch of one class on its way to its owner: a metadata block, never object memory.
    #[repr(C)]
    struct Msg {
        next: *mut Msg,
        class: usize,
        len: usize,
        objs: [*mut u8; BATCH_MAX],
    }

    pub struct Inbox {
        head: mpsc::Stack<Msg>,
    }

    #[derive(Clone, Copy)]
    struct Slot {
        owner: *const Heap,
        class: usize,
        len: usize,
        objs: [*mut u8; BATCH_MAX],
    }

    pub struct Stash {
        slots: [Slot; SLOTS],
        pub nonempty: u32,
        cursor: u32,
        since_flush: u32,
        /// Message blocks this thread received and can reuse for sending.
        spare: *mut Msg,
    }

    #[inline(always)]
    fn slot_of(owner: *const Heap, class: usize) -> usize {
        // Heaps are page aligned: mix the page number with the class.
        (((owner as usize) >> 12).wrapping_mul(0x9E37_79B9) ^ class.wrapping_mul(7)) & (SLOTS - 1)
    }

    /// Frees `obj` of `class` whose run belongs to heap `owner` (not `me`).
    ///
    /// # Safety
    /// `owner` is a heap address from a run tag, `obj` a live object of `class`.
    #[inline]
    pub unsafe fn free(me: &mut Heap, owner: usize, class: usize, obj: *mut u8) {
        me.counters.add(Event::RemoteFree, 1);
        let owner = owner as *const Heap;
        let i = slot_of(owner, class);
        let s = &me.stash.slots[i];
        if s.len > 0 && (s.owner != owner || s.class != class) {
            send(me, i);
        }
        let slot = &mut me.stash.slots[i];
        if slot.len == 0 {
            slot.owner = owner;
            slot.class = class;
            me.stash.nonempty += 1;
        }
        slot.objs[slot.len] = obj;
        slot.len += 1;
        if slot.len >= size_class::batch_of(class) as usize {
            send(me, i);
        }
        me.stash.since_flush += 1;
        if me.stash.since_flush >= FLUSH_EVERY {
            flush(me, FLUSH_BUDGET);
        }
    }

    /// Sends slot `i` to its owner with one CAS (or keeps the objects if the owner's thread exited).
    fn send(me: &mut Heap, i: usize) {
        // SAFETY: stash owners are heap addresses from run tags; heaps are never unmapped.
        if !crate::lifecycle::is_active(unsafe { &*me.stash.slots[i].owner }) {
            let slot = me.stash.slots[i];
            me.stash.slots[i].len = 0;
            me.stash.nonempty -= 1;
            for &obj in &slot.objs[..slot.len] {
                keep(me, slot.class, obj);
            }
            return;
        }
        let mut msg = me.stash.spare;
        if msg.is_null() {
            msg = crate::page_source::meta_alloc(core::mem::size_of::<Msg>()).cast();
            if msg.is_null() {
                crate::os::fail("remote", "out of memory for a remote-free message block");
            }
        } else {
            // SAFETY: spare blocks are ours alone.
            me.stash.spare = unsafe { (*msg).next };
        }
        let slot = &mut me.stash.slots[i];
        let n = slot.len;
        // SAFETY: `msg` is a block of size_of::<Msg>() bytes that only we reference until the CAS.
        unsafe {
            (*msg).class = slot.class;
            (*msg).len = n;
            (&mut (*msg).objs)[..n].copy_from_slice(&slot.objs[..n]);
        }
        // SAFETY: stash owners are heap addresses from run tags; heaps are never unmapped.
        let inbox = unsafe { &(*slot.owner).inbox.head };
        slot.len = 0;
        me.stash.nonempty -= 1;
        // SAFETY: the block is ours until the CAS publishes it.
        inbox.push(msg, |old| unsafe { (*msg).next = old });
        me.counters.add(Event::RemoteEnqueue, 1);
        me.counters.add(Event::RemoteFlushObjects, n as u64);
        me.counters.add(crate::probes::flush_batch_event(n), 1);
    }

    /// Sends at most `budget` messages, continuing round-robin from where the last flush stopped.
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
            if me.stash.slots[i].len > 0 {
                send(me, i);
                sent += 1;
            }
        }
    }

    /// Takes every message waiting for `me` and caches its objects (a full bin spills a batch to
    /// the shared pool first, so objects beyond what this thread needs are not stranded here);
    /// the blocks become spares. True if `class`'s bin holds any now.
    pub fn collect(me: &mut Heap, class: usize) -> bool {
        let mut msg = me.inbox.head.take_all();
        if msg.is_null() {
            return false;
        }
        me.counters.add(Event::RemoteDrainCalls, 1);
        while !msg.is_null() {
            // SAFETY: drained blocks are ours; each holds `len` hz3 objects freed to us.
            unsafe {
                let next = (*msg).next;
                let n = (*msg).len;
                let c = (*msg).class;
                for k in 0..n {
                    keep(me, c, (*msg).objs[k]);
                }
                me.counters.add(Event::RemoteDrainObjects, n as u64);
                (*msg).next = me.stash.spare;
                me.stash.spare = msg;
                msg = next;
            }
        }
        me.bin(class).count > 0
    }

    /// Thread exit: sends the whole stash and caches what waits in the inbox (the caller then
    /// returns the bins to the central pool).
    pub fn return_all(me: &mut Heap) {
        flush(me, usize::MAX);
        collect(me, 0);
    }
}
