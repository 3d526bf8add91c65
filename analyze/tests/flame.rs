//! `flame` and `flame --diff` on the checked-in recordings: well-formed SVG naming the boxes.
mod perf_common;
use perf_common::*;

#[test]
fn plain_flamegraph_is_xml_with_box_names() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("g.svg");
    let out = analyze(&[
        "flame",
        fixture("glibc").to_str().unwrap(),
        "--out",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&svg).unwrap();
    flamegraphs::svg::check_well_formed(&text).unwrap();
    assert!(
        text.contains("_int_malloc [box:glibc.arena]"),
        "frames carry their box"
    );
    assert!(text.contains("[box:kernel.page_fault]"));
    assert!(text.contains("ps/op"));
}

#[test]
fn offcpu_and_differential_flamegraphs() {
    let dir = tempfile::tempdir().unwrap();
    let off = dir.path().join("off.svg");
    let out = analyze(&[
        "flame",
        fixture("glibc").to_str().unwrap(),
        "--offcpu",
        "--out",
        off.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&off).unwrap();
    flamegraphs::svg::check_well_formed(&text).unwrap();
    assert!(text.contains("off-cpu-blocked"));

    let diff = dir.path().join("d.svg");
    let (a, b) = (fixture("glibc"), fixture("tcmalloc"));
    let out = analyze(&[
        "flame",
        "--diff",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        diff.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&diff).unwrap();
    flamegraphs::svg::check_well_formed(&text).unwrap();
    assert!(
        text.contains("[box:tcmalloc.central_freelist]"),
        "the second run draws the widths"
    );

    // Threads are merged by default: no tower is rooted at a thread's name.
    let thread_root = "bench-1 [box:";
    assert!(!text.contains(thread_root), "threads were not merged");
    let draw = |extra: &str, name: &str| {
        let svg = dir.path().join(name);
        let out = analyze(&[
            "flame",
            "--diff",
            extra,
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--out",
            svg.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = std::fs::read_to_string(&svg).unwrap();
        flamegraphs::svg::check_well_formed(&text).unwrap();
        text
    };
    assert!(draw("--per-thread", "t.svg").contains(thread_root));
    // Rooted at boxes: the box is a frame of its own, right above the root.
    let by_box = draw("--by-box", "b.svg");
    assert!(
        by_box.contains(">tcmalloc.central_freelist [box:tcmalloc.central_freelist]"),
        "no box-rooted frame"
    );
    assert!(by_box.contains("stacks rooted at their box"));
    assert!(!by_box.contains(thread_root));

    let out = analyze(&["flame", "--diff", a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("exactly two runs"));
}
