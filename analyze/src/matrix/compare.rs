//! The regression guard: medians as ratios to an anchor measured in the same session (absolute
//! numbers drift on a shared machine), compared row by row against an earlier matrix JSON.
use super::{MatrixReport, Row, Workload};
use crate::stats;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// One (preset, allocator) compared with the baseline file: its ratio to the anchor then and now,
/// the relative change with its bootstrap interval, and what the guard makes of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Regression {
    pub preset: String,
    pub allocator: String,
    /// Median / anchor median in the baseline file.
    pub before: f64,
    /// Median / anchor median now; None when every run crashed.
    pub now: Option<f64>,
    /// `now / before - 1` with its 95% interval; None for a crashing row.
    pub change: Option<stats::Change>,
    /// One-sided Mann–Whitney p-value that this session's per-round ratios sit below the
    /// baseline's lowered by the tolerance.
    pub p_value: Option<f64>,
    /// Successful runs on the shorter side (baseline file or now).
    pub runs: usize,
    pub verdict: Verdict,
}

/// What a row's change amounts to, given the tolerance and the noise of its runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The interval lies wholly below -tolerance, or the Mann–Whitney test rejects.
    Regressed,
    /// Every run crashed now.
    Crashed,
    /// The interval lies below 0 but reaches into the tolerance.
    SlowerWithinTolerance,
    /// The interval lies above 0.
    Faster,
    /// The interval holds 0: this many runs cannot tell.
    NoChangeDetectable,
}

/// Significance level of the Mann–Whitney test (one-sided).
pub const ALPHA: f64 = 0.05;

impl Regression {
    /// Relative change of the ratio in percent (negative = slower); None for a crashing row.
    pub fn change_pct(&self) -> Option<f64> {
        self.now.map(|n| (n / self.before - 1.0) * 100.0)
    }

    pub fn is_regression(&self) -> bool {
        matches!(self.verdict, Verdict::Regressed | Verdict::Crashed)
    }

    /// "-12.0% [-16.0%, -8.0%]", or "every run crashed".
    pub fn interval_text(&self) -> String {
        match self.change {
            Some(c) => format!(
                "{:+.1}% [{:+.1}%, {:+.1}%]",
                c.estimate * 100.0,
                c.interval.low * 100.0,
                c.interval.high * 100.0
            ),
            None => "every run crashed".into(),
        }
    }

    /// The verdict in words: "REGRESSED", "no change detectable at 5 runs (about 23 runs would
    /// detect 5%)", ...
    pub fn verdict_text(&self, tolerance: f64) -> String {
        let tol = tolerance * 100.0;
        match self.verdict {
            Verdict::Regressed => match (self.change, self.p_value) {
                (Some(c), _) if c.interval.high < -tolerance => {
                    format!("REGRESSED (the interval excludes -{tol}%)")
                }
                (_, Some(p)) => format!("REGRESSED (Mann-Whitney p = {p:.3})"),
                _ => "REGRESSED".into(),
            },
            Verdict::Crashed => "REGRESSED (every run crashed)".into(),
            Verdict::SlowerWithinTolerance => format!("slower, within the {tol}% tolerance"),
            Verdict::Faster => "faster".into(),
            Verdict::NoChangeDetectable => {
                let half = self.change.map_or(0.0, |c| c.interval.half_width());
                match stats::runs_needed(self.runs, half, tolerance) {
                    Some(m) => format!(
                        "no change detectable at {} runs (about {m} runs would detect {tol}%)",
                        self.runs
                    ),
                    None => format!("no change detectable at {} runs", self.runs),
                }
            }
        }
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
    let mut report =
        super::upgrade(report).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    // Rows from before the from-source anchors measured Debian's jemalloc / mimalloc.
    for row in &mut report.rows {
        row.allocator = crate::allocators::current_row_name(&row.allocator, row.preload.as_deref());
    }
    Ok(report)
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

    /// The row's per-run speeds (the median alone for a file without samples).
    fn samples(self, row: &Row) -> Vec<f64> {
        let runs: Vec<f64> = match self {
            Metric::Mops => row.samples_mops.clone(),
            Metric::Cpu => row
                .samples_cpu_ns_per_op
                .iter()
                .filter(|ns| **ns > 0.0)
                .map(|ns| 1.0 / ns)
                .collect(),
        };
        if runs.is_empty() {
            self.speed(row).into_iter().collect()
        } else {
            runs
        }
    }
}

/// A row's and its anchor's per-run speeds in one session.
struct Sides {
    value: Vec<f64>,
    anchor: Vec<f64>,
    every_round_ran: bool,
}

impl Sides {
    fn of(
        report: &MatrixReport,
        preset: &str,
        allocator: &str,
        anchor: &str,
        m: Metric,
    ) -> Option<Sides> {
        let (row, anchor_row) = (report.row(preset, allocator)?, report.row(preset, anchor)?);
        let (value, anchor) = (m.samples(row), m.samples(anchor_row));
        (!value.is_empty() && !anchor.is_empty()).then_some(Sides {
            value,
            anchor,
            every_round_ran: row.every_round_ran() && anchor_row.every_round_ran(),
        })
    }

