//! Page source: hands out 64 KiB runs carved from large reservations and takes empty runs back.
//!
//! Free runs wait committed (up to `COMMITTED_CACHE`) until they have been empty for the decay
//! period (`decay`), then go back to the kernel in batches with madvise(DONTNEED), so RSS follows
//! the live set without a steady workload cycling madvise -> page fault; decommitted runs are kept
//! (address space only) for reuse.
//! Free-run links live in the page-map descriptors, never in the run memory itself, so a
//! decommitted run is not faulted back in just to be listed.

use crate::decay;
use crate::lock::Mutex;
use crate::os;
use crate::page_map::{self, Run, RUN_SIZE};
use crate::probes::{self, Event, LockSite};
use crate::stats::{self, RunFrom};
use core::ptr;
use core::sync::atomic::Ordering;

/// Address space reserved per mmap; modest so the allocator runs under a small `ulimit -v`.
const RESERVATION: usize = 16 << 20;
/// Side memory per run for its free-object set (`run_free`). Kept apart from the run so that
/// freeing never writes into (and faults in) object memory.
const SIDE_BYTES: usize = crate::run_free::SIDE_BYTES;
/// Empty runs kept committed at most (64 MiB) while they wait out the decay period: runs that
/// empty and refill with the workload's swings cost no madvise and no page faults. Beyond it a run
/// is decommitted as it comes back.
const COMMITTED_CACHE: usize = 1024;

struct State {
    bump: usize,
    end: usize,
    /// Newest first, so stamps decrease along the list.
    committed: *mut Run,
    committed_len: usize,
    decommitted: *mut Run,
    /// Runs on both lists.
    free_runs: usize,
    side: usize,
    meta_bump: usize,
    meta_end: usize,
}

// SAFETY: the raw pointers are descriptors in the never-unmapped page map; the mutex serialises access.
unsafe impl Send for State {}

static SOURCE: Mutex<State> = Mutex::new(
    Some(LockSite::PageSource),
    State {
        bump: 0,
        end: 0,
        committed: ptr::null_mut(),
        committed_len: 0,
        decommitted: ptr::null_mut(),
        free_runs: 0,
        side: 0,
        meta_bump: 0,
        meta_end: 0,
    },
);

/// A free run's descriptor (its memory possibly decommitted), or null when out of memory.
/// The caller owns the run and writes its tag.
pub fn take_run() -> *mut Run {
    let mut s = SOURCE.lock();
    let run = if !s.committed.is_null() {
        let r = s.committed;
        // SAFETY: listed descriptors are valid and owned by the page source under its lock.
        s.committed = unsafe { (*r).next };
        s.committed_len -= 1;
        s.free_runs -= 1;
        stats::run_taken(RunFrom::Cached);
        r
    } else if !s.decommitted.is_null() {
        let r = s.decommitted;
        // SAFETY: as above.
        s.decommitted = unsafe { (*r).next };
        s.free_runs -= 1;
        stats::run_taken(RunFrom::Returned);
        r
    } else {
        if s.bump == s.end {
            let mut base = os::map_aligned(RESERVATION, RUN_SIZE, true);
            // The large box's cache may hold the address space too (RLIMIT_AS): the api layer
            // releases it and retries when this returns null.
            if base.is_null() && unmap_free_runs(&mut s) {
                base = os::map_aligned(RESERVATION, RUN_SIZE, true);
            }
            if base.is_null() {
                return ptr::null_mut();
            }
            let side = os::map(RESERVATION / RUN_SIZE * SIDE_BYTES, true);
            if side.is_null() {
                // Refused: the reservation stays mapped and unused (address space only).
                let _ = os::unmap(base, RESERVATION);
                return ptr::null_mut();
            }
            s.bump = base as usize;
            s.end = base as usize + RESERVATION;
            s.side = side as usize;
        }
        let addr = s.bump;
        let r = page_map::ensure(addr);
        if r.is_null() {
            return r;
        }
        let index = (addr - (s.end - RESERVATION)) / RUN_SIZE;
        s.bump += RUN_SIZE;
        // SAFETY: fresh descriptor for a run nobody else knows about; its side memory is its own
        // slice of the reservation's side mapping.
        unsafe {
            (*r).base = addr;
            (*r).side = (s.side + index * SIDE_BYTES) as *mut u8;
        }
        stats::run_taken(RunFrom::Fresh);
        r
    };
    drop(s);
    probes::here(|c| c.add(Event::RunFresh, 1));
    run
}

/// Gives an empty run back. Its tag is cleared first so late frees into it fail fast.
pub fn give_run(run: *mut Run) {
    // SAFETY: the caller owned the run and no object in it is live.
    unsafe { (*run).tag().store(0, Ordering::Release) };
    let now = decay::now_ms();
    let mut s = SOURCE.lock();
    s.free_runs += 1;
    if s.committed_len < COMMITTED_CACHE {
        // SAFETY: the page source owns the descriptor from here on, under its lock.
        unsafe {
            (*run).stamp = now;
            (*run).next = s.committed;
        }
        s.committed = run;
        s.committed_len += 1;
        stats::run_given(false);
    } else {
        // SAFETY: as above; the run's memory is unused.
        unsafe {
            os::decommit((*run).base as *mut u8, RUN_SIZE);
            (*run).next = s.decommitted;
        }
        s.decommitted = run;
        stats::run_given(true);
    }
    drop(s);
    probes::here(|c| c.add(Event::RunRelease, 1));
}

