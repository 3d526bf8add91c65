//! Multi-thread behaviour under `LD_PRELOAD` of each lane, checked by `c/threads_check.c`: cross-thread
//! frees, objects outliving the thread that allocated them, `fork()` while other threads allocate, and
//! malloc/free inside pthread key destructors at thread exit.

mod common;

use common::{assert_success, compile_c, run, with_preload, TempDir, LANES};
use std::process::Command;

/// Runs one mode of the checker; `lane = None` is the glibc baseline that validates the checker itself.
fn threads_check(mode: &str, lane: Option<&str>) {
    let dir = TempDir::new("threads");
    let exe = compile_c("threads_check", dir.path());
    let mut cmd = Command::new(&exe);
    cmd.arg(mode);
    cmd.args(lane);
    let out = run(with_preload(cmd, lane));
    let what = format!("threads_check {mode} under {}", lane.unwrap_or("glibc"));
    assert_success(&what, &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if lane.is_some() {
        assert!(
            stdout.contains("ok identity.hz3_lane"),
            "{what}: hz3 not proven\n{stdout}"
        );
    }
    let passed = stdout
        .lines()
        .filter(|l| l.starts_with("ok ") && !l.contains("identity"))
        .count();
    assert_eq!(passed, 1, "{what}: expected one passed check\n{stdout}");
}

fn each_lane(mode: &str) {
    for lane in LANES {
        threads_check(mode, Some(lane));
    }
}

#[test]
fn cross_thread_frees() {
    each_lane("xthread");
}

#[test]
fn objects_outlive_their_thread() {
    each_lane("orphans");
}

#[test]
fn fork_while_threads_allocate() {
    each_lane("fork");
}

#[test]
fn allocation_in_thread_exit_destructors() {
    each_lane("tls-dtor");
}

#[test]
fn checker_passes_on_glibc() {
    for mode in ["xthread", "orphans", "fork", "tls-dtor"] {
        threads_check(mode, None);
    }
}
