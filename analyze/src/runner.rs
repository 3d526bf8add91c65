//! Runs `hz3-bench` once under one allocator: `LD_PRELOAD`, the bench's JSON, the peak RSS from
//! `wait4`'s rusage, and a crash (signal, non-zero exit, timeout) as a value instead of an error.
use crate::allocators::Allocator;
use anyhow::{Context, Result};
use bench::BenchReport;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a timed-out run's crash reads ("timeout 120s"): rows keep crashes as text, and the matrix
/// counts a row's timeouts by it.
pub const TIMEOUT_WORD: &str = "timeout";

/// Timeouts after which a matrix row (a preset's or a program's) is not run in the remaining
/// rounds: another try would cost a whole timeout and most likely end the same way (the ceiling's
/// memory grows without bound on producer-consumer, and it copies every realloc on
/// realloc-growth), while one timeout may be the machine's.
pub const TIMEOUTS_BEFORE_SKIP: usize = 2;

/// Whether a row whose runs crashed like this (as [`Crash`] prints) is to be run no more.
pub fn gives_up(crashes: &[String]) -> bool {
    let timeouts = crashes.iter().filter(|c| c.starts_with(TIMEOUT_WORD));
    timeouts.count() >= TIMEOUTS_BEFORE_SKIP
}

/// A row's crashed cell: "0", or the count and each kind once, then the rounds not run
/// ("2 (timeout 60s), then 5 not run").
pub fn crash_summary(crashes: &[String], skipped: usize) -> String {
    if crashes.is_empty() {
        return "0".into();
    }
    let mut kinds = crashes.to_vec();
    kinds.dedup();
    let skipped = match skipped {
        0 => String::new(),
        n => format!(", then {n} not run"),
    };
    format!("{} ({}){skipped}", crashes.len(), kinds.join(", "))
}

/// How a run ended when it produced no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Crash {
    Signal(i32),
    Exit(i32),
    Timeout(Duration),
}

impl std::fmt::Display for Crash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Crash::Signal(sig) => f.write_str(&signal_name(*sig)),
            Crash::Exit(code) => write!(f, "exit {code}"),
            Crash::Timeout(limit) => write!(f, "{TIMEOUT_WORD} {}s", limit.as_secs()),
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGTRAP => "SIGTRAP",
        _ => return format!("signal {sig}"),
    };
    name.to_owned()
}

#[derive(Debug)]
pub struct RunResult {
    pub outcome: Result<BenchReport, Crash>,
    /// ru_maxrss of the bench process (Linux reports KiB).
    pub peak_rss_kib: u64,
    pub wall: Duration,
    /// The bench's stderr (the human line, or the crash message).
    pub stderr: String,
}

/// Runs the bench with `--json` under `allocator`. Err only for failures of the harness itself
/// (cannot spawn, a successful bench printing no JSON); the allocator crashing is an Ok result.
pub fn run_bench(
    bench: &Path,
    allocator: &Allocator,
    args: &[String],
    timeout: Duration,
) -> Result<RunResult> {
    let mut args = args.to_vec();
    if !args.iter().any(|a| a == "--json") {
        args.push("--json".into());
    }
    let run = run_command(
        crate::process::preloaded(bench, &args, allocator.preload.as_deref()),
        timeout,
    )?;
    let outcome = match run.outcome {
        Ok(()) => {
            let line = run
                .stdout
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            let report: BenchReport = serde_json::from_str(line).with_context(|| {
                format!(
                    "{} under {} exited 0 but printed no JSON result: {:?}",
                    bench.display(),
                    allocator.name,
                    run.stdout
                )
            })?;
            Ok(report)
        }
        Err(crash) => Err(crash),
    };
    Ok(RunResult {
        outcome,
        peak_rss_kib: run.usage.peak_rss_kib,
        wall: run.wall,
        stderr: run.stderr,
    })
}

/// CPU time and peak RSS of a process tree, from rusage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TreeUsage {
    /// User + system.
    pub cpu_ns: u64,
    /// The largest ru_maxrss in the tree (Linux reports KiB).
    pub peak_rss_kib: u64,
}

impl TreeUsage {
    pub fn from_rusage(r: &libc::rusage) -> TreeUsage {
        let ns = |t: libc::timeval| {
            t.tv_sec.max(0) as u64 * 1_000_000_000 + t.tv_usec.max(0) as u64 * 1000
        };
        TreeUsage {
            cpu_ns: ns(r.ru_utime) + ns(r.ru_stime),
            peak_rss_kib: r.ru_maxrss.max(0) as u64,
        }
    }
}

/// The rusage of this process's reaped children (with their own reaped descendants).
pub fn children_rusage() -> TreeUsage {
    // SAFETY: all-zero is a valid rusage; getrusage fills it in.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_CHILDREN is valid and r is a valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut r) };
    TreeUsage::from_rusage(&r)
}

/// How a finished command failed, or None when it exited 0.
pub fn crash_of(status: std::process::ExitStatus) -> Option<Crash> {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => None,
        (Some(code), _) => Some(Crash::Exit(code)),
        (None, Some(sig)) => Some(Crash::Signal(sig)),
        (None, None) => Some(Crash::Exit(-1)),
    }
}

