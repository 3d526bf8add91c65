//! `hz3-analyze host`: the machine's prices as JSON and CSV, and a wrong flag as bad input.
mod perf_common;
use perf_common::*;

#[test]
fn host_prints_the_prices_as_json_and_csv() {
    let out = analyze(&["host", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v["first_touch_us_per_page"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["refault_us_per_page"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["read_small_pages_ns"].as_f64().unwrap() > 0.0, "{v}");
    // The walk is a difference of two measured reads, or unknown when no huge pages were granted.
    match (v["read_huge_pages_ns"].as_f64(), v["page_walk_ns"].as_f64()) {
        (Some(_), Some(walk)) => assert!(walk >= 0.0, "{v}"),
        (None, None) => {}
        _ => panic!("a walk needs both reads: {v}"),
    }

    let out = analyze(&["host", "--csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = stdout(&out);
    assert!(csv.starts_with("cost,value,how"), "{csv}");
    assert!(csv.contains("\"page fault, first touch\","), "{csv}");

    let out = analyze(&["host", "--bogus"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
