//! A run's set of free objects held by the central pool, kept in side memory (never in the run,
//! so filing an object does not fault its page in).
//!
//! One bit per 16-byte granule (512 B per run, eight runs to a page), taken lowest address first;
//! a granule filed twice is seen at once (double free). A stack of offsets (8 KiB per run) was
//! measured and retired: side RSS grew with every run ever used (docs/decisions.md, run-stack).
//!
//! Callers hold the run's central pool lock; `Run::nfree` counts the members.

use crate::page_map::{Run, RUN_SIZE};

const GRANULES: usize = RUN_SIZE / 16;

/// Side bytes each run needs (a multiple of 64, so runs' sets never share a cache line).
pub const SIDE_BYTES: usize = GRANULES / 8;

/// Empties the set of a run about to be carved afresh.
///
/// # Safety
/// `run` is owned by the caller and its `side` points at SIDE_BYTES of side memory.
#[inline]
pub unsafe fn reset(run: *mut Run) {
    // SAFETY: per the contract.
    unsafe {
        (*run).nfree = 0;
        (*run).scan_from = 0;
        core::ptr::write_bytes((*run).side, 0, SIDE_BYTES);
    }
}

/// Adds free object `obj` (inside `run`) to the set.
///
/// # Safety
/// The caller holds the run's pool lock; `obj` lies in the run at an object boundary.
#[inline]
pub unsafe fn put(run: *mut Run, obj: usize) {
    // SAFETY: per the contract; granule < GRANULES because obj lies in the run.
    unsafe {
        let granule = (obj - (*run).base) >> 4;
        let word = (*run).side.cast::<u64>().add(granule >> 6);
        let bit = 1u64 << (granule & 63);
        if *word & bit != 0 {
            crate::os::fail_at(
                "central",
                "object returned twice to its run (double free)",
                obj,
            );
        }
        *word |= bit;
        if ((granule >> 6) as u16) < (*run).scan_from {
            (*run).scan_from = (granule >> 6) as u16;
        }
        (*run).nfree += 1;
    }
}

/// Takes one member out of the set (its address).
///
/// # Safety
/// The caller holds the run's pool lock and `nfree > 0`.
#[inline]
pub unsafe fn take(run: *mut Run) -> usize {
    // SAFETY: per the contract; with nfree > 0 a member exists at or after `scan_from`.
    unsafe {
        (*run).nfree -= 1;
        let granule = {
            let words = (*run).side.cast::<u64>();
            let mut w = (*run).scan_from as usize;
            while *words.add(w) == 0 {
                w += 1;
            }
            (*run).scan_from = w as u16;
            let bits = *words.add(w);
            *words.add(w) = bits & (bits - 1);
            (w << 6) | bits.trailing_zeros() as usize
        };
        (*run).base + granule * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn members_come_back_once_each() {
        let mut side = std::vec![0u64; SIDE_BYTES / 8];
        // SAFETY: an all-zero descriptor is a valid unlisted run.
        let mut run: Run = unsafe { core::mem::zeroed() };
        run.base = 0x7000_0000;
        run.side = side.as_mut_ptr().cast();
        let run = &mut run as *mut Run;
        // Objects of a 48-byte class, filed out of order, including the run's last one.
        let size = 48;
        let last = (RUN_SIZE / size - 1) * size;
        let offsets = [5 * size, 0, last, 2 * size, 700 * size];
        // SAFETY: the run and its side memory are ours; every object lies in the run.
        unsafe {
            reset(run);
            for off in offsets {
                put(run, 0x7000_0000 + off);
            }
            assert_eq!((*run).nfree as usize, offsets.len());
            let mut got: Vec<usize> = (0..offsets.len())
                .map(|_| take(run) - 0x7000_0000)
                .collect();
            assert_eq!((*run).nfree, 0);
            assert!(
                got.is_sorted(),
                "the bitmap hands out lowest address first: {got:?}"
            );
            got.sort_unstable();
            let mut want = offsets.to_vec();
            want.sort_unstable();
            assert_eq!(got, want);
            // Refiled after being taken: found again, below the scan hint.
            put(run, 0x7000_0000 + last);
            put(run, 0x7000_0000);
            assert_eq!(take(run), 0x7000_0000);
            assert_eq!(take(run), 0x7000_0000 + last);
        }
    }
}
