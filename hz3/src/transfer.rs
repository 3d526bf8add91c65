//! Transfer cache (scale lane): per-class slots of whole batches (arrays of object pointers) in
//! front of the central pool, so a spill or a refill moves a batch with one short lock hold, no
//! per-object run bookkeeping and no write into the objects themselves.

use crate::central;
use crate::lock::Mutex;
use crate::probes::{self, Event, LockSite};
use crate::size_class::{BATCH_MAX, NUM_CLASSES};
use core::ptr;

/// Batches held per class. Bounded so that idle batches do not pin much memory; overflow goes on
/// to the central pool, where empty runs can be returned. `home-runs` keys batches by owner, so a
/// class holds some for every thread: with 32, half of all batches overflowed into the central
/// pool at 2 threads (transfer.push_full 0.0051 of 0.0103 pushes/op), with 128 a tenth.
const SLOTS: usize = if crate::config::HOME { 128 } else { 32 };

#[derive(Clone, Copy)]
struct Batch {
    len: u32,
    objs: [*mut u8; BATCH_MAX],
}

struct Slots {
    len: usize,
    /// The fewest batches waiting since the last decay pass: that many sat unused all along.
    low: usize,
    /// `home-runs`: whose runs each batch's objects are from (apart from the batches, so that a
    /// refill's search reads a few lines, not one per batch).
    owners: [usize; SLOTS],
    batches: [Batch; SLOTS],
}

// SAFETY: the pointers are free hz3 objects nobody else references; the mutex serialises access.
unsafe impl Send for Slots {}

const EMPTY_BATCH: Batch = Batch {
    len: 0,
    objs: [ptr::null_mut(); BATCH_MAX],
};

static CACHES: [Mutex<Slots>; NUM_CLASSES] = [const {
    Mutex::new(
        Some(LockSite::Transfer),
        Slots {
            len: 0,
            low: 0,
            owners: [0; SLOTS],
            batches: [EMPTY_BATCH; SLOTS],
        },
    )
}; NUM_CLASSES];

#[inline(always)]
fn cache(class: usize) -> &'static Mutex<Slots> {
    // SAFETY: classes come from `class_of` or a run tag, both < NUM_CLASSES.
    unsafe { CACHES.get_unchecked(class) }
}

/// Hands a batch (at most BATCH_MAX objects) of `owner`'s to the transfer cache, or to the central
/// pool when the cache is full.
pub fn push(class: usize, objs: &[*mut u8], owner: usize) {
    let n = objs.len().min(BATCH_MAX);
    let mut slots = cache(class).lock();
    if slots.len < SLOTS {
        let i = slots.len;
        slots.batches[i].len = n as u32;
        if crate::config::HOME {
            slots.owners[i] = owner;
        }
        slots.batches[i].objs[..n].copy_from_slice(&objs[..n]);
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
    let pick = if crate::config::HOME {
        own_batch(&mut slots, owner)
    } else {
        slots.len > 0
    };
    if pick {
        slots.len -= 1;
        slots.low = slots.low.min(slots.len);
        // SAFETY: len < SLOTS after the decrement (push fills only below SLOTS).
        let b = unsafe { slots.batches.get_unchecked(slots.len) };
        // SAFETY: `out` has room for BATCH_MAX entries per the contract.
        unsafe { ptr::copy_nonoverlapping(b.objs.as_ptr(), out, b.len as usize) };
        let n = b.len;
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

/// `home-runs`: moves the newest batch of `owner`'s to the top, if there is one (false if none:
/// another heap's objects are never handed out here).
fn own_batch(slots: &mut Slots, owner: usize) -> bool {
    let Some(i) = slots.owners[..slots.len].iter().rposition(|&o| o == owner) else {
        return false;
    };
    let top = slots.len - 1;
    slots.batches.swap(i, top);
    slots.owners.swap(i, top);
    true
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
            left -= 1;
            // SAFETY: len < SLOTS after the decrement (push fills only below SLOTS).
            let b = unsafe { *slots.batches.get_unchecked(slots.len) };
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