/// A decay pass (`decay::tick`): committed runs emptied longer than the decay period go back to
/// the kernel.
pub fn decay(now: u32) {
    let mut guard = SOURCE.lock();
    let s = &mut *guard;
    // Stamps decrease along the list: everything from the first expired run on has expired.
    let mut link: *mut *mut Run = &mut s.committed;
    let mut kept = 0;
    // SAFETY: listed descriptors are owned by the page source under its lock.
    unsafe {
        while !(*link).is_null() && !decay::expired((**link).stamp, now) {
            link = &mut (**link).next;
            kept += 1;
        }
        let first = *link;
        *link = ptr::null_mut();
        let runs = decommit_list(&mut *s, first);
        if runs > 0 {
            probes::here(|c| {
                c.add(Event::DecayPurgeRuns, runs as u64);
                c.add(Event::DecayPurgeBytes, (runs * RUN_SIZE) as u64);
            });
        }
    }
    s.committed_len = kept;
}

/// Decommits the runs of the list starting at `first` (taken off the committed list) and moves
/// them to the decommitted list; returns how many.
///
/// SAFETY (for callers): the list's descriptors are the page source's and on no other list.
unsafe fn decommit_list(s: &mut State, mut run: *mut Run) -> usize {
    let mut n = 0;
    while !run.is_null() {
        // SAFETY: as the caller promised; the runs hold no live object.
        unsafe {
            let next = (*run).next;
            os::decommit((*run).base as *mut u8, RUN_SIZE);
            (*run).next = s.decommitted;
            s.decommitted = run;
            run = next;
        }
        n += 1;
    }
    stats::runs_decommitted(n);
    n
}

/// Decommits every cached empty run; returns the bytes given back (malloc_trim).
pub fn trim() -> usize {
    let mut s = SOURCE.lock();
    let first = s.committed;
    s.committed = ptr::null_mut();
    s.committed_len = 0;
    // SAFETY: the whole committed list, just taken off.
    unsafe { decommit_list(&mut s, first) * RUN_SIZE }
}

/// Bytes of free runs held (committed or not): what `release_address_space` could give back.
pub fn free_bytes() -> usize {
    SOURCE.lock().free_runs * RUN_SIZE
}

/// Unmaps every free run, giving its address space back (not just its pages): called when a
/// mapping failed, typically under RLIMIT_AS. The rest of the current reservation stays: small
/// requests keep being served from it when no new mapping can be made. True if anything was
/// unmapped.
pub fn release_address_space() -> bool {
    unmap_free_runs(&mut SOURCE.lock())
}

/// At the first munmap the kernel refuses (the mapping-count limit: unmapping one run splits its
/// reservation) that run and every run not yet tried stay listed, the refused one decommitted:
/// further tries would be refused alike, one syscall each.
fn unmap_free_runs(s: &mut State) -> bool {
    let mut any = false;
    let mut refused = false;
    for committed in [true, false] {
        while !refused {
            let r = if committed {
                s.committed
            } else {
                s.decommitted
            };
            if r.is_null() {
                break;
            }
            // SAFETY: listed descriptors are owned by the page source under its lock; their runs
            // hold no live object, and a cleared tag keeps lookups treating them as foreign.
            unsafe {
                if os::unmap_or_decommit((*r).base as *mut u8, RUN_SIZE) {
                    if committed {
                        s.committed = (*r).next;
                        s.committed_len -= 1;
                    } else {
                        s.decommitted = (*r).next;
                    }
                    s.free_runs -= 1;
                    any = true;
                } else if committed {
                    // Decommitted now: it moves to that list.
                    s.committed = (*r).next;
                    s.committed_len -= 1;
                    (*r).next = s.decommitted;
                    s.decommitted = r;
                    refused = true;
                } else {
                    refused = true;
                }
            }
        }
    }
    stats::free_runs_left(s.committed_len, s.free_runs - s.committed_len);
    any
}

/// Metadata blocks (remote-free messages): bump-allocated from 1 MiB mappings, never freed
/// (their users recycle them). Null when out of memory.
#[allow(dead_code)]
pub fn meta_alloc(bytes: usize) -> *mut u8 {
    const CHUNK: usize = 1 << 20;
    let bytes = (bytes + 63) & !63;
    let mut s = SOURCE.lock();
    if s.meta_end - s.meta_bump < bytes {
        let chunk = os::map(CHUNK, false);
        if chunk.is_null() {
            return chunk;
        }
        s.meta_bump = chunk as usize;
        s.meta_end = chunk as usize + CHUNK;
    }
    let p = s.meta_bump;
    s.meta_bump += bytes;
    p as *mut u8
}

pub fn fork_acquire() {
    SOURCE.fork_acquire();
}
pub fn fork_release() {
    SOURCE.fork_release();
}
pub fn fork_reset() {
    SOURCE.fork_reset();
}
