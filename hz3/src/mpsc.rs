//! MPSC Treiber stack with take-all: any thread pushes (one CAS), only the owner takes, and it
//! takes everything at once with a swap. There is no single pop, so there is no ABA: a node the
//! owner took cannot still be a head some pusher compares against, because the head it swaps
//! out is never re-installed.
//!
//! The link lives wherever the caller keeps it (the object's first word, a message block's
//! `next`): `push` calls `link(old_head)` to write it before each CAS attempt. The CAS is
//! Release and the swap Acquire, so everything written to a node before its push (its link
//! included) is visible to the owner that takes it; pushes after one another form a release
//! sequence, so one swap synchronises with every pusher on the chain it takes.
//!
//! Modelled by `hz3/tests/loom_mpsc.rs`.

use crate::sync::{self, AtomicPtr, Ordering};
use core::ptr;

/// Ordering of the publishing CAS. `HZ3_LOOM_BROKEN=mpsc-relaxed` (model build only) weakens
/// it to show that the model catches a consumer reading an unpublished link.
const PUBLISH: Ordering = if sync::broken("mpsc-relaxed") {
    Ordering::Relaxed
} else {
    Ordering::Release
};

/// `HZ3_LOOM_BROKEN=mpsc-no-cas` (model build only) publishes with a plain store instead of the
/// CAS: two racing pushes both link to the same old head and one of them is lost.
const PUBLISH_BY_STORE: bool = sync::broken("mpsc-no-cas");

/// All-zero memory is an empty stack: heaps come zeroed from mmap and need no constructor.
#[repr(transparent)]
pub struct Stack<T> {
    head: AtomicPtr<T>,
}

impl<T> Stack<T> {
    #[allow(dead_code)] // the allocator's stacks live in zeroed heaps; the models build theirs
    pub fn new() -> Self {
        Stack {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Publishes `first` (and whatever hangs off it): `link(old)` points the new entry at the
    /// current head, then one CAS swings the head to `first`, retried on a race.
    #[inline]
    pub fn push(&self, first: *mut T, link: impl Fn(*mut T)) {
        let mut old = self.head.load(Ordering::Relaxed);
        loop {
            link(old);
            if PUBLISH_BY_STORE {
                self.head.store(first, PUBLISH);
                return;
            }
            match self
                .head
                .compare_exchange_weak(old, first, PUBLISH, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => old = now,
            }
        }
    }

    /// Takes every entry pushed so far, newest first, or null (owner only). The relaxed peek
    /// keeps an empty stack from costing an atomic RMW on every cache miss.
    #[inline]
    pub fn take_all(&self) -> *mut T {
        if self.head.load(Ordering::Relaxed).is_null() {
            return ptr::null_mut();
        }
        self.head.swap(ptr::null_mut(), Ordering::Acquire)
    }
}

// Real threads, for `cargo test` and miri (whose race and pointer checks see the links); the
// exhaustive interleavings are hz3/tests/loom_mpsc.rs's.
#[cfg(all(test, not(loom)))]
mod tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;
    use std::sync::Arc;
    use std::vec::Vec;

    struct Node {
        id: usize,
        next: *mut Node,
    }

    #[test]
    fn every_push_is_taken_exactly_once() {
        const PRODUCERS: usize = 3;
        const EACH: usize = if cfg!(miri) { 50 } else { 20_000 };
        let stack = Arc::new(Stack::<Node>::new());
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let stack = stack.clone();
                std::thread::spawn(move || {
                    for k in 0..EACH {
                        let node = Box::into_raw(Box::new(Node {
                            id: p * EACH + k,
                            next: ptr::null_mut(),
                        }));
                        // SAFETY: the node is ours until the push publishes it.
                        stack.push(node, |old| unsafe { (*node).next = old });
                    }
                })
            })
            .collect();
        let mut seen = std::vec![false; PRODUCERS * EACH];
        let mut taken = 0;
        let mut take = |chain: *mut Node| {
            let mut cur = chain;
            while !cur.is_null() {
                // SAFETY: a taken node is the taker's alone; it was boxed by its producer.
                let node = unsafe { Box::from_raw(cur) };
                assert!(!seen[node.id], "node {} taken twice", node.id);
                seen[node.id] = true;
                taken += 1;
                cur = node.next;
            }
        };
        while producers.iter().any(|h| !h.is_finished()) {
            take(stack.take_all());
        }
        for h in producers {
            h.join().unwrap();
        }
        take(stack.take_all());
        assert_eq!(taken, PRODUCERS * EACH, "nodes lost");
    }
}
