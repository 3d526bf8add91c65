//! A table as aligned text for the terminal.
use super::{Align, Table};

pub fn render(t: &Table) -> String {
    let count = |c: &str| c.chars().count();
    let header: Vec<String> = t.headers().map(str::to_owned).collect();
    let lines = || std::iter::once(&header).chain(&t.rows);
    let mut widths: Vec<usize> = vec![0; t.columns.len()];
    for row in lines() {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(count(cell));
        }
    }
    let mut out = String::new();
    for row in lines() {
        let mut line = String::new();
        for (i, ((cell, column), w)) in row.iter().zip(&t.columns).zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(w - count(cell));
            let right = match column.align {
                Align::Left => false,
                Align::Right => true,
                Align::Auto => super::reads_as_number(cell),
            };
            if right {
                line.push_str(&pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&pad);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
