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

/// Sum of the periods of `event` headers in a perf script: an independent count of what the
/// attribution must add up to.
pub fn script_period_sum(script: &Path, event: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(script).unwrap();
    let (mut n, mut sum) = (0, 0);
    for line in text
        .lines()
        .filter(|l| !l.starts_with(char::is_whitespace) && l.contains(&format!(" {event}:")))
    {
        let before = line.split(&format!(" {event}:")).next().unwrap();
        sum += before
            .split_whitespace()
            .last()
            .unwrap()
            .parse::<u64>()
            .unwrap();
        n += 1;
    }
    (n, sum)
}
