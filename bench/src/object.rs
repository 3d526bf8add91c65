//! What the workloads write into their objects under `--touch`, and the check before each free.
//!
//! Every byte of an object is written with a tag (so every page it spans is faulted in, as a real
//! program's would be); before the object is freed or grown, its first and last byte must still
//! hold that tag. Two live objects that overlap, or an object whose memory was handed out again
//! while live, fail the check with a one-line message naming the workload.
use crate::workload::inconsistent;

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

/// Writes `size` (at most 4 GiB) and its complement into the first 8 bytes of a block of at least 8 bytes, so a thread that receives
/// it without its size can check it ([`verify_stamped`]).
///
/// # Safety
/// As for [`fill`], with `size >= 8`.
#[inline(always)]
pub unsafe fn stamp_size(p: *mut u8, size: usize) {
    // The complement in the high half makes any change to the stamp visible.
    let size = size as u32;
    let stamp = size as u64 | ((!size) as u64) << 32;
    // SAFETY: the caller's contract: 8 bytes lie inside the block.
    unsafe { (p as *mut u64).write_unaligned(stamp) };
}

/// Exits with a message naming `workload` unless the block at `p` carries a size stamp within
/// `min..=max` (and at least 9) and its bytes 8 and size-1 still hold `tag`.
///
/// # Safety
/// `p` is a live block stamped by [`stamp_size`] after a [`fill`] with `tag`, of at least `min`
/// bytes, `min >= 9`.
#[inline(always)]
pub unsafe fn verify_stamped(p: *const u8, min: usize, max: usize, tag: u8, workload: &str) {
    // SAFETY: the caller's contract: the block holds at least min >= 9 bytes.
    let stamp = unsafe { (p as *const u64).read_unaligned() };
    let size = (stamp as u32) as usize;
    if (stamp >> 32) as u32 != !(stamp as u32) || size < min.max(9) || size > max {
        inconsistent(
            workload,
            format_args!(
                "object {p:p} has lost the size stamp the bench wrote (it reads {stamp:#018x}; sizes are {min}..={max}): the allocator handed out memory that was still in use"
            ),
        );
    }
    // SAFETY: size lies within the block's true size unless the stamp was overwritten with
    // another in-range value; byte 8 and byte size-1 are then inside it.
    let (second, last) = unsafe { (*p.add(8), *p.add(size - 1)) };
    if second != tag || last != tag {
        corrupted(workload, p, size, tag, second, last);
    }
}

/// Exits unless every byte of `bytes` is `tag` (a whole region the bench wrote).
pub fn verify_all(bytes: &[u8], tag: u8, workload: &str) {
    if let Some(at) = bytes.iter().position(|&b| b != tag) {
        inconsistent(
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
    inconsistent(
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

        let mut block = vec![0u8; 100];
        // SAFETY: a 100-byte owned buffer.
        unsafe {
            fill(true, block.as_mut_ptr(), 100, 0xa5);
            stamp_size(block.as_mut_ptr(), 100);
            verify_stamped(block.as_ptr(), 64, 128, 0xa5, "test");
        }
        assert_eq!(block[..8], (100u64 | (!100u32 as u64) << 32).to_le_bytes());
    }
}
