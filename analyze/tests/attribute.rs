//! `attribute` on real, checked-in `perf script` recordings of hz3-bench (glibc and tcmalloc):
//! the box mapping, the per-op figures, the output formats, and every input error.
mod perf_common;
use analyze::attribute::build_report;
use analyze::perf_run::Run;
use perf_common::*;

fn report(name: &str) -> analyze::attribute::Report {
    build_report(
        &Run::load(&fixture(name)).unwrap(),
        &analyze::boxes::defaults(),
    )
}

fn ns(report: &analyze::attribute::Report, name: &str) -> f64 {
    report
        .boxes
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("no box {name}"))
        .ns_per_op
}

/// glibc's malloc, all its boxes (tcache, arena, heap, trim, entry points) together.
fn glibc_ns(report: &analyze::attribute::Report) -> f64 {
    report
        .boxes
        .iter()
        .filter(|b| b.name.starts_with("glibc."))
        .map(|b| b.ns_per_op)
        .sum()
}

#[test]
fn every_sampled_nanosecond_lands_in_exactly_one_box() {
    for name in ["glibc", "tcmalloc"] {
        let r = report(name);
        let script = fixture(name).join("perf.script");
        let helper = helper_pid(&fixture(name));
        assert!(helper.is_some(), "the fixture records its helper");
        let (samples, period_sum) = script_period_sum(&script, helper);
        let (with_helper, _) = script_period_sum(&script, None);
        assert!(
            with_helper > samples,
            "{name}: the helper's own samples are left out"
        );
        assert_eq!(r.samples, samples, "{name}");
        let boxes_total: f64 = r.boxes.iter().map(|b| b.ns_per_op).sum();
        let expected = period_sum as f64 / r.ops as f64;
        assert!(
            (boxes_total - expected).abs() < 1e-9,
            "{name}: {boxes_total} vs {expected}"
        );
        let shares: f64 = r.boxes.iter().map(|b| b.share).sum();
        assert!((shares - 1.0).abs() < 1e-9);
        assert_eq!(
            r.boxes.last().unwrap().name,
            "other",
            "other is always reported, last"
        );
        // measured comes from the counting group, not from the samples.
        assert_eq!(r.measured_from, "task-clock");
        assert!((r.unsampled_ns_per_op - (r.measured_ns_per_op - r.boxes_ns_per_op)).abs() < 1e-9);
    }
}

#[test]
fn each_allocator_s_time_goes_to_its_own_boxes() {
    let glibc = report("glibc");
    let tc = report("tcmalloc");
    // glibc's malloc internals (libc6-dbg names) land in glibc's boxes, and nothing in tcmalloc's.
    assert!(
        glibc_ns(&glibc) > 0.25 * glibc.boxes_ns_per_op,
        "{glibc:#?}"
    );
    assert!(
        ns(&glibc, "glibc.arena") > 0.0,
        "_int_malloc is glibc's central arena"
    );
    let tc_boxes = |r: &analyze::attribute::Report| -> f64 {
        r.boxes
            .iter()
            .filter(|b| b.name.starts_with("tcmalloc."))
            .map(|b| b.ns_per_op)
            .sum()
    };
    assert_eq!(tc_boxes(&glibc), 0.0);
    assert!(tc_boxes(&tc) > 0.1 * tc.boxes_ns_per_op, "{tc:#?}");
    assert_eq!(glibc_ns(&tc), 0.0);
    for r in [&glibc, &tc] {
        assert!(ns(r, "kernel.page_fault") > 0.0, "both runs fault pages in");
        assert!(r
            .boxes
            .iter()
            .filter(|b| b.name.starts_with("hz3."))
            .all(|b| b.ns_per_op == 0.0));
    }
}

