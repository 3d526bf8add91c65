//! hz3's probe counters under `LD_PRELOAD` of the `libhz3_<lane>_probes.so` builds: exact counts on
//! deterministic workloads (`c/probes_check.c`), the lock contention split, and the one-shot dump
//! (`HZ3_PROBES_OUT`). Every run first proves hz3 answers (`hz3_lane()` names the lane).
//!
//! Nothing the allocator defines is hard-coded: the refill batch of a size class is learnt from a
//! one-object run, and every other expectation is derived from it and from the workload's own counts.

mod common;

use common::{assert_success, compile_c, describe, preload_lib, TempDir, LANES};
use probes::reader::{read, Dump};
use probes::{Event, LockSite, LockStat};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// A size class no start-up code of the checker touches (its cache starts empty).
const SIZE: usize = 720;

fn probes_lib(build: &str) -> std::path::PathBuf {
    preload_lib(&format!("{build}_probes"))
}

/// `probes_check <lane> ...` compiled into `dir`, under the lane's probes build, with no exit dump
/// unless the caller sets `HZ3_PROBES_OUT` again.
fn checker(lane: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(compile_c("probes_check", dir));
    cmd.arg(lane)
        .env("LD_PRELOAD", probes_lib(lane))
        .env_remove("HZ3_PROBES_OUT");
    cmd
}

/// Runs a `checker` command to a clean exit that proved hz3 (`lane`) answered; returns its output and pid.
fn run_checked(lane: &str, mut cmd: Command) -> (Output, u32) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start probes_check");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for probes_check");
    let what = format!("{cmd:?}");
    assert_success(&what, &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("ok identity.hz3_lane {}", lane)),
        "{what}: hz3 not proven\n{}",
        describe(&out)
    );
    (out, pid)
}

/// Runs `probes_check <lane> <args..> <dump>`; returns the dump it wrote.
fn check(lane: &str, args: &[&str]) -> Dump {
    let dir = TempDir::new("probes");
    let dump = dir.path().join("dump.csv");
    let mut cmd = checker(lane, dir.path());
    cmd.args(args).arg(&dump);
    let (out, _) = run_checked(lane, cmd);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("ok {}", args[0])),
        "{}",
        describe(&out)
    );
    let dump = read(&dump).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(dump.lane, lane);
    dump
}

/// Objects one refill of `SIZE` moves, learnt from a single malloc into an empty cache.
fn learn_batch(lane: &str) -> u64 {
    let d = check(lane, &["refill", &SIZE.to_string(), "1"]);
    assert_eq!(
        d.event(Event::SlowAllocRefill),
        1,
        "{lane}: one malloc into an empty cache refills once"
    );
    assert_eq!(d.event(Event::MallocCacheMiss), 1, "{lane}");
    let batch = d.event(Event::SlowAllocObjects);
    assert!(batch >= 1, "{lane}: a refill moved no object");
    batch
}

#[test]
fn refills_from_an_empty_cache_are_exact() {
    for lane in LANES {
        let batch = learn_batch(lane);
        let n = 10 * batch + 3;
        let d = check(lane, &["refill", &SIZE.to_string(), &n.to_string()]);
        let refills = n.div_ceil(batch);
        assert_eq!(
            d.event(Event::SlowAllocRefill),
            refills,
            "{lane}: refills for {n} mallocs, batch {batch}"
        );
        assert_eq!(
            d.event(Event::SlowAllocObjects),
            refills * batch,
            "{lane}: objects moved"
        );
        assert_eq!(d.event(Event::MallocCacheMiss), refills, "{lane}: misses");
        if lane == "fast" {
            // The fast lane refills straight from the central pool.
            assert_eq!(d.event(Event::CentralPopCalls), refills, "{lane}");
            assert_eq!(d.event(Event::CentralPopObjects), refills * batch, "{lane}");
        } else {
            // The scale lane asks the transfer cache first; what it misses goes to central.
            let (hit, miss) = (d.event(Event::TransferHit), d.event(Event::TransferMiss));
            assert_eq!(
                hit + miss,
                refills,
                "{lane}: every refill consults the transfer cache"
            );
            assert_eq!(d.event(Event::CentralPopCalls), miss, "{lane}");
        }
        // The per-thread rows add up to the totals.
        let rows: u64 = d
            .threads
            .iter()
            .map(|t| t.events[Event::SlowAllocRefill.index()])
            .sum();
        assert_eq!(rows, refills, "{lane}: thread rows vs totals");
    }
}

