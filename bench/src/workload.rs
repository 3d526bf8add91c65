//! The workloads, generic over the allocator they drive, and what they share: the configuration,
//! the totals, and the harness that starts the threads together and times them.
//!
//! Generic so the tests can count every malloc and free with a checking allocator, while the binary
//! uses the C `malloc`/`free`/`realloc` symbols that `LD_PRELOAD` decides.
use crate::live::{Live, MemoryPeaks};
use serde::{Deserialize, Serialize};
use std::sync::Barrier;
use std::time::{Duration, Instant};

pub mod handoff;
pub mod lifetimes;
pub mod realloc_growth;
pub mod remote;
pub mod server_table;

/// What the workloads need from an allocator: raw malloc, free and realloc.
pub trait RawAlloc: Sync {
    /// A block of at least `size` bytes, or null.
    fn malloc(&self, size: usize) -> *mut u8;
    /// # Safety
    /// `ptr` came from `malloc`/`realloc` of this allocator and has not been freed since.
    unsafe fn free(&self, ptr: *mut u8);
    /// # Safety
    /// As for `free`; on success `ptr` is consumed and the returned block holds its contents.
    unsafe fn realloc(&self, ptr: *mut u8, size: usize) -> *mut u8;
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
    #[inline(always)]
    unsafe fn realloc(&self, ptr: *mut u8, size: usize) -> *mut u8 {
        // SAFETY: forwarded from our caller's contract.
        unsafe { libc::realloc(ptr as *mut libc::c_void, size) as *mut u8 }
    }
}

/// Which traffic the threads make. What each numeric flag means per kind is in `--help`.
#[derive(clap::ValueEnum, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// T threads, W slots each; a freed object goes to the next thread's ring with probability P%
    Remote,
    /// A shared table of T×W slots; each round a thread replaces random slots of another thread's
    /// region (freeing what that thread allocated), so blocks change hands every round
    ServerTable,
    /// T/2 producers only allocate, T/2 consumers only free; objects pass through a ring of --ring
    ProducerConsumer,
    /// Each step allocates one object (log-uniform size) with a log-uniform lifetime of 1..W-1 steps
    RandomLifetimes,
    /// Each thread grows N buffers by realloc in steps of --min bytes to a size in [max/2, max]
    ReallocGrowth,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Remote => "remote",
            Kind::ServerTable => "server-table",
            Kind::ProducerConsumer => "producer-consumer",
            Kind::RandomLifetimes => "random-lifetimes",
            Kind::ReallocGrowth => "realloc-growth",
        }
    }
}

/// A fully resolved configuration (presets and defaults already applied, already validated).
/// Its serde form is the report's configuration fields, the kind under `bench`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Config {
    #[serde(rename = "bench")]
    pub kind: Kind,
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

/// Allocator calls counted in a timed section: one thread's, or the sum over all threads. The
/// serde names are the report's (`remote`, `fallback`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub mallocs: u64,
    /// Frees by the thread that allocated the object, including ring-full fallbacks.
    pub local_frees: u64,
    /// Frees of objects another thread allocated, inside the timed section.
    #[serde(rename = "remote")]
    pub remote_frees: u64,
    /// Objects pushed to another thread's ring (equal to `remote` in matched mode).
    pub sent: u64,
    /// Remote frees done locally because the ring was full.
    #[serde(rename = "fallback")]
    pub fallbacks: u64,
    /// Successful reallocs (realloc-growth; absent in reports older than the field).
    #[serde(default)]
    pub reallocs: u64,
}

impl Counts {
    /// Every allocator call: mallocs + frees (local and remote) + reallocs.
    pub fn ops(&self) -> u64 {
        self.mallocs + self.local_frees + self.remote_frees + self.reallocs
    }

    fn add(&mut self, other: &Counts) {
        self.mallocs += other.mallocs;
        self.local_frees += other.local_frees;
        self.remote_frees += other.remote_frees;
        self.sent += other.sent;
        self.fallbacks += other.fallbacks;
        self.reallocs += other.reallocs;
    }
}

/// Totals over all threads for the timed section.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    pub secs: f64,
    pub counts: Counts,
    /// CPU time (user + system) the threads spent inside the timed section, summed: unlike `secs`
    /// it does not grow while a thread waits for a core, so it is steadier on a shared machine.
    pub cpu_secs: f64,
    /// The live bytes and RSS the samples saw over the whole run (set-up and clean-up included).
    pub memory: MemoryPeaks,
}

impl Outcome {
    /// Every allocator call in the timed section.
    pub fn ops(&self) -> u64 {
        self.counts.ops()
    }

    pub fn mops(&self) -> f64 {
        if self.secs > 0.0 {
            self.ops() as f64 / self.secs / 1e6
        } else {
            0.0
        }
    }
}

/// Runs the configured workload; every object allocated is freed exactly once before this returns.
/// Memory is sampled only at the start, when the threads have finished and at the end (no sampler
/// thread): what the tests need, with nothing that depends on timing.
pub fn run<A: RawAlloc>(cfg: &Config, alloc: &A) -> Outcome {
    run_sampled(cfg, alloc, None)
}

