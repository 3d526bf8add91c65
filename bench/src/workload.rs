//! The "random mixed, multi-thread, remote free" workload, generic over the allocator it drives.
//!
//! Generic so the tests can count every malloc and free with a checking allocator, while the binary
//! uses the C `malloc`/`free` symbols that `LD_PRELOAD` decides.
use crate::ring::Ring;
use crate::rng::SplitMix64;
use std::sync::Barrier;
use std::time::Instant;

/// What the workload needs from an allocator: nothing but raw malloc and free.
pub trait RawAlloc: Sync {
    /// A block of at least `size` bytes, or null.
    fn malloc(&self, size: usize) -> *mut u8;
    /// # Safety
    /// `ptr` came from `malloc` of this allocator and has not been freed since.
    unsafe fn free(&self, ptr: *mut u8);
}

/// The process's C `malloc`/`free`: whatever `LD_PRELOAD` put first, glibc otherwise.
pub struct CMalloc;

impl RawAlloc for CMalloc {
    #[inline(always)]
    fn malloc(&self, size: usize) -> *mut u8 {
        // SAFETY: malloc has no preconditions.
        unsafe { libc::malloc(size) as *mut u8 }
    }
    #[inline(always)]
    unsafe fn free(&self, ptr: *mut u8) {
        // SAFETY: forwarded from our caller's contract.
        unsafe { libc::free(ptr as *mut libc::c_void) }
    }
}

/// A fully resolved configuration (presets and defaults already applied, already validated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub threads: usize,
    pub iters: u64,
    pub ws: usize,
    pub min: usize,
    pub max: usize,
    pub remote_pct: u32,
    pub ring: usize,
    pub matched: bool,
    pub touch: bool,
    pub seed: u64,
}

/// Totals over all threads for the timed section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub secs: f64,
    pub mallocs: u64,
    /// Frees by the owning thread, including ring-full fallbacks.
    pub local_frees: u64,
    /// Objects pushed to the next thread's ring.
    pub sent: u64,
    /// Objects freed by the receiving thread (drained from its inbox) inside the timed section.
    pub remote_frees: u64,
    /// Remote frees done locally because the ring was full.
    pub fallbacks: u64,
    /// CPU time (user + system) the threads spent inside the timed section, summed: unlike `secs`
    /// it does not grow while a thread waits for a core, so it is steadier on a shared machine.
    pub cpu_secs: f64,
}

impl Outcome {
    /// The op count: mallocs + local frees + drained remote frees.
    pub fn ops(&self) -> u64 {
        self.mallocs + self.local_frees + self.remote_frees
    }

    pub fn mops(&self) -> f64 {
        if self.secs > 0.0 {
            self.ops() as f64 / self.secs / 1e6
        } else {
            0.0
        }
    }
}

#[derive(Default)]
struct ThreadTotals {
    mallocs: u64,
    local_frees: u64,
    sent: u64,
    remote_frees: u64,
    fallbacks: u64,
    cpu_secs: f64,
}

/// Runs the workload; every object allocated is freed exactly once before this returns.
pub fn run<A: RawAlloc>(cfg: &Config, alloc: &A) -> Outcome {
    let threads = cfg.threads.max(1);
    // Built before the start barrier so their allocation is not timed.
    let rings: Vec<Ring> = (0..threads).map(|_| Ring::new(cfg.ring)).collect();
    let start_line = Barrier::new(threads);
    let finish_line = Barrier::new(threads);
    let results: Vec<(Instant, Instant, ThreadTotals)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|index| {
                let inbox = &rings[index];
                let outbox = &rings[(index + 1) % threads];
                let (start_line, finish_line) = (&start_line, &finish_line);
                std::thread::Builder::new()
                    .name(format!("bench-{index}"))
                    .spawn_scoped(scope, move || {
                        worker(cfg, alloc, index, inbox, outbox, start_line, finish_line)
                    })
                    .expect("spawning a bench thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench thread panicked"))
            .collect()
    });
    let start = results
        .iter()
        .map(|r| r.0)
        .min()
        .expect("at least one thread");
    let end = results
        .iter()
        .map(|r| r.1)
        .max()
        .expect("at least one thread");
    let mut outcome = Outcome {
        secs: end.duration_since(start).as_secs_f64(),
        ..Outcome::default()
    };
    for (_, _, t) in &results {
        outcome.mallocs += t.mallocs;
        outcome.local_frees += t.local_frees;
        outcome.sent += t.sent;
        outcome.remote_frees += t.remote_frees;
        outcome.fallbacks += t.fallbacks;
        outcome.cpu_secs += t.cpu_secs;
    }
    outcome
}