#[test]
fn cross_thread_frees_are_counted_once_each() {
    for lane in LANES {
        let batch = learn_batch(lane);
        let n = 10 * batch + 3;
        let d = check(lane, &["remote", &SIZE.to_string(), &n.to_string()]);
        assert_eq!(
            d.event(Event::RemoteFree),
            n,
            "{lane}: every free of the other thread's objects is remote"
        );
    }
}

/// A thread that gets its core back frees everything its peers sent it at once: in the scale lane
/// that burst of spills must wait whole in the transfer cache for the threads that allocate next,
/// not overflow into the central pool (which files every object into its run under the class lock).
#[test]
fn a_burst_of_remote_frees_waits_in_the_transfer_cache() {
    let lane = "scale";
    let batch = learn_batch(lane);
    let n = 400 * batch;
    let d = check(lane, &["remote", &SIZE.to_string(), &n.to_string()]);
    let pushed = d.event(Event::TransferPush);
    assert!(
        pushed * batch >= n / 2,
        "{lane}: the freer kept most of {n} objects instead of spilling them ({pushed} batches)"
    );
    assert_eq!(
        d.event(Event::TransferPushFull),
        0,
        "{lane}: {pushed} spilled batches overflowed the transfer cache"
    );
    // The freer's exit hands what its cache still holds to the central pool: one push.
    assert!(
        d.event(Event::CentralPushCalls) <= d.event(Event::ThreadExit),
        "{lane}: the burst reached the central pool ({} pushes, {} thread exits)",
        d.event(Event::CentralPushCalls),
        d.event(Event::ThreadExit)
    );
    assert_eq!(
        d.event(Event::TransferHit),
        pushed,
        "{lane}: the owner's refills took back every batch the freer spilled"
    );
}

#[test]
fn a_refill_takes_back_the_batch_its_own_thread_spilled() {
    // Main spills batches of its objects, then another thread spills its own on top of them: main's
    // next refill must take one of its own batches (lines its core wrote last), not the top one.
    let lane = "scale";
    let batch = learn_batch(lane);
    let (n, m) = (3 * batch, 2 * batch);
    let dir = TempDir::new("probes");
    let dump = dir.path().join("dump.csv");
    let mut cmd = checker(lane, dir.path());
    cmd.args([
        "handback",
        &SIZE.to_string(),
        &n.to_string(),
        &m.to_string(),
    ])
    .arg(&dump);
    let (out, _) = run_checked(lane, cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("handback own {m} of {m}")),
        "{lane}: main got objects the other thread spilled\n{stdout}"
    );
    let d = read(&dump).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        d.event(Event::TransferHit) >= 1,
        "{lane}: no refill from the transfer cache"
    );
    assert_eq!(
        d.event(Event::TransferForeign),
        0,
        "{lane}: a refill took another thread's batch"
    );
}

#[test]
fn an_exited_owners_objects_freed_here_are_reused_not_lost() {
    // A few objects (fewer than a batch) of an owner that has exited, freed here: counted as remote
    // frees, and this thread's next miss is served from them.
    for build in LANES {
        let d = check(build, &["orphan", &SIZE.to_string(), "3"]);
        assert_eq!(
            d.event(Event::RemoteFree),
            3,
            "{build}: the owner had exited"
        );
    }
}

/// `contend` on the fast lane's central pool (mutex per class): returns the central site's counters.
fn contend(threads: usize, rounds: u64) -> Dump {
    check(
        "fast",
        &["contend", "64", &threads.to_string(), &rounds.to_string()],
    )
}

