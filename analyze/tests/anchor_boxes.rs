//! The box rules on real recordings of the from-source anchors (scripts/build-anchors: jemalloc,
//! mimalloc and snmalloc with their symbols), hz3-bench remote-heavy-small at its preset size,
//! trimmed by `fixtures/perf/anchors/trim.py` (a uniform subsample; see its note). Each anchor's
//! time lands in its own boxes, and what the rules leave unnamed (other + api) stays under 10% of
//! the allocator's time.
mod perf_common;
use analyze::attribute::{build_report, Report};
use analyze::gap::build_gap_at;
use analyze::perf_run::Run;
use flamegraphs::Level;
use perf_common::box_ns as ns;
use perf_common::*;

fn report(name: &str) -> Report {
    let rules = analyze::boxes::defaults();
    build_report(
        &Run::load(&fixture(&format!("anchors/{name}"))).unwrap(),
        &rules,
    )
}

#[test]
fn each_anchor_s_time_lands_in_its_own_boxes() {
    let expected: [(&str, &[&str]); 3] = [
        (
            "jemalloc",
            &[
                "jemalloc.tcache",
                "jemalloc.bin",
                "jemalloc.extent",
                "jemalloc.metadata",
                "mutex",
            ],
        ),
        (
            "mimalloc",
            &[
                "mimalloc.local",
                "mimalloc.remote",
                "mimalloc.page",
                "mimalloc.metadata",
            ],
        ),
        (
            "snmalloc",
            &[
                "snmalloc.local",
                "snmalloc.remote",
                "snmalloc.metadata",
                "snmalloc.backend",
            ],
        ),
    ];
    for (name, boxes) in expected {
        let r = report(name);
        assert_eq!(r.allocator, name);
        for b in boxes {
            assert!(ns(&r, b) > 0.0, "{name}: nothing in {b}: {r:#?}");
        }
        // No other allocator's boxes: the rules tell the anchors apart.
        for b in r.boxes.iter().filter(|b| b.ns_per_op > 0.0) {
            let family = b.name.split('.').next().unwrap();
            assert!(
                !["jemalloc", "mimalloc", "snmalloc", "tcmalloc", "glibc", "hz3"].contains(&family)
                    || family == name,
                "{name}: time in {}",
                b.name
            );
        }
        assert!(
            r.unnamed.share < 0.10,
            "{name}: other + api = {:.1}% of allocator time: {:#?}",
            r.unnamed.share * 100.0,
            r.unnamed
        );
        assert!(r.unnamed.allocator > 0.5 * r.boxes_ns_per_op, "{name}");
    }
}

#[test]
fn at_the_shared_level_the_anchors_line_up_row_by_row() {
    let (je, sn) = (report("jemalloc"), report("snmalloc"));
    let gap = build_gap_at(&je, &sn, Level::Shared).unwrap();
    let row = |n: &str| gap.boxes.iter().find(|r| r.name == n).unwrap();
    for shared in ["thread_cache", "metadata", "page_source", "central"] {
        let r = row(shared);
        assert!(r.a > 0.0 && r.b > 0.0, "{shared}: {r:?}");
    }
    // snmalloc's message queues are remote-free work; jemalloc has no such path.
    assert!(row("remote_free").b > 0.0 && row("remote_free").a == 0.0);
    assert!(!gap.boxes.iter().any(|r| r.name.contains("jemalloc.")));
    let own = build_gap_at(&je, &sn, Level::Own).unwrap();
    assert!((own.boxes_diff - gap.boxes_diff).abs() < 1e-9);
}

#[test]
fn the_bench_s_touching_memset_is_the_bench_s_even_where_perf_did_not_unwind_it() {
    // hz3_scale on mixed-large --touch (trimmed the same way): every sample in the bench's memset
    // is a two-frame stack, `bench-N;__memset_avx512_unaligned_erms`, no caller unwound. It used to
    // be `other` (most of the run's CPU); its thread names the owner now.
    let rules = analyze::boxes::defaults();
    let r = build_report(&Run::load(&fixture("hz3_scale_touch")).unwrap(), &rules);
    let script = std::fs::read_to_string(fixture("hz3_scale_touch").join("perf.script")).unwrap();
    assert!(
        script.contains("\n\t") && script.contains("__memset_avx512_unaligned_erms (/"),
        "the fixture has the memset samples"
    );
    assert!(ns(&r, "bench") > 0.4 * r.boxes_ns_per_op, "{r:#?}");
    assert!(ns(&r, "other") < 0.02 * r.boxes_ns_per_op, "{r:#?}");
    assert_eq!(ns(&r, flamegraphs::CALLER_UNKNOWN), 0.0);
}
