//! Page source: hands out 64 KiB runs carved from large reservations and takes empty runs back.
//! Reservations come from the page map's flat range while it lasts (`page_map::flat_take`).
//!
//! Free runs wait in a small committed cache; beyond it they are decommitted with
//! madvise(DONTNEED) so RSS follows the live set, and kept (address space only) for reuse.
//! Free-run links live in the page-map descriptors, never in the run memory itself, so a
//! decommitted run is not faulted back in just to be listed.

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
/// Empty runs kept committed for quick reuse (16 MiB): below this, runs that empty and refill
/// with the workload's swings cost no madvise and no page faults.
const COMMITTED_CACHE: usize = 256;

struct State {
    bump: usize,
    end: usize,
    committed: *mut Run,
    committed_len: usize,
    decommitted: *mut Run,
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
        stats::run_taken(RunFrom::Cached);
        r
    } else if !s.decommitted.is_null() {
        let r = s.decommitted;
        // SAFETY: as above.
        s.decommitted = unsafe { (*r).next };
        stats::run_taken(RunFrom::Returned);
        r
    } else {
        if s.bump == s.end {
            let mut base = page_map::flat_take(RESERVATION);
            if base.is_null() {
                base = os::map_aligned(RESERVATION, RUN_SIZE, true);
            }
            if base.is_null() && unmap_free_runs(&mut s) {
                base = os::map_aligned(RESERVATION, RUN_SIZE, true);
            }
            if base.is_null() {
                return ptr::null_mut();
            }
            let side = os::map(RESERVATION / RUN_SIZE * SIDE_BYTES, true);
            if side.is_null() {
                os::unmap(base, RESERVATION);
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
    unsafe { (*run).tag.store(0, Ordering::Release) };
    let mut s = SOURCE.lock();
    if s.committed_len < COMMITTED_CACHE {
        // SAFETY: the page source owns the descriptor from here on, under its lock.
        unsafe { (*run).next = s.committed };
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

/// Decommits every cached empty run; returns the bytes given back (malloc_trim).
pub fn trim() -> usize {
    let mut s = SOURCE.lock();
    let mut bytes = 0;
    while !s.committed.is_null() {
        let r = s.committed;
        // SAFETY: listed descriptors are owned by the page source under its lock.
        unsafe {
            s.committed = (*r).next;
            os::decommit((*r).base as *mut u8, RUN_SIZE);
            (*r).next = s.decommitted;
        }
        s.decommitted = r;
        bytes += RUN_SIZE;
    }
    stats::runs_decommitted(s.committed_len);
    s.committed_len = 0;
    bytes
}

/// Unmaps every free run, giving its address space back (not just its pages): called when a
/// mapping failed, typically under RLIMIT_AS. True if anything was unmapped.
pub fn release_address_space() -> bool {
    unmap_free_runs(&mut SOURCE.lock())
}

fn unmap_free_runs(s: &mut State) -> bool {
    let mut any = false;
    for list in [&mut s.committed, &mut s.decommitted] {
        while !list.is_null() {
            let r = *list;
            // SAFETY: listed descriptors are owned by the page source under its lock; their runs
            // hold no live object, and a cleared tag keeps lookups treating them as foreign.
            unsafe {
                *list = (*r).next;
                os::unmap((*r).base as *mut u8, RUN_SIZE);
            }
            any = true;
        }
    }
    s.committed_len = 0;
    stats::free_runs_unmapped();
    if s.bump < s.end {
        os::unmap(s.bump as *mut u8, s.end - s.bump);
        s.bump = s.end;
        any = true;
    }
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
