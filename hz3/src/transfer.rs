//! Transfer cache (scale lane): per-class slots of whole batches in front of the central pool,
//! so a spill or a refill moves a batch with one short lock hold and no per-object work.

use crate::central::{self, Chain};
use crate::lock::Mutex;
use crate::probes::{self, Event, LockSite};
use crate::size_class::NUM_CLASSES;

/// Batches held per class. Bounded so that idle batches do not pin much memory; overflow goes on
/// to the central pool, where empty runs can be returned.
const SLOTS: usize = 16;

struct Slots {
    len: usize,
    batches: [Chain; SLOTS],
}

// SAFETY: chains are hz3 objects nobody else references; the mutex serialises access.
unsafe impl Send for Slots {}

static CACHES: [Mutex<Slots>; NUM_CLASSES] = [const {
    Mutex::new(
        Some(LockSite::Transfer),
        Slots {
            len: 0,
            batches: [Chain::EMPTY; SLOTS],
        },
    )
}; NUM_CLASSES];

/// Hands a batch to the transfer cache, or to the central pool when the cache is full.
pub fn push(class: usize, chain: Chain) {
    let mut slots = CACHES[class].lock();
    if slots.len < SLOTS {
        let i = slots.len;
        slots.batches[i] = chain;
        slots.len += 1;
        drop(slots);
        probes::here(|c| c.add(Event::TransferPush, 1));
        return;
    }
    drop(slots);
    probes::here(|c| c.add(Event::TransferPushFull, 1));
    central::push(class, chain);
}

/// A whole batch if one is waiting; otherwise `want` objects from the central pool.
pub fn pop(class: usize, want: u32, owner: usize) -> Chain {
    let mut slots = CACHES[class].lock();
    if slots.len > 0 {
        slots.len -= 1;
        let chain = slots.batches[slots.len];
        drop(slots);
        probes::here(|c| c.add(Event::TransferHit, 1));
        return chain;
    }
    drop(slots);
    probes::here(|c| c.add(Event::TransferMiss, 1));
    central::pop(class, want, owner)
}

/// Moves every waiting batch to the central pool (malloc_trim), so empty runs can be returned.
pub fn drain_to_central() {
    for (class, cache) in CACHES.iter().enumerate() {
        loop {
            let mut slots = cache.lock();
            if slots.len == 0 {
                break;
            }
            slots.len -= 1;
            let chain = slots.batches[slots.len];
            drop(slots);
            central::push(class, chain);
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
