//! Adaptive thread-cache bounds (fixed bounds, the retired `fixed-caps` arm, fail it), seen through
//! `hz3::stats()`, which counts the calling thread's own cache exactly: a thread that only frees a
//! class keeps at most one batch of it, and the bound comes back once the thread allocates the
//! class again between spills.

#[global_allocator]
static GLOBAL: hz3::Hz3 = hz3::Hz3;

/// Class 704 B (768 B with `coarse-classes`): batches of 32 objects, at most 64 KiB cached; no
/// class the harness or `hz3::stats()` itself allocates from.
const SIZE: usize = 700;
const BATCH: usize = 32;
const OBJECTS: usize = 10_000;

type Block = Box<[u8; SIZE]>;

fn cached_by_me(class_size: usize) -> usize {
    hz3::stats()
        .classes
        .iter()
        .find(|c| c.size == class_size)
        .expect("the class is listed")
        .thread_cached
}

/// One test function: the harness's other threads stay idle while it measures.
#[test]
fn a_freeing_only_thread_keeps_one_batch_and_a_swinging_one_gets_its_room_back() {
    // A producer writes the blocks and exits (its cache goes back to the central pool), so the
    // consumer below is the only thread caching this class.
    let blocks: Vec<usize> = std::thread::spawn(|| {
        (0..OBJECTS)
            .map(|i| Box::into_raw(Box::new([i as u8; SIZE])) as usize)
            .collect()
    })
    .join()
    .unwrap();
    let class_size = hz3::usable_size(blocks[0] as *mut u8);
    assert!(
        (SIZE..=1024).contains(&class_size),
        "{SIZE} B went to the {class_size} B class (batches of {BATCH} need a class of at most 1 KiB)"
    );

    let (consumer_kept, swinging_kept) = std::thread::spawn(move || {
        for p in blocks {
            // SAFETY: each pointer came from Box::into_raw above and is freed once.
            drop(unsafe { Box::from_raw(p as *mut [u8; SIZE]) });
        }
        let consumer_kept = cached_by_me(class_size);
        // Now the thread allocates between its spills: each refill right after a spill gives the
        // class a batch more room, up to the most.
        for round in 0..4u8 {
            let v: Vec<Block> = (0..50).map(|_| Box::new([round; SIZE])).collect();
            drop(v);
        }
        let v: Vec<Block> = (0..60).map(|_| Box::new([9; SIZE])).collect();
        drop(v);
        (consumer_kept, cached_by_me(class_size))
    })
    .join()
    .unwrap();
    println!(
        "{OBJECTS} frees only: {consumer_kept} cached; after swings of 50-60: {swinging_kept}"
    );
    // With fixed bounds the bin would hold 33-65 after its spills (a spill leaves a batch behind).
    assert!(
        (1..=BATCH).contains(&consumer_kept),
        "a freeing-only thread cached {consumer_kept} objects of one class (one batch is {BATCH})"
    );
    assert!(
        swinging_kept > BATCH,
        "after allocating between spills the class cached only {swinging_kept} (its bound stayed at one batch)"
    );
}
