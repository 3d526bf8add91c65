//! Output of the perf subcommands: one table shape rendered as aligned text or CSV, and the
//! `--json` / `--csv` switches they share.
use anyhow::Result;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct Format {
    /// Print JSON instead of the table
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (one row per box) instead of the table
    #[arg(long)]
    pub csv: bool,
}

impl Format {
    /// Prints `value` as JSON, or the CSV `csv` makes, or the text `text` makes.
    pub fn print<T: serde::Serialize>(
        &self,
        value: &T,
        csv: impl FnOnce() -> Result<String>,
        text: impl FnOnce() -> String,
    ) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else if self.csv {
            print!("{}", csv()?);
        } else {
            print!("{}", text());
        }
        Ok(())
    }
}

/// A header row and data rows; the first column is left-aligned, the rest right-aligned.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn to_text(&self) -> String {
        let cols = self.header.len();
        let mut widths = vec![0; cols];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(cols) {
                let pad = widths[i] - cell.chars().count();
                if i == 0 {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                } else if i == cols - 1 && cell.chars().any(char::is_alphabetic) {
                    // A free-text last column (probe counts) reads better left-aligned.
                    line.push_str("  ");
                    line.push_str(cell);
                } else {
                    line.push_str("  ");
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    pub fn to_csv(&self) -> Result<String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.header)?;
        for row in &self.rows {
            w.write_record(row)?;
        }
        Ok(String::from_utf8(w.into_inner()?)?)
    }
}

/// A number for a table cell: 2 decimals, or 3 significant digits below 0.1.
pub fn num(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.1 {
        format!("{v:.3}")
    } else {
        format!("{v:.2}")
    }
}

pub fn signed(v: f64) -> String {
    if v >= 0.0 {
        format!("+{}", num(v))
    } else {
        num(v)
    }
}

pub fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}
