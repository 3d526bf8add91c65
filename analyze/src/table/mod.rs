//! The one table type every table the CLI prints goes through, and one renderer per format
//! (hyperfine's one-exporter-per-format shape): aligned text (`text.rs`), CSV (`csv.rs`), markdown
//! (`markdown.rs`) and HTML (`html.rs`) render a [`Table`]; JSON (`json.rs`) is the typed rows'
//! serde form, numbers unrounded, as hyperfine's JSON exporter writes its results rather than its
//! table. `format.rs` is the `--json` / `--csv` switch the subcommands share, `cells.rs` the
//! number formats of their cells.
mod cells;
mod csv;
mod format;
mod html;
pub mod json;
mod markdown;
mod text;

pub use cells::{num, pct, signed};
pub use format::Format;
pub use html::escape;

/// Where a column's cells sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
    /// A column of numbers that may hold a note instead (probe counts, crash kinds): in text each
    /// cell is right-aligned when it reads as a number and left-aligned otherwise; markdown and
    /// HTML align a whole column, right only when every cell reads as a number.
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub header: String,
    pub align: Align,
}

impl Column {
    pub fn new(header: impl Into<String>, align: Align) -> Column {
        Column {
            header: header.into(),
            align,
        }
    }

    pub fn left(header: impl Into<String>) -> Column {
        Column::new(header, Align::Left)
    }

    pub fn right(header: impl Into<String>) -> Column {
        Column::new(header, Align::Right)
    }

    pub fn auto(header: impl Into<String>) -> Column {
        Column::new(header, Align::Auto)
    }
}

/// Columns (a header and an alignment each) and rows of cells, already formatted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: impl IntoIterator<Item = Column>) -> Table {
        Table {
            columns: columns.into_iter().collect(),
            rows: Vec::new(),
        }
    }

    /// The shape of the perf tables: a name first (left), numbers after it (right), and a last
    /// column that may hold a note ([`Align::Auto`]).
    pub fn named_rows(headers: &[&str]) -> Table {
        let last = headers.len().saturating_sub(1);
        Table::new(headers.iter().enumerate().map(|(i, h)| match i {
            0 => Column::left(*h),
            i if i == last => Column::auto(*h),
            _ => Column::right(*h),
        }))
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn headers(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.header.as_str())
    }

    /// Aligned columns two spaces apart, no trailing blanks.
    pub fn to_text(&self) -> String {
        text::render(self)
    }

    /// A header record and one record per row.
    pub fn to_csv(&self) -> anyhow::Result<String> {
        csv::render(self)
    }

    /// A pipe table, `|` in cells escaped.
    pub fn to_markdown(&self) -> String {
        markdown::render(self)
    }

    /// A `<table>`, cells escaped; left-aligned cells carry `class="t"`.
    pub fn to_html(&self) -> String {
        html::render(self)
    }

    /// Whether column `col` is right-aligned as a whole (markdown and HTML).
    fn right_aligned(&self, col: usize) -> bool {
        match self.columns[col].align {
            Align::Left => false,
            Align::Right => true,
            Align::Auto => self
                .rows
                .iter()
                .all(|row| row.get(col).is_none_or(|c| reads_as_number(c))),
        }
    }
}

/// Whether a cell reads as a number ("+1.50", "3.2x", "12.5%", "-", empty).
fn reads_as_number(cell: &str) -> bool {
    let c = cell.trim().trim_end_matches(['x', '%']);
    c.is_empty() || c == "-" || c.trim_start_matches('+').parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::named_rows(&["box", "ns/op", "note"]);
        t.push(vec!["a|b".into(), "+1.00".into(), "2 (exit 2)".into()]);
        t.push(vec!["central".into(), "-".into(), "12".into()]);
        t
    }

    #[test]
    fn text_aligns_names_left_numbers_right_and_notes_left() {
        assert_eq!(
            sample().to_text(),
            "box      ns/op  note\na|b      +1.00  2 (exit 2)\ncentral      -          12\n"
        );
    }

    #[test]
    fn markdown_and_html_align_whole_columns_and_escape() {
        let t = sample();
        assert_eq!(
            t.to_markdown(),
            "| box | ns/op | note |\n| --- | ---: | --- |\n| a\\|b | +1.00 | 2 (exit 2) |\n| central | - | 12 |\n"
        );
        let html = t.to_html();
        assert!(
            html.contains(
                "<tr><td class=\"t\">a|b</td><td>+1.00</td><td class=\"t\">2 (exit 2)</td></tr>"
            ),
            "{html}"
        );
        let mut numbers = Table::named_rows(&["box", "B-A"]);
        numbers.push(vec!["c".into(), "3.2x".into()]);
        assert!(numbers.to_markdown().contains("| --- | ---: |"));
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let csv = sample().to_csv().unwrap();
        assert_eq!(csv, "box,ns/op,note\na|b,+1.00,2 (exit 2)\ncentral,-,12\n");
        let mut t = Table::new([Column::left("k"), Column::left("v")]);
        t.push(vec!["a,b".into(), "say \"x\"".into()]);
        assert_eq!(t.to_csv().unwrap(), "k,v\n\"a,b\",\"say \"\"x\"\"\"\n");
    }
}
