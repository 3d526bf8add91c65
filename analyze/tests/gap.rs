//! `gap` between the two checked-in recordings (glibc, tcmalloc) of the same bench configuration.
mod perf_common;
use analyze::attribute::build_report;
use analyze::gap::{build_gap, build_gap_at};
use analyze::perf_run::Run;
use flamegraphs::Level;
use perf_common::*;

fn reports() -> (analyze::attribute::Report, analyze::attribute::Report) {
    let rules = analyze::boxes::defaults();
    let a = build_report(&Run::load(&fixture("glibc")).unwrap(), &rules);
    let b = build_report(&Run::load(&fixture("tcmalloc")).unwrap(), &rules);
    (a, b)
}

#[test]
fn per_box_differences_sum_and_residual_are_consistent() {
    let (a, b) = reports();
    let gap = build_gap(&a, &b).unwrap();
    for row in &gap.boxes {
        let x = a
            .boxes
            .iter()
            .find(|r| r.name == row.name)
            .unwrap()
            .ns_per_op;
        let y = b
            .boxes
            .iter()
            .find(|r| r.name == row.name)
            .unwrap()
            .ns_per_op;
        assert_eq!((row.a, row.b, row.diff), (x, y, y - x));
    }
    assert!(
        gap.boxes
            .windows(2)
            .all(|w| w[0].diff.abs() >= w[1].diff.abs()),
        "sorted by size"
    );
    let sum: f64 = gap.boxes.iter().map(|r| r.diff).sum();
    assert!((gap.boxes_diff - sum).abs() < 1e-9);
    assert_eq!(
        gap.measured_diff,
        b.measured_ns_per_op - a.measured_ns_per_op
    );
    assert!((gap.residual - (gap.measured_diff - gap.boxes_diff)).abs() < 1e-9);
    // glibc's central arena (_int_malloc, _int_free) is where tcmalloc wins most on this recording.
    assert_eq!(gap.boxes[0].name, "glibc.arena");
    assert!(gap.boxes[0].diff < 0.0 && gap.boxes[0].b == 0.0);
}

#[test]
fn the_shared_level_lines_both_allocators_up_and_keeps_the_sums() {
    let (a, b) = reports();
    let own = build_gap(&a, &b).unwrap();
    let shared = build_gap_at(&a, &b, Level::Shared).unwrap();
    // Each shared row is the sum of the own boxes that map onto it, on either side.
    for row in &shared.boxes {
        let of = |r: &analyze::attribute::Report| -> f64 {
            r.boxes
                .iter()
                .filter(|x| x.shared == row.name)
                .map(|x| x.ns_per_op)
                .sum()
        };
        assert!(
            (row.a - of(&a)).abs() < 1e-9 && (row.b - of(&b)).abs() < 1e-9,
            "{row:?}"
        );
    }
    assert!((shared.boxes_diff - own.boxes_diff).abs() < 1e-9);
    // The same boxes summed in another order: equal up to rounding.
    assert!((shared.residual - own.residual).abs() < 1e-9);
    // glibc.arena and tcmalloc.central_freelist are both `central`: one row with both sides.
    let central = shared.boxes.iter().find(|r| r.name == "central").unwrap();
    assert!(central.a > 0.0 && central.b > 0.0, "{central:?}");
    assert!(!shared.boxes.iter().any(|r| r.name.starts_with("glibc.")));

    let (fa, fb) = (fixture("glibc"), fixture("tcmalloc"));
    let at = |level: &str| {
        let (fa, fb) = (fa.to_str().unwrap(), fb.to_str().unwrap());
        analyze(&["gap", fa, fb, "--level", level])
    };
    let out = at("shared");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("\ncentral "), "{}", stdout(&out));
    let out = at("deep");
    assert_eq!(out.status.code(), Some(2), "a bad level is a usage error");
}

#[test]
fn table_shows_sum_measured_and_residual_and_csv_has_every_box() {
    let (a, b) = (fixture("glibc"), fixture("tcmalloc"));
    let out = analyze(&["gap", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        "sum of boxes",
        "measured (task-clock)",
        "residual (measured - sum)",
        "off-cpu.lock_wait",
        "glibc.arena",
    ] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
    let out = analyze(&["gap", a.to_str().unwrap(), b.to_str().unwrap(), "--csv"]);
    let csv = stdout(&out);
    let rows = csv.lines().count() - 1;
    let json: serde_json::Value = serde_json::from_slice(
        &analyze(&["gap", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]).stdout,
    )
    .unwrap();
    let boxes = json["boxes"].as_array().unwrap().len();
    assert_eq!(
        rows,
        boxes + 3 + 3,
        "every box, 3 off-CPU rows, sum, measured, residual"
    );
    assert!(json["residual"].as_f64().is_some());
}

#[test]
fn different_bench_configurations_are_refused() {
    let dir = copy_fixture("tcmalloc");
    let bench = dir.path().join("bench.json");
    let text = std::fs::read_to_string(&bench)
        .unwrap()
        .replace("\"threads\":4", "\"threads\":16");
    std::fs::write(&bench, text).unwrap();
    let out = analyze(&[
        "gap",
        fixture("glibc").to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("same bench configuration") && err.contains("threads=16"),
        "{err}"
    );
    assert!(!err.contains("panicked"));

    let out = analyze(&["gap", fixture("glibc").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "a missing run is a usage error");
}