fn worker<A: RawAlloc>(
    cfg: &Config,
    alloc: &A,
    index: usize,
    inbox: &Ring,
    outbox: &Ring,
    start_line: &Barrier,
    finish_line: &Barrier,
) -> (Instant, Instant, ThreadTotals) {
    let mut rng = SplitMix64::for_thread(cfg.seed, index as u64);
    let mut slots: Vec<*mut u8> = vec![std::ptr::null_mut(); cfg.ws];
    let mut producer = outbox.producer();
    let mut t = ThreadTotals::default();
    let span = (cfg.max - cfg.min + 1) as u64;
    let free = |p: *mut u8| {
        // SAFETY: every pointer reaching here came from `alloc.malloc` and left its slot or ring
        // when it was handed over, so it is freed exactly once.
        unsafe { alloc.free(p) }
    };

    start_line.wait();
    let start = Instant::now();
    let cpu_start = thread_cpu_secs();
    for _ in 0..cfg.iters {
        t.remote_frees += inbox.drain(free);
        let slot = rng.below(cfg.ws as u64) as usize;
        let object = slots[slot];
        if object.is_null() {
            let size = cfg.min + rng.below(span) as usize;
            let p = alloc.malloc(size);
            if p.is_null() {
                out_of_memory(size);
            }
            if cfg.touch {
                // SAFETY: p is a fresh block of at least `size` bytes.
                unsafe { std::ptr::write_bytes(p, 0xa5, size) };
            }
            slots[slot] = p;
            t.mallocs += 1;
        } else {
            slots[slot] = std::ptr::null_mut();
            let remote = cfg.remote_pct > 0 && rng.below(100) < cfg.remote_pct as u64;
            if remote && producer.push(object) {
                t.sent += 1;
            } else {
                free(object);
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
    let finish = Instant::now();
    t.cpu_secs = thread_cpu_secs() - cpu_start;

    // Untimed clean-up, once every thread has stopped pushing.
    finish_line.wait();
    inbox.drain(free);
    for p in slots.into_iter().filter(|p| !p.is_null()) {
        free(p);
    }
    (start, finish, t)
}

/// This thread's CPU time (user + system) in seconds.
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cold]
fn out_of_memory(size: usize) -> ! {
    eprintln!("hz3-bench: malloc({size}) returned NULL");
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    /// Counts calls and checks every free targets a live block (no double or foreign free).
    #[derive(Default)]
    struct CheckingAlloc {
        mallocs: AtomicU64,
        frees: AtomicU64,
        live: Mutex<HashSet<usize>>,
        bad_frees: AtomicU64,
    }

    impl RawAlloc for CheckingAlloc {
        fn malloc(&self, size: usize) -> *mut u8 {
            let p = CMalloc.malloc(size);
            self.mallocs.fetch_add(1, Ordering::Relaxed);
            assert!(self.live.lock().unwrap().insert(p as usize));
            p
        }
        unsafe fn free(&self, ptr: *mut u8) {
            self.frees.fetch_add(1, Ordering::Relaxed);
            if !self.live.lock().unwrap().remove(&(ptr as usize)) {
                self.bad_frees.fetch_add(1, Ordering::Relaxed);
                return; // never hand a bad pointer to the real free
            }
            // SAFETY: the pointer was live in our set, so it came from CMalloc and is freed once.
            unsafe { CMalloc.free(ptr) }
        }
    }

    fn config(threads: usize, matched: bool, remote_pct: u32, ring: usize) -> Config {
        Config {
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

    fn check_balanced(alloc: &CheckingAlloc) {
        assert_eq!(
            alloc.bad_frees.load(Ordering::Relaxed),
            0,
            "a free of a block that was not live"
        );
        assert_eq!(
            alloc.mallocs.load(Ordering::Relaxed),
            alloc.frees.load(Ordering::Relaxed)
        );
        assert!(alloc.live.lock().unwrap().is_empty(), "blocks leaked");
    }

    #[test]
    fn matched_mode_frees_everything_once_and_counts_exactly_threads_times_iters() {
        for (threads, ring) in [(1, 64), (4, 65536), (4, 2)] {
            let alloc = CheckingAlloc::default();
            let cfg = config(threads, true, 50, ring);
            let out = run(&cfg, &alloc);
            check_balanced(&alloc);
            // Every step is one malloc or one free, and matched mode drains every remote free.
            assert_eq!(
                out.ops(),
                threads as u64 * cfg.iters,
                "threads={threads} ring={ring}"
            );
            assert_eq!(out.sent, out.remote_frees);
            assert!(out.sent > 0, "50% remote produced no remote frees");
            assert_eq!(out.mallocs, alloc.mallocs.load(Ordering::Relaxed));
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
        let out = run(&cfg, &alloc);
        check_balanced(&alloc);
        assert!(
            out.fallbacks > 0,
            "a 2-slot ring never filled in 100k steps: {out:?}"
        );
        assert_eq!(out.ops(), 2 * cfg.iters);
    }

    #[test]
    fn unmatched_mode_still_frees_leftovers_and_local_only_sends_nothing() {
        let alloc = CheckingAlloc::default();
        let out = run(&config(3, false, 90, 1024), &alloc);
        check_balanced(&alloc);
        assert!(out.remote_frees <= out.sent);

        let alloc = CheckingAlloc::default();
        let out = run(&config(2, false, 0, 1024), &alloc);
        check_balanced(&alloc);
        assert_eq!((out.sent, out.remote_frees, out.fallbacks), (0, 0, 0));
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
        }
        let check = SizeCheck(AtomicU64::new(u64::MAX), AtomicU64::new(0));
        let mut cfg = config(2, true, 50, 1024);
        (cfg.min, cfg.max) = (100, 103);
        run(&cfg, &check);
        assert_eq!(
            (
                check.0.load(Ordering::Relaxed),
                check.1.load(Ordering::Relaxed)
            ),
            (100, 103)
        );
    }
}
