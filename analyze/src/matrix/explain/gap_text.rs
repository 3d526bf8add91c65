//! The text of one explained row: the measured CPU ns/op of both builds, the top boxes by
//! difference, off-CPU time, and the regressed box (or why none is named).
use super::gap_median::regressed_box;
use crate::gap::Gap;
use crate::table::{num, signed};

/// Boxes listed per explained row, largest |difference| first.
const TOP_BOXES: usize = 3;
/// A single box moves by up to about this much between two runs of the same build (docs/
/// decisions.md, attribution): a smaller difference on one pair of runs names nothing for sure.
const BOX_NOISE_NS: f64 = 5.0;

/// The explanation of one row from its gap (A = the baseline build, B = this build).
pub fn describe_gap(title: &str, g: &Gap) -> String {
    let mut s = format!(
        "{title}: measured CPU ns/op {} -> {} ({} ns/op, {}; baseline build = A, this build = B)\n",
        num(g.measured_a),
        num(g.measured_b),
        signed(g.measured_diff),
        g.measured_from
    );
    s += "  top boxes by difference (B-A):\n";
    let width = g
        .boxes
        .iter()
        .take(TOP_BOXES)
        .map(|b| b.name.len())
        .max()
        .unwrap_or(0);
    for b in g.boxes.iter().take(TOP_BOXES) {
        s += &format!("    {:width$}  {:>8} ns/op\n", b.name, signed(b.diff));
    }
    let off: Vec<String> = g
        .offcpu
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.name.trim_start_matches("off-cpu."),
                signed(r.diff)
            )
        })
        .collect();
    match &g.offcpu_not_recorded {
        Some(why) => s += &format!("  off-CPU: {} ({why})\n", crate::attribute::NOT_RECORDED),
        None => s += &format!("  off-CPU ns/op (not in the sums): {}\n", off.join(", ")),
    }
    match regressed_box(g) {
        Some(b) => {
            s += &format!(
                "  regressed box: {} ({} ns/op, {:.0}% of the difference)\n",
                b.name,
                signed(b.diff),
                b.diff / g.measured_diff * 100.0
            );
            if b.diff < BOX_NOISE_NS {
                s += &format!("  (under the ~{BOX_NOISE_NS} ns/op a box moves between two runs of one build: rerun to confirm, or add --explain-pairs 3)\n");
            }
        }
        None => {
            s += &format!(
                "  regressed box: none: these recordings measured no CPU slowdown ({} ns/op); the matrix drop is noise, or time spent off-CPU (above)\n",
                signed(g.measured_diff)
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::explain::gap_median::tests::gap_with;

    #[test]
    fn the_regressed_box_is_the_one_that_grew_most() {
        // Sorted by |diff| as build_gap sorts: a shrinking box can lead the list.
        let g = gap_with(
            &[
                ("bench", -30.0),
                ("hz3.slow_alloc", 20.0),
                ("hz3.api", 3.0),
                ("other", 1.0),
            ],
            25.0,
        );
        assert_eq!(regressed_box(&g).unwrap().name, "hz3.slow_alloc");
        let text = describe_gap("p / hz3_x", &g);
        assert!(
            text.contains("regressed box: hz3.slow_alloc (+20.00 ns/op, 80% of the difference)"),
            "{text}"
        );
        assert!(
            text.contains("measured CPU ns/op 30.00 -> 55.00 (+25.00 ns/op, task-clock"),
            "{text}"
        );
        let listed: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("top boxes"))
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(listed, ["bench", "hz3.slow_alloc", "hz3.api"]);
        assert!(text.contains("lock_wait +0.50"), "{text}");
        assert!(!text.contains("rerun to confirm"), "{text}");

        let small = gap_with(&[("hz3.api", 2.0)], 2.5);
        assert!(describe_gap("t", &small).contains("rerun to confirm"));
        let none = gap_with(&[("hz3.api", 2.0), ("bench", -4.0)], -1.0);
        assert!(regressed_box(&none).is_none());
        assert!(describe_gap("t", &none).contains("regressed box: none"));
    }
}
