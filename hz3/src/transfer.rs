//! Transfer cache (scale lane): per-class slots of whole batches (arrays of object pointers) in
//! front of the central pool, so a spill or a refill moves a batch with one short lock hold, no
//! per-object run bookkeeping and no write into the objects themselves.
//!
//! Per class, a stack of batches; a refill takes the top one unless a batch its own thread spilled
//! lies within the top `OWN_SCAN`, which it takes instead (the top batch moves into its slot).
//! Who spilled is known only for the batches in that window, kept beside the lock:
//!
//! ```text
//!   BATCHES[c]  [ . ][ . ][ . ][ . ][ . ][ . ]   <- top (len - 1)
//!   recent                [ 0 ][ A ][ B ][ B ]       (recent[0] is the top's; 0: not known)
//!   refill by A:                 ^ taken; the top B batch fills its slot, the window moves down
//! ```

use crate::central;
use crate::lock::Mutex;
use crate::probes::{self, Event, LockSite};
use crate::size_class::{BATCH_MAX, NUM_CLASSES};
use core::cell::UnsafeCell;
use core::ptr;

/// Batches held per class. Deep enough for the bursts of many threads on few cores: a thread that
/// gets its core back frees everything its ring collected and spills in bulk, and what does not
/// fit goes to the central pool, which files every object into its run under the class lock. On
/// remote-90, 32 slots sent 38-41% of spills there, 128 slots 13%, 512 slots 3% (docs/decisions.md,
/// `wide-transfer`). Idle batches still go back to the central pool at each decay pass, so depth
/// does not pin memory a steady program stops using.
const SLOTS: usize = 512;

#[derive(Clone, Copy)]
struct Batch {
    len: u32,
    objs: [*mut u8; BATCH_MAX],
}

/// How many batches from the top a refill looks through for one its own heap spilled before it
/// takes the top one. A batch spilled by another thread holds objects that thread last wrote: the
/// program's first write to each is a line fetched from another core. Two threads trading batches
/// of a class through the stack took the other's batch about a third of the time on a local 2-thread
/// workload of 1-2 KiB objects (`transfer.foreign`), none with the scan (docs/decisions.md,
/// `own-batches`).
const OWN_SCAN: usize = 4;

/// A class's fill, behind its lock; the batches themselves live in `BATCHES[class]`.
struct Slots {
    class: usize,
    len: usize,
    /// The fewest batches waiting since the last decay pass: that many sat unused all along.
    low: usize,
    /// Who spilled the top batches (`owner_id`): `recent[0]` the top one, `recent[1]` the one under
    /// it, and so on; 0 where not known (a batch that sank below the window). Beside the lock, so
    /// knowing costs no memory per batch (an array of owners per class touched pages that never
    /// went back: 92 KiB more RSS after the decay check).
    recent: [u32; OWN_SCAN],
}

impl Slots {
    /// This class's batch storage.
    #[inline(always)]
    fn batches(&mut self) -> &mut [Batch; SLOTS] {
        // SAFETY: the `Slots` of class c is reached only through `CACHES[c]`'s guard, so `&mut self`
        // means this thread holds that lock, the only way to `BATCHES[c]`.
        unsafe { &mut *BATCHES.get_unchecked(self.class).0.get() }
    }

    /// A batch spilled by `id` went on top.
    #[inline(always)]
    fn note_pushed(&mut self, id: u32) {
        self.recent.copy_within(0..OWN_SCAN - 1, 1);
        self.recent[0] = id;
    }

    /// The batch `depth` below the top left (0: the top one; else the top batch moved into its
    /// slot).
    #[inline(always)]
    fn note_taken(&mut self, depth: usize) {
        let top = self.recent[0];
        self.recent.copy_within(1..OWN_SCAN, 0);
        self.recent[OWN_SCAN - 1] = 0;
        if let Some(moved) = depth.checked_sub(1).and_then(|d| self.recent.get_mut(d)) {
            *moved = top;
        }
    }

