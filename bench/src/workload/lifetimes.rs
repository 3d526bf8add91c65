//! Random sizes with random lifetimes (after the published descriptions of the "mstress" and
//! "xmalloc" families): every step allocates one object, its size log-uniform in min..=max and its
//! lifetime log-uniform in 1..W-1 steps (most objects die young, a few live long), and frees the
//! objects whose lifetime ends at this step. Thread-local; the other presets cover remote frees.
//!
//! The deaths are kept in a timing wheel of W buckets whose lists run through a node pool built
//! before the clock starts, so the bench itself allocates nothing while timed.
use super::{inconsistent, malloc_or_exit, run_threads, Clock, Config, Counts, Outcome, RawAlloc};
use crate::live::Live;
use crate::object;
use crate::rng::SplitMix64;

const NAME: &str = "random-lifetimes";
const NONE: u32 = u32::MAX;

/// Live objects: bucket `d % W` lists the objects that die at step `d`.
struct Wheel {
    head: Vec<u32>,
    next: Vec<u32>,
    block: Vec<*mut u8>,
    size: Vec<u32>,
    tag: Vec<u8>,
    /// Unused nodes (a stack).
    spare: Vec<u32>,
}

impl Wheel {
    /// The heap bytes of a wheel of `w` buckets: counted live, so the overhead is the allocator's.
    fn heap_bytes(w: usize) -> usize {
        w * (2 * 4 + std::mem::size_of::<*mut u8>() + 4 + 1 + 4)
    }

    /// At most W-1 objects are live after a step's frees (lifetimes are below W), plus the new one.
    fn new(w: usize) -> Wheel {
        Wheel {
            head: vec![NONE; w],
            next: vec![NONE; w],
            block: vec![std::ptr::null_mut(); w],
            size: vec![0; w],
            tag: vec![0; w],
            spare: (0..w as u32).rev().collect(),
        }
    }

    fn insert(&mut self, bucket: usize, block: *mut u8, size: usize, tag: u8) {
        let Some(n) = self.spare.pop() else {
            inconsistent(NAME, format_args!("more live objects than wheel slots"));
        };
        let i = n as usize;
        (self.block[i], self.size[i], self.tag[i]) = (block, size as u32, tag);
        self.next[i] = self.head[bucket];
        self.head[bucket] = n;
    }

    /// Hands every object of `bucket` to `each(block, size, tag)` and empties it; returns how many.
    fn expire(&mut self, bucket: usize, mut each: impl FnMut(*mut u8, usize, u8)) -> u64 {
        let mut n = self.head[bucket];
        self.head[bucket] = NONE;
        let mut count = 0;
        while n != NONE {
            let i = n as usize;
            each(self.block[i], self.size[i] as usize, self.tag[i]);
            self.spare.push(n);
            n = self.next[i];
            count += 1;
        }
        count
    }
}

pub fn run<A: RawAlloc>(cfg: &Config, alloc: &A, live: &Live) -> Outcome {
    // The command line makes W at least 2.
    let w = cfg.ws.max(2);
    run_threads(cfg.threads.max(1), live, |index, start_line| {
        let mut rng = SplitMix64::for_thread(cfg.seed, index as u64);
        let mut wheel = Wheel::new(w);
        let held = live.thread(index);
        held.add(Wheel::heap_bytes(w));
        let free = |p: *mut u8, size: usize, tag: u8| {
            held.sub(size);
            // SAFETY: each wheel node holds a live block of `size` bytes, freed once as it leaves.
            unsafe {
                object::verify(cfg.touch, p, size, tag, NAME);
                alloc.free(p);
            }
        };
        let mut t = Counts::default();
        let clock = Clock::start_after(start_line);
        for step in 0..cfg.iters {
            t.local_frees += wheel.expire((step % w as u64) as usize, free);
            let size = rng.log_uniform(cfg.min as u64, cfg.max as u64) as usize;
            let lifetime = rng.log_uniform(1, w as u64 - 1);
            let tag = object::tag(index, step);
            let p = malloc_or_exit(alloc, size);
            // SAFETY: p is a fresh block of `size` bytes.
            unsafe { object::fill(cfg.touch, p, size, tag) };
            held.add(size);
            wheel.insert(((step + lifetime) % w as u64) as usize, p, size, tag);
            t.mallocs += 1;
        }
        let timed = clock.stop(t);
        let mut left = 0;
        for bucket in 0..w {
            left += wheel.expire(bucket, free);
        }
        drop(wheel);
        held.sub(Wheel::heap_bytes(w));
        let totals = timed.totals();
        if totals.mallocs != totals.local_frees + left {
            inconsistent(
                NAME,
                format_args!(
                    "thread {index}: {} mallocs, {} freed when their lifetime ended, {left} left",
                    totals.mallocs, totals.local_frees
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

    #[test]
    fn objects_die_when_their_lifetime_ends_and_all_are_freed() {
        for (threads, ws, touch) in [(1, 2, true), (3, 512, true), (2, 64, false)] {
            let alloc = CheckingAlloc::default();
            let cfg = Config {
                threads,
                iters: 20_000,
                ws,
                max: 16384,
                touch,
                ..small_config(Kind::RandomLifetimes)
            };
            let out = crate::workload::run(&cfg, &alloc);
            alloc.check_balanced();
            assert_eq!(out.counts.mallocs, threads as u64 * cfg.iters);
            // At most W-1 objects per thread outlive the timed section.
            let still_live = out.counts.mallocs - out.counts.local_frees;
            assert!(
                still_live > 0 && still_live < (threads * ws) as u64,
                "{out:?}"
            );
            assert_eq!(out.counts.remote_frees, 0);
        }
    }
}
