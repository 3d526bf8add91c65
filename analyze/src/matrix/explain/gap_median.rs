//! Statistics over the gaps of several (baseline build, this build) recording pairs: each
//! figure's median, and the box that grew the most.
use crate::gap::{Gap, GapRow};
use crate::inject_check;

/// Every figure of a gap as its median over several pairs of runs (boxes matched by name), so
/// one pair disturbed by the shared machine does not decide alone. One pair is returned as is;
/// none gives None.
pub fn median_gap(gaps: &[Gap]) -> Option<Gap> {
    let mut g = gaps.first()?.clone();
    if gaps.len() == 1 {
        return Some(g);
    }
    let median = |f: &dyn Fn(&Gap) -> f64| inject_check::median(gaps.iter().map(f));
    let row_median = |r: &mut GapRow, rows: fn(&Gap) -> &[GapRow]| {
        let field = |pick: fn(&GapRow) -> f64| {
            median(&|x: &Gap| rows(x).iter().find(|o| o.name == r.name).map_or(0.0, pick))
        };
        (r.a, r.b, r.diff) = (field(|o| o.a), field(|o| o.b), field(|o| o.diff));
    };
    for r in &mut g.boxes {
        row_median(r, |x| &x.boxes);
    }
    for r in &mut g.offcpu {
        row_median(r, |x| &x.offcpu);
    }
    row_median(&mut g.wall, |x| std::slice::from_ref(&x.wall));
    g.boxes.sort_by(|x, y| {
        y.diff
            .abs()
            .total_cmp(&x.diff.abs())
            .then_with(|| x.name.cmp(&y.name))
    });
    g.measured_a = median(&|x| x.measured_a);
    g.measured_b = median(&|x| x.measured_b);
    g.measured_diff = median(&|x| x.measured_diff);
    g.boxes_diff = g.boxes.iter().map(|r| r.diff).sum();
    g.residual = g.measured_diff - g.boxes_diff;
    g.a = format!("median of {} pairs: {}, ...", gaps.len(), g.a);
    g.b = format!("median of {} pairs: {}, ...", gaps.len(), g.b);
    g.perf_warnings = gaps.iter().flat_map(|x| x.perf_warnings.clone()).collect();
    Some(g)
}

/// The box that grew the most, when the recordings measured a slowdown at all.
pub fn regressed_box(g: &Gap) -> Option<&GapRow> {
    if g.measured_diff <= 0.0 {
        return None;
    }
    g.boxes
        .iter()
        .filter(|b| b.diff > 0.0)
        .max_by(|x, y| x.diff.total_cmp(&y.diff))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::matrix::explain) fn gap_with(boxes: &[(&str, f64)], measured_diff: f64) -> Gap {
        let row = |name: &str, diff: f64| GapRow {
            name: name.into(),
            a: 10.0,
            b: 10.0 + diff,
            diff,
        };
        Gap {
            a: "base".into(),
            b: "cur".into(),
            allocator_a: "hz3_x@baseline".into(),
            allocator_b: "hz3_x".into(),
            config: "c".into(),
            unit: "op".into(),
            measured_a: 30.0,
            measured_b: 30.0 + measured_diff,
            measured_diff,
            measured_from: "task-clock".into(),
            boxes: boxes.iter().map(|(n, d)| row(n, *d)).collect(),
            boxes_diff: boxes.iter().map(|(_, d)| d).sum(),
            residual: 0.0,
            offcpu: vec![row("off-cpu.lock_wait", 0.5)],
            offcpu_not_recorded: None,
            wall: row("bench wall ns/op", 1.0),
            perf_warnings: Vec::new(),
            host_warning: None,
        }
    }

    #[test]
    fn several_pairs_give_each_box_its_median_difference() {
        let pairs = [
            gap_with(&[("hz3.central", 9.0), ("bench", 1.0)], 10.0),
            // A disturbed pair: bench jumps, hz3.central is missing (no samples in either run).
            gap_with(&[("bench", 40.0)], 41.0),
            gap_with(&[("bench", 2.0), ("hz3.central", 8.0)], 11.0),
        ];
        let m = median_gap(&pairs).unwrap();
        let diff = |name: &str| m.boxes.iter().find(|b| b.name == name).unwrap().diff;
        assert_eq!((diff("hz3.central"), diff("bench")), (8.0, 2.0));
        assert_eq!(m.boxes[0].name, "hz3.central", "re-sorted by |median|");
        assert_eq!(m.measured_diff, 11.0);
        assert_eq!((m.boxes_diff, m.residual), (10.0, 1.0));
        assert_eq!(regressed_box(&m).unwrap().name, "hz3.central");
        assert!(m.a.starts_with("median of 3 pairs"), "{}", m.a);
        assert_eq!(median_gap(&pairs[..1]), Some(pairs[0].clone()));
        assert_eq!(median_gap(&[]), None);
    }
}
