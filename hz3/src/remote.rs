//! Remote free: what happens to an object freed by a thread other than the one that owns its run.
//!
//! Adoption: the freeing thread keeps the object in its own cache, as tcmalloc and jemalloc do;
//! nothing crosses threads until a bin spills to the shared pool. Owner routing (a per-object
//! inbox, or batches sent from a per-thread stash) measured 3.5x (fast) and 2.2x (scale) slower
//! on remote-heavy-small and was retired (docs/decisions.md).

use crate::heap::Heap;
use crate::probes::Event;

/// Counts a free kept in `me`'s cache; one of another thread's objects is also counted as a
/// remote free. Branch-free, and nothing at all without probes.
#[inline(always)]
pub fn count_kept(me: &mut Heap, owner: usize) {
    me.counters.add_own(Event::FreeLocal, 1);
    let foreign = owner != 0 && owner != me.owner();
    me.counters.add_own(Event::RemoteFree, foreign as u64);
}
