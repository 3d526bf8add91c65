//! A table as a markdown pipe table.
use super::Table;

pub fn render(t: &Table) -> String {
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<String> = cells.map(|c| c.replace('|', "\\|")).collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out = line(&mut t.headers());
    let aligns: Vec<&str> = (0..t.columns.len())
        .map(|i| if t.right_aligned(i) { "---:" } else { "---" })
        .collect();
    out += &format!("| {} |\n", aligns.join(" | "));
    for row in &t.rows {
        out += &line(&mut row.iter().map(String::as_str));
    }
    out
}
