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
    run_args(preload, &[SMALL, extra].concat())
}

/// hz3-bench with `args` under `preload` (none: glibc); it must succeed and print one JSON object.
fn run_args(preload: Option<&Path>, args: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new(BENCH);
    cmd.args(args).env_remove("LD_PRELOAD");
    if let Some(lib) = preload {
        cmd.env("LD_PRELOAD", lib);
    }
    let out = cmd.output().expect("spawning hz3-bench");
    assert!(
        out.status.success(),
        "hz3-bench {args:?} under {preload:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    let cases: [(&[&str], &str); 9] = [
        (&["--min", "4096", "--max", "16"], "must not exceed --max"),
        (&["--ws", "0"], "--ws"),
        (&["--threads", "0"], "--threads"),
        (&["--remote-pct", "150"], "--remote-pct"),
        (
            &["--preset", "larson"],
            "invalid value 'larson' for '--preset",
        ),
        (&["--iters", "ten"], "invalid value 'ten' for '--iters"),
        (&["--preset", "realloc-growth", "--max", "2GiB"], "--max"),
        (
            &["--preset", "producer-consumer", "--threads", "5"],
            "must be even",
        ),
        (
            &["--preset", "large-churn", "--untouched", "--touch"],
            "cannot be used with",
        ),
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

/// Every preset, briefly: (preset, arguments that make it tiny). The bench checks its own counts and
/// the contents it wrote, and exits non-zero when either is wrong.
const TINY_PRESETS: &[(&str, &[&str])] = &[
    ("remote-heavy-small", &["--iters", "5000", "--ws", "64"]),
    ("remote-90", &["--iters", "5000", "--ws", "64"]),
    ("local-small", &["--iters", "20000"]),
    ("mixed-large", &["--iters", "5000", "--ws", "64"]),
    ("remote-heavy-small-t2", &["--iters", "20000"]),
    ("remote-heavy-small-t4", &["--iters", "20000"]),
    ("server-table", &["--iters", "2000", "--ws", "100"]),
    ("producer-consumer", &["--iters", "5000", "--ring", "64"]),
    ("random-lifetimes", &["--iters", "5000", "--ws", "256"]),
    ("realloc-growth", &["--iters", "2", "--max", "262144"]),
    ("large-churn", &["--iters", "20"]),
];

/// The counts each workload guarantees, from the JSON alone.
fn check_counts(preset: &str, v: &serde_json::Value) {
    let n = |k: &str| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("{preset}: no {k} in {v}"))
    };
    let (threads, iters) = (n("threads"), n("iters"));
    assert_eq!(
        n("ops"),
        n("mallocs") + n("local_frees") + n("remote") + n("reallocs"),
        "{preset}: {v}"
    );
    match v["bench"].as_str().unwrap() {
        "remote" => {
            assert_eq!(n("ops"), threads * iters, "{preset}: matched presets: {v}");
            assert_eq!(n("remote"), n("sent"), "{preset}: {v}");
        }
        "server-table" => {
            assert_eq!(
                (n("mallocs"), n("ops")),
                (threads * iters, 2 * threads * iters),
                "{v}"
            );
            assert!(n("remote") > 0, "blocks never changed hands: {v}");
        }
        "producer-consumer" => {
            let objects = threads / 2 * iters;
            assert_eq!(
                (n("mallocs"), n("sent"), n("remote"), n("local_frees")),
                (objects, objects, objects, 0),
                "{v}"
            );
        }
        "random-lifetimes" => assert_eq!(n("mallocs"), threads * iters, "{v}"),
        "realloc-growth" => {
            let buffers = threads * iters;
            assert_eq!((n("mallocs"), n("local_frees")), (buffers, buffers), "{v}");
            // 8 KiB steps to at least 128 KiB: 15 or more reallocs a buffer.
            assert!(n("reallocs") >= 15 * buffers, "{v}");
        }
        other => panic!("{preset}: unknown workload {other}"),
    }
}

fn every_preset_runs_and_balances(preload: Option<&Path>, identity: &str) {
    for (preset, tiny) in TINY_PRESETS {
        for (extra, touched) in [(&[][..], true), (&["--untouched"][..], false)] {
            let args = [&["run", "--preset", preset, "--json"][..], tiny, extra].concat();
            let v = run_args(preload, &args);
            assert_eq!(v["allocator"], identity, "{preset}");
            assert_eq!(v["preset"], *preset);
            assert_eq!(v["touch"], touched, "{preset} {extra:?}: {v}");
            check_counts(preset, &v);
        }
    }
    let listed: Vec<&str> = TINY_PRESETS.iter().map(|(p, _)| *p).collect();
    let all = bench::cli::Preset::ALL.map(bench::cli::Preset::name);
    assert_eq!(listed, all, "a preset is missing from this test");
}

#[test]
fn every_preset_runs_balanced_under_glibc() {
    every_preset_runs_and_balances(None, "glibc");
}

#[test]
fn every_preset_runs_balanced_under_hz3_scale() {
    let lib = repo_root().join("target/preload/libhz3_scale.so");
    assert!(
        lib.exists(),
        "{} is missing: run scripts/build-preload first",
        lib.display()
    );
    every_preset_runs_and_balances(Some(&lib), "hz3-scale");
}

#[test]
fn from_source_anchors_are_identified() {
    // scripts/build-anchors' libraries; a tree that has not built them has nothing to check.
    let dir = repo_root().join("target/anchors");
    let mut checked = 0;
    for name in ["jemalloc", "mimalloc", "snmalloc"] {
        let lib = dir.join(format!("lib{name}.so"));
        if !lib.is_file() {
            eprintln!(
                "{} not built (scripts/build-anchors): skipped",
                lib.display()
            );
            continue;
        }
        assert_eq!(
            run_json(Some(&lib), &[])["allocator"],
            name,
            "{}",
            lib.display()
        );
        checked += 1;
    }
    eprintln!("{checked} from-source anchors identified");
}
