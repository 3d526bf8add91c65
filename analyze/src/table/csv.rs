//! A table as CSV: the headers, then one record per row.
use super::Table;

pub fn render(t: &Table) -> anyhow::Result<String> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(t.headers())?;
    for row in &t.rows {
        w.write_record(row)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