#[test]
fn one_thread_never_contends() {
    let d = contend(1, 200);
    for site in LockSite::ALL {
        for stat in [
            LockStat::Spun,
            LockStat::SpinIters,
            LockStat::Waited,
            LockStat::WaitNs,
            LockStat::Wakes,
        ] {
            assert_eq!(
                d.lock(*site, stat),
                0,
                "{}.{} with one thread",
                site.key(),
                stat.key()
            );
        }
    }
    assert!(
        d.lock(LockSite::Central, LockStat::Uncontended) > 0,
        "the workload must reach the central pool"
    );
}

#[test]
fn two_threads_contend_on_the_central_lock() {
    // Contention is likely but not certain on a busy machine: retry with more rounds before failing.
    let mut rounds = 500;
    for attempt in 1..=4 {
        let d = contend(2, rounds);
        let contended =
            d.lock(LockSite::Central, LockStat::Spun) + d.lock(LockSite::Central, LockStat::Waited);
        if contended > 0 {
            assert!(
                d.lock(LockSite::Central, LockStat::WaitNs) > 0,
                "contended acquisitions took no time"
            );
            assert!(
                d.lock(LockSite::Central, LockStat::SpinIters) > 0,
                "every contended path spins first"
            );
            return;
        }
        eprintln!("attempt {attempt}: no contention in {rounds} rounds, retrying with more");
        rounds *= 4;
    }
    panic!("two threads hammering one central lock never contended");
}

/// Runs the checker's `refill` with `HZ3_PROBES_OUT=target`; returns its output and pid.
fn run_with_probes_out(lane: &str, dir: &Path, target: &str) -> (Output, u32) {
    let mut cmd = checker(lane, dir);
    cmd.args(["refill", "64", "100"])
        .arg(dir.join("on-demand.json"))
        .env("HZ3_PROBES_OUT", target);
    run_checked(lane, cmd)
}

#[test]
fn probes_out_writes_one_dump_at_exit() {
    for lane in LANES {
        for ext in ["json", "csv"] {
            let dir = TempDir::new("probes-out");
            let path = dir.path().join(format!("exit.{ext}"));
            let (_, pid) = run_with_probes_out(lane, dir.path(), path.to_str().unwrap());
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                text.starts_with('{'),
                ext == "json",
                "{lane}: {ext} dump in the wrong format"
            );
            let d = read(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                (d.lane.as_str(), d.pid),
                (lane, pid),
                "the exit dump is this process's"
            );
            assert!(
                d.wall_ns > 1_600_000_000_000_000_000,
                "wall time is since the epoch"
            );
            // The counters were reset before the measured part; the exit dump sees it and what followed.
            assert!(
                d.event(Event::MallocCacheHit) + d.event(Event::MallocCacheMiss) >= 100,
                "{lane}"
            );
            assert!(
                d.event(Event::FreeLocal) >= 100,
                "{lane}: the frees after the on-demand dump"
            );
            assert!(
                !d.threads.is_empty() && d.threads.iter().all(|t| t.tid != 0),
                "{lane}: thread rows"
            );
        }
        let dir = TempDir::new("probes-out");
        let (out, pid) = run_with_probes_out(lane, dir.path(), "stderr");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let start = stderr
            .find('{')
            .unwrap_or_else(|| panic!("no dump on stderr:\n{stderr}"));
        let d = probes::reader::parse(stderr[start..].as_bytes(), Path::new("<stderr>"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.pid, pid);
    }
}

#[test]
fn no_dump_without_probes_out() {
    let dir = TempDir::new("probes-out");
    let mut cmd = checker("scale", dir.path());
    cmd.args(["refill", "64", "10"])
        .arg(dir.path().join("on-demand.json"));
    let (out, _) = run_checked("scale", cmd);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("\"schema\""),
        "dumped without being asked"
    );
    // The on-demand dump was written (the library is the probes build), and nothing else was.
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["on-demand.json", "probes_check"],
        "{}",
        describe(&out)
    );
}
