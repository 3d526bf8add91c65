//! The "random mixed, multi-thread, remote free" workload: T threads, W slots each; each step
//! fills an empty slot or empties a full one, and a freed object goes to the next thread's ring
//! with probability P% (that thread frees it).
use super::{
    malloc_or_exit, run_threads, Clock, Config, Counts, Outcome, RawAlloc, StartLine, Timed,
};
use crate::live::{Live, LiveCell};
use crate::object;
use crate::ring::Ring;
use crate::rng::SplitMix64;
use std::sync::Barrier;

const NAME: &str = "remote";
/// What `--touch` writes into every byte.
const FILL: u8 = 0xa5;
/// Touched blocks of at least this size (all of them when --min is this large: large-churn) carry
/// their size and are checked before every free; writing them costs far more than the check. The
/// small-object presets stay as their targets were measured: written, never read back.
const CHECKED_MIN: usize = 64 << 10;

pub fn run<A: RawAlloc>(cfg: &Config, alloc: &A, live: &Live) -> Outcome {
    let threads = cfg.threads.max(1);
    // Built before the start barrier so their allocation is not timed.
    let rings: Vec<Ring> = (0..threads).map(|_| Ring::new(cfg.ring)).collect();
    let ring_bytes = threads * Ring::heap_bytes(cfg.ring);
    live.main().add(ring_bytes);
    let finish_line = Barrier::new(threads);
    let outcome = run_threads(threads, live, |index, start_line| {
        let inbox = &rings[index];
        let outbox = &rings[(index + 1) % threads];
        let ends = Ends {
            start_line,
            finish_line: &finish_line,
            live: live.thread(index),
        };
        worker(cfg, alloc, index, inbox, outbox, ends)
    });
    drop(rings);
    live.main().sub(ring_bytes);
    outcome
}

/// What a worker shares with the others besides the rings: the two barriers, and its live count.
struct Ends<'a> {
    start_line: &'a StartLine<'a>,
    finish_line: &'a Barrier,
    live: &'a LiveCell,
}

