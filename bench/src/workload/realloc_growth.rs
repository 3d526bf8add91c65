//! Buffers grown by realloc, as strings and vectors are appended to: each thread grows N buffers,
//! one at a time, from --min bytes in steps of --min bytes to a size drawn uniformly from
//! [max/2, max] (rounded up to a step), then frees it.
//!
//! Under `--touch` each step's bytes are written with their own tag; after every realloc the last
//! byte of the old contents must have moved with them, and before the free the whole buffer is read
//! back and must hold what was written (a program reads the string it built).
use super::{inconsistent, malloc_or_exit, run_threads, Clock, Config, Counts, Outcome, RawAlloc};
use crate::live::Live;
use crate::object;
use crate::rng::SplitMix64;

const NAME: &str = "realloc-growth";

pub fn run<A: RawAlloc>(cfg: &Config, alloc: &A, live: &Live) -> Outcome {
    // The command line makes the step at least 1 byte and at most --max.
    let step = cfg.min.max(1);
    run_threads(cfg.threads.max(1), live, |index, start_line| {
        let mut rng = SplitMix64::for_thread(cfg.seed, index as u64);
        let held = live.thread(index);
        let mut t = Counts::default();
        let clock = Clock::start_after(start_line);
        for buffer in 0..cfg.iters {
            let drawn = rng.between((cfg.max / 2) as u64, cfg.max as u64) as usize;
            let steps = drawn.div_ceil(step).max(1);
            let tag = |k: usize| object::tag(index, buffer.wrapping_mul(1 << 20) ^ k as u64);
            let mut p = malloc_or_exit(alloc, step);
            held.add(step);
            t.mallocs += 1;
            // SAFETY: p is a fresh block of `step` bytes.
            unsafe { object::fill(cfg.touch, p, step, tag(0)) };
            for k in 1..steps {
                let (old, new) = (k * step, (k + 1) * step);
                // SAFETY: p is live (from malloc or the previous realloc) and not used again if
                // realloc succeeds; on failure we exit.
                let grown = unsafe { alloc.realloc(p, new) };
                if grown.is_null() {
                    super::out_of_memory(new);
                }
                p = grown;
                held.add(step);
                t.reallocs += 1;
                // SAFETY: the old contents' last byte lies inside the grown block; the new step's
                // bytes [old, new) do too.
                unsafe {
                    object::verify(cfg.touch, p.add(old - 1), 1, tag(k - 1), NAME);
                    object::fill(cfg.touch, p.add(old), new - old, tag(k));
                }
            }
            if cfg.touch {
                for k in 0..steps {
                    // SAFETY: step k's bytes lie inside the `steps * step`-byte block.
                    let bytes = unsafe { std::slice::from_raw_parts(p.add(k * step), step) };
                    object::verify_all(bytes, tag(k), NAME);
                }
            }
            // SAFETY: p is the live buffer, freed once.
            unsafe { alloc.free(p) };
            held.sub(steps * step);
            t.local_frees += 1;
        }
        let timed = clock.stop(t);
        let totals = timed.totals();
        if totals.mallocs != cfg.iters || totals.local_frees != cfg.iters {
            inconsistent(
                NAME,
                format_args!(
                    "thread {index}: {} buffers allocated, {} freed, {} grown",
                    totals.mallocs, totals.local_frees, cfg.iters
                ),
            );
        }
        timed
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::checking::{small_config, CheckingAlloc};
    use crate::workload::Kind;
    use std::sync::atomic::Ordering;

    #[test]
    fn buffers_grow_step_by_step_and_keep_their_contents() {
        for (threads, min, max, touch) in
            [(1, 8, 8, true), (2, 100, 5000, true), (3, 64, 4096, false)]
        {
            let alloc = CheckingAlloc::default();
            let cfg = Config {
                threads,
                iters: 30,
                min,
                max,
                touch,
                ..small_config(Kind::ReallocGrowth)
            };
            let out = crate::workload::run(&cfg, &alloc);
            alloc.check_balanced();
            let buffers = threads as u64 * cfg.iters;
            assert_eq!(
                (out.counts.mallocs, out.counts.local_frees),
                (buffers, buffers)
            );
            assert_eq!(out.counts.reallocs, alloc.reallocs.load(Ordering::Relaxed));
            // Each buffer ends between max/2 and max (+ one step of rounding), one step per realloc.
            let lo = buffers * ((max / 2).div_ceil(min).max(1) as u64 - 1);
            let hi = buffers * (max.div_ceil(min) as u64 - 1);
            assert!(
                (lo..=hi).contains(&out.counts.reallocs),
                "{} reallocs not in {lo}..={hi}",
                out.counts.reallocs
            );
            assert_eq!(out.ops(), 2 * buffers + out.counts.reallocs);
        }
    }
}
