//! `record` for real: a short hz3-bench run under perf, then `attribute` on what it wrote. Skipped
//! (with the reason printed) only where perf itself cannot record on this machine.
mod perf_common;
use perf_common::*;
use std::path::PathBuf;
use std::process::Command;

/// hz3-bench next to this test's hz3-analyze, built on demand with the same profile.
fn bench_binary() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_hz3-analyze"));
    let bench = exe.with_file_name("hz3-bench");
    if !bench.is_file() {
        let release = exe
            .parent()
            .and_then(|d| d.file_name())
            .is_some_and(|n| n == "release");
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "-p", "hz3-bench", "--bin", "hz3-bench"]);
        if release {
            cargo.arg("--release");
        }
        assert!(cargo.status().unwrap().success(), "building hz3-bench");
    }
    bench
}

/// `record --alloc SPEC` of a short remote-heavy-small run (4 threads x 20000) into `run`.
fn record_short(spec: &str, run: &std::path::Path) {
    let bench = bench_binary();
    let out = analyze(&[
        "record",
        "--alloc",
        spec,
        "--freq",
        "4999",
        "--bench",
        bench.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--",
        "--preset",
        "remote-heavy-small",
        "--threads",
        "4",
        "--iters",
        "20000",
    ]);
    assert!(out.status.success(), "record failed: {}", stderr(&out));
}

