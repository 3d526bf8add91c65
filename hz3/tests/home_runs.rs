//! Feature `home-runs`: a thread's objects freed by another thread go back to it. The freeing
//! thread never hands them out itself (adoption would: the next write to their lines would come
//! from the core that did not write them last), and the thread that allocated them gets them back.
#![cfg(feature = "home-runs")]

use std::alloc::{GlobalAlloc, Layout};
use std::collections::HashSet;
use std::sync::mpsc;

#[global_allocator]
static GLOBAL: hz3::Hz3 = hz3::Hz3;

/// Class 48 B: batches of 32 objects.
const SIZE: usize = 48;
const OBJECTS: usize = 64;

fn layout() -> Layout {
    Layout::from_size_align(SIZE, 16).unwrap()
}

fn alloc_n() -> Vec<usize> {
    // SAFETY: non-zero size; every block is freed by the test.
    (0..OBJECTS)
        .map(|_| unsafe { GLOBAL.alloc(layout()) } as usize)
        .collect()
}

#[test]
fn another_threads_objects_go_home_and_are_not_reused_by_the_freeing_thread() {
    let (to_b, at_b) = mpsc::channel::<Vec<usize>>();
    let (to_a, at_a) = mpsc::channel::<Vec<usize>>();
    let b = std::thread::spawn(move || {
        let theirs = at_b.recv().unwrap();
        for &p in &theirs {
            // SAFETY: allocated by thread A with this layout, freed once, here.
            unsafe { GLOBAL.dealloc(p as *mut u8, layout()) };
        }
        let mine = alloc_n();
        let theirs: HashSet<usize> = theirs.into_iter().collect();
        let reused = mine.iter().filter(|p| theirs.contains(p)).count();
        to_a.send(mine).unwrap();
        reused
    });
    let first = alloc_n();
    to_b.send(first.clone()).unwrap();
    let bs = at_a.recv().unwrap();
    let reused_by_b = b.join().unwrap();
    assert_eq!(
        reused_by_b, 0,
        "the freeing thread handed out another live thread's objects"
    );
    let again = alloc_n();
    let first: HashSet<usize> = first.into_iter().collect();
    let came_home = again.iter().filter(|p| first.contains(p)).count();
    assert!(
        came_home >= OBJECTS / 2,
        "only {came_home} of {OBJECTS} objects freed elsewhere came back to their thread"
    );
    for p in again.into_iter().chain(bs) {
        // SAFETY: allocated above with this layout; each freed once.
        unsafe { GLOBAL.dealloc(p as *mut u8, layout()) };
    }
}
