//! The real `hz3-analyze matrix --quick` over glibc + jemalloc (+ the ceiling): every output file
//! parses, every row has a positive median, and a crash or bad argument is reported, not panicked.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ANALYZE: &str = env!("CARGO_BIN_EXE_hz3-analyze");
const QUICK_GLIBC_JEMALLOC: &[&str] = &[
    "--quick",
    "--alloc",
    "glibc",
    "--alloc",
    "jemalloc",
    "--baseline",
    "glibc",
];
const SMALL_BENCH: &[&str] = &["--", "--threads", "4", "--iters", "20000", "--ws", "64"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("analyze/ has a parent")
        .to_path_buf()
}

fn bench_exists() {
    let bench = Path::new(ANALYZE).with_file_name("hz3-bench");
    assert!(
        bench.is_file(),
        "{} is missing: run `cargo build --release -p hz3-bench` (scripts/test does)",
        bench.display()
    );
}

fn matrix(args: &[&str]) -> Output {
    bench_exists();
    Command::new(ANALYZE)
        .arg("matrix")
        .args(args)
        .env_remove("LD_PRELOAD")
        .output()
        .expect("spawning hz3-analyze")
}

/// The matrix over the small bench arguments; it must succeed.
fn matrix_small_ok(args: &[&str]) -> Output {
    let all: Vec<&str> = args.iter().chain(SMALL_BENCH).copied().collect();
    let out = matrix(&all);
    assert!(
        out.status.success(),
        "matrix {all:?} failed: {}",
        stderr(&out)
    );
    out
}

fn read_json(path: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn quick_matrix_writes_csv_json_markdown_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (csv_path, json_path, md_path, svg_path) =
        (path("m.csv"), path("m.json"), path("m.md"), path("m.svg"));
    let args = [
        QUICK_GLIBC_JEMALLOC,
        &[
            "--preset",
            "remote-heavy-small,local-small",
            "--csv",
            &csv_path,
            "--json",
            &json_path,
            "--markdown",
            &md_path,
            "--svg",
            &svg_path,
        ],
    ]
    .concat();
    let out = matrix_small_ok(&args);

    let json: serde_json::Value = read_json(&json_path);
    let two_cpus = analyze::core_round_trip::first_pair().is_some();
    assert_eq!(json["round_trip_cpus"].is_array(), two_cpus, "{json}");
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "2 presets x 2 allocators");
    for row in rows {
        assert!(row["median_mops"].as_f64().unwrap() > 0.0, "{row}");
        assert_eq!(
            row["samples_mops"].as_array().unwrap().len(),
            2,
            "--quick runs 2 rounds: {row}"
        );
        assert!(row["peak_rss_kib"].as_u64().unwrap() > 0);
        assert!(row["cpu_ns_per_op"].as_f64().unwrap() > 0.0, "{row}");
        if two_cpus {
            // The host probe: a round trip before and after each run, in ns.
            for key in [
                "samples_round_trip_before_ns",
                "samples_round_trip_after_ns",
            ] {
                let probes = row[key].as_array().unwrap();
                assert_eq!(probes.len(), 2, "{key}: {row}");
                assert!(probes.iter().all(|p| p.as_f64().unwrap() > 0.0), "{row}");
            }
        }
        assert_eq!(
            row["identity"], row["allocator"],
            "the bench must report the allocator the row claims"
        );
    }
    let glibc = rows.iter().find(|r| r["allocator"] == "glibc").unwrap();
    assert_eq!(glibc["ratio"].as_f64(), Some(1.0));
    for row in rows {
        let (m, ci) = (row["median_mops"].as_f64().unwrap(), &row["median_ci_mops"]);
        assert!(
            ci["low"].as_f64().unwrap() <= m && m <= ci["high"].as_f64().unwrap(),
            "the median lies in its interval: {row}"
        );
        assert!(row["ratio_ci"]["low"].as_f64().is_some(), "{row}");
    }
    // hyperfine's shape beside the rows: one result per row, one time per run.
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    for r in results {
        assert_eq!(r["times"].as_array().unwrap().len(), 2, "{r}");
        for key in ["mean", "stddev", "median", "min", "max"] {
            assert!(r[key].as_f64().unwrap() > 0.0, "{key}: {r}");
        }
        assert!(r["command"].as_str().unwrap().contains(" on "), "{r}");
    }

    let mut csv = csv::Reader::from_path(&csv_path).unwrap();
    let records: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 4);
    for r in &records {
        assert!(r[2].parse::<f64>().unwrap() > 0.0, "{r:?}");
    }

    let md = std::fs::read_to_string(&md_path).unwrap();
    // The matrix is the first table (the host regimes' table may follow).
    let table: Vec<&str> = md
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(table.len(), 2 + 4, "header, separator, 4 rows:\n{md}");
    assert!(table.iter().all(|l| l.matches('|').count() == 16), "{md}");

    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("\njemalloc\n</text>") && svg.contains("local-small"));
    assert_eq!(svg.matches("<svg").count(), 1);

    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.contains("Host core-to-core round trip (CPUs"),
        two_cpus,
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("local-small") && l.contains("jemalloc")),
        "{stdout}"
    );
}