/// [`run`], with a sampler thread reading the live bytes and the RSS every `period` as well.
pub fn run_sampled<A: RawAlloc>(cfg: &Config, alloc: &A, period: Option<Duration>) -> Outcome {
    let live = Live::new(cfg.threads.max(1));
    let mut outcome = live.sampling(period, || match cfg.kind {
        Kind::Remote => remote::run(cfg, alloc, &live),
        Kind::ServerTable => server_table::run(cfg, alloc, &live),
        Kind::ProducerConsumer => handoff::run(cfg, alloc, &live),
        Kind::RandomLifetimes => lifetimes::run(cfg, alloc, &live),
        Kind::ReallocGrowth => realloc_growth::run(cfg, alloc, &live),
    });
    let left = live.bytes();
    if left != 0 {
        inconsistent(
            cfg.kind.name(),
            format_args!("{left} bytes still counted live after every object was freed"),
        );
    }
    outcome.memory = live.peaks();
    outcome
}

/// A thread's timed section: wall clock and CPU clock, started when every thread is ready.
pub(crate) struct Clock<'a> {
    start: Instant,
    cpu_start: f64,
    live: &'a Live,
}

/// Where the threads wait for each other before their clocks start; passing it opens the live
/// count's steady window ([`Live::open_window`]).
pub(crate) struct StartLine<'a> {
    barrier: Barrier,
    live: &'a Live,
}

/// What one thread hands back: its timed section and its counts.
pub(crate) struct Timed {
    start: Instant,
    finish: Instant,
    cpu_secs: f64,
    totals: Counts,
}

impl<'a> Clock<'a> {
    /// Waits for every thread at `start_line`, then starts the clocks.
    pub fn start_after(start_line: &StartLine<'a>) -> Clock<'a> {
        start_line.barrier.wait();
        start_line.live.open_window();
        Clock {
            start: Instant::now(),
            cpu_start: thread_cpu_secs(),
            live: start_line.live,
        }
    }

    /// Stops the clocks; the first thread to stop closes the steady window (after its clocks).
    pub fn stop(self, totals: Counts) -> Timed {
        let timed = Timed {
            start: self.start,
            finish: Instant::now(),
            cpu_secs: thread_cpu_secs() - self.cpu_start,
            totals,
        };
        self.live.close_window();
        timed
    }
}

impl Timed {
    pub fn totals(&self) -> &Counts {
        &self.totals
    }
}

/// Runs `body(index, start_line)` on `threads` named threads and sums their totals; the timed
/// section spans the earliest start to the latest finish. Each body starts its clock with
/// [`Clock::start_after`] once its untimed set-up is done. Memory is sampled once every thread
/// has finished (what the workload still holds then, before the main thread's clean-up).
pub(crate) fn run_threads<F>(threads: usize, live: &Live, body: F) -> Outcome
where
    F: Fn(usize, &StartLine) -> Timed + Sync,
{
    let start_line = StartLine {
        barrier: Barrier::new(threads),
        live,
    };
    let results: Vec<Timed> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|index| {
                let (body, start_line) = (&body, &start_line);
                std::thread::Builder::new()
                    .name(format!("bench-{index}"))
                    .spawn_scoped(scope, move || body(index, start_line))
                    .expect("spawning a bench thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench thread panicked"))
            .collect()
    });
    live.sample();
    let start = results.iter().map(|r| r.start).min();
    let end = results.iter().map(|r| r.finish).max();
    let mut outcome = Outcome {
        secs: match (start, end) {
            (Some(s), Some(e)) => e.duration_since(s).as_secs_f64(),
            _ => 0.0,
        },
        ..Outcome::default()
    };
    for r in &results {
        outcome.counts.add(&r.totals);
        outcome.cpu_secs += r.cpu_secs;
    }
    outcome
}

