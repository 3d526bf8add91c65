//! The matrix as an aligned text table, CSV and markdown (the JSON is the serde form of the report).
//!
//! Every column is declared once in [`COLUMNS`]: adding one there adds it to all three formats.
use super::{MatrixReport, Row};
use anyhow::Result;

/// A cell of the table and markdown: rounded for reading, with units where they help.
type Shown = fn(&Row) -> String;

/// One column of the matrix. The table and markdown show the columns that have a heading; the CSV
/// writes every column under its field name, numbers in full and missing values as empty cells.
struct Column {
    shown: Option<(&'static str, Shown)>,
    field: &'static str,
    raw: fn(&Row, &MatrixReport) -> String,
}

const fn col(
    shown: Option<(&'static str, Shown)>,
    field: &'static str,
    raw: fn(&Row, &MatrixReport) -> String,
) -> Column {
    Column { shown, field, raw }
}

/// Columns in CSV order; the shown ones keep their relative order in the table and markdown, the
/// first two (text) left-aligned, the rest (numbers) right-aligned.
#[rustfmt::skip] // one column a line reads as the table it describes
const COLUMNS: [Column; 13] = [
    col(Some(("preset", |r| r.preset.clone())), "preset", |r, _| r.preset.clone()),
    col(Some(("allocator", |r| r.allocator.clone())), "allocator", |r, _| r.allocator.clone()),
    col(Some(("median Mops/s", |r| mops(r.median_mops))), "median_mops", |r, _| full(r.median_mops)),
    col(Some(("min", |r| mops(r.min_mops))), "min_mops", |r, _| full(r.min_mops)),
    col(Some(("max", |r| mops(r.max_mops))), "max_mops", |r, _| full(r.max_mops)),
    col(Some(("ratio", |r| ratio(r.ratio))), "ratio", |r, _| full(r.ratio)),
    col(None, "baseline", |_, report| report.baseline.clone()),
    col(Some(("CPU ns/op", |r| cpu_ns(r.cpu_ns_per_op))), "cpu_ns_per_op", |r, _| full(r.cpu_ns_per_op)),
    col(Some(("peak RSS MiB", rss_mib)), "peak_rss_kib", |r, _| r.peak_rss_kib.to_string()),
    col(Some(("ok", |r| r.runs_ok.to_string())), "runs_ok", |r, _| r.runs_ok.to_string()),
    col(Some(("crashed", crashed)), "crashed", |r, _| r.crashed.to_string()),
    col(None, "crashes", |r, _| r.crashes.join(";")),
    col(None, "samples_mops", |r, _| join_full(&r.samples_mops)),
];

/// How many columns have text (left-aligned) before the numbers start.
const TEXT_COLUMNS: usize = 2;

fn shown_columns() -> impl Iterator<Item = (&'static str, Shown)> {
    COLUMNS.iter().filter_map(|c| c.shown)
}

fn headings() -> Vec<String> {
    shown_columns()
        .map(|(heading, _)| heading.to_owned())
        .collect()
}

fn cells(row: &Row) -> Vec<String> {
    shown_columns().map(|(_, show)| show(row)).collect()
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

fn rss_mib(row: &Row) -> String {
    format!("{:.1}", row.peak_rss_kib as f64 / 1024.0)
}

fn crashed(row: &Row) -> String {
    if row.crashed == 0 {
        "0".into()
    } else {
        let mut kinds = row.crashes.clone();
        kinds.dedup();
        format!("{} ({})", row.crashed, kinds.join(", "))
    }
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
    let body: Vec<Vec<String>> = report.rows.iter().map(cells).collect();
    let heading = headings();
    let mut widths: Vec<usize> = heading.iter().map(String::len).collect();
    for r in &body {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (i, (c, &w)) in cols.iter().zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if i < TEXT_COLUMNS {
                s.push_str(&format!("{c:<w$}"));
            } else {
                s.push_str(&format!("{c:>w$}"));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let (rounds, ratio) = rounds_and_ratio(report);
    let form = super::form_note(report);
    let mut out = format!("hz3-analyze matrix: {rounds}, {ratio}; {form}\n");
    out += &line(&heading);
    for r in &body {
        out += &line(r);
    }
    out
}

/// One line per row; numbers unformatted, empty cells where a row has no value (all runs crashed).
pub fn csv(report: &MatrixReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS.iter().map(|c| c.field))?;
    for r in &report.rows {
        w.write_record(COLUMNS.iter().map(|c| (c.raw)(r, report)))?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

pub fn markdown(report: &MatrixReport) -> String {
    let (rounds, ratio) = rounds_and_ratio(report);
    let form = super::form_note(report);
    let mut out = format!("Interleaved matrix, {rounds}; {ratio}; {form}.\n\n");
    let heading = headings();
    out += &format!("| {} |\n", heading.join(" | "));
    let numbers = heading.len() - TEXT_COLUMNS;
    out += &format!(
        "|{}{}\n",
        "---|".repeat(TEXT_COLUMNS),
        "---:|".repeat(numbers)
    );
    for r in &report.rows {
        out += &format!("| {} |\n", cells(r).join(" | "));
    }
    out += "\nBench arguments per preset:\n\n";
    for w in &report.workloads {
        out += &format!("- {}: `hz3-bench {}`\n", w.preset, w.args.join(" "));
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::{finish_rows, test_row, Workload};
    use super::*;

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
        assert_eq!(records[1][5].parse::<f64>().unwrap(), 2.0);
        assert_eq!(&records[1][11], "SIGSEGV;SIGSEGV");
        assert_eq!(&records[0][12], "10;12;11");
    }

    #[test]
    fn json_round_trips_and_table_and_markdown_show_every_row() {
        let report = sample_report();
        let text = serde_json::to_string(&report).unwrap();
        let back: MatrixReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["rows"][0]["median_mops"], 11.0);

        let t = table(&report);
        assert!(
            t.lines()
                .any(|l| l.starts_with("remote-heavy-small  mine") && l.ends_with("2 (SIGSEGV)")),
            "{t}"
        );
        let md = markdown(&report);
        assert_eq!(
            md.lines()
                .filter(|l| l.starts_with("| remote-heavy-small"))
                .count(),
            2,
            "{md}"
        );
        assert!(
            md.contains("| 11.00 | 10.00 | 12.00 | 1.00x | 90.9 | 2.0 |"),
            "{md}"
        );
    }
}