#[test]
fn regression_guard_passes_against_itself_and_fails_on_a_doctored_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("base.json").display().to_string();
    let args = [QUICK_GLIBC_JEMALLOC, &["--json", &json_path]].concat();
    matrix_small_ok(&args);

    // Against itself: every row's change with its interval, and a summary that agrees with the
    // exit status. (Whether unchanged code passes is timing, which decides no test: the
    // synthetic rates are in compare.rs.)
    let summary = dir.path().join("summary.md").display().to_string();
    let args = [
        QUICK_GLIBC_JEMALLOC,
        &["--compare", &json_path, "--summary-md", &summary],
        SMALL_BENCH,
    ]
    .concat();
    let out = matrix(&args);
    let text = stderr(&out);
    assert!(
        text.contains("custom / jemalloc: ") && text.contains("% ["),
        "{text}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    match out.status.code() {
        Some(0) => assert!(md.contains("**No regression**"), "{md}"),
        Some(3) => assert!(md.contains("**1 row(s) regressed**"), "{md}"),
        other => panic!("exit {other:?}: {text}"),
    }
    assert!(md.contains("| custom | jemalloc |"), "{md}");

    // A baseline claiming jemalloc used to be 100x glibc cannot be met: exit 3, the row is named
    // with its interval. The guard reads every run, so the doctoring scales the samples too.
    let mut base: serde_json::Value = read_json(&json_path);
    for row in base["rows"].as_array_mut().unwrap() {
        if row["allocator"] == "jemalloc" {
            let m = row["median_mops"].as_f64().unwrap();
            row["median_mops"] = (m * 100.0).into();
            for s in row["samples_mops"].as_array_mut().unwrap() {
                *s = (s.as_f64().unwrap() * 100.0).into();
            }
        }
    }
    let doctored = dir.path().join("doctored.json").display().to_string();
    std::fs::write(&doctored, base.to_string()).unwrap();
    let args = [QUICK_GLIBC_JEMALLOC, &["--compare", &doctored]].concat();
    let out = matrix(&[&args[..], SMALL_BENCH].concat());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("custom / jemalloc: ") && text.contains("REGRESSED"),
        "{text}"
    );
    assert!(text.contains("of glibc (-9"), "{text}");
}

