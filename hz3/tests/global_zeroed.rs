//! `alloc_zeroed` with an alignment above 16 bytes, hz3 as `#[global_allocator]`: a large block
//! fresh from the kernel is handed out without being written (its pages stay untouched, so the
//! resident set does not grow by its size), and a block the cache hands back after it was written
//! reads as zeroes.

use std::alloc::{alloc, alloc_zeroed, dealloc, Layout};

#[global_allocator]
static GLOBAL: hz3::Hz3 = hz3::Hz3;

/// Resident pages of this process (`/proc/self/statm`, second field).
fn resident_pages() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    statm.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// One test function: the harness's other threads stay idle while it measures.
#[test]
fn aligned_zeroed_large_blocks() {
    let big = Layout::from_size_align(256 << 20, 4096).unwrap();
    let before = resident_pages();
    // SAFETY: a non-zero size; freed below with the same layout.
    let p = unsafe { alloc_zeroed(big) };
    assert!(!p.is_null() && (p as usize).is_multiple_of(4096));
    let after = resident_pages();
    // A memset of 256 MiB would fault in 65 536 pages; reading does not commit anonymous pages.
    assert!(
        after < before + 4096,
        "alloc_zeroed faulted in {} pages of a fresh block",
        after.saturating_sub(before)
    );
    for offset in (0..big.size()).step_by(1 << 20) {
        // SAFETY: inside the block.
        assert_eq!(
            unsafe { *p.add(offset) },
            0,
            "fresh block not zero at {offset}"
        );
    }
    // SAFETY: allocated above with this layout.
    unsafe { dealloc(p, big) };

    // A written block comes back from the cache committed: it must be zeroed.
    let layout = Layout::from_size_align(3 << 20, 64).unwrap();
    for round in 0..4u8 {
        // SAFETY: a non-zero size; every block is freed with its layout.
        unsafe {
            let dirty = alloc(layout);
            assert!(!dirty.is_null());
            std::ptr::write_bytes(dirty, 0xa5 ^ round, layout.size());
            dealloc(dirty, layout);
            let z = alloc_zeroed(layout);
            assert!(!z.is_null() && (z as usize).is_multiple_of(64));
            let bytes = std::slice::from_raw_parts(z, layout.size());
            assert!(
                bytes.iter().all(|&b| b == 0),
                "round {round}: reused block not zeroed"
            );
            dealloc(z, layout);
        }
    }
}