    fn pair(&self) -> stats::Pair<'_> {
        stats::Pair::new(&self.value, &self.anchor, self.every_round_ran)
    }

    /// One ratio per round when both sides ran every round, else each run over the anchor's median.
    fn per_round_ratios(&self) -> Vec<f64> {
        if self.pair().paired {
            self.value
                .iter()
                .zip(&self.anchor)
                .map(|(v, a)| v / a)
                .collect()
        } else {
            let a = stats::median(&self.anchor).unwrap_or(f64::NAN);
            self.value.iter().map(|v| v / a).collect()
        }
    }
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

/// Rows of `now` whose change relative to `anchor` is a regression (see [`compare_rows`]).
pub fn regressed_rows(
    before: &MatrixReport,
    now: &MatrixReport,
    anchor: &str,
    tolerance: f64,
    metric: Metric,
) -> Result<Vec<Regression>> {
    Ok(compare_rows(before, now, anchor, tolerance, metric)?
        .into_iter()
        .filter(Regression::is_regression)
        .collect())
}

/// Every row of `now` (but the anchor) compared with `before`: the change of its ratio to `anchor`
/// and the 95% bootstrap interval of that change (rounds resampled, a row and its anchor kept
/// together). A row regressed when the interval lies wholly below `-tolerance`, or when a
/// one-sided Mann–Whitney test finds this session's per-round ratios below the baseline's lowered
/// by the tolerance (p < [`ALPHA`]), or when every run crashed. Rows only in one of the two are
/// skipped; a preset measured with different bench arguments, or an anchor with no median on
/// either side, is an error (the comparison would lie).
pub fn compare_rows(
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
            let Some(was) = Sides::of(before, &row.preset, &row.allocator, anchor, metric) else {
                continue;
            };
            let Some(before_ratio) = was.pair().ratio() else {
                continue;
            };
            let is = Sides::of(now, &row.preset, &row.allocator, anchor, metric);
            let mut rng = stats::Rng::for_key(&format!("{}/{}", row.preset, row.allocator));
            let change = is
                .as_ref()
                .and_then(|is| stats::change(was.pair(), is.pair(), &mut rng));
            let p_value = is.as_ref().and_then(|is| {
                let lowered: Vec<f64> = was
                    .per_round_ratios()
                    .iter()
                    .map(|r| r * (1.0 - tolerance))
                    .collect();
                stats::mann_whitney_less(&is.per_round_ratios(), &lowered)
            });
            let verdict = match change {
                None => Verdict::Crashed,
                Some(c) if c.interval.high < -tolerance => Verdict::Regressed,
                Some(_) if p_value.is_some_and(|p| p < ALPHA) => Verdict::Regressed,
                Some(c) if c.interval.high < 0.0 => Verdict::SlowerWithinTolerance,
                Some(c) if c.interval.low > 0.0 => Verdict::Faster,
                Some(_) => Verdict::NoChangeDetectable,
            };
            out.push(Regression {
                preset: row.preset.clone(),
                allocator: row.allocator.clone(),
                before: before_ratio,
                now: is.as_ref().and_then(|is| is.pair().ratio()),
                change,
                p_value,
                runs: is.map_or(0, |is| is.value.len().min(was.value.len())),
                verdict,
            });
        }
    }
    Ok(out)
}

/// Every compared row on a line: its change, interval and verdict.
pub fn describe_all(rows: &[Regression], anchor: &str, tolerance: f64) -> String {
    let mut s = format!(
        "hz3-analyze matrix: change of each row's ratio to {anchor} since the baseline, 95% intervals, tolerance {}%:\n",
        tolerance * 100.0
    );
    for r in rows {
        s += &format!(
            "  {} / {}: {}: {}\n",
            r.preset,
            r.allocator,
            r.interval_text(),
            r.verdict_text(tolerance)
        );
    }
    s.trim_end().to_owned()
}

