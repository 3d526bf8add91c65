//! `inject-check`: holds `gap` to a cost whose place and size are known. hz3 built with an
//! `inject-<site>` feature busy-waits NS nanoseconds at one hook line inside one box; against
//! the same build without it, the gap must charge that box with at least `--min-share` of the
//! measured difference, and the box's difference must be NS × (hook passes per op, from the
//! injected run's probes dump) within ±`--tolerance`.
//!
//! Each (baseline, injected) pair is judged on its own figures; the verdict is on the medians
//! over the pairs, so one pair disturbed by the shared machine (a burst of yields while other
//! jobs run) does not decide alone.
use crate::attribute::build_report;
use crate::boxes;
use crate::gap::{build_gap, Gap};
use crate::perf_run::Run;
use crate::table::{num, signed, Format, Table};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  hz3-analyze inject-check --box hz3.slow_alloc --event malloc.cache_miss --ns 1000 runs/base runs/refill
  hz3-analyze inject-check --box hz3.central --event central.pop_calls --ns 1000 \\
      runs/base1 runs/pop1 runs/base2 runs/pop2 runs/base3 runs/pop3 --json
The injected runs must come from a probes build (hz3_*_probes*): the hook passes are counted there.
scripts/validate-attribution builds, records and checks both of hz3's injection sites.";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The box the delay was injected into (a box name of the rules, e.g. hz3.slow_alloc)
    #[arg(long = "box", value_name = "BOX")]
    pub box_name: String,
    /// The probe counter that counts passes through the hook line (e.g. malloc.cache_miss)
    #[arg(long, value_name = "KEY")]
    pub event: String,
    /// Nanoseconds waited per pass (the build's HZ3_INJECT_NS)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub ns: u64,
    /// Smallest share of the measured difference the box must take
    #[arg(long, default_value_t = 0.8, value_parser = fraction)]
    pub min_share: f64,
    /// Largest relative error of the box's difference against NS × passes/op
    #[arg(long, default_value_t = 0.2, value_parser = fraction)]
    pub tolerance: f64,
    /// Box rules (TOML) read in front of the built-in ones
    #[arg(long, value_name = "FILE")]
    pub boxes: Option<PathBuf>,
    /// Run directories in pairs: BASELINE INJECTED [BASELINE INJECTED ...]
    #[arg(required = true, value_name = "RUN")]
    pub runs: Vec<PathBuf>,
    #[command(flatten)]
    pub format: Format,
}

fn fraction(text: &str) -> std::result::Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("{text:?}: expected a fraction in (0, 1]")),
    }
}

/// The figures of one pair, or their medians over all pairs (ns/op unless said otherwise).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Figures {
    /// Hook passes per op in the injected run.
    pub events_per_op: f64,
    /// NS × events_per_op: what the injection should add.
    pub expected: f64,
    /// Task-clock difference (injected − baseline).
    pub measured_diff: f64,
    /// The box's sampled difference.
    pub box_diff: f64,
    /// box_diff ÷ measured_diff.
    pub share: f64,
    /// box_diff ÷ expected.
    pub magnitude: f64,
}

/// One (baseline, injected) pair.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PairCheck {
    pub baseline: String,
    pub injected: String,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InjectCheck {
    pub box_name: String,
    pub event: String,
    pub ns: u64,
    pub min_share: f64,
    pub tolerance: f64,
    pub pairs: Vec<PairCheck>,
    /// Medians over the pairs, column by column.
    pub median: Figures,
    pub share_ok: bool,
    pub magnitude_ok: bool,
    pub pass: bool,
}

/// Judges one pair from its gap and the injected run's hook passes per op.
pub fn check_pair(gap: &Gap, box_name: &str, events_per_op: f64, ns: u64) -> Result<PairCheck> {
    let row = gap
        .boxes
        .iter()
        .find(|r| r.name == box_name)
        .with_context(|| {
            let mut names: Vec<&str> = gap.boxes.iter().map(|r| r.name.as_str()).collect();
            names.sort_unstable();
            format!(
                "no box {box_name:?} in the rules (boxes: {})",
                names.join(", ")
            )
        })?;
    let expected = ns as f64 * events_per_op;
    Ok(PairCheck {
        baseline: gap.a.clone(),
        injected: gap.b.clone(),
        figures: Figures {
            events_per_op,
            expected,
            measured_diff: gap.measured_diff,
            box_diff: row.diff,
            // An injected run that is not slower has no share to give (NaN fails the check);
            // a negative pair divided by itself would otherwise look like 100%.
            share: if gap.measured_diff > 0.0 {
                row.diff / gap.measured_diff
            } else {
                f64::NAN
            },
            magnitude: row.diff / expected,
        },
    })
}

/// The median of the values, NaN for none (a figure of no pair reads as not-a-number, not 0).
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.into_iter().collect();
    crate::stats::median(&v).unwrap_or(f64::NAN)
}

/// The verdict over all pairs.
pub fn judge(
    box_name: &str,
    event: &str,
    ns: u64,
    min_share: f64,
    tolerance: f64,
    pairs: Vec<PairCheck>,
) -> InjectCheck {
    let m = |f: fn(&Figures) -> f64| median(pairs.iter().map(|p| f(&p.figures)));
    let median = Figures {
        events_per_op: m(|f| f.events_per_op),
        expected: m(|f| f.expected),
        measured_diff: m(|f| f.measured_diff),
        box_diff: m(|f| f.box_diff),
        share: m(|f| f.share),
        magnitude: m(|f| f.magnitude),
    };
    // NaN (no measured difference) fails both comparisons, as it should.
    let share_ok = median.share >= min_share;
    let magnitude_ok = (median.magnitude - 1.0).abs() <= tolerance;
    InjectCheck {
        box_name: box_name.to_string(),
        event: event.to_string(),
        ns,
        min_share,
        tolerance,
        pairs,
        median,
        share_ok,
        magnitude_ok,
        pass: share_ok && magnitude_ok,
    }
}

