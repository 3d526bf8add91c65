//! `hz3::stats()`, `hz3::usable_size` and `hz3::trim` with hz3 as this binary's
//! `#[global_allocator]`: the figures follow a known allocation pattern.

use std::sync::{Arc, Barrier};

#[global_allocator]
static GLOBAL: hz3::Hz3 = hz3::Hz3;

const N: usize = 2000;
const S: usize = 300;

/// One test function: the harness's other threads stay idle while it measures.
#[test]
fn stats_follow_known_allocations() {
    let mut blocks: Vec<Box<[u8; S]>> = Vec::with_capacity(N);
    let before = hz3::stats();
    for i in 0..N {
        blocks.push(Box::new([i as u8; S]));
    }
    let after = hz3::stats();
    let class = hz3::usable_size(blocks[0].as_ptr() as *mut u8);
    let smallest_fit = after
        .classes
        .iter()
        .map(|c| c.size)
        .filter(|&z| z >= S)
        .min();
    assert_eq!(
        Some(class),
        smallest_fit,
        "usable_size({S}) is the smallest class that fits"
    );
    let grown = after.small_allocated - before.small_allocated;
    assert_eq!(grown, N * class, "the calling thread's own cache is exact");
    let c = after
        .classes
        .iter()
        .find(|c| c.size == class)
        .expect("the class is listed");
    assert!(c.live >= N, "{c:?}");
    assert_eq!(
        after.allocated,
        after.small_allocated + after.large_allocated
    );
    assert!(after.active >= after.small_allocated);
    assert!(after.resident >= after.active && after.mapped >= after.resident);
    assert!(after.mapped_peak >= after.mapped && after.resident_peak >= after.resident);

    // A large block counts what it holds (whole 64 KiB runs), in large_* and in allocated.
    let big = vec![1u8; 200_000];
    let with_big = hz3::stats();
    assert_eq!(with_big.large_count, after.large_count + 1);
    assert_eq!(
        with_big.large_allocated - after.large_allocated,
        hz3::usable_size(big.as_ptr() as *mut u8)
    );
    let held = hz3::usable_size(big.as_ptr() as *mut u8);
    assert!((200_000..200_000 + 64 * 1024).contains(&held), "{held}");
    drop(big);
    let dropped = hz3::stats();
    assert_eq!(dropped.large_count, after.large_count);
    // Freed, its runs stay committed in the large box's cache until decay: retained and resident
    // still count them (malloc_trim below gives them back).
    assert!(
        dropped.retained >= with_big.retained + held,
        "retained {} -> {} after freeing {held} B",
        with_big.retained,
        dropped.retained
    );
    assert!(dropped.resident >= with_big.resident, "{dropped:?}");

    // Free and trim: the empty runs go back to the kernel, resident falls.
    let many: Vec<Vec<u8>> = (0..20_000).map(|_| vec![5u8; 1000]).collect();
    let live = hz3::stats();
    drop(many);
    drop(blocks);
    assert!(hz3::trim(), "trim gave memory back");
    let trimmed = hz3::stats();
    assert_eq!(trimmed.retained, 0);
    assert!(
        trimmed.resident + 10_000_000 < live.resident,
        "resident {} -> {}",
        live.resident,
        trimmed.resident
    );
    assert!(trimmed.returned > live.returned);
    println!("hz3::stats() with {N} x {S} B live: allocated {} B, small {} B, active {} B, resident {} B, retained {} B, mapped {} B, thread caches {} B, transfer cache {} B",
        after.allocated, after.small_allocated, after.active, after.resident, after.retained, after.mapped, after.thread_cached, after.transfer_cached);
    println!(
        "after free + trim: resident {} -> {} B, returned {} B",
        live.resident, trimmed.resident, trimmed.returned
    );

    // Another thread's cache is an estimate, within one class's cache bound (64 KiB) per class.
    let ready = Arc::new(Barrier::new(2));
    let done = Arc::new(Barrier::new(2));
    let (r, d) = (ready.clone(), done.clone());
    let before = hz3::stats();
    let worker = std::thread::spawn(move || {
        let held: Vec<Box<[u8; S]>> = (0..N).map(|_| Box::new([0u8; S])).collect();
        r.wait();
        d.wait();
        drop(held);
    });
    ready.wait();
    let during = hz3::stats();
    done.wait();
    worker.join().unwrap();
    let grown = during.small_allocated as isize - before.small_allocated as isize;
    let exact = (N * class) as isize;
    // Besides the blocks: the worker's Vec (16 KB, small) and the spawn's own allocations.
    assert!(
        (exact - 64 * 1024..=exact + 32 * 1024).contains(&grown),
        "grew {grown}, exact {exact}"
    );
}

#[cfg(feature = "serde")]
#[test]
fn stats_serialize() {
    let json = serde_json::to_string(&hz3::stats()).unwrap();
    assert!(
        json.contains("\"allocated\":") && json.contains("\"classes\":[{\"size\":16,"),
        "{json}"
    );
}
