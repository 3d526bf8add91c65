//! Helpers shared by the perf-side integration tests, included with `mod perf_common;`.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/perf")
        .join(name)
}

/// A scratch copy of a fixture run directory, to break or extend without touching the original.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

/// Why perf cannot record here, if it cannot.
pub fn perf_cannot_record() -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "-o"])
        .arg(dir.path().join("probe.data"))
        .args(["--", "true"])
        .output();
    match out {
        Err(e) => Some(format!("perf is not runnable: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "perf record fails: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

pub fn analyze(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hz3-analyze"))
        .args(args)
        .output()
        .unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sum of the periods of the `cpu-clock` samples in a perf script, leaving out process
/// `exclude_pid`: an independent count of what the attribution must add up to.
pub fn script_period_sum(script: &Path, exclude_pid: Option<u32>) -> (u64, u64) {
    let text = std::fs::read_to_string(script).unwrap();
    let (mut n, mut sum) = (0, 0);
    for line in text.lines().filter(|l| !l.starts_with(char::is_whitespace)) {
        let Some(at) = line.find(" cpu-clock") else {
            continue;
        };
        let words: Vec<&str> = line[..at].split_whitespace().collect();
        let pid: u32 = words[words.len() - 3]
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        if Some(pid) == exclude_pid {
            continue;
        }
        sum += words.last().unwrap().parse::<u64>().unwrap();
        n += 1;
    }
    (n, sum)
}

/// The counting helper's pid a fixture recorded.
pub fn helper_pid(run: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(run.join("counters.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["helper_pid"].as_u64().map(|p| p as u32)
}

/// A box's ns/op in an attribution report (0 when the box is absent).
pub fn box_ns(r: &analyze::attribute::Report, name: &str) -> f64 {
    r.boxes
        .iter()
        .filter(|b| b.name == name)
        .map(|b| b.ns_per_op)
        .sum()
}
