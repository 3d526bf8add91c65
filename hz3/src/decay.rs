//! Decay: when emptied memory (page-source runs, large extents) goes back to the kernel.
//!
//! Emptied memory stays committed for `DECAY_MS` after it was emptied, so a workload that frees
//! and reallocates within that time reuses warm pages instead of cycling madvise -> page fault.
//! Purging is driven by the allocator's slow paths (a large block allocated or freed, a thread
//! cache spilling, a thread's exit): each calls `tick`, which reads a coarse
//! clock and runs a pass at most `PASSES` times per period, so memory goes back in batches. A
//! process that stops calling the allocator keeps its emptied memory until its next such call (or
//! `malloc_trim`, which returns everything at once).
//!
//! Returning memory at the first opportunity after it empties was measured against this and
//! retired (docs/decisions.md, "Large blocks and decay").

use crate::config;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// How long emptied memory stays committed, in milliseconds.
pub const DECAY_MS: u32 = 1000;
/// Purge passes per decay period: memory goes back at most this often, in batches.
const PASSES: u32 = 4;
/// Time between passes.
const PASS_MS: u32 = DECAY_MS / PASSES;

/// Milliseconds on a monotonic coarse clock (vDSO, a few ns, no syscall on x86-64); wraps after
/// 49 days, so stamps are compared with wrapping arithmetic only.
pub fn now_ms() -> u32 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    (ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000) as u32
}

/// True if memory emptied at `stamp` has waited out the decay period at `now`. The age is signed: a pass reads its clock before taking the locks, so a
/// block freed meanwhile carries a stamp later than `now`, and an unsigned difference would make it
/// the oldest memory there is.
#[inline]
pub fn expired(stamp: u32, now: u32) -> bool {
    (now.wrapping_sub(stamp) as i32) >= DECAY_MS as i32
}

/// When the next purge pass is due (a monotonic-clock millisecond), claimed by compare-and-swap so
/// that one caller runs each pass and the others pay one load.
static NEXT_PASS_MS: AtomicU32 = AtomicU32::new(0);
static ARMED: AtomicBool = AtomicBool::new(false);

/// True (and the next pass scheduled) when this caller should run a purge pass at `now`.
fn claim_pass(now: u32) -> bool {
    let next = NEXT_PASS_MS.load(Ordering::Relaxed);
    // Signed distance: a schedule more than 24 days stale counts as due.
    if ARMED.load(Ordering::Relaxed) && (now.wrapping_sub(next) as i32) < 0 {
        return false;
    }
    ARMED.store(true, Ordering::Relaxed);
    NEXT_PASS_MS
        .compare_exchange(
            next,
            now.wrapping_add(PASS_MS),
            Ordering::Relaxed,
            Ordering::Relaxed,
        )
        .is_ok()
}

/// Called from the slow paths above the boxes it visits (`api`, `lifecycle`) with no lock held: runs a purge pass over every box that keeps emptied memory when one
/// is due. The transfer cache's idle batches go back to the central pool first, so the runs they
/// kept can empty and follow one period later.
pub fn tick() {
    let now = now_ms();
    if !claim_pass(now) {
        return;
    }
    crate::probes::here(|c| c.add(crate::probes::Event::DecayPass, 1));
    if config::SCALE {
        crate::transfer::decay();
    }
    crate::page_source::decay(now);
    crate::large::decay(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_expire_after_the_period_across_wraparound() {
        let now = 5u32;
        let stamp = now.wrapping_sub(DECAY_MS);
        assert!(expired(stamp, now));
        assert!(!expired(stamp.wrapping_add(1), now));
        // Stamped after the pass read its clock: the youngest memory, not the oldest.
        assert!(!expired(now.wrapping_add(3), now));
    }

    #[test]
    fn passes_are_spaced_by_a_fraction_of_the_period() {
        let t = 1_000_000u32;
        assert!(claim_pass(t));
        assert!(!claim_pass(t));
        assert!(!claim_pass(t + PASS_MS - 1));
        assert!(claim_pass(t + PASS_MS));
    }
}