fn worker<A: RawAlloc>(
    cfg: &Config,
    alloc: &A,
    index: usize,
    inbox: &Ring,
    outbox: &Ring,
    ends: Ends,
) -> Timed {
    let mut rng = SplitMix64::for_thread(cfg.seed, index as u64);
    let mut slots: Vec<*mut u8> = vec![std::ptr::null_mut(); cfg.ws];
    // Each slot's requested size, for the live count and the ring.
    let mut sizes: Vec<u32> = vec![0; cfg.ws];
    let live = ends.live;
    let slot_bytes = cfg.ws * (std::mem::size_of::<*mut u8>() + std::mem::size_of::<u32>());
    live.add(slot_bytes);
    let mut producer = outbox.producer();
    let mut t = Counts::default();
    let span = (cfg.max - cfg.min + 1) as u64;
    let checked = cfg.touch && cfg.min >= CHECKED_MIN;
    let free = |p: *mut u8, size: usize| {
        live.sub(size);
        // SAFETY: every pointer reaching here came from `alloc.malloc` and left its slot or ring
        // when it was handed over, so it is freed exactly once; a checked one was stamped.
        unsafe {
            if checked {
                object::verify_stamped(p, cfg.min, cfg.max, FILL, NAME);
            }
            alloc.free(p)
        }
    };

    let clock = Clock::start_after(ends.start_line);
    for _ in 0..cfg.iters {
        t.remote_frees += inbox.drain(free);
        let slot = rng.below(cfg.ws as u64) as usize;
        let object = slots[slot];
        if object.is_null() {
            let size = cfg.min + rng.below(span) as usize;
            let p = malloc_or_exit(alloc, size);
            // SAFETY: p is a fresh block of at least `size` bytes (>= CHECKED_MIN when checked).
            unsafe {
                object::fill(cfg.touch, p, size, FILL);
                if checked {
                    object::stamp_size(p, size);
                }
            }
            slots[slot] = p;
            sizes[slot] = size as u32;
            live.add(size);
            t.mallocs += 1;
        } else {
            slots[slot] = std::ptr::null_mut();
            let size = sizes[slot] as usize;
            let remote = cfg.remote_pct > 0 && rng.below(100) < cfg.remote_pct as u64;
            if remote && producer.push(object, size) {
                t.sent += 1;
            } else {
                free(object, size);
                t.local_frees += 1;
                t.fallbacks += remote as u64;
            }
        }
    }
    producer.finish();
    if cfg.matched {
        // The producer's done flag is read before the drain, so an empty drain after seeing it
        // means every object it ever sent has been freed here.
        loop {
            let done = inbox.producer_done();
            let n = inbox.drain(free);
            t.remote_frees += n;
            if n == 0 {
                if done {
                    break;
                }
                // Two cores, 32 threads: spinning would steal the CPU from the threads we wait on.
                std::thread::yield_now();
            }
        }
    }
    let timed = clock.stop(t);

    // Untimed clean-up, once every thread has stopped pushing.
    ends.finish_line.wait();
    inbox.drain(free);
    for (p, size) in slots.into_iter().zip(sizes).filter(|(p, _)| !p.is_null()) {
        free(p, size as usize);
    }
    live.sub(slot_bytes);
    timed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::checking::CheckingAlloc;
    use crate::workload::{CMalloc, Kind};
    use std::sync::atomic::{AtomicU64, Ordering};

    fn config(threads: usize, matched: bool, remote_pct: u32, ring: usize) -> Config {
        Config {
            kind: Kind::Remote,
            threads,
            iters: 20_000,
            ws: 64,
            min: 16,
            max: 256,
            remote_pct,
            ring,
            matched,
            touch: true,
            seed: 3,
        }
    }

    #[test]
    fn matched_mode_frees_everything_once_and_counts_exactly_threads_times_iters() {
        for (threads, ring) in [(1, 64), (4, 65536), (4, 2)] {
            let alloc = CheckingAlloc::default();
            let cfg = config(threads, true, 50, ring);
            let out = crate::workload::run(&cfg, &alloc);
            alloc.check_balanced();
            // Every step is one malloc or one free, and matched mode drains every remote free.
            assert_eq!(
                out.ops(),
                threads as u64 * cfg.iters,
                "threads={threads} ring={ring}"
            );
            assert_eq!(out.counts.sent, out.counts.remote_frees);
            assert!(out.counts.sent > 0, "50% remote produced no remote frees");
            assert_eq!(out.counts.mallocs, alloc.mallocs.load(Ordering::Relaxed));
            assert!(
                out.cpu_secs > 0.0 && out.cpu_secs < out.secs * threads as f64 + 0.05,
                "{out:?}"
            );
        }
    }

    #[test]
    fn a_two_slot_ring_overflows_into_counted_fallbacks() {
        let alloc = CheckingAlloc::default();
        let mut cfg = config(2, true, 100, 2);
        cfg.iters = 100_000;
        let out = crate::workload::run(&cfg, &alloc);
        alloc.check_balanced();
        assert!(
            out.counts.fallbacks > 0,
            "a 2-slot ring never filled in 100k steps: {out:?}"
        );
        assert_eq!(out.ops(), 2 * cfg.iters);
    }

    #[test]
    fn unmatched_mode_still_frees_leftovers_and_local_only_sends_nothing() {
        let alloc = CheckingAlloc::default();
        let out = crate::workload::run(&config(3, false, 90, 1024), &alloc);
        alloc.check_balanced();
        assert!(out.counts.remote_frees <= out.counts.sent);

        let alloc = CheckingAlloc::default();
        let out = crate::workload::run(&config(2, false, 0, 1024), &alloc);
        alloc.check_balanced();
        assert_eq!(
            (
                out.counts.sent,
                out.counts.remote_frees,
                out.counts.fallbacks
            ),
            (0, 0, 0)
        );
        assert_eq!(out.ops(), 2 * 20_000);
    }

    #[test]
    fn sizes_stay_within_min_and_max() {
        struct SizeCheck(AtomicU64, AtomicU64);
        impl RawAlloc for SizeCheck {
            fn malloc(&self, size: usize) -> *mut u8 {
                self.0.fetch_min(size as u64, Ordering::Relaxed);
                self.1.fetch_max(size as u64, Ordering::Relaxed);
                CMalloc.malloc(size)
            }
            unsafe fn free(&self, ptr: *mut u8) {
                // SAFETY: forwarded contract.
                unsafe { CMalloc.free(ptr) }
            }
            unsafe fn realloc(&self, ptr: *mut u8, size: usize) -> *mut u8 {
                // SAFETY: forwarded contract.
                unsafe { CMalloc.realloc(ptr, size) }
            }
        }
        let check = SizeCheck(AtomicU64::new(u64::MAX), AtomicU64::new(0));
        let mut cfg = config(2, true, 50, 1024);
        (cfg.min, cfg.max) = (100, 103);
        crate::workload::run(&cfg, &check);
        assert_eq!(
            (
                check.0.load(Ordering::Relaxed),
                check.1.load(Ordering::Relaxed)
            ),
            (100, 103)
        );
    }
}
