//! The C malloc ABI of each preload `.so`, checked by `c/abi_check.c` run under `LD_PRELOAD`.
//! The same checker runs once without preload so its expectations are known to be glibc's.

mod common;

use common::{assert_success, compile_c, run, with_preload, TempDir};
use std::process::Command;

/// Checks every lane must pass, in the checker's order; the first two prove hz3 is answering.
const HZ3_CHECKS: &[&str] = &[
    "identity.hz3_lane",
    "identity.entry_points_from_hz3",
    "free.null",
    "malloc.zero",
    "malloc.sizes",
    "malloc.too_big",
    "calloc.zeroed",
    "calloc.zero",
    "calloc.overflow",
    "realloc.null_is_malloc",
    "realloc.zero_frees",
    "realloc.preserves_contents",
    "realloc.too_big_keeps_block",
    "reallocarray",
    "posix_memalign.bad_alignment",
    "posix_memalign.alignments_to_1GiB",
    "posix_memalign.too_big",
    "aligned_alloc",
    "memalign",
    "aligned.zero_size",
    "valloc",
    "pvalloc.rounds_to_pages",
    "malloc_usable_size.null",
    "malloc_trim",
    "mallopt",
    "mallinfo",
    "malloc_stats.names_hz3_and_lane",
];

fn abi_check(lane: Option<&str>) -> String {
    let dir = TempDir::new("abi");
    let exe = compile_c("abi_check", dir.path());
    let mut cmd = Command::new(&exe);
    cmd.arg(lane.unwrap_or("glibc"));
    let out = run(with_preload(cmd, lane));
    assert_success(
        &format!("abi_check under {}", lane.unwrap_or("glibc")),
        &out,
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_checks_passed(stdout: &str, checks: &[&str]) {
    let passed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ok "))
        .collect();
    assert_eq!(
        passed, checks,
        "checks passed differ from the expected list\n{stdout}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[test]
fn checker_agrees_with_glibc() {
    let stdout = abi_check(None);
    let glibc_checks: Vec<&str> = HZ3_CHECKS
        .iter()
        .copied()
        .filter(|c| !c.starts_with("identity.") && !is_introspection(c))
        .collect();
    assert_checks_passed(&stdout, &glibc_checks);
}

fn is_introspection(check: &str) -> bool {
    [
        "malloc_usable_size.",
        "malloc_trim",
        "mallopt",
        "mallinfo",
        "malloc_stats.",
    ]
    .iter()
    .any(|p| check.starts_with(p))
}

#[test]
fn abi_fast_lane() {
    assert_checks_passed(&abi_check(Some("fast")), HZ3_CHECKS);
}

#[test]
fn abi_scale_lane() {
    assert_checks_passed(&abi_check(Some("scale")), HZ3_CHECKS);
}

#[test]
fn checker_refuses_a_process_without_hz3() {
    // The identity checks must be able to fail: claiming a lane without the .so loaded is an error.
    let dir = TempDir::new("abi-neg");
    let exe = compile_c("abi_check", dir.path());
    let mut cmd = Command::new(&exe);
    cmd.arg("fast");
    let out = run(with_preload(cmd, None));
    assert_eq!(out.status.code(), Some(1), "{}", common::describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL identity.hz3_lane"), "{stdout}");
}
