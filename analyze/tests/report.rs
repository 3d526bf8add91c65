//! The real `hz3-analyze report --quick` on a drastically small configuration (glibc + jemalloc +
//! hz3 scale in the matrix, both hz3 lanes recorded, 4 threads, 20k iterations): every output exists and parses, names every allocator,
//! holds the gap table, links only to files that exist; a failing step stops the plan with one
//! line and leaves what it produced, with an index that says so.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ANALYZE: &str = env!("CARGO_BIN_EXE_hz3-analyze");
/// One preset: the small bench arguments below (--ws, --iters) mean other things to the other
/// presets' workloads (or nothing: producer-consumer refuses --ws).
const TINY: &[&str] = &[
    "report",
    "--quick",
    "--preset",
    "remote-heavy-small",
    "--lane",
    "fast,scale",
    "--alloc",
    "glibc",
    "--alloc",
    "jemalloc",
    "--alloc",
    "hz3_scale",
];
const SMALL_BENCH: &[&str] = &["--", "--threads", "4", "--iters", "20000", "--ws", "64"];

fn preload_dir() -> PathBuf {
    Path::new(ANALYZE)
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/ has a parent")
        .join("preload")
}

fn prerequisites() {
    let bench = Path::new(ANALYZE).with_file_name("hz3-bench");
    assert!(
        bench.is_file(),
        "{} is missing: run `cargo build --release -p hz3-bench` (scripts/test does)",
        bench.display()
    );
    for lane in ["fast", "scale"] {
        let lib = preload_dir().join(format!("libhz3_{lane}.so"));
        assert!(
            lib.is_file(),
            "{} is missing: run scripts/build-preload (scripts/test does)",
            lib.display()
        );
    }
}

fn report(args: &[&str], out: &Path) -> Output {
    Command::new(ANALYZE)
        .args(args)
        .arg("--out")
        .arg(out)
        .args(SMALL_BENCH)
        .env_remove("LD_PRELOAD")
        .output()
        .expect("spawning hz3-analyze")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn perf_installed() -> bool {
    Command::new("perf")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `](target)` of a markdown text.
fn link_targets(md: &str) -> Vec<String> {
    md.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(t, _)| t.to_string()))
        .collect()
}

