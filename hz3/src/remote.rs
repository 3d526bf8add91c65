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
    let foreign = owner != 0 && owner != me as *mut Heap as usize;
    me.counters.add_own(Event::RemoteFree, foreign as u64);
}

/// `home-runs`: files `obj`, an object of `owner`'s runs, in `me`'s away batch for its class; a
/// full batch, or one for another owner, goes to the shared pool first, tagged with its owner so
/// that only that heap's refill takes it. With adoption the freeing thread would write the
/// object's lines next, although another core wrote them last: at 2-4 threads that was 35-48% of
/// the lines the bench writes (docs/decisions.md). An object of no heap (`owner` 0: handed out
/// without a cache) goes to the central pool, as does everything in a build without away batches.
#[cold]
#[inline(never)]
pub fn free_away(me: &mut Heap, class: usize, obj: *mut u8, owner: usize) {
    if owner == 0 || !crate::config::HOME {
        crate::central::push(class, &[obj]);
        return;
    }
    // SAFETY: classes come from a run tag, < NUM_CLASSES = AWAY_CLASSES in home-runs builds.
    let away = unsafe { me.away.get_unchecked_mut(class) };
    if away.len > 0 && away.owner != owner {
        return switch_owner(class, away, obj, owner);
    }
    away.owner = owner;
    file(class, away, obj);
}

/// Appends `obj` to `away` (the batch's owner set), sending the batch once it is whole.
#[inline(always)]
fn file(class: usize, away: &mut crate::heap::Away, obj: *mut u8) {
    // SAFETY: len < batch_of(class) <= BATCH_MAX here: a batch that reaches batch_of is sent
    // (and emptied) below.
    unsafe { *away.objs.get_unchecked_mut(away.len as usize) = obj };
    away.len += 1;
    if away.len >= crate::size_class::batch_of(class) {
        send_home(class, away);
    }
}

/// The away batch holds another owner's objects: it goes first.
#[cold]
#[inline(never)]
fn switch_owner(class: usize, away: &mut crate::heap::Away, obj: *mut u8, owner: usize) {
    send_home(class, away);
    away.owner = owner;
    file(class, away, obj);
}

fn send_home(class: usize, away: &mut crate::heap::Away) {
    let objs = &away.objs[..away.len as usize];
    if crate::config::SCALE {
        crate::transfer::push(class, objs, away.owner);
    } else {
        crate::central::push(class, objs);
    }
    away.len = 0;
}

/// Sends every away batch of `me` home (thread exit, trim).
pub fn flush_away(me: &mut Heap) {
    for class in 0..me.away.len() {
        if me.away[class].len > 0 {
            send_home(class, &mut me.away[class]);
        }
    }
}
