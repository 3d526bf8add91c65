//! loom model of `hz3/src/mpsc.rs`, the MPSC Treiber stack behind both remote-free routings that
//! send to an owner (`remote-inbox`: one object per push; `remote-stash`: message blocks).
//! Run with scripts/loom (`--cfg loom`); an empty test crate otherwise.
#![cfg(loom)]

mod loom_util;
#[path = "../src/mpsc.rs"]
mod mpsc;
#[allow(unused)] // the futex model is the lock's
#[path = "../src/sync.rs"]
mod sync;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use loom_util::Witness;
use mpsc::Stack;
use std::cell::Cell;

/// A pushed entry. The link is a loom cell so that loom checks every read of it against the
/// write it needs to see: a link read that the publishing CAS does not order is reported.
struct Node {
    id: usize,
    next: UnsafeCell<*mut Node>,
}

/// Hands a boxed node to the model thread that pushes it.
struct NodePtr(*mut Node);
// SAFETY: a node is touched by one thread at a time (its pusher, then its taker), which is
// exactly what the model checks.
unsafe impl Send for NodePtr {}

fn push(stack: &Stack<Node>, node: *mut Node, w: &Witness) {
    let attempts = Cell::new(0);
    stack.push(node, |old| {
        attempts.set(attempts.get() + 1);
        // SAFETY: the node is ours until the CAS publishes it.
        unsafe { (*node).next.with_mut(|link| *link = old) };
    });
    if attempts.get() > 1 {
        w.hit("push retried after losing a race");
    }
}

/// Walks a taken chain and records its ids; a cycle fails. Nodes stay allocated until the model
/// ends, so a broken stack shows up as a wrong set of ids, not as a use-after-free.
fn receive(chain: *mut Node, limit: usize, got: &mut Vec<usize>) {
    let mut cur = chain;
    while !cur.is_null() {
        assert!(
            got.len() < limit,
            "chain longer than everything pushed: a cycle"
        );
        // SAFETY: a taken node belongs to the taker alone; it is freed only at the model's end.
        unsafe {
            got.push((*cur).id);
            cur = (*cur).next.with(|link| *link);
        }
    }
}

/// `producers` threads each push `per_producer` nodes while the owner takes, yielding on an empty
/// stack as a cache miss goes on elsewhere, until it has them all or has tried `2 * total` times;
/// after the joins one more take must complete the set: every node exactly once, links intact.
fn model(producers: usize, per_producer: usize, w: &std::sync::Arc<Witness>) {
    let total = producers * per_producer;
    let stack = Arc::new(Stack::<Node>::new());
    let nodes: Vec<*mut Node> = (0..total)
        .map(|id| {
            Box::into_raw(Box::new(Node {
                id,
                next: UnsafeCell::new(std::ptr::null_mut()),
            }))
        })
        .collect();
    let handles: Vec<_> = nodes
        .chunks(per_producer)
        .map(|mine| {
            let mine: Vec<NodePtr> = mine.iter().map(|&n| NodePtr(n)).collect();
            let (stack, w) = (stack.clone(), w.clone());
            thread::spawn(move || {
                for n in mine {
                    push(&stack, n.0, &w);
                }
            })
        })
        .collect();
    let mut got = Vec::new();
    for _ in 0..2 * total {
        let before = got.len();
        receive(stack.take_all(), total, &mut got);
        if got.len() - before > 1 {
            w.hit("one take got a chain of several pushes");
        }
        if got.len() == total {
            break;
        }
        if got.len() == before {
            thread::yield_now();
        } else {
            w.hit("took part of the pushes while others were still to come");
        }
    }
    for h in handles {
        h.join().unwrap();
    }
    receive(stack.take_all(), total, &mut got);
    got.sort_unstable();
    assert_eq!(
        got,
        (0..total).collect::<Vec<_>>(),
        "lost or duplicated nodes"
    );
    for n in nodes {
        // SAFETY: boxed above; no thread references it any more.
        drop(unsafe { Box::from_raw(n) });
    }
}

const MUST_SEE: &[&str] = &[
    "push retried after losing a race",
    "took part of the pushes while others were still to come",
    "one take got a chain of several pushes",
];

#[test]
fn two_producers_two_nodes_each_and_a_taker() {
    loom_util::check("mpsc 2 producers x 2 nodes + taker", MUST_SEE, |w| {
        model(2, 2, w)
    });
}

#[test]
fn three_producers_one_node_each_and_a_taker() {
    loom_util::check("mpsc 3 producers x 1 node + taker", MUST_SEE, |w| {
        model(3, 1, w)
    });
}