#[test]
fn a_tiny_quick_report_writes_every_file_and_the_gap() {
    prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("r");
    let out = report(TINY, &out_dir);
    if !perf_installed() {
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("perf is not installed"),
            "{}",
            stderr(&out)
        );
        return;
    }
    assert!(out.status.success(), "report failed: {}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);

    let report = json(&out_dir.join("report.json"));
    assert_eq!(report["schema"], "hz3-report/1");
    assert_eq!(report["status"], "complete");

    // The anchor is the anchor with the highest median on remote-heavy-small in the matrix file.
    let matrix = json(&out_dir.join("matrix.json"));
    let rows = matrix["rows"].as_array().unwrap();
    let fastest = rows
        .iter()
        .filter(|r| r["preset"] == "remote-heavy-small")
        .filter(|r| r["allocator"] == "glibc" || r["allocator"] == "jemalloc")
        .max_by(|a, b| {
            a["median_mops"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["median_mops"].as_f64().unwrap())
        })
        .unwrap()["allocator"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(report["anchor"], fastest.as_str());
    assert!(
        stdout.contains(&format!("fastest anchor on remote-heavy-small: {fastest}")),
        "{stdout}"
    );

    // hz3 is recorded with its probes builds when there are some, and the bench confirms hz3 answered.
    let build = |lane: &str| {
        let probes = format!("hz3_{lane}_probes");
        if preload_dir().join(format!("lib{probes}.so")).is_file() {
            probes
        } else {
            format!("hz3_{lane}")
        }
    };
    let (fast, hz3) = (build("fast"), build("scale"));
    let recordings = report["recordings"].as_array().unwrap();
    let names: Vec<&str> = recordings
        .iter()
        .map(|r| r["allocator"].as_str().unwrap())
        .collect();
    assert_eq!(names, [fast.as_str(), hz3.as_str(), fastest.as_str()]);
    for (rec, lane) in recordings.iter().zip(["hz3-fast", "hz3-scale"]) {
        let bench_json = Path::new(rec["dir"].as_str().unwrap()).join("bench.json");
        let text = std::fs::read_to_string(&bench_json).unwrap();
        assert!(
            text.contains(&format!("\"allocator\":\"{lane}\"")),
            "{text}"
        );
    }

    // Two gaps: hz3 scale against the anchor first (whatever the --lane order), then fast
    // against scale, each with the attribution's measured figures.
    let gaps = report["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 2);
    let attribution = report["attribution"].as_array().unwrap();
    // gap i compares recordings (a, b) by name and by the attribution's measured ns/op.
    let check_gap = |i: usize, a: usize, b: usize| {
        let g = &gaps[i]["gap"];
        assert_eq!(g["allocator_a"], names[a], "gap {i}");
        assert_eq!(g["allocator_b"], names[b], "gap {i}");
        assert_eq!(
            g["measured_a"], attribution[a]["measured_ns_per_op"],
            "gap {i}"
        );
        assert_eq!(
            g["measured_b"], attribution[b]["measured_ns_per_op"],
            "gap {i}"
        );
    };
    check_gap(0, 2, 1);
    check_gap(1, 1, 0);
    let gap = &gaps[0]["gap"];

    let md = std::fs::read_to_string(out_dir.join("index.md")).unwrap();
    let html = std::fs::read_to_string(out_dir.join("index.html")).unwrap();
    for name in ["glibc", "jemalloc", "hz3_scale", &hz3, &fast] {
        assert!(md.contains(name), "index.md never names {name}");
        assert!(html.contains(name), "index.html never names {name}");
    }
    // The machine's prices, measured at the start, in the JSON and the machine table.
    let host = &report["machine"]["host"];
    assert!(
        host["first_touch_us_per_page"].as_f64().unwrap() > 0.0,
        "{host}"
    );
    assert!(
        host["read_small_pages_ns"].as_f64().unwrap() > 0.0,
        "{host}"
    );
    assert!(md.contains("| page walk (TLB miss) |"), "{md}");
    let gap_header = format!("| box | A ns/op ({fastest}) | B ns/op ({hz3}) | B-A |");
    assert!(md.contains(&gap_header), "no gap table in index.md:\n{md}");
    assert!(md.contains("| residual (measured - sum) |"), "{md}");
    assert!(
        html.contains(&format!("<th>B ns/op ({hz3})</th>")),
        "{html}"
    );
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "external asset in index.html"
    );

    // Every link and embedded SVG points at a file the report wrote.
    let targets = link_targets(&md);
    assert!(targets.iter().any(|t| t == "matrix.svg"), "{targets:?}");
    assert!(
        targets
            .iter()
            .filter(|t| t.starts_with("flames/"))
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == 5,
        "three flamegraphs and two differential ones: {targets:?}"
    );
    for t in &targets {
        assert!(out_dir.join(t).exists(), "index.md links to missing {t}");
        let embedded = format!("<object data=\"{t}\"");
        if t.ends_with(".svg") {
            assert!(html.contains(&embedded), "index.html does not embed {t}");
            let svg = std::fs::read_to_string(out_dir.join(t)).unwrap();
            assert!(svg.contains("<svg"), "{t} is not an SVG");
        }
    }
    // The step commands are listed, and the gap's own command reproduces the gap's numbers.
    let gap_cmd = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "gap")
        .unwrap()["command"]
        .as_str()
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(md.contains(&gap_cmd), "{md}");
    let words: Vec<&str> = gap_cmd.split_whitespace().collect();
    let rerun = Command::new(ANALYZE)
        .args(&words[1..])
        .arg("--json")
        .output()
        .unwrap();
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    let again: serde_json::Value = serde_json::from_slice(&rerun.stdout).unwrap();
    assert_eq!(again["measured_diff"], gap["measured_diff"]);
    assert_eq!(again["residual"], gap["residual"]);
}

#[test]
fn a_failing_step_stops_with_one_line_and_keeps_what_it_made() {
    if !perf_installed() {
        return;
    }
    prerequisites();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("r");
    let missing = dir.path().join("missing.so");
    let spec = format!("nope={}", missing.display());
    let mut args = TINY.to_vec();
    args.extend(["--alloc", &spec]);
    let out = report(&args, &out_dir);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("step `matrix` failed"), "{err}");
    assert!(lines[0].contains(&missing.display().to_string()), "{err}");
    assert!(lines[0].contains(&out_dir.display().to_string()), "{err}");
    assert!(out_dir.join("logs/01-matrix.log").is_file());
    let report = json(&out_dir.join("report.json"));
    assert!(
        report["status"].as_str().unwrap().starts_with("failed:"),
        "{report}"
    );
    let md = std::fs::read_to_string(out_dir.join("index.md")).unwrap();
    assert!(md.contains("**Incomplete.**"), "{md}");
}

#[test]
fn bad_flags_are_clap_errors_and_a_plan_without_an_anchor_is_refused_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(ANALYZE)
        .args(["report", "--lane", "medium"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    if !perf_installed() {
        return;
    }
    prerequisites();
    let out_dir = dir.path().join("r");
    let out = report(
        &["report", "--lane", "scale", "--alloc", "hz3_scale"],
        &out_dir,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("lists no anchor"), "{}", stderr(&out));
    assert!(
        !out_dir.exists(),
        "nothing should be created before the plan is accepted"
    );
}
