//! The regression guard: medians as ratios to an anchor measured in the same session (absolute
//! numbers drift on a shared machine), compared row by row against an earlier matrix JSON.
use super::{MatrixReport, Row, Workload};
use anyhow::{bail, Context, Result};
use std::path::Path;

/// One (preset, allocator) whose ratio to the anchor dropped by more than the tolerance, or that
/// now crashes on every run. The hook for naming the responsible box later.
#[derive(Clone, Debug, PartialEq)]
pub struct Regression {
    pub preset: String,
    pub allocator: String,
    /// Median / anchor median in the baseline file.
    pub before: f64,
    /// Median / anchor median now; None when every run crashed.
    pub now: Option<f64>,
}

impl Regression {
    /// Relative change of the ratio in percent (negative = slower); None for a crashing row.
    pub fn change_pct(&self) -> Option<f64> {
        self.now.map(|n| (n / self.before - 1.0) * 100.0)
    }
}

/// `--tolerance`: a percentage, with or without the `%` sign.
pub fn parse_tolerance(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    let pct: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a percentage (e.g. 5%)"))?;
    if !(0.0..100.0).contains(&pct) {
        return Err(format!(
            "{text:?}: a tolerance must be at least 0% and below 100%"
        ));
    }
    Ok(pct / 100.0)
}

pub fn load(path: &Path) -> Result<MatrixReport> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let report: MatrixReport = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}:{}:{}: not a matrix JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    super::upgrade(report).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// What the guard compares: throughput (the bench's Mops/s) or CPU time per op (steadier when the
/// machine is busy, blind to time lost waiting for a lock holder that is off-CPU).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Metric {
    #[default]
    Mops,
    Cpu,
}

impl Metric {
    /// Higher is better for both: Mops/s, or ops per CPU nanosecond.
    fn speed(self, row: &Row) -> Option<f64> {
        match self {
            Metric::Mops => row.median_mops,
            Metric::Cpu => row.cpu_ns_per_op.filter(|ns| *ns > 0.0).map(|ns| 1.0 / ns),
        }
    }
}

fn ratio_to_anchor(
    report: &MatrixReport,
    preset: &str,
    allocator: &str,
    anchor: &str,
    metric: Metric,
) -> Option<f64> {
    let value = metric.speed(report.row(preset, allocator)?)?;
    let base = metric.speed(report.row(preset, anchor)?)?;
    (base > 0.0).then(|| value / base)
}

/// Refuses a comparison of a preset run with other bench arguments (checked before measuring, too,
/// so a long matrix is not run for nothing).
pub fn check_same_arguments(before: &MatrixReport, workloads: &[Workload]) -> Result<()> {
    for workload in workloads {
        let Some(old) = before
            .workloads
            .iter()
            .find(|w| w.preset == workload.preset)
        else {
            continue;
        };
        if old.args != workload.args {
            bail!(
                "preset {}: the baseline ran `{}`, this run `{}`: compare runs with the same bench arguments (and --quick setting)",
                workload.preset,
                old.args.join(" "),
                workload.args.join(" ")
            );
        }
    }
    Ok(())
}

/// Rows of `now` whose ratio to `anchor` fell below `(1 - tolerance)` times their ratio in
/// `before`. Rows only in one of the two are skipped; a preset measured with different bench
/// arguments, or an anchor with no median on either side, is an error (the comparison would lie).
pub fn regressed_rows(
    before: &MatrixReport,
    now: &MatrixReport,
    anchor: &str,
    tolerance: f64,
    metric: Metric,
) -> Result<Vec<Regression>> {
    check_same_arguments(before, &now.workloads)?;
    let mut out = Vec::new();
    for workload in &now.workloads {
        if !before.workloads.iter().any(|w| w.preset == workload.preset) {
            continue;
        }
        for side in [before, now] {
            if side
                .row(&workload.preset, anchor)
                .and_then(|r| metric.speed(r))
                .is_none()
            {
                bail!("preset {}: anchor {anchor} has no median in one of the runs (missing or crashed)", workload.preset);
            }
        }
        for row in now
            .rows
            .iter()
            .filter(|r| r.preset == workload.preset && r.allocator != anchor)
        {
            let Some(was) = ratio_to_anchor(before, &row.preset, &row.allocator, anchor, metric)
            else {
                continue;
            };
            let is = ratio_to_anchor(now, &row.preset, &row.allocator, anchor, metric);
            if is.is_none_or(|is| is < was * (1.0 - tolerance)) {
                out.push(Regression {
                    preset: row.preset.clone(),
                    allocator: row.allocator.clone(),
                    before: was,
                    now: is,
                });
            }
        }
    }
    Ok(out)
}

