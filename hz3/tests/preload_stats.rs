//! hz3's statistics through the C calls, under `LD_PRELOAD` of each lane: `c/stats_check.c` checks
//! mallinfo2/mallinfo against known allocation patterns and malloc_trim; here `malloc_info`'s XML is
//! parsed (python3's xml.etree) and `HZ3_STATS` is checked at exit, with good and bad values.

mod common;

use common::{assert_success, compile_c, describe, run, with_preload, TempDir, LANES};
use std::path::Path;
use std::process::{Command, Output};

fn stats_check(exe: &Path, mode: &str, lane: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(exe);
    cmd.args([mode, lane]).env_remove("HZ3_STATS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(with_preload(cmd, Some(lane)))
}

fn checker() -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("stats");
    let exe = compile_c("stats_check", dir.path());
    (dir, exe)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn mallinfo_follows_known_allocations_and_trim() {
    let (_dir, exe) = checker();
    for lane in LANES {
        for mode in ["figures", "threads"] {
            let out = stats_check(&exe, mode, lane, &[]);
            assert_success(&format!("stats_check {mode} under {lane}"), &out);
            let text = stdout(&out);
            assert!(text.contains("all checks passed"), "{text}");
            eprintln!("{lane} {mode}:\n{text}");
        }
    }
}

/// Parses the XML with python3's xml.etree and prints what the test checks, one `key=value` a line.
const XML_READER: &str = r#"
import sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.read())
assert root.tag == "malloc" and root.get("version") == "1", root.tag
heap = root.find("heap")
assert heap is not None and heap.get("nr") == "0"
sizes = heap.find("sizes").findall("size")
for s in sizes:
    lo, hi, total, count = (int(s.get(k)) for k in ("from", "to", "total", "count"))
    assert 0 < lo <= hi and total == count * hi, ET.tostring(s)
print("sizes=%d" % len(sizes))
print("sizes_count=%d" % sum(int(s.get("count")) for s in sizes))
for t in root.findall("total"):
    print("total_%s=%s,%s" % (t.get("type"), t.get("count"), t.get("size")))
for t in root.findall("system") + root.findall("aspace"):
    print("%s_%s=%s" % (t.tag, t.get("type"), t.get("size")))
"#;

#[test]
fn malloc_info_is_glibc_shaped_xml() {
    let (_dir, exe) = checker();
    for lane in LANES {
        let out = stats_check(&exe, "xml", lane, &[]);
        assert_success(&format!("stats_check xml under {lane}"), &out);
        let text = stdout(&out);
        let xml = text
            .split_once("xml-begin\n")
            .and_then(|(_, rest)| rest.split_once("xml-end\n"))
            .map(|(xml, _)| xml)
            .unwrap_or_else(|| panic!("no xml in\n{text}"));
        let mut py = Command::new("python3")
            .args(["-c", XML_READER])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (the XML parser of this test)");
        use std::io::Write;
        py.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
        let parsed = py.wait_with_output().unwrap();
        assert!(
            parsed.status.success(),
            "{lane}: XML did not parse:\n{xml}\n{}",
            describe(&parsed)
        );
        let fields = stdout(&parsed);
        let get = |key: &str| -> String {
            fields
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{key} missing in\n{fields}\n{xml}"))
                .to_owned()
        };
        // 500 freed 112-byte objects sit in caches; one 100 kB block is a large block holding
        // what malloc_usable_size said.
        let big: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("big-usable "))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no big-usable line in\n{text}"));
        assert!(big >= 100_000, "{text}");
        assert!(get("sizes").parse::<u32>().unwrap() >= 1, "{xml}");
        assert!(get("sizes_count").parse::<u64>().unwrap() >= 1, "{xml}");
        assert_eq!(get("total_mmap"), format!("1,{big}"), "{xml}");
        let mapped: u64 = get("aspace_total").parse().unwrap();
        let current: u64 = get("system_current").parse().unwrap();
        let max: u64 = get("system_max").parse().unwrap();
        assert!(current > big && current <= max && max <= mapped, "{fields}");
    }
}

#[test]
fn hz3_stats_prints_the_summary_at_exit() {
    let (_dir, exe) = checker();
    for lane in LANES {
        let out = stats_check(&exe, "idle", lane, &[("HZ3_STATS", "1")]);
        assert_success(&format!("HZ3_STATS=1 under {lane}"), &out);
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("hz3 allocator, lane {lane}: statistics\n")),
            "{err}"
        );
        for row in [
            "allocated",
            "active",
            "resident",
            "retained",
            "mapped",
            "thread caches",
        ] {
            assert!(err.contains(&format!("\n  {row}")), "{row} missing:\n{err}");
        }
        let mapped: u64 = err
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("mapped"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no mapped figure:\n{err}"));
        assert!(mapped > 0, "{err}");

        for quiet in [None, Some("0")] {
            let env: Vec<(&str, &str)> = quiet.map(|v| ("HZ3_STATS", v)).into_iter().collect();
            let out = stats_check(&exe, "idle", lane, &env);
            assert_success(&format!("HZ3_STATS={quiet:?} under {lane}"), &out);
            assert_eq!(stderr(&out), "", "HZ3_STATS={quiet:?} prints nothing");
        }
    }
}

#[test]
fn hz3_stats_bad_values_warn_once_and_run_on() {
    let (_dir, exe) = checker();
    let long = "9".repeat(300);
    for lane in LANES {
        for bad in ["yes", "", "2", " 1", "1\n", long.as_str()] {
            let out = stats_check(&exe, "idle", lane, &[("HZ3_STATS", bad)]);
            assert_success(&format!("HZ3_STATS={bad:?} under {lane}"), &out);
            assert!(stdout(&out).contains("all checks passed"));
            let err = stderr(&out);
            assert_eq!(
                err.lines().count(),
                1,
                "HZ3_STATS={bad:?}: one warning line:\n{err}"
            );
            assert!(
                err.starts_with("hz3: HZ3_STATS=\"") && err.ends_with("or 0\n"),
                "{err}"
            );
            assert!(
                !err.contains("statistics\n"),
                "a bad value prints no summary"
            );
        }
    }
}