    /// How far below the top lies the highest batch `id` spilled, within the window (`top` the
    /// highest filled slot).
    #[inline(always)]
    fn own_depth(&self, top: usize, id: u32) -> Option<usize> {
        self.recent.iter().take(top + 1).position(|&o| o == id)
    }
}

/// A heap's id in `Slots::recent`: its page number, never 0. Truncation may let two heaps share an
/// id; the cost is only a batch taken that was not this thread's.
#[inline(always)]
fn owner_id(owner: usize) -> u32 {
    ((owner >> 12) as u32) | 1
}

/// One class's batches. Kept out of the mutex so the 5 MiB of them start all zero (`.bss`): the
/// mutex's site tag is not zero, and would pull the whole static into the library's `.data`.
struct Storage(UnsafeCell<[Batch; SLOTS]>);

// SAFETY: `Storage` is reached only through `Slots::batches`, under its class's lock; the pointers
// are free hz3 objects nobody else references.
unsafe impl Sync for Storage {}

const EMPTY_BATCH: Batch = Batch {
    len: 0,
    objs: [ptr::null_mut(); BATCH_MAX],
};

static BATCHES: [Storage; NUM_CLASSES] =
    [const { Storage(UnsafeCell::new([EMPTY_BATCH; SLOTS])) }; NUM_CLASSES];

/// Class `class`'s empty cache.
const fn empty_cache(class: usize) -> Mutex<Slots> {
    Mutex::new(
        Some(LockSite::Transfer),
        Slots {
            class,
            len: 0,
            low: 0,
            recent: [0; OWN_SCAN],
        },
    )
}

static CACHES: [Mutex<Slots>; NUM_CLASSES] = {
    let mut caches = [const { empty_cache(0) }; NUM_CLASSES];
    let mut class = 1;
    while class < NUM_CLASSES {
        caches[class] = empty_cache(class);
        class += 1;
    }
    caches
};

#[inline(always)]
fn cache(class: usize) -> &'static Mutex<Slots> {
    // SAFETY: classes come from `class_of` or a run tag, both < NUM_CLASSES.
    unsafe { CACHES.get_unchecked(class) }
}

/// Hands a batch (at most BATCH_MAX objects) to the transfer cache, or to the central pool when
/// the cache is full.
pub fn push(class: usize, objs: &[*mut u8], owner: usize) {
    let n = objs.len().min(BATCH_MAX);
    let mut slots = cache(class).lock();
    if slots.len < SLOTS {
        let i = slots.len;
        // SAFETY: i < SLOTS, tested above.
        let batch = unsafe { slots.batches().get_unchecked_mut(i) };
        batch.len = n as u32;
        batch.objs[..n].copy_from_slice(&objs[..n]);
        slots.note_pushed(owner_id(owner));
        slots.len += 1;
        drop(slots);
        crate::stats::transfer(class, n as isize);
        probes::here(|c| c.add(Event::TransferPush, 1));
        central::push(class, &objs[n..]);
        return;
    }
    drop(slots);
    probes::here(|c| c.add(Event::TransferPushFull, 1));
    central::push(class, objs);
}

/// A whole batch if one is waiting; otherwise up to `want` objects from the central pool.
///
/// # Safety
/// `out` must have room for BATCH_MAX and `want` pointers.
pub unsafe fn pop(class: usize, out: *mut *mut u8, want: u32, owner: usize) -> u32 {
    let mut slots = cache(class).lock();
    if slots.len > 0 {
        slots.len -= 1;
        let top = slots.len;
        let id = owner_id(owner);
        let depth = slots.own_depth(top, id).unwrap_or(0);
        if cfg!(feature = "probes") && slots.recent[depth] != id {
            probes::here(|c| c.add(Event::TransferForeign, 1));
        }
        slots.note_taken(depth);
        let take = top - depth;
        slots.low = slots.low.min(take);
        let batches = slots.batches();
        // SAFETY: take <= top < SLOTS (push fills only below SLOTS).
        let b = unsafe { batches.get_unchecked(take) };
        let n = b.len;
        // SAFETY: `out` has room for BATCH_MAX entries per the contract.
        unsafe { ptr::copy_nonoverlapping(b.objs.as_ptr(), out, n as usize) };
        if take != top {
            // The top batch fills the slot taken from.
            // SAFETY: take < top < SLOTS.
            unsafe { *batches.get_unchecked_mut(take) = *batches.get_unchecked(top) };
        }
        drop(slots);
        crate::stats::transfer(class, -(n as isize));
        probes::here(|c| c.add(Event::TransferHit, 1));
        return n;
    }
    drop(slots);
    probes::here(|c| c.add(Event::TransferMiss, 1));
    // SAFETY: forwarded contract.
    unsafe { central::pop(class, out, want, owner) }
}