/// One run of any command (a `--program`): its exit, wall time, the rusage of its whole tree and
/// its output. Err only when it cannot be started.
#[derive(Debug)]
pub struct CommandRun {
    pub outcome: Result<(), Crash>,
    pub wall: Duration,
    pub usage: TreeUsage,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_command(mut cmd: Command, timeout: Duration) -> Result<CommandRun> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {:?}", cmd.get_program()))?;
    let started = Instant::now();
    let stdout = read_to_end_async(child.stdout.take());
    let stderr = read_to_end_async(child.stderr.take());
    let (status, rusage) = wait_with_timeout(child.id() as libc::pid_t, timeout)?;
    let wall = started.elapsed();
    let outcome = match status {
        WaitStatus::Exited(0) => Ok(()),
        WaitStatus::Exited(code) => Err(Crash::Exit(code)),
        WaitStatus::Signaled(sig) => Err(Crash::Signal(sig)),
        WaitStatus::TimedOut => Err(Crash::Timeout(timeout)),
    };
    Ok(CommandRun {
        outcome,
        wall,
        usage: TreeUsage::from_rusage(&rusage),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn read_to_end_async(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

enum WaitStatus {
    Exited(i32),
    Signaled(i32),
    TimedOut,
}

/// Reaps `pid` with wait4 (its own rusage and its reaped descendants', not those of this process's
/// other children), killing it after
/// `timeout`.
fn wait_with_timeout(pid: libc::pid_t, timeout: Duration) -> Result<(WaitStatus, libc::rusage)> {
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    loop {
        let mut status = 0;
        // SAFETY: all-zero is a valid rusage; wait4 fills it in.
        let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if timed_out { 0 } else { libc::WNOHANG };
        // SAFETY: pid is our own unreaped child; status and rusage are valid out-pointers.
        let reaped = unsafe { libc::wait4(pid, &mut status, flags, &mut rusage) };
        if reaped == pid {
            let ws = if timed_out {
                WaitStatus::TimedOut
            } else if libc::WIFSIGNALED(status) {
                WaitStatus::Signaled(libc::WTERMSIG(status))
            } else {
                WaitStatus::Exited(libc::WEXITSTATUS(status))
            };
            return Ok((ws, rusage));
        }
        if reaped < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err).context("wait4 on the bench process");
        }
        if Instant::now() >= deadline {
            // SAFETY: pid is our unreaped child, so it cannot have been recycled.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            timed_out = true;
            continue;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn sh(script: &str) -> (PathBuf, Vec<String>) {
        (PathBuf::from("/bin/sh"), vec!["-c".into(), script.into()])
    }

    fn glibc() -> Allocator {
        Allocator {
            name: "glibc".into(),
            preload: None,
        }
    }

    #[test]
    fn a_signal_is_a_crash_value_not_an_error() {
        let (bin, args) = sh("kill -SEGV $$");
        let r = run_bench(&bin, &glibc(), &args, Duration::from_secs(10)).unwrap();
        assert_eq!(r.outcome.unwrap_err(), Crash::Signal(libc::SIGSEGV));
        assert_eq!(Crash::Signal(libc::SIGSEGV).to_string(), "SIGSEGV");
    }

    #[test]
    fn exit_codes_timeouts_and_missing_json() {
        let (bin, args) = sh("echo oops >&2; exit 3");
        let r = run_bench(&bin, &glibc(), &args, Duration::from_secs(10)).unwrap();
        assert_eq!(r.outcome.unwrap_err(), Crash::Exit(3));
        assert!(r.stderr.contains("oops"));

        let (bin, args) = sh("sleep 5");
        let r = run_bench(&bin, &glibc(), &args, Duration::from_millis(100)).unwrap();
        assert!(matches!(r.outcome, Err(Crash::Timeout(_))));
        assert!(
            r.wall < Duration::from_secs(4),
            "the child was not killed at the deadline"
        );

        let (bin, args) = sh("echo not-json");
        let err = run_bench(&bin, &glibc(), &args, Duration::from_secs(10)).unwrap_err();
        assert!(format!("{err:#}").contains("printed no JSON"), "{err:#}");
    }

    #[test]
    fn a_command_run_counts_its_whole_tree() {
        // Two grandchildren each burn CPU; the tree's CPU is theirs, the peak RSS the largest.
        let mut cmd = Command::new("/bin/sh");
        cmd.args([
            "-c",
            "python3 -c 'b = bytearray(60 << 20); s = sum(range(3000000))' & \
             python3 -c 's = sum(range(3000000))' & wait; echo done; echo warn >&2",
        ]);
        let r = run_command(cmd, Duration::from_secs(60)).unwrap();
        assert_eq!(r.outcome, Ok(()));
        assert_eq!((r.stdout.trim(), r.stderr.trim()), ("done", "warn"));
        assert!(r.usage.peak_rss_kib >= 60 * 1024, "{:?}", r.usage);
        assert!(r.usage.cpu_ns > 0, "{:?}", r.usage);
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "exit 4"]);
        assert_eq!(
            run_command(cmd, Duration::from_secs(10)).unwrap().outcome,
            Err(Crash::Exit(4))
        );
    }

    #[test]
    fn rss_is_the_childs() {
        // A child that touches 80 MiB must report at least that much, whatever the parent's RSS.
        let (bin, args) = sh("exec python3 -c 'import sys; b = bytearray(80 << 20); sys.exit(9)'");
        let r = run_bench(&bin, &glibc(), &args, Duration::from_secs(30)).unwrap();
        assert_eq!(r.outcome.unwrap_err(), Crash::Exit(9));
        assert!(
            r.peak_rss_kib >= 80 * 1024,
            "peak RSS {} KiB",
            r.peak_rss_kib
        );
    }
}
