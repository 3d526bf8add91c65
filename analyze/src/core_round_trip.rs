//! The host's core-to-core round trip: two threads, pinned to two CPUs, hand one cache line back
//! and forth; the time per exchange is what any remote free pays to move a line between cores.
//!
//! Why the matrix measures it: on a virtual machine the host may move the virtual CPUs between
//! physical cores. On the project's 2-CPU machine the round trip between its two CPUs switches
//! every few seconds between ~90 ns and ~460 ns (same core complex or not), and every remote-heavy
//! row's throughput switches with it, for every allocator alike (docs/decisions.md, "Host
//! regimes"). A probe before and after each run says which regime the run had, so rows can be
//! compared within one regime instead of across a coin toss.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spinning before the timed window, so both threads are running and the line is warm.
const WARM_UP: Duration = Duration::from_millis(5);
/// The timed window: long enough for thousands of exchanges in either regime, short enough that
/// a probe between runs costs little (a matrix of 200 runs spends ~5 s probing).
const WINDOW: Duration = Duration::from_millis(20);
/// Exchanges timed together: a few microseconds, well above the clock's own cost.
const BATCH: u64 = 64;

/// The first two CPUs this process may run on, or None on a one-CPU machine (or mask).
pub fn first_pair() -> Option<(usize, usize)> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set, and sched_getaffinity writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if rc != 0 {
        return None;
    }
    // SAFETY: CPU_ISSET reads the set within CPU_SETSIZE.
    let mut cpus = (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) });
    Some((cpus.next()?, cpus.next()?))
}

/// Pins the calling thread to `cpu`; false if the kernel refused.
fn pin(cpu: usize) -> bool {
    // SAFETY: an all-zero cpu_set_t is a valid empty set; CPU_SET writes within it (cpu comes from
    // `first_pair`, below CPU_SETSIZE).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) == 0
    }
}

/// Nanoseconds per round trip of one cache line between `cpus`: the median over batches of
/// [`BATCH`] exchanges during [`WINDOW`], after [`WARM_UP`]; None if a thread could not be pinned.
/// Two helper threads do the exchange, so the caller's own affinity is left as it was.
pub fn measure(cpus: (usize, usize)) -> Option<f64> {
    // Odd values are the ping, even the pong; `stop` ends the answering thread.
    let line = Arc::new((AtomicU64::new(0), AtomicBool::new(false)));
    let answer = {
        let line = Arc::clone(&line);
        std::thread::spawn(move || {
            if !pin(cpus.1) {
                line.1.store(true, Ordering::Relaxed);
                return false;
            }
            let mut expect = 1u64;
            while !line.1.load(Ordering::Relaxed) {
                if line.0.load(Ordering::Acquire) == expect {
                    line.0.store(expect + 1, Ordering::Release);
                    expect += 2;
                }
                std::hint::spin_loop();
            }
            true
        })
    };
    let ask = {
        let line = Arc::clone(&line);
        std::thread::spawn(move || {
            if !pin(cpus.0) {
                return None;
            }
            let mut next = 1u64;
            let mut exchange = |n: u64| -> bool {
                for _ in 0..n {
                    line.0.store(next, Ordering::Release);
                    while line.0.load(Ordering::Acquire) != next + 1 {
                        if line.1.load(Ordering::Relaxed) {
                            return false;
                        }
                        std::hint::spin_loop();
                    }
                    next += 2;
                }
                true
            };
            let start = Instant::now();
            while start.elapsed() < WARM_UP {
                if !exchange(BATCH) {
                    return None;
                }
            }
            // The median batch, not the mean: a batch in which either thread lost its CPU costs
            // a scheduler tick, which says nothing about the line's trip.
            let mut per_exchange = Vec::new();
            let start = Instant::now();
            while start.elapsed() < WINDOW {
                let batch = Instant::now();
                if !exchange(BATCH) {
                    return None;
                }
                per_exchange.push(batch.elapsed().as_nanos() as f64 / BATCH as f64);
            }
            crate::stats::median(&per_exchange)
        })
    };
    let asked = ask.join().ok().flatten();
    line.1.store(true, Ordering::Relaxed);
    let answered = answer.join().unwrap_or(false);
    asked.filter(|_| answered)
}

/// Two regimes found among the probes: each side's range and count, split at `threshold_ns`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Regimes {
    pub threshold_ns: f64,
    pub near: Spread,
    pub far: Spread,
}

/// The range and count of one regime's probes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub min_ns: f64,
    pub max_ns: f64,
    pub probes: usize,
}

/// Which regime a run had: both its probes on one side of the split, or one on each (`Mixed`: the
/// host moved during the run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    Near,
    Far,
    Mixed,
}

/// The fewest probes (and share of them) a regime needs to count as one: a few slow probes
/// (a preempted helper thread) are noise, not a regime.
const MIN_PROBES: usize = 3;
const MIN_SHARE: f64 = 0.1;
/// How far apart the two sides' medians must be to call them two regimes.
const MIN_MEDIAN_RATIO: f64 = 2.0;

