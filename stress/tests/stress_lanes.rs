//! hz3-stress on both preload lanes (a few seconds each), plus proof that its checks can fail.

#[path = "../../hz3/tests/common/mod.rs"]
mod common;

use common::{assert_success, describe, run, with_preload, LANES};
use std::process::Command;

fn stress(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hz3-stress"));
    cmd.args(args);
    cmd
}

#[test]
fn both_lanes_survive_a_short_stress() {
    for lane in LANES {
        let cmd = stress(&[
            "--threads",
            "8",
            "--ops",
            "40000",
            "--seed",
            "7",
            "--expect-lane",
            lane,
        ]);
        let out = run(with_preload(cmd, Some(lane)));
        assert_success(&format!("hz3-stress under {lane}"), &out);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("allocator=hz3-{lane}")),
            "{stdout}"
        );
        assert!(
            !stdout.contains("remote_frees=0 "),
            "no cross-thread frees happened: {stdout}"
        );
    }
}

#[test]
fn glibc_passes_and_is_not_taken_for_hz3() {
    let out = run(with_preload(
        stress(&["--threads", "4", "--ops", "20000"]),
        None,
    ));
    assert_success("hz3-stress on glibc", &out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("allocator=not-hz3"),
        "{}",
        describe(&out)
    );

    let out = run(with_preload(
        stress(&["--threads", "1", "--ops", "10", "--expect-lane", "fast"]),
        None,
    ));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("FAIL identity"),
        "{}",
        describe(&out)
    );
}

#[test]
fn injected_corruption_is_caught() {
    let out = run(with_preload(
        stress(&["--threads", "2", "--ops", "5000", "--inject-corruption"]),
        None,
    ));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("FAIL pattern"),
        "{}",
        describe(&out)
    );
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        &["--threads", "0"][..],
        &["--bogus"],
        &["--minutes", "-1"],
        &["--remote-percent", "101"],
    ] {
        let out = run(stress(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{}", describe(&out));
    }
}
