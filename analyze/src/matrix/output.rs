//! The matrix as an aligned text table, CSV and markdown (the JSON is the serde form of the report).
use super::{MatrixReport, Row};
use anyhow::Result;

const HEADER: [&str; 10] = [
    "preset",
    "allocator",
    "median Mops/s",
    "min",
    "max",
    "ratio",
    "CPU ns/op",
    "peak RSS MiB",
    "ok",
    "crashed",
];

fn mops(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}x"))
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

fn cells(row: &Row) -> [String; 10] {
    [
        row.preset.clone(),
        row.allocator.clone(),
        mops(row.median_mops),
        mops(row.min_mops),
        mops(row.max_mops),
        ratio(row.ratio),
        row.cpu_ns_per_op
            .map_or_else(|| "-".into(), |v| format!("{v:.1}")),
        rss_mib(row),
        row.runs_ok.to_string(),
        crashed(row),
    ]
}

/// Aligned columns for the terminal: text left, numbers right.
pub fn table(report: &MatrixReport) -> String {
    let body: Vec<[String; 10]> = report.rows.iter().map(cells).collect();
    let mut widths = HEADER.map(str::len);
    for r in &body {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if i < 2 {
                s.push_str(&format!("{c:<w$}"));
            } else {
                s.push_str(&format!("{c:>w$}"));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = format!(
        "hz3-analyze matrix: {} round(s){}, ratio = median / {} median on the same preset\n",
        report.runs,
        if report.quick { " (quick)" } else { "" },
        report.baseline
    );
    out += &line(&HEADER.map(String::from));
    for r in &body {
        out += &line(r);
    }
    out
}

/// One line per row; numbers unformatted, empty cells where a row has no value (all runs crashed).
pub fn csv(report: &MatrixReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "preset",
        "allocator",
        "median_mops",
        "min_mops",
        "max_mops",
        "ratio",
        "baseline",
        "cpu_ns_per_op",
        "peak_rss_kib",
        "runs_ok",
        "crashed",
        "crashes",
        "samples_mops",
    ])?;
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in &report.rows {
        let samples: Vec<String> = r.samples_mops.iter().map(f64::to_string).collect();
        w.write_record([
            r.preset.clone(),
            r.allocator.clone(),
            opt(r.median_mops),
            opt(r.min_mops),
            opt(r.max_mops),
            opt(r.ratio),
            report.baseline.clone(),
            opt(r.cpu_ns_per_op),
            r.peak_rss_kib.to_string(),
            r.runs_ok.to_string(),
            r.crashed.to_string(),
            r.crashes.join(";"),
            samples.join(";"),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

pub fn markdown(report: &MatrixReport) -> String {
    let mut out = format!(
        "Interleaved matrix, {} round(s){}; ratio = median / {} median on the same preset.\n\n",
        report.runs,
        if report.quick { " (quick)" } else { "" },
        report.baseline
    );
    out += &format!("| {} |\n", HEADER.join(" | "));
    out += &format!("|{}\n", ["---|"; 2].concat() + &["---:|"; 8].concat());
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