#[test]
fn records_a_short_run_and_attributes_it() {
    if let Some(reason) = perf_cannot_record() {
        eprintln!("skipped: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("glibc");
    record_short("glibc", &run);
    for f in [
        "perf.data",
        "bench.json",
        "counters.json",
        "meta.json",
        "cpu.folded",
        "offcpu.folded",
        "profile.json",
    ] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["allocator"], "glibc");
    assert!(meta["perf_version"]
        .as_str()
        .unwrap()
        .starts_with("perf version"));
    assert!(!meta["kernel"].as_str().unwrap().is_empty());
    if analyze::core_round_trip::first_pair().is_some() {
        for key in ["round_trip_before_ns", "round_trip_after_ns"] {
            assert!(meta[key].as_f64().unwrap() > 0.0, "{key}: {meta:#}");
        }
    }
    let counters: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("counters.json")).unwrap()).unwrap();
    assert!(
        counters["task_clock_ns"].as_u64().unwrap() > 0,
        "the counting group saw the bench"
    );

    let out = analyze(&["attribute", run.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ops"].as_u64().unwrap(), 4 * 20000);
    assert!(report["samples"].as_u64().unwrap() > 0);
    assert_eq!(report["measured_from"], "task-clock");
    assert_eq!(
        report["round_trip_ns"].as_array().unwrap().len(),
        if analyze::core_round_trip::first_pair().is_some() {
            2
        } else {
            0
        },
        "the host probes reach attribute"
    );
    let boxes = report["boxes"].as_array().unwrap();
    let glibc: f64 = boxes
        .iter()
        .filter(|b| b["name"].as_str().unwrap().starts_with("glibc."))
        .map(|b| b["ns_per_op"].as_f64().unwrap())
        .sum();
    let tc: f64 = boxes
        .iter()
        .filter(|b| b["name"].as_str().unwrap().starts_with("tcmalloc."))
        .map(|b| b["ns_per_op"].as_f64().unwrap())
        .sum();
    assert!(glibc > 0.0, "glibc answered malloc: {report:#}");
    assert_eq!(tc, 0.0);

    // Without the folded cache, the run is folded again from perf.data, to the same figures.
    for f in ["cpu.folded", "offcpu.folded", "profile.json"] {
        std::fs::remove_file(run.join(f)).unwrap();
    }
    let out = analyze(&["attribute", run.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["boxes"], report["boxes"]);
    assert!(
        run.join("cpu.folded").is_file(),
        "the cache is written back"
    );
}

#[test]
fn a_preload_that_does_not_answer_is_refused() {
    if let Some(reason) = perf_cannot_record() {
        eprintln!("skipped: {reason}");
        return;
    }
    let jemalloc = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
    if !std::path::Path::new(jemalloc).is_file() {
        eprintln!("skipped: {jemalloc} is not installed (apt-get install libjemalloc2)");
        return;
    }
    let bench = bench_binary();
    let dir = tempfile::tempdir().unwrap();
    // Named tcmalloc, but jemalloc answers: the bench's identity check must catch it.
    let spec = format!("tcmalloc={jemalloc}");
    let out = analyze(&[
        "record",
        "--alloc",
        &spec,
        "--quick",
        "--no-offcpu",
        "--bench",
        bench.to_str().unwrap(),
        "--out",
        dir.path().join("r").to_str().unwrap(),
        "--",
        "--threads",
        "2",
        "--iters",
        "2000",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("reports `jemalloc` answering malloc, not tcmalloc"),
        "{err}"
    );
}

#[test]
fn missing_perf_names_the_package() {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hz3-analyze"))
        .args(["record", "--alloc", "glibc"])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("apt-get install -y linux-perf"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1);
}

#[test]
fn paranoid_levels_and_usage_errors() {
    use analyze::perf_tool::paranoid_problem;
    let problem = paranoid_problem(Some(2), false).unwrap();
    assert!(
        problem.contains("sysctl -w kernel.perf_event_paranoid=-1"),
        "{problem}"
    );
    assert_eq!(
        paranoid_problem(Some(2), true),
        None,
        "root records at any level"
    );
    assert_eq!(paranoid_problem(Some(-1), false), None);

    let out = analyze(&["record"]);
    assert_eq!(out.status.code(), Some(2), "--alloc is required");
    let out = analyze(&["record", "--alloc", "glibc", "--call-graph", "lbr"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(analyze(&["record", "--help"]).status.code(), Some(0));
    assert!(stdout(&analyze(&["record", "--help"])).contains("Examples:"));
}

#[test]
fn bench_arguments_default_and_get_json() {
    use analyze::record::bench_arguments;
    assert_eq!(
        bench_arguments(&[]),
        ["remote", "--preset", "remote-heavy-small", "--json"]
    );
    let given = ["--preset".to_string(), "local-small".to_string()];
    assert_eq!(
        bench_arguments(&given),
        ["remote", "--preset", "local-small", "--json"]
    );
    let given = ["remote".to_string(), "--json".to_string()];
    assert_eq!(bench_arguments(&given), ["remote", "--json"]);
}

#[test]
fn an_unknown_interposer_s_time_is_its_own_api_box_not_the_caller_s() {
    if let Some(reason) = perf_cannot_record() {
        eprintln!("skipped: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libwrap.so");
    let source = fixture("interposer").join("wrap.c");
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-g", "-o"])
        .arg(&lib)
        .arg(&source)
        .arg("-ldl")
        .output()
        .expect("running cc");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let run = dir.path().join("wrap");
    record_short(&format!("wrap={}", lib.display()), &run);
    let run_dir = run.to_str().unwrap();

    // Every sample inside the interposer's own work is charged to the box named for its library
    // (an interrupt taken there is the kernel's, as anywhere).
    let folded = std::fs::read_to_string(run.join("cpu.folded")).unwrap();
    let cpu = flamegraphs::Folded::from_text(&folded).unwrap();
    let rules = analyze::boxes::defaults();
    let mut classifier = flamegraphs::Classifier::new(&rules);
    let mut burn = 0.0;
    for (stack, w) in &cpu.stacks {
        if stack.ends_with(";wrap_burn") {
            let b = classifier.box_of_stack(stack);
            assert_eq!(classifier.names()[b], "wrap.api", "{stack}");
            burn += w;
        }
    }
    assert!(burn > 0.0, "the interposer's burn was sampled:\n{folded}");

    let out = analyze(&["attribute", run_dir, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let boxes = report["boxes"].as_array().unwrap();
    let wrap = boxes.iter().find(|b| b["name"] == "wrap.api").unwrap();
    assert_eq!(wrap["shared"], "api");
    let ns = |name: &str| {
        boxes
            .iter()
            .find(|b| b["name"] == name)
            .map_or(0.0, |b| b["ns_per_op"].as_f64().unwrap())
    };
    assert!(
        ns("wrap.api") > ns("bench"),
        "a 400-step burn per malloc outweighs the bench's own loop: {report:#}"
    );
    assert!(report["unnamed"]["api"].as_f64().unwrap() >= ns("wrap.api"));
}
