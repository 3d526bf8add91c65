//! Shared plumbing for the tests that run real processes under `LD_PRELOAD` of the hz3 `.so` files:
//! locating the libraries, compiling the C checkers, temporary directories and process runs.
//! Also used by `stress/tests` through `#[path]`, so it must not depend on anything but std.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Both compile-time lanes; every preload test runs once per lane.
pub const LANES: [&str; 2] = ["fast", "scale"];

pub fn repo_root() -> PathBuf {
    // Tests of `hz3` and of `stress` both sit one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate directory has a parent")
        .to_path_buf()
}

/// Every shipped build, with the lane `hz3_lane()` reports: plain, probes and failfast per lane, and
/// the portable-fallbacks build (pthread-key TLS slot and libc's syscall() with errno kept: what
/// other architectures run, exercised on x86-64).
pub fn shipped_builds() -> Vec<(String, &'static str)> {
    let mut builds = Vec::new();
    for lane in LANES {
        for suffix in ["", "_probes", "_failfast"] {
            builds.push((format!("{lane}{suffix}"), lane));
        }
    }
    builds.push(("fast_portable".to_string(), "fast"));
    builds
}

/// Path of `libhz3_<lane>.so`; fails the test with the fix when `scripts/build-preload` has not run.
pub fn preload_lib(lane: &str) -> PathBuf {
    let dir = match std::env::var_os("HZ3_PRELOAD_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("target/preload"),
    };
    let lib = dir.join(format!("libhz3_{lane}.so"));
    assert!(
        lib.is_file(),
        "{} is missing: run scripts/build-preload first (scripts/test does it)",
        lib.display()
    );
    lib
}

/// A directory under the system temp dir, removed when dropped (kept if the test panicked, for
/// post-mortem).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "hz3-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Compiles `hz3/tests/c/<name>.c` into `dir` and returns the executable. `-fno-builtin` keeps the
/// compiler from folding malloc/free pairs or impossible sizes away: every call must reach the `.so`.
pub fn compile_c(name: &str, dir: &Path) -> PathBuf {
    let src = repo_root().join("hz3/tests/c").join(format!("{name}.c"));
    let exe = dir.join(name);
    let out = Command::new("cc")
        .args([
            "-std=gnu11",
            "-O1",
            "-g",
            "-fno-builtin",
            "-Wall",
            "-Wextra",
            "-pthread",
            "-o",
        ])
        .arg(&exe)
        .arg(&src)
        .arg("-ldl")
        .output()
        .expect("run cc (install build-essential)");
    assert!(
        out.status.success(),
        "cc failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// `cmd` with `LD_PRELOAD` set to the lane's library (or cleared for the glibc baseline).
pub fn with_preload(mut cmd: Command, lane: Option<&str>) -> Command {
    match lane {
        Some(lane) => cmd.env("LD_PRELOAD", preload_lib(lane)),
        None => cmd.env_remove("LD_PRELOAD"),
    };
    cmd
}

/// Runs and captures; panics only if the process could not be started.
pub fn run(mut cmd: Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// Describes a finished process for assertion messages: status, then both streams.
pub fn describe(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts a clean exit, showing everything the process said otherwise.
pub fn assert_success(what: &str, out: &Output) {
    assert!(out.status.success(), "{what} failed\n{}", describe(out));
}
