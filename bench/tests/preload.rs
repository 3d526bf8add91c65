//! Runs the real `hz3-bench` binary: argument errors exit 2, and under `LD_PRELOAD` the JSON names
//! the allocator that actually answered malloc (the proof the preload took effect).
use std::path::{Path, PathBuf};
use std::process::Command;

const BENCH: &str = env!("CARGO_BIN_EXE_hz3-bench");
const SMALL: &[&str] = &[
    "remote",
    "--threads",
    "4",
    "--iters",
    "20000",
    "--ws",
    "64",
    "--matched",
    "--json",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ has a parent")
        .to_path_buf()
}

fn run_json(preload: Option<&Path>, extra: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new(BENCH);
    cmd.args(SMALL).args(extra).env_remove("LD_PRELOAD");
    if let Some(lib) = preload {
        cmd.env("LD_PRELOAD", lib);
    }
    let out = cmd.output().expect("spawning hz3-bench");
    assert!(
        out.status.success(),
        "hz3-bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    let cases: [(&[&str], &str); 4] = [
        (&["--min", "4096", "--max", "16"], "must not exceed --max"),
        (&["--ws", "0"], "--ws"),
        (&["--threads", "0"], "--threads"),
        (&["--remote-pct", "150"], "--remote-pct"),
    ];
    for (args, needle) in cases {
        let out = Command::new(BENCH)
            .arg("remote")
            .args(args)
            .output()
            .expect("spawning hz3-bench");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn plain_run_reports_glibc_and_matched_op_count() {
    let v = run_json(None, &[]);
    assert_eq!(v["allocator"], "glibc");
    assert_eq!(
        v["ops"],
        4 * 20000,
        "matched mode: one op per step per thread"
    );
    assert_eq!(v["remote"], v["sent"]);
    assert!(v["mops"].as_f64().unwrap() > 0.0);
}

#[test]
fn ceiling_answers_under_ld_preload() {
    let lib = repo_root().join("target/preload/libceiling.so");
    assert!(
        lib.exists(),
        "{} is missing: run scripts/build-ceiling first",
        lib.display()
    );
    let v = run_json(Some(&lib), &["--touch", "--max", "40000"]);
    assert_eq!(
        v["allocator"], "ceiling",
        "LD_PRELOAD of libceiling.so did not take effect"
    );
    assert_eq!(v["ops"], 4 * 20000);
}

#[test]
fn jemalloc_anchor_is_identified() {
    let lib = Path::new("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2");
    assert!(
        lib.exists(),
        "{} is missing: apt-get install libjemalloc2",
        lib.display()
    );
    assert_eq!(run_json(Some(lib), &[])["allocator"], "jemalloc");
}