/// Moves every waiting batch to the central pool (malloc_trim), so empty runs can be returned.
pub fn drain_to_central() {
    drain(|_| usize::MAX);
}

/// A decay pass (`decay::tick`): batches that waited unused since the last pass go to the central
/// pool, so the runs they keep can empty and be returned by decay in turn.
pub fn decay() {
    drain(|slots| slots.low);
}

/// Moves up to `count(slots)` batches of each class to the central pool (one lock hold per batch)
/// and restarts each class's low-water mark.
fn drain(count: impl Fn(&Slots) -> usize) {
    for (class, cache) in CACHES.iter().enumerate() {
        let mut left = count(&cache.lock());
        loop {
            let mut slots = cache.lock();
            if slots.len == 0 || left == 0 {
                slots.low = slots.len;
                break;
            }
            slots.len -= 1;
            slots.note_taken(0);
            left -= 1;
            let at = slots.len;
            // SAFETY: at < SLOTS (push fills only below SLOTS).
            let b = unsafe { *slots.batches().get_unchecked(at) };
            drop(slots);
            crate::stats::transfer(class, -(b.len as isize));
            // SAFETY: a batch's len <= BATCH_MAX (push clamps it).
            central::push(class, unsafe { b.objs.get_unchecked(..b.len as usize) });
        }
    }
}

pub fn fork_acquire() {
    CACHES.iter().for_each(|c| c.fork_acquire());
}
pub fn fork_release() {
    CACHES.iter().for_each(|c| c.fork_release());
}
pub fn fork_reset() {
    CACHES.iter().for_each(|c| c.fork_reset());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Shadow model: a plain stack of owner ids, moved exactly as `pop` moves batches. Whatever the
    /// window says it knows must match the stack, and a refill that finds its own id must be given a
    /// batch that id spilled.
    #[test]
    fn the_window_of_owners_agrees_with_a_shadow_stack() {
        let mut slots = Slots {
            class: 0,
            len: 0,
            low: 0,
            recent: [0; OWN_SCAN],
        };
        let mut shadow: Vec<u32> = Vec::new();
        let ids = [owner_id(0x1000), owner_id(0x9000), owner_id(0x31000)];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = ids[(x % 3) as usize];
            if shadow.is_empty() || (x >> 8) & 1 == 0 {
                slots.note_pushed(id);
                shadow.push(id);
            } else {
                let top = shadow.len() - 1;
                let found = slots.own_depth(top, id);
                let depth = found.unwrap_or(0);
                if found.is_some() {
                    assert_eq!(
                        shadow[top - depth],
                        id,
                        "step {step}: not the refiller's batch"
                    );
                } else {
                    let known_own = (0..OWN_SCAN.min(top + 1))
                        .any(|d| slots.recent[d] != 0 && shadow[top - d] == id);
                    assert!(
                        !known_own,
                        "step {step}: an own batch in the window was missed"
                    );
                }
                slots.note_taken(depth);
                shadow.swap_remove(top - depth);
            }
            for (d, &known) in slots.recent.iter().enumerate() {
                if d < shadow.len() {
                    let owner = shadow[shadow.len() - 1 - d];
                    assert!(known == 0 || known == owner, "step {step}: depth {d}");
                } else {
                    assert_eq!(known, 0, "step {step}: an owner below the bottom");
                }
            }
        }
    }
}