#[test]
fn pinned_figures_of_the_glibc_fixture() {
    // Regression pins for the checked-in recording: 76 bench samples of 1001001 ns over 400000 ops.
    let r = report("glibc");
    assert_eq!((r.ops, r.samples, r.switches), (400000, 76, 95));
    let per_sample = 1001001.0 / 400000.0;
    let samples_in = |name: &str| (ns(&r, name) / per_sample).round() as u64;
    assert_eq!((glibc_ns(&r) / per_sample).round() as u64, 33);
    assert_eq!(samples_in("kernel.page_fault"), 23);
    assert_eq!(samples_in("kernel.mm"), 11);
    assert_eq!(samples_in("futex"), 2);
    assert!((r.measured_ns_per_op - 79314347.0 / 400000.0).abs() < 1e-9);
    // The lock split adds up from the boxes it names.
    assert!((r.lock.mutex - (ns(&r, "mutex") + ns(&r, "futex"))).abs() < 1e-9);
    assert!((r.lock.spin - (ns(&r, "spin") + ns(&r, "hz3.lock.spin"))).abs() < 1e-9);
    // glibc's arena lock sleeps (futex under __lll_lock_wait_private) are lock wait; the bench's
    // barrier sleeps are the bench's.
    let asleep = |name: &str| {
        r.boxes
            .iter()
            .find(|b| b.name == name)
            .unwrap()
            .asleep_ns_per_op
    };
    let wait = r.lock.wait.expect("the fixture recorded its switches");
    assert!(wait > 0.0 && wait == r.offcpu.as_ref().unwrap().wait);
    assert_eq!(
        wait,
        asleep("futex") + asleep("mutex") + asleep("spin") + asleep("hz3.lock.spin")
    );
    assert!(asleep("bench") > 0.0);
}

