//! loom model of the thread-exit protocol around a heap's inbox (`lifecycle.rs` with
//! `remote.rs` under the owner routings `remote-inbox` / `remote-stash`): a remote free tests
//! `is_active(owner)` with a relaxed load and pushes to the owner's inbox, while the owner may be
//! exiting (final inbox drain, then `ABANDONED` under the registry lock) and a new thread may adopt
//! the heap (off the abandoned list under the lock, `ACTIVE` again) and collect the inbox. A stale
//! `is_active` is allowed: heaps are never unmapped, so a push that lands after the exit drain
//! waits in the inbox for the adopter.
//! The property: every remote-freed object ends in exactly one place.
//!
//! lifecycle.rs itself cannot run in a model (TLS, mmap, pthread keys), so the steps are restated
//! here in its order, over the real inbox stack (`mpsc.rs`) and registry lock (`raw_lock.rs`).
//! Run with scripts/loom (`--cfg loom`).
#![cfg(loom)]

mod loom_util;
#[path = "../src/mpsc.rs"]
mod mpsc;
#[allow(dead_code)] // fork reset and the probe counts are the allocator's
#[path = "../src/raw_lock.rs"]
mod raw_lock;
#[path = "../src/sync.rs"]
mod sync;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;
use mpsc::Stack;
use raw_lock::RawLock;

const STATE_ACTIVE: u32 = 1;
const STATE_ABANDONED: u32 = 2;

struct Obj {
    id: usize,
    next: UnsafeCell<*mut Obj>,
}

struct ObjPtr(*mut Obj);
// SAFETY: an object is touched by one thread at a time (freer, then collector), which loom checks.
unsafe impl Send for ObjPtr {}

/// The parts of a heap and of the registry the protocol touches.
struct World {
    state: AtomicU32,
    inbox: Stack<Obj>,
    registry: RawLock,
    /// The registry's abandoned list, reduced to "this one heap is on it"; under `registry`.
    abandoned: UnsafeCell<bool>,
}

impl World {
    fn with_registry<R>(&self, f: impl FnOnce(&mut bool) -> R) -> R {
        if !self.registry.try_lock() {
            self.registry.lock_contended();
        }
        // SAFETY: the registry lock is held.
        let r = self.abandoned.with_mut(|a| f(unsafe { &mut *a }));
        self.registry.unlock();
        r
    }
}

/// Takes the inbox and records who got what (`remote::collect` / `return_all`).
fn drain(world: &World, into: &mut Vec<usize>) {
    let mut cur = world.inbox.take_all();
    while !cur.is_null() {
        // SAFETY: taken objects are the taker's; they are freed only at the model's end.
        unsafe {
            into.push((*cur).id);
            cur = (*cur).next.with(|n| *n);
        }
    }
}

#[test]
fn remote_frees_racing_owner_exit_and_adoption_land_exactly_once() {
    let must_see = &[
        "pushed after the owner's exit drain: the adopter got it",
        "owner gone: the freer kept it",
        "owner collected it before exiting",
        "the owner's exit drain got it",
    ];
    loom_util::check("lifecycle exit/adopt vs remote free", must_see, |w| {
        const OBJS: usize = 2;
        let world = Arc::new(World {
            state: AtomicU32::new(STATE_ACTIVE),
            inbox: Stack::new(),
            registry: RawLock::new(),
            abandoned: UnsafeCell::new(false),
        });
        let objs: Vec<*mut Obj> = (0..OBJS)
            .map(|id| {
                Box::into_raw(Box::new(Obj {
                    id,
                    next: UnsafeCell::new(std::ptr::null_mut()),
                }))
            })
            .collect();

        // The freeing thread: `remote::free` on each object of the owner's runs.
        let freer = {
            let world = world.clone();
            let mine: Vec<ObjPtr> = objs.iter().map(|&o| ObjPtr(o)).collect();
            thread::spawn(move || {
                let mut kept = Vec::new();
                for o in mine {
                    if world.state.load(Ordering::Relaxed) == STATE_ACTIVE {
                        // SAFETY: the object is ours until the push publishes it.
                        world
                            .inbox
                            .push(o.0, |old| unsafe { (*o.0).next.with_mut(|n| *n = old) });
                    } else {
                        // SAFETY: as above; it stays ours.
                        kept.push(unsafe { (*o.0).id });
                    }
                }
                kept
            })
        };

        // The owner: one cache miss collects the inbox, then the thread exits.
        let owner = {
            let world = world.clone();
            thread::spawn(move || {
                let (mut collected, mut at_exit) = (Vec::new(), Vec::new());
                drain(&world, &mut collected);
                drain(&world, &mut at_exit);
                world.with_registry(|abandoned| {
                    world.state.store(STATE_ABANDONED, Ordering::Release);
                    *abandoned = true;
                });
                (collected, at_exit)
            })
        };

        // A new thread (the model's main) attaches once the owner is gone and adopts its heap.
        let (collected, at_exit) = owner.join().unwrap();
        let adopted = world.with_registry(|abandoned| std::mem::replace(abandoned, false));
        assert!(
            adopted,
            "the exited owner's heap was not on the abandoned list"
        );
        world.state.store(STATE_ACTIVE, Ordering::Release);
        let mut adopter = Vec::new();
        drain(&world, &mut adopter);
        let kept = freer.join().unwrap();
        // Later cache misses of the adopter collect what arrived since.
        drain(&world, &mut adopter);

        if !collected.is_empty() {
            w.hit("owner collected it before exiting");
        }
        if !at_exit.is_empty() {
            w.hit("the owner's exit drain got it");
        }
        if !adopter.is_empty() {
            w.hit("pushed after the owner's exit drain: the adopter got it");
        }
        if !kept.is_empty() {
            w.hit("owner gone: the freer kept it");
        }
        let mut all = [collected, at_exit, adopter, kept].concat();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..OBJS).collect::<Vec<_>>(),
            "an object was lost or landed twice"
        );
        for o in objs {
            // SAFETY: boxed above; no thread references it any more.
            drop(unsafe { Box::from_raw(o) });
        }
    });
}
