//! The bytes the workload holds live, and the sampler that sets them beside the process's RSS.
//!
//! Peak RSS alone mixes two things: what the allocator keeps (its caches, rounding, empty runs)
//! and what the bench itself holds, which on the oversubscribed presets depends on the scheduler
//! (objects wait in the rings of threads that are not running). Every workload counts the bytes it
//! asked for and has not freed yet; a sampler reads that sum and the RSS together, so the report
//! can give the allocator's own share at its worst: the peak of (RSS - live bytes).
//!
//! That peak is taken over the steady window only: from the moment every thread has passed the
//! start line to the moment the first one stops its clock. Before it the allocator has not yet
//! seen the workload; after it the threads free everything, and memory an allocator keeps cached
//! once the program has freed it all (tcmalloc never returns it) would read as overhead equal to
//! the whole RSS. That is the decay question, not the one the peak RSS asks.
//!
//! The sampler is always on (every 5 ms; `--sample-ms 0` turns it off): measured by counts under
//! hz3 scale, it used 1% of the CPU time of local-small (2 threads on 2 cores, the worst case: no
//! core is idle, so each wake-up takes a slice from a bench thread; 0.011-0.012 s of about 1.25 s)
//! and 0.4-0.9% of remote-heavy-small's, with one context switch of its own per sample and at most
//! one preemption of a bench thread each: below what the matrix can resolve, and alike for every
//! allocator.
//!
//! Each thread adds and subtracts in its own cell (one cache line each, written only by that
//! thread, so the hot path is a plain load and store with no locked instruction); a thread that
//! frees another thread's block subtracts in its own cell, which may go negative. Only the sum
//! means anything.
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Keeps a value on its own cache lines (128 bytes covers adjacent-line prefetch).
#[repr(align(128))]
pub(crate) struct Padded<T>(pub T);

/// One thread's running count of live bytes.
pub struct LiveCell(AtomicI64);

impl LiveCell {
    /// This thread now holds `bytes` more (a malloc, or a realloc that grew).
    #[inline(always)]
    pub fn add(&self, bytes: usize) {
        // Only the owning thread writes the cell: a load and a store, no read-modify-write.
        self.0.store(self.0.load(Relaxed) + bytes as i64, Relaxed);
    }

    /// This thread freed `bytes` (its own block or another thread's).
    #[inline(always)]
    pub fn sub(&self, bytes: usize) {
        self.0.store(self.0.load(Relaxed) - bytes as i64, Relaxed);
    }
}

/// What the samples found; the `memory` object of the report. Bytes throughout.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct MemoryPeaks {
    /// Samples taken: one every `period_ms` while the workload runs, plus one at the start, one
    /// when the first thread stops its clock, one when all have finished and one at the end.
    pub samples: u64,
    /// The sampler's period; 0 when only the three fixed samples were taken.
    pub period_ms: u64,
    /// The most bytes the workload held at a sample (sizes as requested, not as rounded).
    pub live_peak_bytes: u64,
    /// RSS at the sample of `live_peak_bytes`.
    pub rss_at_live_peak_bytes: u64,
    /// The highest RSS a sample saw (the kernel's own peak, ru_maxrss, can lie between samples).
    pub rss_peak_bytes: u64,
    /// The most RSS exceeded the live bytes by at a sample of the steady window (see the module
    /// comment): the allocator's overhead at its worst (its caches, rounding and metadata; the
    /// bench's heap counts as live, its stacks and binary do not). Negative when objects are never
    /// written (`--untouched`) and their pages never fault.
    pub overhead_peak_bytes: i64,
    /// Samples taken inside the steady window (at least the one that closes it).
    #[serde(default)]
    pub window_samples: u64,
    /// CPU time the sampler thread used.
    pub sampler_cpu_secs: f64,
    /// Context switches of the sampler thread (voluntary + involuntary).
    pub sampler_switches: u64,
}

impl MemoryPeaks {
    /// The highest RSS less the most bytes the workload held: the memory the allocator needed
    /// beyond the largest live set. Steadier than `overhead_peak_bytes`, which also grows when the
    /// live set dips for a moment (a thread drains its ring) while the RSS stays.
    pub fn excess_bytes(&self) -> i64 {
        self.rss_peak_bytes as i64 - self.live_peak_bytes as i64
    }
}

/// Every thread's cell (the workload's threads, then one for the main thread's set-up and
/// clean-up) and the peaks found so far.
pub struct Live {
    cells: Box<[Padded<LiveCell>]>,
    /// The steady window: [`BEFORE`], [`OPEN`] or [`CLOSED`].
    window: AtomicU8,
    peaks: Mutex<MemoryPeaks>,
    statm: Option<std::fs::File>,
    page_size: u64,
}

const BEFORE: u8 = 0;
const OPEN: u8 = 1;
const CLOSED: u8 = 2;

impl Live {
    pub fn new(threads: usize) -> Live {
        Live {
            window: AtomicU8::new(BEFORE),
            cells: (0..=threads)
                .map(|_| Padded(LiveCell(AtomicI64::new(0))))
                .collect(),
            peaks: Mutex::new(MemoryPeaks::default()),
            statm: std::fs::File::open("/proc/self/statm").ok(),
            // SAFETY: sysconf has no preconditions.
            page_size: unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64,
        }
    }

    /// Thread `index`'s cell.
    #[inline(always)]
    pub fn thread(&self, index: usize) -> &LiveCell {
        &self.cells[index].0
    }

    /// The main thread's cell (set-up before the threads start, clean-up after they end).
    pub fn main(&self) -> &LiveCell {
        &self.cells[self.cells.len() - 1].0
    }

    /// The bytes held now, summed over the cells (each read once; a block that changes hands
    /// while they are read can be missed or counted twice, for a few microseconds).
    pub fn bytes(&self) -> i64 {
        self.cells.iter().map(|c| c.0 .0.load(Relaxed)).sum()
    }