pub fn describe(regressions: &[Regression], anchor: &str, tolerance: f64) -> String {
    let mut s = format!(
        "hz3-analyze matrix: {} row(s) regressed more than {}% relative to {anchor}:\n",
        regressions.len(),
        tolerance * 100.0
    );
    for r in regressions {
        match (r.now, r.change_pct()) {
            (Some(now), Some(_)) => {
                s += &format!(
                    "  {} / {}: {:.3}x -> {:.3}x of {anchor} ({})\n",
                    r.preset,
                    r.allocator,
                    r.before,
                    now,
                    r.interval_text()
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
            round_trip_cpus: None,
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
            text.contains("p / hz3: 2.000x -> 1.800x of tc (-10.0% [-10.0%, -10.0%])")
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
        // The guard reads the per-run samples, not the stored median.
        for ns in &mut now.rows[1].samples_cpu_ns_per_op {
            *ns *= 1.3;
        }
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

    /// `trials` guards of synthetic sessions: per round, the whole machine runs at a random speed
    /// (lognormal, sigma 0.4: rounds 2-4x apart, as here under load) times each run's own noise
    /// (lognormal, sigma `noise`); the row runs at twice the anchor's speed, times `1 + shift` now.
    /// Returns the share of trials flagged as a regression.
    fn flag_rate(trials: usize, runs: usize, noise: f64, shift: f64, tolerance: f64) -> f64 {
        let mut rng = stats::Rng::new(0x5eed);
        let mut session = |factor: f64| {
            let (mut anchor, mut row) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                let machine = (0.4 * rng.normal()).exp();
                anchor.push(10.0 * machine * (noise * rng.normal()).exp());
                row.push(20.0 * factor * machine * (noise * rng.normal()).exp());
            }
            let mut rows = vec![
                test_row("p", "tc", &anchor, &[]),
                test_row("p", "hz3", &row, &[]),
            ];
            finish_rows(&mut rows, "tc");
            let mut r = report(&[]);
            r.rows = rows;
            r.workloads.truncate(1);
            r
        };
        let flagged = (0..trials)
            .filter(|_| {
                let (before, now) = (session(1.0), session(1.0 + shift));
                !regressed_rows(&before, &now, "tc", tolerance, Metric::Mops)
                    .unwrap()
                    .is_empty()
            })
            .count();
        flagged as f64 / trials as f64
    }

    /// The rates the guard's documentation states (docs/decisions.md): 5 runs a side, 5% per-run
    /// noise, 2-4x machine drift shared by a round, tolerance 5%, 200 trials each.
    #[test]
    fn a_shift_inside_the_noise_is_not_flagged_and_one_beyond_it_is() {
        let unchanged = flag_rate(200, 5, 0.05, 0.0, 0.05);
        let within = flag_rate(200, 5, 0.05, -0.03, 0.05);
        let beyond = flag_rate(200, 5, 0.05, -0.20, 0.05);
        let between = flag_rate(200, 5, 0.05, -0.10, 0.05);
        eprintln!("flagged: unchanged {unchanged}, -3% {within}, -10% {between}, -20% {beyond}");
        assert!(unchanged <= 0.10, "false positives {unchanged}");
        assert!(
            within <= 0.10,
            "a -3% shift inside the noise flagged {within}"
        );
        assert!(beyond >= 0.80, "a -20% shift detected only {beyond}");
    }

    #[test]
    fn overlapping_rows_say_how_many_runs_would_tell() {
        let only_p = |rows: &[(&str, &str, &[f64])]| {
            let mut r = report(rows);
            r.workloads.truncate(1);
            r
        };
        let before = only_p(&[
            ("p", "tc", &[10.0, 10.0, 10.0]),
            ("p", "hz3", &[18.0, 20.0, 22.0]),
        ]);
        let now = only_p(&[
            ("p", "tc", &[10.0, 10.0, 10.0]),
            ("p", "hz3", &[22.0, 18.0, 20.5]),
        ]);
        let rows = compare_rows(&before, &now, "tc", 0.05, Metric::Mops).unwrap();
        assert_eq!(rows[0].verdict, Verdict::NoChangeDetectable, "{rows:?}");
        let text = rows[0].verdict_text(0.05);
        assert!(
            text.starts_with("no change detectable at 3 runs (about ")
                && text.ends_with(" runs would detect 5%)"),
            "{text}"
        );
        let all = describe_all(&rows, "tc", 0.05);
        assert!(all.contains("p / hz3: +2.5% ["), "{all}");
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
