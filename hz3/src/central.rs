//! Central pool: per-class object lists, kept per run, behind one futex mutex per class.
//!
//! Thread caches refill from here and spill to here (in the scale lane, behind the transfer
//! cache). Objects are filed under their run so that a run whose objects are all back can be
//! returned to the page source; runs with objects to give sit on a per-class partial list, and a
//! run's never-used tail is carved lazily (bump), so untouched objects never fault pages in.

use crate::lock::Mutex;
use crate::page_map::{self, Node, Run, RUN_SIZE};
use crate::page_source;
use crate::probes::{self, Event, LockSite};
use crate::size_class::{self, NUM_CLASSES};
use core::ptr;
use core::sync::atomic::Ordering;

struct Pool {
    partial: *mut Run,
}

// SAFETY: descriptors live in the never-unmapped page map; the per-class mutex serialises access.
unsafe impl Send for Pool {}

static POOLS: [Mutex<Pool>; NUM_CLASSES] = [const {
    Mutex::new(
        Some(LockSite::Central),
        Pool {
            partial: ptr::null_mut(),
        },
    )
}; NUM_CLASSES];

/// A null-terminated list of objects of one class.
#[derive(Clone, Copy)]
pub struct Chain {
    pub head: *mut Node,
    pub count: u32,
}

impl Chain {
    pub const EMPTY: Chain = Chain {
        head: ptr::null_mut(),
        count: 0,
    };
}

/// Takes up to `want` objects of `class`, taking a fresh run from the page source if the pool has
/// none. Runs served from are re-tagged to `owner` so the caller's own frees of them stay local.
/// Returns an empty chain only when out of memory.
pub fn pop(class: usize, want: u32, owner: usize) -> Chain {
    let size = size_class::size_of(class);
    let tag = page_map::tag_small(owner, class);
    let mut out = Chain::EMPTY;
    // Bump ranges (first object address, count) are linked after the lock is dropped: writing
    // the links faults in fresh pages, and a page fault must not lengthen the lock hold.
    let mut ranges = [(0usize, 0u32); MAX_RANGES];
    let mut nranges = 0;
    let mut pool = POOLS[class].lock();
    while out.count < want && nranges < MAX_RANGES {
        let mut run = pool.partial;
        if run.is_null() {
            run = page_source::take_run();
            if run.is_null() {
                break;
            }
            // SAFETY: a run fresh from the page source is ours alone until listed below.
            unsafe {
                (*run).free = ptr::null_mut();
                (*run).used = 0;
                (*run).carved = 0;
                (*run).capacity = (RUN_SIZE / size) as u32;
                (*run).large_len = 0;
                (*run).in_partial = false;
                link(&mut pool, run);
            }
        }
        // SAFETY: listed runs belong to this class's pool, whose lock we hold.
        unsafe {
            (*run).tag.store(tag, Ordering::Release);
            while out.count < want && !(*run).free.is_null() {
                let obj = (*run).free;
                (*run).free = (*obj).next;
                (*obj).next = out.head;
                out.head = obj;
                out.count += 1;
                (*run).used += 1;
            }
            let n = (want - out.count).min((*run).capacity - (*run).carved);
            if n > 0 {
                ranges[nranges] = ((*run).base + (*run).carved as usize * size, n);
                nranges += 1;
                (*run).carved += n;
                (*run).used += n;
                out.count += n;
            }
            if (*run).free.is_null() && (*run).carved == (*run).capacity {
                unlink(&mut pool, run);
            }
        }
    }
    drop(pool);
    for &(first, n) in &ranges[..nranges] {
        for i in 0..n as usize {
            let obj = (first + i * size) as *mut Node;
            // SAFETY: freshly carved objects are ours alone; the first word becomes the link.
            unsafe { (*obj).next = out.head };
            out.head = obj;
        }
    }
    probes::here(|c| {
        c.add(Event::CentralPopCalls, 1);
        c.add(Event::CentralPopObjects, out.count as u64);
    });
    out
}

/// Bump ranges one pop may take (a pop crosses at most a few runs).
const MAX_RANGES: usize = 4;

/// Files every object of `chain` (all of `class`, counted or not) back under its run; runs that become entirely
/// free go back to the page source.
pub fn push(class: usize, chain: Chain) {
    if chain.head.is_null() {
        return;
    }
    let mut empty: *mut Run = ptr::null_mut();
    let mut pushed = 0u64;
    let mut pool = POOLS[class].lock();
    let mut obj = chain.head;
    while !obj.is_null() {
        pushed += 1;
        // SAFETY: chain objects are hz3 objects of `class` that nobody else references; their
        // runs belong to this class's pool, whose lock we hold.
        unsafe {
            let next = (*obj).next;
            let run = page_map::lookup(obj as usize);
            if run.is_null() || page_map::tag_class((*run).tag.load(Ordering::Relaxed)) != class {
                crate::os::fail(
                    "central",
                    "object filed under the wrong size class (corrupt free list)",
                );
            }
            if (*run).used == 0 {
                crate::os::fail(
                    "central",
                    "more objects returned than handed out (double free?)",
                );
            }
            (*obj).next = (*run).free;
            (*run).free = obj;
            (*run).used -= 1;
            if (*run).used == 0 {
                if (*run).in_partial {
                    unlink(&mut pool, run);
                }
                (*run).next = empty;
                empty = run;
            } else if !(*run).in_partial {
                link(&mut pool, run);
            }
            obj = next;
        }
    }
    drop(pool);
    probes::here(|c| {
        c.add(Event::CentralPushCalls, 1);
        c.add(Event::CentralPushObjects, pushed);
    });
    while !empty.is_null() {
        // SAFETY: runs on `empty` were unlinked under the lock and hold no live object.
        let next = unsafe { (*empty).next };
        page_source::give_run(empty);
        empty = next;
    }
}

/// # Safety
/// Caller holds the pool lock and `run` is not listed.
unsafe fn link(pool: &mut Pool, run: *mut Run) {
    // SAFETY: per the contract, the list and the run are ours to edit.
    unsafe {
        (*run).prev = ptr::null_mut();
        (*run).next = pool.partial;
        if !pool.partial.is_null() {
            (*pool.partial).prev = run;
        }
        pool.partial = run;
        (*run).in_partial = true;
    }
}

/// # Safety
/// Caller holds the pool lock and `run` is listed.
unsafe fn unlink(pool: &mut Pool, run: *mut Run) {
    // SAFETY: per the contract, the list and the run are ours to edit.
    unsafe {
        if (*run).prev.is_null() {
            pool.partial = (*run).next;
        } else {
            (*(*run).prev).next = (*run).next;
        }
        if !(*run).next.is_null() {
            (*(*run).next).prev = (*run).prev;
        }
        (*run).in_partial = false;
    }
}

pub fn fork_acquire() {
    POOLS.iter().for_each(|p| p.fork_acquire());
}
pub fn fork_release() {
    POOLS.iter().for_each(|p| p.fork_release());
}
pub fn fork_reset() {
    POOLS.iter().for_each(|p| p.fork_reset());
}