/// Splits the probes at their widest gap (in ratio) that leaves enough on each side; two regimes
/// when the sides' medians are at least [`MIN_MEDIAN_RATIO`] apart, else None (one regime).
pub fn split(probes_ns: &[f64]) -> Option<Regimes> {
    let mut v: Vec<f64> = probes_ns
        .iter()
        .copied()
        .filter(|x| x.is_finite() && *x > 0.0)
        .collect();
    v.sort_by(f64::total_cmp);
    let least = MIN_PROBES.max((MIN_SHARE * v.len() as f64).ceil() as usize);
    if v.len() < 2 * least {
        return None;
    }
    // `i` is the last index of the near side.
    let i = (least - 1..v.len() - least)
        .max_by(|&a, &b| (v[a + 1] / v[a]).total_cmp(&(v[b + 1] / v[b])))?;
    let (near, far) = v.split_at(i + 1);
    let median = |s: &[f64]| crate::stats::median(s).unwrap_or(f64::NAN);
    if median(far) / median(near) < MIN_MEDIAN_RATIO {
        return None;
    }
    let spread = |s: &[f64]| Spread {
        min_ns: s[0],
        max_ns: s[s.len() - 1],
        probes: s.len(),
    };
    Some(Regimes {
        threshold_ns: (v[i] * v[i + 1]).sqrt(),
        near: spread(near),
        far: spread(far),
    })
}

impl Regimes {
    /// The regime of a run probed `before` and `after`.
    pub fn of(&self, before: f64, after: f64) -> Regime {
        match (before < self.threshold_ns, after < self.threshold_ns) {
            (true, true) => Regime::Near,
            (false, false) => Regime::Far,
            _ => Regime::Mixed,
        }
    }
}

/// Two recordings' probes (each run's before and after, ns), as `gap` reads them: a warning when
/// one run's own probes were [`MIN_MEDIAN_RATIO`] or more apart (the host moved during it), or the
/// two runs' were (different host regimes); None when they agree or either run has no probe.
pub fn compare_runs(a: &[f64], b: &[f64]) -> Option<String> {
    let median = |v: &[f64]| crate::stats::median(v);
    let (ma, mb) = (median(a)?, median(b)?);
    let shown = |v: &[f64]| {
        let v: Vec<String> = v.iter().map(|x| format!("{x:.0}")).collect();
        v.join("/")
    };
    let straddled = |v: &[f64]| {
        let most = v.iter().copied().fold(0.0, f64::max);
        let least = v.iter().copied().fold(f64::INFINITY, f64::min);
        most / least >= MIN_MEDIAN_RATIO
    };
    let what = if straddled(a) || straddled(b) {
        "the host moved its CPUs during a run"
    } else if ma.max(mb) / ma.min(mb) >= MIN_MEDIAN_RATIO {
        "the runs had different host regimes"
    } else {
        return None;
    };
    Some(format!(
        "host core-to-core round trip before/after: A {} ns, B {} ns: {what}, so part of B-A is the host's, not the allocators' (record both again, or compare within one regime with `hz3-analyze matrix`)",
        shown(a),
        shown(b)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_clusters_split_between_them() {
        let probes = [
            88.0, 95.0, 91.0, 460.0, 455.0, 102.0, 470.0, 520.0, 90.0, 448.0,
        ];
        let r = split(&probes).expect("two regimes");
        assert!(r.threshold_ns > 102.0 && r.threshold_ns < 448.0, "{r:?}");
        assert_eq!((r.near.probes, r.far.probes), (5, 5));
        assert_eq!((r.near.min_ns, r.far.max_ns), (88.0, 520.0));
        assert_eq!(r.of(90.0, 95.0), Regime::Near);
        assert_eq!(r.of(450.0, 500.0), Regime::Far);
        assert_eq!(r.of(90.0, 500.0), Regime::Mixed);
    }

    #[test]
    fn one_cluster_or_a_few_outliers_is_one_regime() {
        let steady = [88.0, 95.0, 91.0, 102.0, 90.0, 99.0, 97.0, 93.0];
        assert_eq!(split(&steady), None, "spread under 2x");
        let mut outliers = vec![90.0; 40];
        outliers.extend([900.0, 950.0]);
        assert_eq!(
            split(&outliers),
            None,
            "two slow probes of 42 are not a regime"
        );
        assert_eq!(split(&[90.0, 460.0]), None, "too few probes to tell");
        assert_eq!(split(&[]), None);
    }

    #[test]
    fn gap_warns_when_two_recordings_had_different_regimes_or_one_moved() {
        let far_near = compare_runs(&[455.0, 470.0], &[92.0, 95.0]).expect("regimes differ");
        assert!(
            far_near.contains("A 455/470 ns, B 92/95 ns: the runs had different host regimes"),
            "{far_near}"
        );
        let moved = compare_runs(&[90.0, 95.0], &[92.0, 460.0]).expect("B straddled");
        assert!(moved.contains("moved its CPUs during a run"), "{moved}");
        assert_eq!(
            compare_runs(&[90.0, 95.0], &[99.0, 101.0]),
            None,
            "one regime"
        );
        assert_eq!(
            compare_runs(&[], &[99.0]),
            None,
            "an older run without probes"
        );
    }

    #[test]
    fn a_probe_measures_a_round_trip_where_two_cpus_exist() {
        let Some(cpus) = first_pair() else {
            // One CPU: nothing to pin two threads to; the matrix then skips the probe.
            assert_eq!(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1),
                1
            );
            return;
        };
        assert_ne!(cpus.0, cpus.1);
        let ns = measure(cpus).expect("both threads pinned");
        // A line exchange takes tens of ns at least, and far under a millisecond on any host
        // where the two threads run at all.
        assert!(ns > 10.0 && ns < 1e6, "{ns} ns");
    }
}
