//! Central pool: per-class free objects, filed per run, behind one futex mutex per class.
//!
//! Thread caches refill from here and spill to here (in the scale lane, behind the transfer
//! cache). Objects are filed under their run so that a run whose objects are all back can be
//! returned to the page source; runs with objects to give sit on a per-class partial list. A run's
//! free objects are kept in side memory (`run_free`) and its never-used tail is handed out by
//! address arithmetic (bump): the pool never writes into objects, so pages nobody else wrote to
//! are never faulted in.

use crate::lock::Mutex;
use crate::page_map::{self, Run, RUN_SIZE};
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

/// One class's pool behind its lock. Alone on 128 bytes, so no two classes' locks share a cache
/// line, nor an adjacent-line prefetch pair (Intel fetches lines in 128-byte pairs). Packed 24
/// bytes apart (2-3 locks to a line) was measured slower and retired (docs/decisions.md).
#[repr(align(128))]
struct ClassPool(Mutex<Pool>);

static POOLS: [ClassPool; NUM_CLASSES] = [const {
    ClassPool(Mutex::new(
        Some(LockSite::Central),
        Pool {
            partial: ptr::null_mut(),
        },
    ))
}; NUM_CLASSES];

#[inline(always)]
fn pool(class: usize) -> &'static Mutex<Pool> {
    debug_assert!(class < NUM_CLASSES);
    // SAFETY: classes come from `class_of` or a run tag, both < NUM_CLASSES.
    unsafe { &POOLS.get_unchecked(class).0 }
}

/// Writes up to `want` objects of `class` to `out`, taking a fresh run from the page source if
/// the pool has none, and returns how many (0 only when out of memory). Runs served from are
/// re-tagged to `owner` (the last refiller owns the run).
///
/// # Safety
/// `out` must have room for `want` pointers.
pub unsafe fn pop(class: usize, out: *mut *mut u8, want: u32, owner: usize) -> u32 {
    crate::inject::delay!("inject-central-pop");
    let size = size_class::size_of(class);
    let tag = page_map::tag_small(owner, class);
    let mut got = 0u32;
    let mut pool = pool(class).lock();
    while got < want {
        let mut run = pool.partial;
        if run.is_null() {
            run = page_source::take_run();
            if run.is_null() {
                break;
            }
            // SAFETY: a run fresh from the page source is ours alone until listed below.
            unsafe {
                crate::run_free::reset(run);
                (*run).used = 0;
                (*run).carved = 0;
                (*run).capacity = (RUN_SIZE / size) as u16;
                (*run).large_len = 0;
                (*run).in_partial = false;
                link(&mut pool, run);
            }
        }
        // SAFETY: listed runs belong to this class's pool, whose lock we hold; `out` has room
        // for `want` entries per the contract.
        unsafe {
            (*run).tag().store(tag, Ordering::Release);
            while got < want && (*run).nfree > 0 {
                *out.add(got as usize) = crate::run_free::take(run) as *mut u8;
                (*run).used += 1;
                got += 1;
            }
            while got < want && (*run).carved < (*run).capacity {
                *out.add(got as usize) = ((*run).base + (*run).carved as usize * size) as *mut u8;
                if crate::config::FAILFAST {
                    crate::failfast::on_carve(*out.add(got as usize));
                }
                (*run).carved += 1;
                (*run).used += 1;
                got += 1;
            }
            if (*run).nfree == 0 && (*run).carved == (*run).capacity {
                unlink(&mut pool, run);
            }
        }
    }
    drop(pool);
    crate::stats::central_out(class, got);
    probes::here(|c| {
        c.add(Event::CentralPopCalls, 1);
        c.add(Event::CentralPopObjects, got as u64);
    });
    got
}

/// Files objects (all of `class`) back under their runs; runs that become entirely free go back
/// to the page source.
pub fn push(class: usize, objs: &[*mut u8]) {
    if objs.is_empty() {
        return;
    }
    let mut filer = Filer::new(class);
    for &obj in objs {
        filer.file(obj);
    }
    filer.finish(objs.len() as u64);
}

/// One lock hold that files objects under their runs and collects the runs that became empty.
struct Filer {
    class: usize,
    pool: crate::lock::Guard<'static, Pool>,
    empty: *mut Run,
}

impl Filer {
    fn new(class: usize) -> Self {
        Filer {
            class,
            pool: pool(class).lock(),
            empty: ptr::null_mut(),
        }
    }

    fn file(&mut self, obj: *mut u8) {
        let run = page_map::lookup(obj as usize);
        // SAFETY: `obj` is a free hz3 object of this class nobody else references; its run
        // belongs to this class's pool, whose lock we hold.
        unsafe {
            if run.is_null()
                || page_map::tag_class((*run).tag().load(Ordering::Relaxed)) != self.class
            {
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
            crate::run_free::put(run, obj as usize);
            (*run).used -= 1;
            if (*run).used == 0 {
                if (*run).in_partial {
                    unlink(&mut self.pool, run);
                }
                (*run).next = self.empty;
                self.empty = run;
            } else if !(*run).in_partial {
                link(&mut self.pool, run);
            }
        }
    }

    fn finish(self, pushed: u64) {
        crate::stats::central_in(self.class, pushed);
        let Filer {
            pool, mut empty, ..
        } = self;
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
    POOLS.iter().for_each(|p| p.0.fork_acquire());
}
pub fn fork_release() {
    POOLS.iter().for_each(|p| p.0.fork_release());
}
pub fn fork_reset() {
    POOLS.iter().for_each(|p| p.0.fork_reset());
}
