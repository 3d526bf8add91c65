//! Transfer cache (scale lane): per-class slots of whole batches (arrays of object pointers) in
//! front of the central pool, so a spill or a refill moves a batch with one short lock hold, no
//! per-object run bookkeeping and no write into the objects themselves.
//!
//! Per class, a stack of batches; a refill takes the top one unless a batch its own thread spilled
//! lies within the top `OWN_SCAN`, which it takes instead (the top batch moves into its slot):
//!
//! ```text
//!   OWNERS[c]  [ A ][ B ][ A ][ B ][ B ]   <- top (len - 1)
//!   refill by A:           ^ taken; the top B batch fills its slot
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
/// `own-batches`). Four owners are one line.
const OWN_SCAN: usize = 4;

/// A class's fill, behind its lock; the batches themselves live in `BATCHES[class]`, who spilled
/// them in `OWNERS[class]`.
struct Slots {
    class: usize,
    len: usize,
    /// The fewest batches waiting since the last decay pass: that many sat unused all along.
    low: usize,
}

impl Slots {
    /// This class's batch storage.
    #[inline(always)]
    fn batches(&mut self) -> &mut [Batch; SLOTS] {
        // SAFETY: the `Slots` of class c is reached only through `CACHES[c]`'s guard, so `&mut self`
        // means this thread holds that lock, the only way to `BATCHES[c]` and `OWNERS[c]`.
        unsafe { &mut *BATCHES.get_unchecked(self.class).0.get() }
    }

    /// Which heap spilled each batch, apart from the batches so a scan of the top few reads one
    /// line.
    #[inline(always)]
    fn owners(&mut self) -> &mut [usize; SLOTS] {
        // SAFETY: as in `batches`.
        unsafe { &mut *OWNERS.get_unchecked(self.class).0.get() }
    }
}

/// A class's batches, or their owners. Kept out of the mutex so they start all zero (`.bss`): the
/// mutex's site tag is not zero, and would pull the whole static (5 MiB of batches) into the
/// library's `.data`.
struct Storage<T>(UnsafeCell<T>);

// SAFETY: `Storage` is reached only through `Slots::batches` and `Slots::owners`, under its class's
// lock; the pointers are free hz3 objects nobody else references, the owners plain numbers.
unsafe impl<T> Sync for Storage<T> {}

const EMPTY_BATCH: Batch = Batch {
    len: 0,
    objs: [ptr::null_mut(); BATCH_MAX],
};

static BATCHES: [Storage<[Batch; SLOTS]>; NUM_CLASSES] =
    [const { Storage(UnsafeCell::new([EMPTY_BATCH; SLOTS])) }; NUM_CLASSES];

/// The heap (its address) that spilled each batch: a refill looks for its own near the top.
static OWNERS: [Storage<[usize; SLOTS]>; NUM_CLASSES] =
    [const { Storage(UnsafeCell::new([0; SLOTS])) }; NUM_CLASSES];

/// Class `class`'s empty cache.
const fn empty_cache(class: usize) -> Mutex<Slots> {
    Mutex::new(
        Some(LockSite::Transfer),
        Slots {
            class,
            len: 0,
            low: 0,
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
        // SAFETY: i < SLOTS, as above.
        unsafe { *slots.owners().get_unchecked_mut(i) = owner };
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
        let take = own_batch_near_top(&mut slots, top, owner).unwrap_or(top);
        slots.low = slots.low.min(take);
        // SAFETY: take <= top < SLOTS.
        if cfg!(feature = "probes") && unsafe { *slots.owners().get_unchecked(take) } != owner {
            probes::here(|c| c.add(Event::TransferForeign, 1));
        }
        let batches = slots.batches();
        // SAFETY: take <= top < SLOTS (push fills only below SLOTS).
        let b = unsafe { batches.get_unchecked(take) };
        let n = b.len;
        // SAFETY: `out` has room for BATCH_MAX entries per the contract.
        unsafe { ptr::copy_nonoverlapping(b.objs.as_ptr(), out, n as usize) };
        if take != top {
            // The top batch fills the slot taken from.
            // SAFETY: take < top < SLOTS.
            unsafe {
                *batches.get_unchecked_mut(take) = *batches.get_unchecked(top);
                let owners = slots.owners();
                *owners.get_unchecked_mut(take) = *owners.get_unchecked(top);
            }
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

/// The highest of the top `OWN_SCAN` batches (`top` the highest filled slot) that `owner` spilled.
fn own_batch_near_top(slots: &mut Slots, top: usize, owner: usize) -> Option<usize> {
    let owners = slots.owners();
    (top.saturating_sub(OWN_SCAN - 1)..=top)
        .rev()
        // SAFETY: every index is <= top < SLOTS.
        .find(|&i| unsafe { *owners.get_unchecked(i) } == owner)
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
