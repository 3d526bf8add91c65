//! `hz3-analyze probes` end to end, on the checked-in fixtures (see probes_reader.rs).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/probes")
        .join(name)
}

fn analyze(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hz3-analyze"))
        .arg("probes")
        .args(args)
        .output()
        .expect("run hz3-analyze")
}

fn stdout_ok(args: &[&str]) -> String {
    let out = analyze(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn dump(name: &str) -> probes::reader::Dump {
    probes::reader::read(fixture(name)).unwrap()
}

/// The table row for `key`, split into whitespace-separated cells.
fn row<'t>(table: &'t str, key: &str) -> Option<Vec<&'t str>> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .map(|l| l.split_whitespace().collect())
}

#[test]
fn table_lists_non_zero_counters_with_meanings() {
    let d = dump("valid.json");
    let json = fixture("valid.json");
    let table = stdout_ok(&[json.to_str().unwrap()]);
    for e in probes::Event::ALL {
        let r = row(&table, e.key());
        if d.event(*e) == 0 {
            assert!(r.is_none(), "zero counter {} shown without --all", e.key());
        } else {
            let r = r.unwrap_or_else(|| panic!("{} missing:\n{table}", e.key()));
            assert_eq!(r[1], d.event(*e).to_string());
            assert!(table.contains(e.meaning()));
        }
    }
    let all = stdout_ok(&[json.to_str().unwrap(), "--all"]);
    assert!(probes::Event::ALL
        .iter()
        .all(|e| row(&all, e.key()).is_some()));
}

#[test]
fn per_op_divides_and_lock_split_is_derived() {
    let d = dump("valid.csv");
    let ops = 1000u64;
    let table = stdout_ok(&[
        fixture("valid.csv").to_str().unwrap(),
        "--per-op",
        &ops.to_string(),
    ]);
    let miss = d.event(probes::Event::MallocCacheMiss);
    let r = row(&table, "malloc.cache_miss").unwrap();
    assert_eq!(r[2], format!("{:.4}", miss as f64 / ops as f64));
    // Lock split: acquisitions = uncontended + spun + waited; ns per acquisition = wait_ns / that.
    use probes::{LockSite::Central, LockStat::*};
    let acq = d.lock(Central, Uncontended) + d.lock(Central, Spun) + d.lock(Central, Waited);
    let lock_line: Vec<&str> = table
        .lines()
        .find(|l| l.split_whitespace().take(2).eq(["A", "central"]))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(lock_line[2], acq.to_string());
    assert_eq!(
        lock_line[10],
        format!("{:.1}", d.lock(Central, WaitNs) as f64 / acq as f64)
    );
}

#[test]
fn diff_shows_b_minus_a_and_ratio() {
    // The JSON and CSV fixtures hold the same numbers: every delta is zero, every ratio 1.
    let a = fixture("valid.json");
    let b = fixture("valid.csv");
    let out = stdout_ok(&[a.to_str().unwrap(), "--diff", b.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = v["counters"].as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        assert_eq!(r["delta"], 0, "{r}");
        assert_eq!(r["ratio"], 1.0, "{r}");
    }
    // A real difference: the report library on two dumps.
    let da = dump("valid.json");
    let mut db = da.clone();
    db.totals[probes::Event::RemoteFree.index()] += 500;
    let report = analyze::probes_cmd::build_report((&a, &da), Some((&b, &db)), None, false);
    let r = report
        .counters
        .iter()
        .find(|r| r.key == "remote.free")
        .unwrap();
    assert_eq!(r.delta, Some(500));
    let expected =
        db.event(probes::Event::RemoteFree) as f64 / da.event(probes::Event::RemoteFree) as f64;
    assert_eq!(r.ratio, Some(expected));
    let table = analyze::probes_cmd::render_table(&report);
    assert_eq!(row(&table, "remote.free").unwrap()[3], "+500");
}

#[test]
fn csv_output_is_one_table() {
    let out = stdout_ok(&[fixture("valid.json").to_str().unwrap(), "--csv"]);
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "section");
    let records: Vec<_> = reader.records().collect::<Result<_, _>>().unwrap();
    assert!(records
        .iter()
        .any(|r| &r[0] == "counter" && &r[2] == "malloc.cache_hit"));
    assert!(records
        .iter()
        .any(|r| &r[0] == "lock" && &r[2] == "central.ns_per_acquisition"));
}

#[test]
fn corrupt_input_is_an_error_naming_file_and_position() {
    let bad = fixture("negative.csv");
    let out = analyze(&[bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let pos = probes::reader::read(&bad).unwrap_err().position().unwrap();
    assert!(err.contains(&format!("{}:{pos}:", bad.display())), "{err}");
    assert!(err.contains("malloc.cache_miss"), "{err}");
}

#[test]
fn bad_flags_exit_2() {
    let json = fixture("valid.json");
    for args in [
        vec![json.to_str().unwrap(), "--per-op", "0"],
        vec![json.to_str().unwrap(), "--per-op", "many"],
        vec![json.to_str().unwrap(), "--json", "--csv"],
        vec![json.to_str().unwrap(), "--bogus"],
        vec![],
    ] {
        assert_eq!(analyze(&args).status.code(), Some(2), "{args:?}");
    }
    let help = stdout_ok(&["--help"]);
    assert!(help.contains("Examples:") && help.contains("--diff"));
}