/// Hook passes per op of an injected run, from its probes dump.
pub fn events_per_op(run: &Run, event: &str) -> Result<f64> {
    let counts = run.probe_counts().with_context(|| {
        format!(
            "{}: no probes dump: the injected run must come from a probes build (hz3_*_probes*)",
            run.dir.display()
        )
    })?;
    let Some(&count) = counts.get(event) else {
        let keys: Vec<&str> = counts.keys().map(String::as_str).collect();
        bail!(
            "--event {event:?}: no such probe counter (counters: {})",
            keys.join(", ")
        );
    };
    if count == 0 {
        bail!(
            "{}: {event} is 0: the hook never ran, so nothing was injected (wrong --event, or a build without the inject feature?)",
            run.dir.display()
        );
    }
    if run.ops() <= 0.0 {
        bail!("{}: the bench reported 0 ops", run.dir.display());
    }
    Ok(count as f64 / run.ops())
}

pub fn table(check: &InjectCheck) -> Table {
    let mut t = Table::named_rows(&[
        "box",
        "injected ns",
        "events/op",
        "expected ns/op",
        "measured diff",
        "attributed",
        "attributed/measured",
        "attributed/expected",
    ]);
    let row = |label: String, f: &Figures| {
        vec![
            label,
            check.ns.to_string(),
            format!("{:.4}", f.events_per_op),
            num(f.expected),
            signed(f.measured_diff),
            signed(f.box_diff),
            format!("{:.0}%", f.share * 100.0),
            format!("{:.0}%", f.magnitude * 100.0),
        ]
    };
    for (i, p) in check.pairs.iter().enumerate() {
        t.push(row(
            format!("{} (pair {})", check.box_name, i + 1),
            &p.figures,
        ));
    }
    t.push(row(format!("{} (median)", check.box_name), &check.median));
    t
}

pub fn render_text(check: &InjectCheck) -> String {
    let mut out = table(check).to_text();
    let verdict = |ok: bool| if ok { "ok" } else { "FAIL" };
    out += &format!(
        "{} {}: attributed/measured {:.0}% (need >= {:.0}%) {}; attributed/expected {:.0}% (need {:.0}%..{:.0}%) {}\n",
        if check.pass { "PASS" } else { "FAIL" },
        check.box_name,
        check.median.share * 100.0,
        check.min_share * 100.0,
        verdict(check.share_ok),
        check.median.magnitude * 100.0,
        (1.0 - check.tolerance) * 100.0,
        (1.0 + check.tolerance) * 100.0,
        verdict(check.magnitude_ok),
    );
    out
}

pub fn run(args: Args) -> Result<ExitCode> {
    if !args.runs.len().is_multiple_of(2) {
        // A usage error like clap's own (exit 2): the count is part of the command line's shape.
        clap::Error::raw(
            clap::error::ErrorKind::WrongNumberOfValues,
            format!(
                "{} run directories given: they go in pairs, BASELINE INJECTED (the last, {}, has no partner)\n",
                args.runs.len(),
                args.runs.last().map(|p| p.display().to_string()).unwrap_or_default()
            ),
        )
        .exit();
    }
    let rules = boxes::load(args.boxes.as_deref())?;
    let mut pairs = Vec::new();
    for pair in args.runs.chunks(2) {
        let (base, injected) = (Run::load(&pair[0])?, Run::load(&pair[1])?);
        let gap = build_gap(
            &build_report(&base, &rules),
            &build_report(&injected, &rules),
        )?;
        let events = events_per_op(&injected, &args.event)?;
        pairs.push(check_pair(&gap, &args.box_name, events, args.ns)?);
    }
    let check = judge(
        &args.box_name,
        &args.event,
        args.ns,
        args.min_share,
        args.tolerance,
        pairs,
    );
    args.format
        .print(&check, || table(&check).to_csv(), || render_text(&check))?;
    Ok(if check.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_no_pair_is_nan() {
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median([]).is_nan());
    }

    #[test]
    fn one_disturbed_pair_does_not_decide() {
        let pair = |measured_diff: f64, box_diff: f64| PairCheck {
            baseline: "a".into(),
            injected: "b".into(),
            figures: Figures {
                events_per_op: 0.03,
                expected: 30.0,
                measured_diff,
                box_diff,
                share: box_diff / measured_diff,
                magnitude: box_diff / 30.0,
            },
        };
        let judged = |pairs| judge("x", "e", 1000, 0.8, 0.2, pairs);
        let check = judged(vec![pair(31.0, 31.0), pair(60.0, 30.0), pair(32.0, 31.5)]);
        assert!(check.pass, "{check:?}");
        let check = judged(vec![pair(60.0, 30.0), pair(45.0, 30.0), pair(32.0, 31.5)]);
        assert!(
            !check.share_ok && check.magnitude_ok && !check.pass,
            "{check:?}"
        );
        // No measured difference at all: the share is undefined and fails.
        let check = judged(vec![pair(0.0, 0.0)]);
        assert!(!check.pass);
    }
}
