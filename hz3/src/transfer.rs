//! Transfer cache (scale lane): per-class slots of whole batches (arrays of object pointers) in
//! front of the central pool, so a spill or a refill moves a batch with one short lock hold, no
//! per-object run bookkeeping and no write into the objects themselves.

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

/// A/B `own-batches`: how many batches from the top a refill looks through for one its own heap
/// spilled (whose objects' lines that core wrote last) before it takes the top one.
const OWN_SCAN: usize = 4;

/// A class's fill, behind its lock; the batches themselves live in `BATCHES[class]`.
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
        // means this thread holds that lock, the only way to `BATCHES[c]`.
        unsafe { &mut *BATCHES.get_unchecked(self.class).0.get() }
    }

    /// Which heap spilled each batch (A/B `own-batches`), beside the batches so a scan of the top
    /// few reads one line.
    #[inline(always)]
    fn owners(&mut self) -> &mut [usize; SLOTS] {
        // SAFETY: as in `batches`.
        unsafe { &mut *OWNERS.get_unchecked(self.class).0.get() }
    }
}

struct OwnerStorage(UnsafeCell<[usize; SLOTS]>);
// SAFETY: reached only through `Slots::owners`, under its class's lock.
unsafe impl Sync for OwnerStorage {}
static OWNERS: [OwnerStorage; NUM_CLASSES] =
    [const { OwnerStorage(UnsafeCell::new([0; SLOTS])) }; NUM_CLASSES];

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
        if cfg!(any(feature = "own-batches", feature = "probes")) {
            // SAFETY: i < SLOTS, as above.
            unsafe { *slots.owners().get_unchecked_mut(i) = owner };
        }
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
        let at = slots.len;
        let mut lowest_moved = at;
        if cfg!(feature = "own-batches") {
            let owners = slots.owners();
            let first = at.saturating_sub(OWN_SCAN - 1);
            // SAFETY: first..=at < SLOTS, filled slots.
            let mine = (first..=at)
                .rev()
                .find(|&i| unsafe { *owners.get_unchecked(i) } == owner);
            if let Some(mine) = mine.filter(|&i| i != at) {
                // The batch found moves to the top, the top batch into its slot.
                owners.swap(mine, at);
                slots.batches().swap(mine, at);
                lowest_moved = mine;
            }
        }
        slots.low = slots.low.min(lowest_moved);
        if cfg!(feature = "probes") && slots.owners()[at] != owner {
            probes::here(|c| c.add(Event::TransferForeign, 1));
        }
        // SAFETY: at < SLOTS (push fills only below SLOTS).
        let b = unsafe { slots.batches().get_unchecked(at) };
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