pub fn describe(regressions: &[Regression], anchor: &str, tolerance: f64) -> String {
    let mut s = format!(
        "hz3-analyze matrix: {} row(s) regressed more than {}% relative to {anchor}:\n",
        regressions.len(),
        tolerance * 100.0
    );
    for r in regressions {
        match (r.now, r.change_pct()) {
            (Some(now), Some(pct)) => {
                s += &format!(
                    "  {} / {}: {:.3}x -> {:.3}x of {anchor} ({pct:+.1}%)\n",
                    r.preset, r.allocator, r.before, now
                )
            }
            _ => {
                s += &format!(
                    "  {} / {}: {:.3}x of {anchor} -> every run crashed\n",
                    r.preset, r.allocator, r.before
                )
            }
        }
    }
    s.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::super::{finish_rows, test_row, Row, Workload, SCHEMA};
    use super::*;

    fn report(rows: &[(&str, &str, &[f64])]) -> MatrixReport {
        let mut rows: Vec<Row> = rows
            .iter()
            .map(|(preset, alloc, samples)| {
                let crashes: &[&str] = if samples.is_empty() {
                    &["SIGSEGV"]
                } else {
                    &[]
                };
                test_row(preset, alloc, samples, crashes)
            })
            .collect();
        finish_rows(&mut rows, "tc");
        let workloads = ["p", "q"]
            .map(|p| Workload {
                preset: p.into(),
                args: vec!["remote".into(), p.into()],
            })
            .to_vec();
        MatrixReport {
            schema: SCHEMA.into(),
            baseline: "tc".into(),
            runs: 1,
            quick: false,
            workloads,
            rows,
        }
    }

    #[test]
    fn drift_of_the_whole_machine_is_not_a_regression_but_a_relative_drop_is() {
        let before = report(&[
            ("p", "tc", &[10.0]),
            ("p", "hz3", &[20.0]),
            ("p", "je", &[15.0]),
            ("q", "tc", &[4.0]),
            ("q", "hz3", &[4.0]),
        ]);
        // Everything 30% slower (a busier machine): ratios unchanged.
        let slower = report(&[
            ("p", "tc", &[7.0]),
            ("p", "hz3", &[14.0]),
            ("p", "je", &[10.5]),
            ("q", "tc", &[2.8]),
            ("q", "hz3", &[2.8]),
        ]);
        assert!(regressed_rows(&before, &slower, "tc", 0.05, Metric::Mops)
            .unwrap()
            .is_empty());

        // hz3 on p drops from 2.0x to 1.8x (-10%), je within 5%, hz3 on q crashes.
        let now = report(&[
            ("p", "tc", &[10.0]),
            ("p", "hz3", &[18.0]),
            ("p", "je", &[14.6]),
            ("q", "tc", &[4.0]),
            ("q", "hz3", &[]),
        ]);
        let r = regressed_rows(&before, &now, "tc", 0.05, Metric::Mops).unwrap();
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(
            (r[0].preset.as_str(), r[0].allocator.as_str()),
            ("p", "hz3")
        );
        assert!((r[0].change_pct().unwrap() + 10.0).abs() < 1e-9);
        assert_eq!((r[1].preset.as_str(), r[1].now), ("q", None));
        let text = describe(&r, "tc", 0.05);
        assert!(
            text.contains("p / hz3: 2.000x -> 1.800x of tc (-10.0%)")
                && text.contains("every run crashed"),
            "{text}"
        );
        // A looser tolerance lets the -10% through.
        assert_eq!(
            regressed_rows(&before, &now, "tc", 0.15, Metric::Mops)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn the_cpu_metric_compares_cpu_time_per_op_relative_to_the_anchor() {
        let before = report(&[
            ("p", "tc", &[10.0]),
            ("p", "hz3", &[20.0]),
            ("q", "tc", &[4.0]),
        ]);
        let mut now = before.clone();
        // Same Mops/s, but hz3 now burns 30% more CPU per op than before while tc is unchanged.
        now.rows[1].cpu_ns_per_op = before.rows[1].cpu_ns_per_op.map(|ns| ns * 1.3);
        assert!(regressed_rows(&before, &now, "tc", 0.05, Metric::Mops)
            .unwrap()
            .is_empty());
        let r = regressed_rows(&before, &now, "tc", 0.05, Metric::Cpu).unwrap();
        assert_eq!(r.len(), 1);
        assert!((r[0].change_pct().unwrap() - (1.0 / 1.3 - 1.0) * 100.0).abs() < 1e-9);
    }

    #[test]
    fn mismatched_arguments_or_a_dead_anchor_refuse_to_compare() {
        let before = report(&[("p", "tc", &[10.0]), ("p", "hz3", &[20.0])]);
        let mut other = before.clone();
        other.workloads[0].args.push("--quick-ish".into());
        assert!(regressed_rows(&before, &other, "tc", 0.05, Metric::Mops)
            .unwrap_err()
            .to_string()
            .contains("same bench arguments"));
        let dead = report(&[("p", "tc", &[]), ("p", "hz3", &[20.0])]);
        assert!(regressed_rows(&before, &dead, "tc", 0.05, Metric::Mops)
            .unwrap_err()
            .to_string()
            .contains("anchor tc has no median"));
    }

    #[test]
    fn tolerance_parsing() {
        assert_eq!(parse_tolerance("5%"), Ok(0.05));
        assert_eq!(parse_tolerance("2.5"), Ok(0.025));
        assert!(parse_tolerance("abc").is_err());
        assert!(parse_tolerance("150%").is_err());
    }

    #[test]
    fn load_reports_the_position_of_bad_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        std::fs::write(&path, "{\n  \"schema\": 3\n}").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("b.json:2:"), "{err}");
    }
}