    /// The process's resident set, from /proc/self/statm (0 where it cannot be read).
    fn rss_bytes(&self) -> u64 {
        use std::os::fd::AsRawFd;
        let Some(file) = &self.statm else { return 0 };
        let mut buf = [0u8; 128];
        // SAFETY: a valid descriptor and a buffer of buf.len() bytes. pread at 0 re-reads the file
        // without reopening it, so the sampler allocates nothing through the allocator measured.
        let n = unsafe { libc::pread(file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let text = &buf[..n.max(0) as usize];
        let resident = text
            .split(|&b| b == b' ')
            .nth(1)
            .and_then(|f| std::str::from_utf8(f).ok())
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
        resident * self.page_size
    }

    /// Every thread has passed the start line (the first to get here opens the window).
    pub fn open_window(&self) {
        let _ = self.window.compare_exchange(BEFORE, OPEN, Relaxed, Relaxed);
    }

    /// A thread has stopped its clock; the first one closes the window with a sample of its own,
    /// so every run has at least one sample inside it.
    pub fn close_window(&self) {
        if self.window.swap(CLOSED, Relaxed) == OPEN {
            self.take_sample(true);
        }
    }

    /// Reads the live bytes and the RSS together and keeps the peaks.
    pub fn sample(&self) {
        self.take_sample(self.window.load(Relaxed) == OPEN);
    }

    fn take_sample(&self, in_window: bool) {
        let live = self.bytes().max(0);
        let rss = self.rss_bytes();
        let mut p = self.peaks.lock().unwrap_or_else(|e| e.into_inner());
        p.samples += 1;
        if live as u64 > p.live_peak_bytes || p.samples == 1 {
            p.live_peak_bytes = live as u64;
            p.rss_at_live_peak_bytes = rss;
        }
        p.rss_peak_bytes = p.rss_peak_bytes.max(rss);
        if in_window {
            let overhead = rss as i64 - live;
            if p.window_samples == 0 || overhead > p.overhead_peak_bytes {
                p.overhead_peak_bytes = overhead;
            }
            p.window_samples += 1;
        }
    }

    /// The peaks so far.
    pub fn peaks(&self) -> MemoryPeaks {
        *self.peaks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `work` with a sampler thread that samples every `period` (none when `None`), plus a
    /// sample before and one after. The sampler's own cost is counted into the peaks.
    pub fn sampling<R>(&self, period: Option<Duration>, work: impl FnOnce() -> R) -> R {
        self.sample();
        let result = match period {
            None => work(),
            Some(period) => std::thread::scope(|scope| {
                let (stop, stopped) = std::sync::mpsc::channel::<()>();
                let sampler = std::thread::Builder::new()
                    .name("bench-sampler".into())
                    .spawn_scoped(scope, move || {
                        // Waiting on the channel, not sleeping: the sampler ends the moment the
                        // work does.
                        loop {
                            self.sample();
                            match stopped.recv_timeout(period) {
                                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                                _ => break,
                            }
                        }
                        thread_usage()
                    })
                    .expect("spawning the sampler thread");
                let result = work();
                drop(stop);
                let (cpu, switches) = sampler.join().expect("the sampler thread panicked");
                let mut p = self.peaks.lock().unwrap_or_else(|e| e.into_inner());
                (p.period_ms, p.sampler_cpu_secs, p.sampler_switches) =
                    (period.as_millis() as u64, cpu, switches);
                result
            }),
        };
        self.sample();
        result
    }
}

/// This thread's CPU seconds and context switches.
fn thread_usage() -> (f64, u64) {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer; RUSAGE_THREAD exists on Linux.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut r) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    (
        secs(r.ru_utime) + secs(r.ru_stime),
        (r.ru_nvcsw + r.ru_nivcsw).max(0) as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_sum_across_threads_and_the_overhead_counts_only_inside_the_window() {
        let live = Live::new(2);
        live.sample(); // before the window: nothing held, not overhead
        live.open_window();
        live.thread(0).add(1000);
        live.thread(1).sub(400); // thread 1 freed 400 bytes of thread 0's
        live.main().add(24);
        assert_eq!(live.bytes(), 624);
        live.sample();
        live.close_window(); // samples too
        live.close_window(); // a later thread's stop: no sample
        live.thread(0).sub(600);
        live.main().sub(24);
        live.sample(); // after: nothing held, not overhead either
        let p = live.peaks();
        assert_eq!(
            (p.samples, p.window_samples, p.live_peak_bytes),
            (4, 2, 624)
        );
        assert!(p.rss_at_live_peak_bytes > 0 && p.rss_peak_bytes >= p.rss_at_live_peak_bytes);
        // Both window samples held 624 bytes: the overhead is an RSS less 624, not a whole RSS.
        assert!(
            p.overhead_peak_bytes <= p.rss_peak_bytes as i64 - 624,
            "{p:?}"
        );
        assert!(
            p.overhead_peak_bytes >= p.rss_at_live_peak_bytes as i64 - 624,
            "{p:?}"
        );
        assert_eq!(live.bytes(), 0);
    }

    #[test]
    fn the_sampler_thread_reports_its_period_and_runs_at_least_once() {
        let live = Live::new(1);
        let got = live.sampling(Some(Duration::from_millis(1)), || 7);
        assert_eq!(got, 7);
        let p = live.peaks();
        // Before, the sampler's first, after: no timing involved.
        assert!(p.samples >= 3, "{p:?}");
        assert_eq!(p.period_ms, 1);
        let live = Live::new(1);
        live.sampling(None, || ());
        assert_eq!((live.peaks().samples, live.peaks().period_ms), (2, 0));
    }
}