/// `alloc.malloc(size)`, exiting with a message when the allocator has no memory.
#[inline(always)]
pub(crate) fn malloc_or_exit<A: RawAlloc>(alloc: &A, size: usize) -> *mut u8 {
    let p = alloc.malloc(size);
    if p.is_null() {
        out_of_memory(size);
    }
    p
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
pub(crate) fn out_of_memory(size: usize) -> ! {
    eprintln!("hz3-bench: malloc({size}) returned NULL");
    std::process::exit(1);
}

/// A workload's own consistency check failed: the counts or contents the bench can prove are wrong.
#[cold]
pub(crate) fn inconsistent(workload: &str, what: std::fmt::Arguments) -> ! {
    eprintln!("hz3-bench: {workload}: {what}");
    std::process::exit(1);
}

/// An allocator for the tests: counts calls, checks every free targets a live block (no double or
/// foreign free), and forwards to the C allocator.
#[cfg(test)]
pub(crate) mod checking {
    use super::{CMalloc, Config, Kind, RawAlloc};
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    /// A small run of `kind` on 2 threads with every object written; tests override fields.
    pub fn small_config(kind: Kind) -> Config {
        Config {
            kind,
            threads: 2,
            iters: 10_000,
            ws: 64,
            min: 16,
            max: 2048,
            remote_pct: 0,
            ring: 64,
            matched: false,
            touch: true,
            seed: 3,
        }
    }

    #[derive(Default)]
    pub struct CheckingAlloc {
        pub mallocs: AtomicU64,
        pub frees: AtomicU64,
        pub reallocs: AtomicU64,
        live: Mutex<HashSet<usize>>,
        bad_frees: AtomicU64,
        /// When non-zero: the malloc with this number flips the first byte of another live block,
        /// as an allocator that hands out memory still in use would; the realloc with this number
        /// flips the first byte of the block it returns, as one that lost the contents would.
        pub corrupt_at: u64,
    }

    impl RawAlloc for CheckingAlloc {
        fn malloc(&self, size: usize) -> *mut u8 {
            let p = CMalloc.malloc(size);
            let n = self.mallocs.fetch_add(1, Ordering::Relaxed) + 1;
            let mut live = self.live.lock().unwrap();
            if n == self.corrupt_at {
                if let Some(&victim) = live.iter().next() {
                    // SAFETY: a live block of at least one byte (every workload asks for >= 1).
                    unsafe { *(victim as *mut u8) ^= 0xff };
                }
            }
            assert!(live.insert(p as usize));
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
        unsafe fn realloc(&self, ptr: *mut u8, size: usize) -> *mut u8 {
            let n = self.reallocs.fetch_add(1, Ordering::Relaxed) + 1;
            let mut live = self.live.lock().unwrap();
            assert!(live.remove(&(ptr as usize)), "realloc of a block not live");
            // SAFETY: the pointer was live in our set, so it came from CMalloc.
            let p = unsafe { CMalloc.realloc(ptr, size) };
            assert!(!p.is_null());
            if n == self.corrupt_at {
                // SAFETY: p is a block of `size` >= 1 bytes: a realloc that lost a byte it copied.
                unsafe { *p ^= 0xff };
            }
            live.insert(p as usize);
            p
        }
    }

    impl CheckingAlloc {
        /// Every block freed exactly once, nothing leaked.
        pub fn check_balanced(&self) {
            assert_eq!(
                self.bad_frees.load(Ordering::Relaxed),
                0,
                "a free of a block that was not live"
            );
            assert_eq!(
                self.mallocs.load(Ordering::Relaxed),
                self.frees.load(Ordering::Relaxed)
            );
            assert!(self.live.lock().unwrap().is_empty(), "blocks leaked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::checking::{small_config, CheckingAlloc};
    use super::*;

    const CHILD_ENV: &str = "HZ3_BENCH_TEST_CORRUPT_KIND";

    /// The bench's own content checks, end to end: an allocator that scribbles on a live object
    /// makes the run exit 1 naming the workload. Each case runs in a child process (the check
    /// exits the process), which is this test binary re-run on this one test.
    #[test]
    fn a_scribbled_live_object_fails_the_run_naming_the_workload() {
        if let Ok(kind) = std::env::var(CHILD_ENV) {
            let kind = <Kind as clap::ValueEnum>::from_str(&kind, false).unwrap();
            let mut alloc = CheckingAlloc::default();
            alloc.corrupt_at = 500;
            // One thread that allocates, so no other thread can be between its malloc and its
            // first write when the block is scribbled on.
            let threads = if kind == Kind::ProducerConsumer { 2 } else { 1 };
            let cfg = Config {
                threads,
                ..small_config(kind)
            };
            let cfg = match kind {
                // Large blocks are the remote workload's checked ones.
                Kind::Remote => Config {
                    iters: 2000,
                    ws: 8,
                    min: 64 << 10,
                    max: 80 << 10,
                    ..cfg
                },
                _ => cfg,
            };
            run(&cfg, &alloc);
            return; // not caught: the parent sees exit 0
        }
        for kind in [
            Kind::Remote,
            Kind::ServerTable,
            Kind::ProducerConsumer,
            Kind::RandomLifetimes,
            Kind::ReallocGrowth,
        ] {
            // producer-consumer has two threads: the scribbled block can be one the consumer has
            // already checked and not yet freed, so one run in a few ends clean. Each try is a
            // fresh run with the same check; one detection is what the test asks for.
            let tries = if kind == Kind::ProducerConsumer { 8 } else { 1 };
            let run_child = || {
                std::process::Command::new(std::env::current_exe().unwrap())
                    .args([
                        "workload::tests::a_scribbled_live_object_fails_the_run_naming_the_workload",
                        "--exact",
                        "--nocapture",
                    ])
                    .env(CHILD_ENV, kind.name())
                    .output()
                    .unwrap()
            };
            let mut out = run_child();
            for _ in 1..tries {
                if out.status.code() == Some(1) {
                    break;
                }
                out = run_child();
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{}: {stderr}", kind.name());
            assert!(
                stderr.contains(&format!("hz3-bench: {}: ", kind.name()))
                    && stderr.contains("the bench wrote"),
                "{}: {stderr}",
                kind.name()
            );
        }
    }
}
