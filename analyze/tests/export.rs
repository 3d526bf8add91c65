//! `export` on the checked-in recordings: pprof files the real `pprof` reads (`go tool pprof`,
//! skipped with a message where Go is absent), folded stacks rooted at their box, JSON.
mod perf_common;
use perf_common::*;
use std::path::Path;
use std::process::Command;

fn export(run: &str, format: &str, out: &Path) -> String {
    let o = analyze(&[
        "export",
        fixture(run).to_str().unwrap(),
        "--format",
        format,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::read_to_string(out).unwrap_or_default()
}

#[test]
fn folded_lines_are_rooted_at_their_box_and_sum_to_the_sampled_time() {
    let dir = tempfile::tempdir().unwrap();
    let text = export("glibc", "folded", &dir.path().join("g.folded"));
    let json: serde_json::Value = {
        export("glibc", "json", &dir.path().join("g.json"));
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("g.json")).unwrap()).unwrap()
    };
    let boxes: Vec<String> = json["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["box"].as_str().unwrap().to_owned())
        .collect();
    assert!(boxes.iter().any(|b| b == "glibc.malloc"), "{boxes:?}");
    assert_eq!(json["lane"], "none");
    let mut total = 0u64;
    for line in text.lines() {
        let (stack, weight) = line.rsplit_once(' ').unwrap();
        let root = stack.split(';').next().unwrap();
        assert!(
            boxes.iter().any(|b| b == root),
            "root {root:?} is a box: {line}"
        );
        total += weight.parse::<u64>().unwrap();
    }
    // The same periods `attribute` adds up (the fixture's cpu-clock samples, less the helper's).
    let (_, sum) = script_period_sum(&fixture("glibc").join("perf.script"), helper_pid("glibc"));
    assert!(
        total.abs_diff(sum) <= text.lines().count() as u64,
        "{total} vs {sum}"
    );
}

fn helper_pid(run: &str) -> Option<u32> {
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(run).join("counters.json")).ok()?)
            .ok()?;
    c["helper_pid"].as_u64().map(|p| p as u32)
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = analyze(&[
        "export",
        fixture("glibc").to_str().unwrap(),
        "--format",
        "svg",
        "-o",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = analyze(&[
        "export",
        dir.path().to_str().unwrap(),
        "--format",
        "pprof",
        "-o",
        dir.path().join("x.pb.gz").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bench.json"), "{}", stderr(&o));
    assert!(
        !dir.path().join("x.pb.gz").exists(),
        "nothing written on bad input"
    );
}

/// `go tool pprof ARGS` with a writable HOME and GOCACHE; None where Go is absent.
fn pprof(args: &[&str], scratch: &Path) -> Option<(bool, String)> {
    let out = Command::new("go")
        .arg("tool")
        .arg("pprof")
        .args(args)
        .env("HOME", scratch)
        .env("GOCACHE", scratch.join("gocache"))
        .env("PPROF_TMPDIR", scratch)
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success(), text))
}

#[test]
fn the_real_pprof_reads_the_export_with_its_labels() {
    let dir = tempfile::tempdir().unwrap();
    let hz3 = dir.path().join("hz3.pb.gz");
    let glibc = dir.path().join("glibc.pb.gz");
    export("hz3_scale_probes", "pprof", &hz3);
    export("glibc", "pprof", &glibc);
    let hz3_s = hz3.to_str().unwrap();
    let Some((ok, top)) = pprof(&["-top", hz3_s], dir.path()) else {
        eprintln!("skipped: `go` is not installed (Debian: apt-get install golang-go), so `go tool pprof` cannot check the export");
        return;
    };
    assert!(ok, "{top}");
    assert!(top.contains("Type: cpu") && top.contains("flat%"), "{top}");
    assert!(top.contains("hz3::"), "hz3 frames are functions: {top}");

    let (ok, tags) = pprof(&["-tags", hz3_s], dir.path()).unwrap();
    assert!(ok, "{tags}");
    for label in [
        "box:",
        "allocator:",
        "lane:",
        "thread:",
        "hz3.central",
        "hz3_scale_probes",
        "scale",
    ] {
        assert!(tags.contains(label), "{label} missing: {tags}");
    }

    let (ok, central) =
        pprof(&["-top", "-tagfocus", "box=hz3.central", hz3_s], dir.path()).unwrap();
    assert!(ok, "{central}");
    assert!(central.contains("tagfocus=box=hz3.central"), "{central}");
    let kept = central
        .lines()
        .find(|l| l.starts_with("Showing nodes accounting for"))
        .unwrap_or_else(|| panic!("{central}"));
    assert!(
        !kept.contains(", 100% of"),
        "the focus keeps part of the profile: {kept}"
    );
    assert!(central.contains("hz3::central"), "{central}");
    assert!(
        !central.contains("exc_page_fault"),
        "other boxes are dropped: {central}"
    );

    let (ok, diff) = pprof(
        &["-top", "-diff_base", glibc.to_str().unwrap(), hz3_s],
        dir.path(),
    )
    .unwrap();
    assert!(ok, "{diff}");
    assert!(diff.contains("flat%"), "{diff}");
}

#[test]
fn the_box_labels_add_up_to_what_attribute_charges_each_box() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.json");
    export("hz3_scale_probes", "json", &path);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        (json["allocator"].as_str(), json["lane"].as_str()),
        (Some("hz3_scale_probes"), Some("scale"))
    );
    let ops = json["ops"].as_f64().unwrap();
    let mut per_box = std::collections::BTreeMap::<String, f64>::new();
    for s in json["stacks"].as_array().unwrap() {
        *per_box
            .entry(s["box"].as_str().unwrap().into())
            .or_default() += s["cpu_ns"].as_f64().unwrap() / ops;
    }
    let out = analyze(&[
        "attribute",
        fixture("hz3_scale_probes").to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let attribution: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut checked = 0;
    for b in attribution["boxes"].as_array().unwrap() {
        let want = b["ns_per_op"].as_f64().unwrap();
        let got = per_box
            .get(b["name"].as_str().unwrap())
            .copied()
            .unwrap_or(0.0);
        assert!(
            (want - got).abs() < 1e-6,
            "{}: attribute {want}, export {got}",
            b["name"]
        );
        checked += usize::from(want > 0.0);
    }
    assert!(checked >= 3, "several boxes carry time: {per_box:?}");
    assert!(per_box.contains_key("hz3.central"), "{per_box:?}");
}
