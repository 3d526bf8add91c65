//! `record --program` on a real program (python3) under glibc and an hz3 probes build, `gap`
//! between them, the bad-input errors, and off-CPU time on a machine whose tracefs record mounts.
mod perf_common;
use perf_common::*;
use std::path::{Path, PathBuf};

/// An allocating loop that prints its op count; it first runs a child perl (its own comm), so a
/// followed child's samples are in the recording.
const PROGRAM: &str = r#"python3 -c "
import subprocess, sys
subprocess.run(['perl', '-e', 'my @a; push @a, \"x\" x 20 for 1..400000'], check=True)
d = {}
for i in range(200000):
    d[i % 4096] = [str(i)] * 4
print('ops=%d' % 200000)
""#;

fn preload(name: &str) -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_hz3-analyze"));
    let root = exe.ancestors().nth(2).unwrap().to_path_buf();
    root.join("preload").join(name)
}

fn record(alloc: &str, out: &Path, program: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "record",
        "--quick",
        "--alloc",
        alloc,
        "--program",
        program,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    analyze(&args)
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

#[test]
fn a_python_program_under_glibc_and_hz3_with_its_gap() {
    if let Some(reason) = perf_cannot_record() {
        eprintln!("skipped: {reason}");
        return;
    }
    let lib = preload("libhz3_scale_probes.so");
    if !lib.is_file() {
        eprintln!(
            "skipped: {} not built (scripts/build-preload)",
            lib.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("glibc"), dir.path().join("hz3"));
    let ops = ["--ops-from", "ops=([0-9]+)"];
    let out = record("glibc", &a, PROGRAM, &ops);
    assert!(out.status.success(), "{}", stderr(&out));
    let spec = format!("hz3_scale_probes={}", lib.display());
    let out = record(&spec, &b, PROGRAM, &ops);
    assert!(out.status.success(), "{}", stderr(&out));

    let program: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("program.json")).unwrap()).unwrap();
    assert_eq!(program["ops"], 200000);
    assert!(program["cpu_secs"].as_f64().unwrap() > 0.0);
    assert!(program["peak_rss_kib"].as_u64().unwrap() > 1000);
    // hz3 answered the program's mallocs: its probes counted them.
    let probes = std::fs::read_to_string(b.join("probes.json")).unwrap();
    assert!(probes.contains("cache_hit"), "{probes}");
    // The child perl was followed: its samples are in the recording, rooted at its comm.
    for run in [&a, &b] {
        let folded = std::fs::read_to_string(run.join("cpu.folded")).unwrap();
        assert!(folded.lines().any(|l| l.starts_with("perl;")), "{folded}");
        assert!(folded.lines().any(|l| l.starts_with("python3;")));
    }

    let out = analyze(&["gap", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let gap = json(&out);
    assert_eq!(gap["unit"], "op");
    let (measured, boxes, residual) = (
        gap["measured_diff"].as_f64().unwrap(),
        gap["boxes_diff"].as_f64().unwrap(),
        gap["residual"].as_f64().unwrap(),
    );
    assert!((measured - boxes - residual).abs() < 1e-6);
    let out = analyze(&["gap", a.to_str().unwrap(), b.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(text.contains("residual (measured - sum)"), "{text}");
    assert!(text.contains("A ns/op (glibc)"), "{text}");
    eprintln!("{text}");

    // Without an op count the figures are per run, and a gap needs the same command and source.
    let c = dir.path().join("per-run");
    let out = record("glibc", &c, PROGRAM, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = analyze(&["attribute", c.to_str().unwrap()]);
    assert!(stdout(&out).contains("ns/run"), "{}", stdout(&out));
    let out = analyze(&["gap", a.to_str().unwrap(), c.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("same"), "{}", stderr(&out));

    // The differential flamegraph of the two, box-rooted and threads merged.
    let svg = dir.path().join("d.svg");
    let out = analyze(&[
        "flame",
        "--diff",
        "--by-box",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("[box:hz3."));
}

#[test]
fn bad_programs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = record(
        "glibc",
        &dir.path().join("x"),
        "no-such-program-hz3 --x",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not found on PATH"),
        "{}",
        stderr(&out)
    );
    let out = record("glibc", &dir.path().join("x"), "python3 -c 'unclosed", &[]);
    assert!(
        stderr(&out).contains("unbalanced quotes"),
        "{}",
        stderr(&out)
    );
    let out = record(
        "glibc",
        &dir.path().join("x"),
        "true",
        &["--ops-from", "no group"],
    );
    assert!(stderr(&out).contains("capture group"), "{}", stderr(&out));
    if let Some(reason) = perf_cannot_record() {
        eprintln!("skipped the recorded cases: {reason}");
        return;
    }
    let failing = "python3 -c 'import sys; print(\"it broke here\", file=sys.stderr); sys.exit(3)'";
    let out = record("glibc", &dir.path().join("f"), failing, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("failed (exit 3)") && err.contains("it broke here"),
        "{err}"
    );

    let out = record(
        "glibc",
        &dir.path().join("o"),
        "true",
        &["--ops-from", "ops=([0-9]+)"],
    );
    assert!(stderr(&out).contains("no match"), "{}", stderr(&out));

    // A static binary ignores LD_PRELOAD: hz3's probes build counts no malloc and says so.
    let lib = preload("libhz3_scale_probes.so");
    let ldconfig = Path::new("/sbin/ldconfig");
    if lib.is_file() && ldconfig.is_file() {
        let spec = format!("hz3_scale_probes={}", lib.display());
        let out = record(&spec, &dir.path().join("s"), "/sbin/ldconfig -p", &[]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("never allocated under hz3_scale_probes"),
            "{err}"
        );
    }
}

#[test]
fn offcpu_is_recorded_as_root_and_said_not_recorded_otherwise() {
    if let Some(reason) = perf_cannot_record() {
        eprintln!("skipped: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sleepy = "python3 -c 'import time; [time.sleep(0.01) for _ in range(5)]'";
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // record mounts tracefs when a fresh machine has not: the switches are then there.
        let run = dir.path().join("root");
        let out = record("glibc", &run, sleepy, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        let meta = std::fs::read_to_string(run.join("meta.json")).unwrap();
        assert!(meta.contains("\"offcpu\": true"), "{meta}");
        let out = analyze(&["attribute", run.to_str().unwrap(), "--json"]);
        let report = json(&out);
        assert!(
            report["offcpu"]["blocked_other"].as_f64().unwrap() > 0.0,
            "{report}"
        );
    } else {
        eprintln!("skipped the root half: not root, so tracefs cannot be mounted here");
    }
    let run = dir.path().join("none");
    let out = record("glibc", &run, sleepy, &["--no-offcpu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = analyze(&["attribute", run.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(text.contains("not recorded (--no-offcpu)"), "{text}");
    assert!(!text.contains("lock wait 0.00"), "{text}");
    let out = analyze(&["attribute", run.to_str().unwrap(), "--json"]);
    let report = json(&out);
    assert!(report["offcpu"].is_null(), "{report}");
    assert_eq!(report["offcpu_not_recorded"], "--no-offcpu");
    // A gap with such a run has no off-CPU rows, and says why.
    let out = analyze(&[
        "gap",
        run.to_str().unwrap(),
        run.to_str().unwrap(),
        "--json",
    ]);
    let gap = json(&out);
    assert!(gap["offcpu"].is_null(), "{gap}");
    assert_eq!(gap["offcpu_not_recorded"], "A: --no-offcpu; B: --no-offcpu");
    let out = analyze(&["gap", run.to_str().unwrap(), run.to_str().unwrap()]);
    assert!(stdout(&out).contains("off-CPU (lock wait, other sleep, preempted): not recorded"));
}

#[test]
fn report_asks_the_question_of_a_program() {
    if let Some(reason) = perf_cannot_record() {
        eprintln!("skipped: {reason}");
        return;
    }
    if !preload("libhz3_scale.so").is_file() {
        eprintln!("skipped: target/preload not built (scripts/build-preload)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("r");
    let program = "py=python3 -c 'x = [str(i) * 3 for i in range(300000)]'";
    let out = analyze(&[
        "report",
        "--quick",
        "--runs",
        "1",
        "--lane",
        "scale",
        "--alloc",
        "glibc",
        "--alloc",
        "hz3_scale",
        "--program",
        program,
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let index = std::fs::read_to_string(out_dir.join("index.md")).unwrap();
    assert!(
        index.contains("peak RSS MiB"),
        "the program's matrix rows: {index}"
    );
    assert!(
        index.contains("spend its allocator time per run"),
        "{index}"
    );
    assert!(index.contains("residual"), "{index}");
    let summary = stdout(&out);
    assert!(
        summary.contains("anchor with the least CPU time"),
        "{summary}"
    );
    let diff = std::fs::read_to_string(
        out_dir
            .join("flames")
            .join("diff-hz3_scale_probes-vs-glibc.svg"),
    )
    .or_else(|_| {
        std::fs::read_to_string(out_dir.join("flames").join("diff-hz3_scale-vs-glibc.svg"))
    })
    .unwrap();
    assert!(diff.contains("stacks rooted at their box"));
    // A preset and a program together are refused: the question is asked of one workload.
    let out = analyze(&["report", "--program", program, "--preset", "local-small"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
