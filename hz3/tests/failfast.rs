//! The `failfast` builds (`libhz3_{fast,scale}_failfast.so`), checked by
//! `c/failfast_check.c`: each misuse or corruption case runs in its own child process, which must die
//! of SIGABRT after one stderr line naming the box, the fault and the address the program printed; a
//! normal multi-thread workload must run clean (no false positive). The plain builds carry none of it.

mod common;

use common::{compile_c, describe, preload_lib, run, TempDir, LANES};

/// (library name, the lane `hz3_lane()` reports) of every failfast build.
const BUILDS: [(&str, &str); 2] = [("fast_failfast", "fast"), ("scale_failfast", "scale")];
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Output};

fn run_case(exe: &Path, mode: &str, (build, lane): (&str, &str)) -> Output {
    let mut cmd = Command::new(exe);
    cmd.args([mode, lane]).env("LD_PRELOAD", preload_lib(build));
    // SAFETY: setrlimit is async-signal-safe, as code between fork and exec must be; a zero core
    // limit keeps the expected aborts from writing core files.
    unsafe {
        cmd.pre_exec(|| {
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        });
    }
    run(cmd)
}

/// Runs `mode` under a failfast library and checks the abort: SIGABRT, hz3 answered, and stderr
/// is exactly one line `hz3 <box>: <what...> at <addr>`, addr being what the program printed.
fn expect_abort(exe: &Path, mode: &str, build: (&str, &str), box_name: &str, what: &str) {
    let out = run_case(exe, mode, build);
    let ctx = format!("{mode} under {}\n{}", build.0, describe(&out));
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{ctx}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok identity.hz3_lane"), "{ctx}");
    assert!(!stdout.contains("redirected"), "{ctx}");
    let addr = stdout
        .lines()
        .find_map(|l| l.strip_prefix("addr "))
        .unwrap_or_else(|| panic!("no address printed\n{ctx}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "want one line on stderr\n{ctx}");
    let line = lines[0];
    assert!(line.starts_with(&format!("hz3 {box_name}: ")), "{ctx}");
    assert!(line.contains(what), "want {what:?}\n{ctx}");
    assert!(
        line.ends_with(&format!(" at {addr}")),
        "want address {addr}\n{ctx}"
    );
}

/// One case across every failfast build; `expect(build)` gives the box and message it reports.
fn case(mode: &str, expect: impl Fn(&str) -> (&'static str, &'static str)) {
    let dir = TempDir::new("failfast");
    let exe = compile_c("failfast_check", dir.path());
    for build in BUILDS {
        let (box_name, what) = expect(build.0);
        expect_abort(&exe, mode, build, box_name, what);
    }
}

#[test]
fn double_free_aborts() {
    case("double-free", |_| ("failfast", "double free"));
}

#[test]
fn interior_pointer_free_aborts() {
    case("interior", |_| ("failfast", "interior pointer"));
}

#[test]
fn interior_pointer_of_an_aligned_block_aborts() {
    case("aligned-interior", |_| ("failfast", "interior pointer"));
}

#[test]
fn free_of_a_pointer_hz3_never_returned_aborts() {
    case("foreign", |_| ("page_map", "did not allocate"));
}

#[test]
fn write_after_free_aborts_at_the_next_handout() {
    case("write-after-free", |_| ("failfast", "write after free"));
}

/// Overwriting the first word of a block another thread freed (where an allocator with an
/// in-object free list keeps its link) never redirects an allocation to the written address: hz3
/// links nothing through objects, and the changed canary aborts when the block is handed out again.
#[test]
fn overwritten_first_word_of_a_remotely_freed_block_aborts() {
    case("corrupt-link", |_| ("failfast", "write after free"));
}

#[test]
fn realloc_of_a_freed_block_aborts() {
    case("realloc-freed", |_| {
        ("failfast", "realloc of a freed pointer")
    });
}

#[test]
fn large_double_free_aborts() {
    case("large-double-free", |_| ("page_map", "already freed"));
}

#[test]
fn large_interior_pointer_free_aborts() {
    case("large-interior", |_| ("large", "inside a large object"));
}

#[test]
fn normal_workload_runs_clean() {
    let dir = TempDir::new("failfast-clean");
    let exe = compile_c("failfast_check", dir.path());
    for build in BUILDS {
        let out = run_case(&exe, "clean", build);
        let ctx = format!("clean under {}\n{}", build.0, describe(&out));
        assert!(out.status.success(), "{ctx}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("ok identity.hz3_lane\n"), "{ctx}");
        assert!(stdout.contains("ok clean\n"), "{ctx}");
        assert!(out.stderr.is_empty(), "{ctx}");
    }
}

/// A freed block's first word is `secret ^ address`: not a plain pointer or zero, and the secret
/// differs between processes (it comes from the kernel's per-exec random bytes).
#[test]
fn free_blocks_hold_a_per_process_encoded_canary() {
    let dir = TempDir::new("failfast-canary");
    let exe = compile_c("failfast_check", dir.path());
    // glibc's %p prints a null pointer as "(nil)".
    let hex = |s: &str| match s {
        "(nil)" => 0,
        _ => u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("a %p value"),
    };
    for build in BUILDS {
        let lane = build.0;
        let secrets: Vec<u64> = (0..2)
            .map(|_| {
                let out = run_case(&exe, "canary", build);
                assert!(out.status.success(), "{}", describe(&out));
                let stdout = String::from_utf8_lossy(&out.stdout);
                let line = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("free-word "))
                    .unwrap_or_else(|| panic!("no canary line\n{}", describe(&out)));
                let (word, addr) = line.split_once(" addr ").expect("word and address");
                let (word, addr) = (hex(word), hex(addr));
                assert!(
                    word != 0 && word != addr,
                    "{lane}: free word {word:#x} at {addr:#x}"
                );
                word ^ addr
            })
            .collect();
        assert_ne!(
            secrets[0], secrets[1],
            "{lane}: the same secret in two processes"
        );
    }
}

fn symbols(lib: &Path) -> String {
    let out = Command::new("nm")
        .args(["--defined-only", "--demangle"])
        .arg(lib)
        .output()
        .expect("run nm (binutils)");
    assert!(out.status.success(), "nm {}", lib.display());
    String::from_utf8(out.stdout).unwrap()
}

/// The checks are compiled out of the plain libraries: no failfast code or state is left there,
/// while the same filter finds the bitmap in the failfast builds.
#[test]
fn plain_libraries_carry_no_failfast_code() {
    for lane in LANES {
        let plain = symbols(&preload_lib(lane));
        let found: Vec<_> = plain.lines().filter(|l| l.contains("failfast")).collect();
        assert!(found.is_empty(), "{lane}: plain build holds {found:?}");
        let checked = symbols(&preload_lib(&format!("{lane}_failfast")));
        assert!(
            checked.contains("hz3::failfast::checks::LEAVES"),
            "{lane}: no live bitmap in the failfast build"
        );
    }
}
