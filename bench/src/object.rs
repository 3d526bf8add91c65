//! What the workloads write into their objects under `--touch`, and the check before each free.
//!
//! Every byte of an object is written with a tag (so every page it spans is faulted in, as a real
//! program's would be); before the object is freed or grown, its first and last byte must still
//! hold that tag. Two live objects that overlap, or an object whose memory was handed out again
//! while live, fail the check with a one-line message naming the workload.

/// A tag byte for object `seq` of thread `thread`: neighbouring objects get different tags.
#[inline(always)]
pub fn tag(thread: usize, seq: u64) -> u8 {
    (seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8 ^ (thread as u8).wrapping_mul(0x3b)
}

/// Writes `tag` into every byte of the `size`-byte block at `p` when `touch` is on.
///
/// # Safety
/// `p` is a live block of at least `size` bytes owned by the caller.
#[inline(always)]
pub unsafe fn fill(touch: bool, p: *mut u8, size: usize, tag: u8) {
    if touch {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::write_bytes(p, tag, size) };
    }
}

/// Exits with a message naming `workload` unless the first and last byte of the block still hold
/// `tag` (when `touch` is on; an untouched object holds nothing to check).
///
/// # Safety
/// As for [`fill`].
#[inline(always)]
pub unsafe fn verify(touch: bool, p: *const u8, size: usize, tag: u8, workload: &str) {
    if !touch || size == 0 {
        return;
    }
    // SAFETY: the caller's contract: both bytes lie inside the block.
    let (first, last) = unsafe { (*p, *p.add(size - 1)) };
    if first != tag || last != tag {
        corrupted(workload, p, size, tag, first, last);
    }
}

/// Exits unless every byte of `bytes` is `tag` (a whole region the bench wrote).
pub fn verify_all(bytes: &[u8], tag: u8, workload: &str) {
    if let Some(at) = bytes.iter().position(|&b| b != tag) {
        super::workload::inconsistent(
            workload,
            format_args!(
                "byte {at} of a {}-byte region at {:p} is {:#04x}, the bench wrote {tag:#04x}: the allocator lost or overwrote its contents",
                bytes.len(),
                bytes.as_ptr(),
                bytes[at]
            ),
        );
    }
}

#[cold]
fn corrupted(workload: &str, p: *const u8, size: usize, tag: u8, first: u8, last: u8) -> ! {
    super::workload::inconsistent(
        workload,
        format_args!(
            "object {p:p} of {size} bytes holds {first:#04x}..{last:#04x}, the bench wrote {tag:#04x}: the allocator handed out memory that was still in use"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_then_verify_passes_and_tags_differ_between_neighbours() {
        let mut block = vec![0u8; 64];
        let t = tag(3, 17);
        // SAFETY: a 64-byte owned buffer.
        unsafe {
            fill(true, block.as_mut_ptr(), 64, t);
            verify(true, block.as_ptr(), 64, t, "test");
        }
        verify_all(&block, t, "test");
        assert!(block.iter().all(|&b| b == t));
        let distinct: std::collections::HashSet<u8> = (0..64).map(|s| tag(0, s)).collect();
        assert!(distinct.len() > 32, "tags repeat too often: {distinct:?}");
        assert_ne!(tag(0, 5), tag(1, 5));
        // Untouched: nothing written, nothing checked.
        let mut block = vec![0u8; 8];
        // SAFETY: an 8-byte owned buffer.
        unsafe {
            fill(false, block.as_mut_ptr(), 8, 9);
            verify(false, block.as_ptr(), 8, 9, "test");
        }
        assert_eq!(block, vec![0u8; 8]);
    }
}