#[test]
fn table_json_and_csv_outputs() {
    let run = fixture("glibc");
    let run = run.to_str().unwrap();
    let out = analyze(&["attribute", run]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("glibc.arena") && text.contains("\nother "),
        "{text}"
    );
    assert!(text.contains("lock ns/op: mutex"));
    assert!(
        !text.contains("mimalloc.page"),
        "boxes without samples are left out of the table"
    );

    let out = analyze(&["attribute", run, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["samples"], 76);
    assert!(json["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["name"] == "mimalloc.page"));

    let out = analyze(&["attribute", run, "--csv"]);
    let csv = stdout(&out);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "box,lock,share,ns/op,asleep ns/op,probes (events/op)"
    );
    assert_eq!(lines.count(), json["boxes"].as_array().unwrap().len());

    let out = analyze(&["attribute", run, "--json", "--csv"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "conflicting flags are a usage error"
    );
}

/// `attribute` on the glibc fixture with `rules_text` as the user's box file `r.toml`.
fn attribute_with_rules(rules_text: &str, extra: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("r.toml");
    std::fs::write(&rules, rules_text).unwrap();
    let fixture = fixture("glibc");
    let mut args = vec![
        "attribute",
        fixture.to_str().unwrap(),
        "--boxes",
        rules.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    analyze(&args)
}

#[test]
fn user_rules_go_in_front_of_the_defaults() {
    let out = attribute_with_rules(
        "[[box]]\nname = \"mine.int_malloc\"\nframes = [\"_int_malloc\"]\n",
        &["--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let boxes = json["boxes"].as_array().unwrap();
    let mine = boxes
        .iter()
        .find(|b| b["name"] == "mine.int_malloc")
        .unwrap();
    assert!(mine["ns_per_op"].as_f64().unwrap() > 0.0);
    let glibc: f64 = boxes
        .iter()
        .filter(|b| b["name"].as_str().unwrap().starts_with("glibc."))
        .map(|b| b["ns_per_op"].as_f64().unwrap())
        .sum();
    assert!(glibc < glibc_ns(&report("glibc")));

    let out = attribute_with_rules(
        "[[box]]\nname = \"x\"\nframes = [\"a\"]\nabsorb = \"yes\"\n",
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("r.toml line 4"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

fn attribute_error(dir: &std::path::Path) -> String {
    let out = analyze(&["attribute", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err}");
    err
}

#[test]
fn truncated_and_malformed_scripts_name_the_line() {
    let dir = copy_fixture("glibc");
    let script = dir.path().join("perf.script");
    let text = std::fs::read_to_string(&script).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Cut inside the 3rd event's call chain.
    let cut = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_empty())
        .nth(2)
        .unwrap()
        .0
        - 1;
    std::fs::write(&script, lines[..cut].join("\n") + "\n").unwrap();
    let err = attribute_error(dir.path());
    assert!(
        err.contains(&format!("perf script line {cut}: truncated")),
        "{err}"
    );

    let mut broken: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    broken[5] = "\tnot-hex frame (x)".into();
    std::fs::write(&script, broken.join("\n") + "\n").unwrap();
    assert!(attribute_error(dir.path()).contains("perf script line 6: expected a call-chain frame"));
}

#[test]
fn no_samples_bad_probes_and_missing_files_are_clear_errors() {
    let dir = copy_fixture("glibc");
    std::fs::write(
        dir.path().join("perf.script"),
        "b 1/2 1.000000: 1 sched:sched_switch: prev_comm=b prev_pid=2 prev_prio=120 prev_state=S ==> next_comm=c next_pid=0 next_prio=120\n\tffff schedule ([kernel.kallsyms])\n\n",
    )
    .unwrap();
    assert!(attribute_error(dir.path()).contains("no samples"));

    let dir = copy_fixture("glibc");
    let script = dir.path().join("perf.script");
    let text = std::fs::read_to_string(&script)
        .unwrap()
        .replace("cpu-clock/freq=999/:", "cycles:");
    std::fs::write(&script, text).unwrap();
    assert!(attribute_error(dir.path()).contains("samples of `cycles` have no time unit"));

    let dir = copy_fixture("glibc");
    std::fs::write(dir.path().join("probes.json"), "{\"schema\": 1, \"lane\": ").unwrap();
    assert!(attribute_error(dir.path()).contains("probes dump"));

    let dir = copy_fixture("glibc");
    std::fs::remove_file(dir.path().join("bench.json")).unwrap();
    assert!(attribute_error(dir.path()).contains("bench.json"));

    let dir = copy_fixture("glibc");
    std::fs::remove_file(dir.path().join("perf.script")).unwrap();
    assert!(attribute_error(dir.path()).contains("no samples to read"));

    assert!(attribute_error(std::path::Path::new("/no/such/run")).contains("not a run directory"));
}

#[test]
fn hz3_probes_run_has_hz3_boxes_and_the_probes_column() {
    let run = Run::load(&fixture("hz3_scale_probes")).unwrap();
    let dump = run.probes.as_ref().expect("the probes dump is read");
    let r = build_report(&run, &analyze::boxes::defaults());
    let hz3: f64 = r
        .boxes
        .iter()
        .filter(|b| b.name.starts_with("hz3."))
        .map(|b| b.ns_per_op)
        .sum();
    assert!(hz3 > 0.1 * r.boxes_ns_per_op, "{r:#?}");
    assert_eq!(ns(&r, "glibc.malloc"), 0.0);
    // The central box shows the central pool's counters per op, straight from the dump.
    let central = r.boxes.iter().find(|b| b.name == "hz3.central").unwrap();
    let pops = dump.event(probes::Event::CentralPopObjects) as f64 / r.ops as f64;
    assert!(pops > 0.0);
    assert_eq!(central.probes_per_op["central.pop_objects"], pops);
    let waited =
        dump.lock(probes::LockSite::Central, probes::LockStat::WaitNs) as f64 / r.ops as f64;
    assert_eq!(
        central
            .probes_per_op
            .get("lock.central.wait_ns")
            .copied()
            .unwrap_or(0.0),
        waited
    );
    assert!(central
        .probes_per_op
        .keys()
        .all(|k| k.starts_with("central.") || k.starts_with("lock.central.")));
    // Boxes without probe prefixes show none.
    assert!(r
        .boxes
        .iter()
        .find(|b| b.name == "kernel.page_fault")
        .unwrap()
        .probes_per_op
        .is_empty());
    let text = render_text_of("hz3_scale_probes");
    assert!(text.contains("central.pop_objects="), "{text}");
}

fn render_text_of(name: &str) -> String {
    let out = analyze(&["attribute", fixture(name).to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}
