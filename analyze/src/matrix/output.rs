//! The matrix as an aligned text table, CSV, markdown, JSON (the serde form of the report plus
//! hyperfine's `results[]`), and a markdown summary for a CI job's page; every table goes through
//! [`crate::table`]'s renderers.
//!
//! Every column is declared once in [`COLUMNS`]: adding one there adds it to table, CSV and markdown.
use super::compare::Regression;
use super::{MatrixReport, Row};
use crate::core_round_trip::{self, Regime};
use crate::stats::Interval;
use crate::table::{Column, Table};
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;

/// A cell of the table and markdown: rounded for reading, with units where they help.
type Shown = fn(&Row) -> String;

/// One column of the matrix. The table and markdown show the columns that have a heading; the CSV
/// writes every column under its field name, numbers in full and missing values as empty cells.
struct MatrixColumn {
    shown: Option<(&'static str, Shown)>,
    field: &'static str,
    raw: fn(&Row, &MatrixReport) -> String,
}

const fn col(
    shown: Option<(&'static str, Shown)>,
    field: &'static str,
    raw: fn(&Row, &MatrixReport) -> String,
) -> MatrixColumn {
    MatrixColumn { shown, field, raw }
}

/// Columns in CSV order; the shown ones keep their relative order in the table and markdown, the
/// first two (text) left-aligned, the rest (numbers) right-aligned.
#[rustfmt::skip] // one column a line reads as the table it describes
const COLUMNS: [MatrixColumn; 24] = [
    col(Some(("preset", |r| r.preset.clone())), "preset", |r, _| r.preset.clone()),
    col(Some(("allocator", |r| r.allocator.clone())), "allocator", |r, _| r.allocator.clone()),
    col(Some(("median Mops/s", |r| mops(r.median_mops))), "median_mops", |r, _| full(r.median_mops)),
    col(Some(("95% CI", |r| interval(r.median_ci_mops, mops))), "median_ci_low", |r, _| full(r.median_ci_mops.map(|i| i.low))),
    col(None, "median_ci_high", |r, _| full(r.median_ci_mops.map(|i| i.high))),
    col(Some(("min", |r| mops(r.min_mops))), "min_mops", |r, _| full(r.min_mops)),
    col(Some(("max", |r| mops(r.max_mops))), "max_mops", |r, _| full(r.max_mops)),
    col(Some(("ratio", |r| ratio(r.ratio))), "ratio", |r, _| full(r.ratio)),
    col(Some(("ratio 95% CI", |r| interval(r.ratio_ci, ratio))), "ratio_ci_low", |r, _| full(r.ratio_ci.map(|i| i.low))),
    col(None, "ratio_ci_high", |r, _| full(r.ratio_ci.map(|i| i.high))),
    col(None, "baseline", |_, report| report.baseline.clone()),
    col(Some(("CPU ns/op", |r| cpu_ns(r.cpu_ns_per_op))), "cpu_ns_per_op", |r, _| full(r.cpu_ns_per_op)),
    col(Some(("peak RSS MiB", rss_mib)), "peak_rss_kib", |r, _| r.peak_rss_kib.to_string()),
    col(Some(("live MiB", |r| mib(r.live_peak_kib))), "live_peak_kib", |r, _| full(r.live_peak_kib)),
    col(None, "rss_at_live_peak_kib", |r, _| full(r.rss_at_live_peak_kib)),
    col(Some(("over live MiB", |r| mib(r.excess_kib))), "excess_kib", |r, _| full(r.excess_kib)),
    col(Some(("worst RSS-live MiB", |r| mib(r.overhead_peak_kib))), "overhead_peak_kib", |r, _| full(r.overhead_peak_kib)),
    col(Some(("ok", |r| r.runs_ok.to_string())), "runs_ok", |r, _| r.runs_ok.to_string()),
    col(Some(("crashed", crashed)), "crashed", |r, _| r.crashed.to_string()),
    col(None, "crashes", |r, _| r.crashes.join(";")),
    col(None, "samples_mops", |r, _| join_full(&r.samples_mops)),
    col(None, "samples_round_trip_before_ns", |r, _| join_probes(&r.samples_round_trip_before_ns)),
    col(None, "samples_round_trip_after_ns", |r, _| join_probes(&r.samples_round_trip_after_ns)),
    col(None, "skipped", |r, _| r.skipped.to_string()),
];

/// How many columns have text (left-aligned) before the numbers start.
const TEXT_COLUMNS: usize = 2;

fn shown_columns() -> impl Iterator<Item = (&'static str, Shown)> {
    COLUMNS.iter().filter_map(|c| c.shown)
}

/// The rows as the table and the markdown show them.
pub fn shown_table(report: &MatrixReport) -> Table {
    let mut t = Table::new(shown_columns().enumerate().map(|(i, (heading, _))| {
        if i < TEXT_COLUMNS {
            Column::left(heading)
        } else {
            Column::right(heading)
        }
    }));
    for r in &report.rows {
        t.push(shown_columns().map(|(_, show)| show(r)).collect());
    }
    t
}

fn or_dash(v: Option<f64>, show: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "-".into(), show)
}

/// Two decimals, or three significant digits below 1 (large-block presets run ~0.001-0.1 Mops/s).
fn mops(v: Option<f64>) -> String {
    or_dash(v, |v| {
        let decimals = if v > 0.0 && v < 1.0 {
            (2 - v.log10().floor() as i32).clamp(2, 9) as usize
        } else {
            2
        };
        format!("{v:.decimals$}")
    })
}

fn ratio(v: Option<f64>) -> String {
    or_dash(v, |v| format!("{v:.2}x"))
}

/// "[10.00, 12.00]": both ends shown as `show` shows one value.
fn interval(v: Option<Interval>, show: fn(Option<f64>) -> String) -> String {
    v.map_or_else(
        || "-".into(),
        |i| format!("[{}, {}]", show(Some(i.low)), show(Some(i.high))),
    )
}

fn cpu_ns(v: Option<f64>) -> String {
    or_dash(v, |v| format!("{v:.1}"))
}

fn full(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn join_full(values: &[f64]) -> String {
    let values: Vec<String> = values.iter().map(f64::to_string).collect();
    values.join(";")
}

/// Probes in run order, an empty field where a probe failed.
fn join_probes(values: &[Option<f64>]) -> String {
    let values: Vec<String> = values.iter().map(|v| full(*v)).collect();
    values.join(";")
}

fn rss_mib(row: &Row) -> String {
    format!("{:.1}", row.peak_rss_kib as f64 / 1024.0)
}

fn mib(kib: Option<f64>) -> String {
    or_dash(kib, |k| format!("{:.1}", k / 1024.0))
}

/// "1.80x tcmalloc": a row's figure over the lowest anchor's, naming that anchor.
fn over_lowest(value: Option<f64>, lowest: Option<(f64, &str)>) -> String {
    match (value, lowest) {
        (Some(v), Some((low, name))) if low > 0.0 => format!("{:.2}x {name}", v / low),
        _ => "-".into(),
    }
}

/// Peak RSS judged both ways, per preset: every allocator that is not an anchor against the
/// anchor lowest on that preset, raw (ru_maxrss, the largest over the runs: what the RSS target
/// reads) and net of what the bench itself held (medians over runs): the peak RSS less the most
/// the bench held (`over live`: the allocator's need beyond the largest live set, whatever the
/// scheduler left in the rings), and the worst moment of RSS minus live bytes. None when the
/// matrix has no anchor or nothing but anchors.
pub fn rss_summary(report: &MatrixReport) -> Option<Table> {
    let is_anchor = |r: &Row| crate::allocators::anchor_name(&r.allocator).is_some();
    let mut t = Table::new([
        Column::left("preset"),
        Column::left("allocator"),
        Column::right("peak RSS MiB"),
        Column::right("/ lowest anchor"),
        Column::right("over live MiB"),
        Column::right("/ lowest anchor"),
        Column::right("worst RSS-live MiB"),
        Column::right("/ lowest anchor"),
    ]);
    // Each in KiB, shown in MiB.
    let figures: [fn(&Row) -> Option<f64>; 3] = [
        |r| Some(r.peak_rss_kib as f64),
        |r| r.excess_kib,
        |r| r.overhead_peak_kib,
    ];
    for w in &report.workloads {
        let rows: Vec<&Row> = report
            .rows
            .iter()
            .filter(|r| r.preset == w.preset)
            .collect();
        let lowest: Vec<Option<(f64, &str)>> = figures
            .iter()
            .map(|figure| {
                rows.iter()
                    .filter(|r| is_anchor(r) && r.runs_ok > 0)
                    .filter_map(|r| Some((figure(r)?, r.allocator.as_str())))
                    .min_by(|a, b| a.0.total_cmp(&b.0))
            })
            .collect();
        for r in rows.iter().filter(|r| !is_anchor(r) && r.runs_ok > 0) {
            let mut cells = vec![r.preset.clone(), r.allocator.clone()];
            for (figure, low) in figures.iter().zip(&lowest) {
                cells.push(mib(figure(r)));
                cells.push(over_lowest(figure(r), *low));
            }
            t.push(cells);
        }
    }
    (!t.rows.is_empty()).then_some(t)
}

/// The heading over [`rss_summary`] in the text and the markdown.
const RSS_SUMMARY_HEADING: &str = "Peak RSS against the lowest anchor, raw and net of what the bench held (its objects, rings and tables; medians over runs): over live = the highest sampled RSS less the most held, worst RSS-live = the largest gap at one sample of the timed section";

/// What the host probes found: one line, and when they show two regimes a table of each row's
/// median and ratio to the baseline within each regime (runs whose probes straddle the split
/// count as mixed and are left out of both). None when the matrix did not probe.
pub fn regime_summary(report: &MatrixReport) -> Option<(String, Option<Table>)> {
    let (a, b) = report.round_trip_cpus?;
    let probes = super::round_trip_probes(&report.rows);
    if probes.is_empty() {
        return Some((
            format!("Host core-to-core round trip (CPUs {a} and {b}): every probe failed"),
            None,
        ));
    }
    let Some(regimes) = core_round_trip::split(&probes) else {
        let least = probes.iter().copied().fold(f64::INFINITY, f64::min);
        let most = probes.iter().copied().fold(0.0, f64::max);
        return Some((
            format!(
                "Host core-to-core round trip (CPUs {a} and {b}, before and after each run): one regime, {least:.0}-{most:.0} ns over {} probes",
                probes.len()
            ),
            None,
        ));
    };
    let (near, far) = (regimes.near, regimes.far);
    let heading = format!(
        "Host core-to-core round trip (CPUs {a} and {b}, before and after each run): two regimes, near {:.0}-{:.0} ns ({} probes) and far {:.0}-{:.0} ns ({}), split at {:.0} ns; the host moved its CPUs during the matrix, so medians within one regime (runs whose two probes agree) compare like with like",
        near.min_ns, near.max_ns, near.probes, far.min_ns, far.max_ns, far.probes, regimes.threshold_ns
    );
    let mut t = Table::new([
        Column::left("preset"),
        Column::left("allocator"),
        Column::right("near Mops/s"),
        Column::right("runs"),
        Column::right("ratio"),
        Column::right("far Mops/s"),
        Column::right("runs"),
        Column::right("ratio"),
        Column::right("mixed runs"),
    ]);
    let median = |v: &[f64]| crate::stats::median(v);
    for r in &report.rows {
        let base = report.row(&r.preset, &report.baseline);
        let mut cells = vec![r.preset.clone(), r.allocator.clone()];
        for regime in [Regime::Near, Regime::Far] {
            let runs = r.runs_in(&regimes, regime);
            let base_median = base.and_then(|b| median(&b.runs_in(&regimes, regime)));
            cells.push(mops(median(&runs)));
            cells.push(runs.len().to_string());
            cells.push(ratio(super::stats::ratio(median(&runs), base_median)));
        }
        cells.push(r.runs_in(&regimes, Regime::Mixed).len().to_string());
        t.push(cells);
    }
    Some((heading, Some(t)))
}

/// What every rendering of the matrix says below its table, in order, each a heading with its
/// table if it has one: [`rss_summary`], then [`regime_summary`].
pub fn summaries(report: &MatrixReport) -> Vec<(String, Option<Table>)> {
    let rss = rss_summary(report).map(|t| (RSS_SUMMARY_HEADING.to_owned(), Some(t)));
    rss.into_iter().chain(regime_summary(report)).collect()
}

fn crashed(row: &Row) -> String {
    crate::runner::crash_summary(&row.crashes, row.skipped)
}

/// "3 round(s) (quick)" and "ratio = median / glibc median on the same preset", for the first
/// line of the table and of the markdown.
fn rounds_and_ratio(report: &MatrixReport) -> (String, String) {
    let quick = if report.quick { " (quick)" } else { "" };
    (
        format!("{} round(s){quick}", report.runs),
        format!(
            "ratio = median / {} median on the same preset",
            report.baseline
        ),
    )
}

/// Aligned columns for the terminal: text left, numbers right.
pub fn table(report: &MatrixReport) -> String {
    let (rounds, ratio) = rounds_and_ratio(report);
    let form = super::form_note(report);
    let mut out = format!(
        "hz3-analyze matrix: {rounds}, {ratio}; {form}\n{}",
        shown_table(report).to_text()
    );
    for (heading, t) in summaries(report) {
        out += &format!("\n{heading}");
        out += &t.map_or_else(|| "\n".into(), |t| format!(":\n{}", t.to_text()));
    }
    out
}

/// One line per row; numbers unformatted, empty cells where a row has no value (all runs crashed).
pub fn csv(report: &MatrixReport) -> Result<String> {
    let mut t = Table::new(COLUMNS.iter().map(|c| Column::left(c.field)));
    for r in &report.rows {
        t.push(COLUMNS.iter().map(|c| (c.raw)(r, report)).collect());
    }
    t.to_csv()
}

/// The markdown's first line: rounds, what the ratio is, and which form the rows measure.
pub fn markdown_intro(report: &MatrixReport) -> String {
    let (rounds, ratio) = rounds_and_ratio(report);
    let form = super::form_note(report);
    format!("Interleaved matrix, {rounds}; {ratio}; {form}.")
}

/// "PRESET: `hz3-bench ARGS`" per preset, the markdown's list under the table.
pub fn bench_arguments(report: &MatrixReport) -> Vec<String> {
    report
        .workloads
        .iter()
        .map(|w| format!("{}: `hz3-bench {}`", w.preset, w.args.join(" ")))
        .collect()
}

pub fn markdown(report: &MatrixReport) -> String {
    let mut out = format!(
        "{}\n\n{}\nBench arguments per preset:\n\n",
        markdown_intro(report),
        shown_table(report).to_markdown()
    );
    for item in bench_arguments(report) {
        out += &format!("- {item}\n");
    }
    for (heading, t) in summaries(report) {
        out += &format!("\n{heading}.\n");
        if let Some(t) = t {
            out += &format!("\n{}", t.to_markdown());
        }
    }
    out
}

/// One row in hyperfine's JSON shape, so scripts written for `hyperfine --export-json` (whisker
/// plots, histograms, Welch tests) read the matrix. hyperfine's unit is seconds per run (lower is
/// better); a matrix run has its own length, so the unit here is seconds per million operations
/// (1 / Mops/s): comparable across rows of one preset, lower is better, as hyperfine's.
#[derive(Serialize, Debug, PartialEq)]
pub struct HyperfineResult {
    /// "ALLOCATOR on PRESET", hyperfine's label of a row.
    pub command: String,
    pub mean: f64,
    /// Sample standard deviation; null with one run, as hyperfine writes it.
    pub stddev: Option<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub times: Vec<f64>,
    /// 0 per successful run (crashed runs are not among `times`).
    pub exit_codes: Vec<i32>,
    /// hyperfine's parameter scan fields: the row's preset and allocator.
    pub parameters: std::collections::BTreeMap<&'static str, String>,
    pub unit: &'static str,
}

/// The hyperfine-shaped rows: every row with at least one successful run.
pub fn hyperfine_results(report: &MatrixReport) -> Vec<HyperfineResult> {
    report
        .rows
        .iter()
        .filter(|r| r.samples_mops.iter().any(|m| *m > 0.0))
        .map(|r| {
            let times: Vec<f64> = r
                .samples_mops
                .iter()
                .filter(|m| **m > 0.0)
                .map(|m| 1.0 / m)
                .collect();
            let n = times.len() as f64;
            let mean = times.iter().sum::<f64>() / n;
            let stddev = (times.len() > 1).then(|| {
                (times.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
            });
            HyperfineResult {
                command: format!("{} on {}", r.allocator, r.preset),
                mean,
                stddev,
                median: crate::stats::median(&times).unwrap_or(mean),
                min: times.iter().copied().fold(f64::INFINITY, f64::min),
                max: times.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                exit_codes: vec![0; times.len()],
                times,
                parameters: [
                    ("preset", r.preset.clone()),
                    ("allocator", r.allocator.clone()),
                ]
                .into(),
                unit: "seconds per million operations",
            }
        })
        .collect()
}

/// The `--json` file: the report's fields, and hyperfine's `results[]` beside them (ignored when
/// `--compare` reads the file back).
pub fn json(report: &MatrixReport) -> Result<String> {
    #[derive(Serialize)]
    struct File<'a> {
        #[serde(flatten)]
        report: &'a MatrixReport,
        results: Vec<HyperfineResult>,
    }
    crate::table::json::render(&File {
        report,
        results: hyperfine_results(report),
    })
}

/// What the guard found, for the summary.
pub struct Guard<'a> {
    pub anchor: &'a str,
    pub tolerance: f64,
    /// Every compared row, regressed or not.
    pub rows: &'a [Regression],
    /// Where each regressed row's gap.json and flame-diff.svg are, when it was explained.
    pub explain_dir: PathBuf,
}

/// Markdown for a CI job's summary page: the verdict, the flagged rows with their interval, the
/// box their recordings named and a link to their differential flamegraph, the matrix, and every
/// compared row.
pub fn summary_markdown(report: &MatrixReport, guard: Option<&Guard>) -> String {
    let mut out = String::from("## hz3-analyze matrix\n\n");
    if let Some(g) = guard {
        let flagged: Vec<&Regression> = g.rows.iter().filter(|r| r.is_regression()).collect();
        let tol = g.tolerance * 100.0;
        if flagged.is_empty() {
            out += &format!(
                "**No regression**: no row's ratio to {} fell beyond the {tol}% tolerance (95% intervals).\n\n",
                g.anchor
            );
        } else {
            out += &format!(
                "**{} row(s) regressed** relative to {} (tolerance {tol}%, 95% intervals):\n\n",
                flagged.len(),
                g.anchor
            );
            let mut t = Table::new([
                Column::left("preset"),
                Column::left("allocator"),
                Column::right("change [95% CI]"),
                Column::left("verdict"),
                Column::left("box"),
                Column::left("flamegraph"),
            ]);
            for r in flagged {
                let dir = g
                    .explain_dir
                    .join(super::explain::row_dir_name(&r.preset, &r.allocator));
                let flame = dir.join("flame-diff.svg");
                let flame = if flame.is_file() {
                    format!("[flame-diff.svg]({})", flame.display())
                } else {
                    "-".into()
                };
                t.push(vec![
                    r.preset.clone(),
                    r.allocator.clone(),
                    r.interval_text(),
                    r.verdict_text(g.tolerance),
                    regressed_box(&dir.join("gap.json")).unwrap_or_else(|| "-".into()),
                    flame,
                ]);
            }
            out += &t.to_markdown();
            out += "\n";
        }
    }
    out += &markdown(report);
    if let Some(g) = guard {
        out += &format!(
            "\n### Change of each row's ratio to {} since the baseline\n\n",
            g.anchor
        );
        let mut t = Table::new([
            Column::left("preset"),
            Column::left("allocator"),
            Column::right("change [95% CI]"),
            Column::left("verdict"),
        ]);
        for r in g.rows {
            t.push(vec![
                r.preset.clone(),
                r.allocator.clone(),
                r.interval_text(),
                r.verdict_text(g.tolerance),
            ]);
        }
        out += &t.to_markdown();
    }
    out
}

/// "hz3.slow_alloc (+12.3 ns/op)" from an explained row's gap.json: the box that grew the most.
fn regressed_box(gap_json: &std::path::Path) -> Option<String> {
    let gap: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gap_json).ok()?).ok()?;
    if gap["measured_diff"].as_f64()? <= 0.0 {
        return None;
    }
    gap["boxes"]
        .as_array()?
        .iter()
        .filter_map(|b| Some((b["name"].as_str()?, b["diff"].as_f64()?)))
        .filter(|(_, d)| *d > 0.0)
        .max_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(name, d)| format!("{name} (+{d:.1} ns/op)"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::compare::{self, Metric};
    use super::super::{finish_rows, test_row, Workload};
    use super::*;

    #[test]
    fn the_summary_names_flagged_rows_with_interval_box_and_flamegraph() {
        let before = sample_report();
        let mut now = before.clone();
        now.rows[1].samples_mops = vec![11.0];
        finish_rows(&mut now.rows, "glibc");
        let rows = compare::compare_rows(&before, &now, "glibc", 0.05, Metric::Mops).unwrap();
        assert!(rows[0].is_regression(), "{rows:?}");
        let dir = tempfile::tempdir().unwrap();
        let row_dir = dir.path().join("remote-heavy-small--mine");
        std::fs::create_dir_all(&row_dir).unwrap();
        std::fs::write(row_dir.join("flame-diff.svg"), "<svg/>").unwrap();
        std::fs::write(
            row_dir.join("gap.json"),
            r#"{"measured_diff": 30.0, "boxes": [{"name": "hz3.central", "diff": -2.0}, {"name": "hz3.slow_alloc", "diff": 25.5}]}"#,
        )
        .unwrap();
        let guard = Guard {
            anchor: "glibc",
            tolerance: 0.05,
            rows: &rows,
            explain_dir: dir.path().to_path_buf(),
        };
        let md = summary_markdown(&now, Some(&guard));
        assert!(
            md.contains("**1 row(s) regressed** relative to glibc"),
            "{md}"
        );
        let flagged = md
            .lines()
            .find(|l| l.starts_with("| remote-heavy-small | mine | -50.0% ["))
            .unwrap_or_else(|| panic!("{md}"));
        assert!(
            flagged.contains("| hz3.slow_alloc (+25.5 ns/op) |")
                && flagged.contains("flame-diff.svg]("),
            "{flagged}"
        );
        assert!(
            md.contains("| median Mops/s |"),
            "the matrix is there: {md}"
        );
        let plain = summary_markdown(&before, None);
        assert!(
            !plain.contains("regress") && plain.contains("| glibc |"),
            "{plain}"
        );
    }

    pub(crate) fn sample_report() -> MatrixReport {
        let row = |alloc: &str, samples: &[f64], crashes: &[&str]| {
            let mut r = test_row("remote-heavy-small", alloc, samples, crashes);
            r.peak_rss_kib = 2048;
            r
        };
        let mut rows = vec![
            row("glibc", &[10.0, 12.0, 11.0], &[]),
            row("mine", &[22.0], &["SIGSEGV", "SIGSEGV"]),
        ];
        finish_rows(&mut rows, "glibc");
        MatrixReport {
            schema: super::super::SCHEMA.into(),
            baseline: "glibc".into(),
            runs: 3,
            quick: false,
            workloads: vec![Workload {
                preset: "remote-heavy-small".into(),
                args: vec!["remote".into()],
            }],
            rows,
            round_trip_cpus: None,
        }
    }

    #[test]
    fn csv_has_one_record_per_row_with_parseable_numbers() {
        let text = csv(&sample_report()).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        assert_eq!(&headers[2], "median_mops");
        let records: Vec<_> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0][2].parse::<f64>().unwrap(), 11.0);
        assert_eq!(&headers[3], "median_ci_low");
        assert_eq!(records[1][7].parse::<f64>().unwrap(), 2.0);
        let ratio_ci = (
            records[1][8].parse::<f64>().unwrap(),
            records[1][9].parse::<f64>().unwrap(),
        );
        assert!(ratio_ci.0 <= 2.0 && 2.0 <= ratio_ci.1, "{ratio_ci:?}");
        assert_eq!(&records[1][19], "SIGSEGV;SIGSEGV");
        assert_eq!(&records[0][20], "10;12;11");
    }

    #[test]
    fn json_round_trips_and_table_and_markdown_show_every_row() {
        let report = sample_report();
        let text = json(&report).unwrap();
        let back: MatrixReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["rows"][0]["median_mops"], 11.0);
        // hyperfine's shape: seconds per million ops, one entry per run.
        let glibc = &v["results"][0];
        assert_eq!(glibc["command"], "glibc on remote-heavy-small");
        let times: Vec<f64> = glibc["times"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_f64().unwrap())
            .collect();
        let expected = [0.1, 1.0 / 12.0, 1.0 / 11.0];
        assert!(
            times
                .iter()
                .zip(expected)
                .all(|(t, e)| (t - e).abs() < 1e-15),
            "{times:?}"
        );
        assert!((glibc["median"].as_f64().unwrap() - 1.0 / 11.0).abs() < 1e-15);
        assert_eq!(glibc["max"].as_f64(), Some(0.1));
        let mean = times.iter().sum::<f64>() / 3.0;
        assert!((glibc["mean"].as_f64().unwrap() - mean).abs() < 1e-15);
        let sd = (times.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert!((glibc["stddev"].as_f64().unwrap() - sd).abs() < 1e-15);
        assert_eq!(
            v["results"][1]["stddev"],
            serde_json::Value::Null,
            "one run: no stddev"
        );
        assert_eq!(v["results"][1]["parameters"]["allocator"], "mine");

        let t = table(&report);
        assert!(
            t.lines()
                .any(|l| l.starts_with("remote-heavy-small  mine") && l.ends_with("2 (SIGSEGV)")),
            "{t}"
        );
        let md = markdown(&report);
        // Both rows in the matrix, and the one that is not an anchor in the RSS summary.
        assert_eq!(
            md.lines()
                .filter(|l| l.starts_with("| remote-heavy-small"))
                .count(),
            3,
            "{md}"
        );
        assert!(
            md.contains(
                "| 11.00 | [10.00, 12.00] | 10.00 | 12.00 | 1.00x | [1.00x, 1.00x] | 90.9 | 2.0 |"
            ),
            "{md}"
        );
    }

    /// With probes in two regimes, each row's runs are split by the regime both their probes fell
    /// in: medians and ratios within a regime, straddling runs counted apart; the probes reach
    /// the CSV and survive the JSON.
    #[test]
    fn runs_are_compared_within_the_host_regime_their_probes_agree_on() {
        // (Mops/s, probe before, probe after): near ~90 ns, far ~450 ns.
        let row = |alloc: &str, runs: &[(f64, f64, f64)]| {
            let samples: Vec<f64> = runs.iter().map(|r| r.0).collect();
            let mut r = test_row("remote-heavy-small-t2", alloc, &samples, &[]);
            for &(_, before, after) in runs {
                r.record_round_trip(Some(before), Some(after));
            }
            r
        };
        let mut rows = vec![
            row(
                "tcmalloc",
                &[
                    (30.0, 90.0, 95.0),
                    (32.0, 88.0, 92.0),
                    (12.0, 450.0, 460.0),
                    (20.0, 90.0, 455.0),
                ],
            ),
            row(
                "mine",
                &[
                    (36.0, 91.0, 93.0),
                    (11.0, 440.0, 470.0),
                    (13.0, 452.0, 448.0),
                    (14.0, 462.0, 451.0),
                ],
            ),
        ];
        finish_rows(&mut rows, "tcmalloc");
        let mut report = sample_report();
        report.baseline = "tcmalloc".into();
        report.workloads[0].preset = "remote-heavy-small-t2".into();
        report.rows = rows;
        report.round_trip_cpus = Some((0, 1));
        let (heading, t) = regime_summary(&report).expect("probed");
        assert!(
            heading.contains("two regimes, near 88-95 ns (7 probes) and far 440-470 ns (9)"),
            "{heading}"
        );
        let t = t.expect("two regimes give a table").to_text();
        let line = |alloc: &str| {
            t.lines()
                .find(|l| l.split_whitespace().nth(1) == Some(alloc))
                .unwrap_or_else(|| panic!("{alloc} in {t}"))
                .split_whitespace()
                .skip(2)
                .collect::<Vec<_>>()
        };
        // near: median, runs, ratio; far: the same; mixed runs.
        assert_eq!(
            line("tcmalloc"),
            ["31.00", "2", "1.00x", "12.00", "1", "1.00x", "1"]
        );
        assert_eq!(
            line("mine"),
            ["36.00", "1", "1.16x", "13.00", "3", "1.08x", "0"]
        );
        assert!(table(&report).contains(&heading));
        assert!(markdown(&report).contains("| near Mops/s |"));
        let text = csv(&report).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let at = headers
            .iter()
            .position(|h| h == "samples_round_trip_before_ns")
            .unwrap();
        let first = reader.records().next().unwrap().unwrap();
        assert_eq!(&first[at], "90;88;450;90");
        let back: MatrixReport = serde_json::from_str(&json(&report).unwrap()).unwrap();
        assert_eq!(back, report);

        // One regime: a line with the range, no table; no probes: nothing.
        for r in &mut report.rows {
            r.samples_round_trip_after_ns = r
                .samples_round_trip_before_ns
                .iter()
                .map(|_| Some(95.0))
                .collect();
            r.samples_round_trip_before_ns = r.samples_round_trip_after_ns.clone();
        }
        let (heading, t) = regime_summary(&report).unwrap();
        assert!(
            heading.contains("one regime, 95-95 ns over 16 probes") && t.is_none(),
            "{heading}"
        );
        report.round_trip_cpus = None;
        assert!(regime_summary(&report).is_none());
        assert!(!table(&report).contains("round trip"));
    }

    /// The bench's memory figures reach every output, and the summary judges peak RSS both ways:
    /// raw against the lowest anchor's, and net of the live bytes against the lowest anchor's net.
    #[test]
    fn memory_columns_and_the_rss_summary_both_ways_and_old_files_still_load() {
        let mib = |m: f64| (m * 1024.0 * 1024.0) as u64;
        // (live peak, sampled peak RSS less it, worst RSS - live) per run, MiB.
        let row = |alloc: &str, rss: f64, runs: &[(f64, f64, f64)]| {
            let mut r = test_row("remote-90", alloc, &vec![10.0; runs.len()], &[]);
            r.peak_rss_kib = (rss * 1024.0) as u64;
            for &(live, excess, overhead) in runs {
                r.record_memory(&bench::live::MemoryPeaks {
                    live_peak_bytes: mib(live),
                    rss_at_live_peak_bytes: mib(live + 1.0),
                    rss_peak_bytes: mib(live + excess),
                    overhead_peak_bytes: mib(overhead) as i64,
                    ..Default::default()
                });
            }
            r
        };
        let mut rows = vec![
            row(
                "tcmalloc",
                191.0,
                &[
                    (150.0, 40.0, 36.0),
                    (140.0, 38.0, 30.0),
                    (160.0, 42.0, 33.0),
                ],
            ),
            row(
                "jemalloc",
                250.0,
                &[
                    (200.0, 180.0, 40.0),
                    (210.0, 175.0, 44.0),
                    (190.0, 185.0, 41.0),
                ],
            ),
            row(
                "hz3_scale",
                331.0,
                &[
                    (280.0, 50.0, 44.0),
                    (290.0, 51.0, 48.0),
                    (240.0, 47.0, 31.0),
                ],
            ),
        ];
        finish_rows(&mut rows, "tcmalloc");
        let report = MatrixReport {
            schema: super::super::SCHEMA.into(),
            baseline: "tcmalloc".into(),
            runs: 3,
            quick: false,
            workloads: vec![Workload {
                preset: "remote-90".into(),
                args: vec!["remote".into()],
            }],
            rows,
            round_trip_cpus: None,
        };
        // Medians over the runs.
        let hz3 = &report.rows[2];
        assert_eq!(
            (hz3.live_peak_kib, hz3.excess_kib, hz3.overhead_peak_kib),
            (
                Some(280.0 * 1024.0),
                Some(50.0 * 1024.0),
                Some(44.0 * 1024.0)
            )
        );

        let text = table(&report);
        let header = text.lines().nth(1).unwrap();
        assert!(
            header.contains("peak RSS MiB  live MiB  over live MiB  worst RSS-live MiB"),
            "{text}"
        );
        let words = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert!(
            text.lines().map(words).any(|w| w
                .starts_with(&["remote-90", "hz3_scale"].map(String::from))
                && w.ends_with(&["331.0", "280.0", "50.0", "44.0", "3", "0"].map(String::from))),
            "{text}"
        );
        // hz3 against the lowest anchor on this preset: tcmalloc all three ways here.
        let summary = text
            .lines()
            .find(|l| l.starts_with("remote-90  hz3_scale") && l.contains("x tcmalloc"))
            .unwrap_or_else(|| panic!("{text}"));
        assert_eq!(
            words(summary)[2..],
            [
                "331.0", "1.73x", "tcmalloc", "50.0", "1.25x", "tcmalloc", "44.0", "1.33x",
                "tcmalloc"
            ]
        );
        assert!(
            !text
                .lines()
                .any(|l| l.contains("jemalloc") && l.contains("x tcmalloc")),
            "anchors are not judged: {text}"
        );
        let md = markdown(&report);
        assert!(
            md.contains("| live MiB | over live MiB | worst RSS-live MiB |"),
            "{md}"
        );
        assert!(
            md.contains("| remote-90 | hz3_scale | 331.0 | 1.73x tcmalloc | 50.0 | 1.25x tcmalloc | 44.0 | 1.33x tcmalloc |"),
            "{md}"
        );

        let text = csv(&report).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let hz3 = reader.records().nth(2).unwrap().unwrap();
        let kib = |field: &str| hz3[at(field)].parse::<f64>().unwrap() / 1024.0;
        assert_eq!(
            [
                "live_peak_kib",
                "rss_at_live_peak_kib",
                "excess_kib",
                "overhead_peak_kib"
            ]
            .map(kib),
            [280.0, 281.0, 50.0, 44.0]
        );

        let text = json(&report).unwrap();
        let back: MatrixReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);

        // A schema-2 file (before the memory figures) loads, upgraded, with none: dashes.
        let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
        old["schema"] = "hz3-matrix/2".into();
        for r in old["rows"].as_array_mut().unwrap() {
            let fields = r.as_object_mut().unwrap();
            fields.retain(|k, _| {
                !["live_peak", "excess", "overhead_peak"]
                    .iter()
                    .any(|f| k.contains(f))
            });
        }
        let old: MatrixReport = serde_json::from_value(old).unwrap();
        let old = super::super::upgrade(old).unwrap();
        assert_eq!(old.schema, super::super::SCHEMA);
        assert_eq!(
            (old.rows[2].live_peak_kib, old.rows[2].excess_kib),
            (None, None)
        );
        assert!(old.rows[2].samples_live_peak_kib.is_empty());
        let md = markdown(&old);
        assert!(
            md.contains("| remote-90 | hz3_scale | 331.0 | 1.73x tcmalloc | - | - | - | - |"),
            "{md}"
        );
    }
}