#[test]
fn ceiling_row_is_measured_under_its_preload() {
    let ceiling = repo_root().join("target/preload/libceiling.so");
    assert!(
        ceiling.exists(),
        "{} is missing: run scripts/build-ceiling",
        ceiling.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("c.json").display().to_string();
    let preload_dir = repo_root().join("target/preload").display().to_string();
    let args = [
        "--quick",
        "--runs",
        "1",
        "--alloc",
        "ceiling",
        "--baseline",
        "ceiling",
        "--preload-dir",
        &preload_dir,
        "--json",
        &json_path,
    ];
    matrix_small_ok(&args);
    let json: serde_json::Value = read_json(&json_path);
    assert_eq!(json["rows"][0]["identity"], "ceiling");
}

#[test]
fn crashes_are_rows_and_mislabelled_preloads_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A "bench" that dies of SIGSEGV: the matrix finishes, the row is marked crashed.
    let fake = dir.path().join("fake-bench");
    std::fs::write(&fake, "#!/bin/sh\nkill -SEGV $$\n").unwrap();
    let executable = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
    std::fs::set_permissions(&fake, executable.clone()).unwrap();
    let json_path = dir.path().join("crash.json").display().to_string();
    let fake_s = fake.display().to_string();
    let out = matrix(&[
        "--quick",
        "--alloc",
        "glibc",
        "--baseline",
        "glibc",
        "--bench",
        &fake_s,
        "--json",
        &json_path,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("crashed (SIGSEGV)"),
        "{}",
        stderr(&out)
    );
    let json: serde_json::Value = read_json(&json_path);
    assert_eq!(json["rows"][0]["crashed"], 2);
    assert_eq!(json["rows"][0]["median_mops"], serde_json::Value::Null);

    // A "bench" that never finishes: killed at the timeout twice, then not run again.
    let hang = dir.path().join("hang-bench");
    std::fs::write(&hang, "#!/bin/sh\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&hang, executable).unwrap();
    let hang_s = hang.display().to_string();
    let csv_path = dir.path().join("hang.csv").display().to_string();
    let started = std::time::Instant::now();
    let out = matrix(&[
        "--runs",
        "6",
        "--timeout",
        "2",
        "--no-round-trip-probe",
        "--alloc",
        "glibc",
        "--baseline",
        "glibc",
        "--bench",
        &hang_s,
        "--json",
        &json_path,
        "--csv",
        &csv_path,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("timed out 2 times: not run in the remaining rounds"),
        "{}",
        stderr(&out)
    );
    let json: serde_json::Value = read_json(&json_path);
    assert_eq!(json["rows"][0]["crashed"], 2, "{json}");
    assert_eq!(json["rows"][0]["skipped"], 4, "{json}");
    // Two timeouts take 4 s; six would take 12.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "more timeouts were waited for: {:?}",
        started.elapsed()
    );
    assert!(
        stdout(&out).contains("2 (timeout 2s), then 4 not run"),
        "{}",
        stdout(&out)
    );
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let mut lines = csv.lines();
    let (header, line) = (lines.next().unwrap(), lines.next().unwrap());
    assert!(
        header.ends_with(",skipped") && line.ends_with(",4"),
        "{csv}"
    );

    // Claiming jemalloc while preloading something that is not jemalloc is refused.
    let mimalloc = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";
    let spec = format!("jemalloc={mimalloc}");
    let args = [
        "--quick",
        "--runs",
        "1",
        "--alloc",
        &spec,
        "--baseline",
        "jemalloc",
    ];
    let out = matrix(&[&args[..], SMALL_BENCH].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("reports \"mimalloc\" answering malloc, not jemalloc"),
        "{}",
        stderr(&out)
    );

    // Bad bench arguments: exit 2 before anything runs; a missing .so names the path.
    let out = matrix(&[
        "--alloc",
        "glibc",
        "--baseline",
        "glibc",
        "--",
        "--min",
        "100",
        "--max",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("must not exceed --max"),
        "{}",
        stderr(&out)
    );
    let out = matrix(&["--alloc", "x=/no/such/lib.so", "--baseline", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/no/such/lib.so does not exist"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn new_presets_and_untouched_rows_are_labelled_and_old_baselines_still_compare() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (json_path, old_path) = (path("m.json"), path("old.json"));
    let args = [
        QUICK_GLIBC_JEMALLOC,
        &[
            "--runs",
            "1",
            "--preset",
            "realloc-growth,local-small:untouched",
            "--json",
            &json_path,
        ],
    ]
    .concat();
    let out = matrix(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        table
            .lines()
            .next()
            .unwrap()
            .contains("except rows labelled :untouched"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .contains("peak RSS MiB  live MiB  over live MiB  worst RSS-live MiB"),
        "{table}"
    );
    let json = read_json(&json_path);
    assert_eq!(json["schema"], "hz3-matrix/3");
    let labels: Vec<&str> = json["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["preset"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["realloc-growth", "local-small:untouched"]);
    assert!(json["workloads"][1]["args"]
        .as_array()
        .unwrap()
        .contains(&"--untouched".into()));
    for row in json["rows"].as_array().unwrap() {
        assert!(row["median_mops"].as_f64().unwrap() > 0.0, "{row}");
        assert!(
            row["excess_kib"].is_number() && row["overhead_peak_kib"].is_number(),
            "{row}"
        );
        // The bench counts its own heap as live, and samples once its threads have finished:
        // local-small's two rings (65 536 slots of 8 + 4 bytes each) are still held then.
        if row["preset"] == "local-small:untouched" {
            assert!(row["live_peak_kib"].as_f64().unwrap() >= 1536.0, "{row}");
        }
    }

    // The same result as a schema-1 file wrote it (untouched was the default then): it still
    // compares, row for row, with today's `:untouched` rows.
    let old = std::fs::read_to_string(&json_path)
        .unwrap()
        .replace("hz3-matrix/3", "hz3-matrix/1")
        .replace("local-small:untouched", "local-small")
        .replace("\"--untouched\",", "");
    std::fs::write(&old_path, old).unwrap();
    let compare = [
        &args[..args.len() - 2],
        &["--compare", &old_path, "--tolerance", "99%"],
    ]
    .concat();
    let out = matrix(&compare);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no row regressed"),
        "{}",
        stderr(&out)
    );

    let out = matrix(&["--preset", "nope"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains(":untouched"), "{}", stderr(&out));
}
