//! Reliability under `LD_PRELOAD` of each lane, checked by `c/reliability_check.c`: out of memory
//! under `RLIMIT_AS` (one thread, and four threads freeing each other's objects), 20 000 short-lived
//! threads (with forks) in bounded RSS, and memory returned by `malloc_trim(0)` after a 1 GiB peak,
//! freed locally or by another thread. The glibc baseline runs the same checker first, so a failure
//! under hz3 is hz3's.

mod common;

use common::{assert_success, compile_c, run, with_preload, TempDir, LANES};
use std::process::Command;

fn reliability_check(mode: &str, lane: Option<&str>) -> String {
    let dir = TempDir::new("reliability");
    let exe = compile_c("reliability_check", dir.path());
    let mut cmd = Command::new(&exe);
    cmd.arg(mode).args(lane);
    let out = run(with_preload(cmd, lane));
    let what = format!("reliability_check {mode} under {}", lane.unwrap_or("glibc"));
    assert_success(&what, &out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stdout.contains("FAIL"), "{what}\n{stdout}");
    // Measurements go to the test log (`cargo test -- --nocapture`) for the decisions record.
    println!("--- {what} ---\n{stdout}");
    stdout
}

fn each_lane(mode: &str, checks: &[&str]) {
    for lane in [None].into_iter().chain(LANES.map(Some)) {
        let stdout = reliability_check(mode, lane);
        for check in checks {
            assert!(
                stdout.contains(&format!("ok {check}\n")),
                "{mode} under {lane:?}: {check} missing\n{stdout}"
            );
        }
        if lane.is_some() {
            assert!(stdout.contains("ok identity.hz3_lane"), "{stdout}");
        }
    }
}

#[test]
fn out_of_memory_fails_cleanly_and_recovers() {
    each_lane(
        "oom",
        &[
            "oom.limit",
            "oom.large_blocks_fail_with_enomem",
            "oom.small_blocks_fail_with_enomem",
            "oom.calls_fail_cleanly",
            "oom.recovers_after_free",
        ],
    );
}

#[test]
fn out_of_memory_in_threads_with_remote_frees() {
    each_lane("oom-threads", &["oom_threads.enomem_and_remote_recovery"]);
}

#[test]
fn thread_churn_keeps_rss_bounded() {
    each_lane("churn", &["churn.threads", "churn.rss_bounded"]);
}

#[test]
fn memory_returns_after_trim() {
    each_lane("trim", &["trim.freed_memory_returns"]);
}

#[test]
fn remotely_freed_memory_returns_after_trim() {
    each_lane("trim-remote", &["trim.remote_freed_memory_returns"]);
}
