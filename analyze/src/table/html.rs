//! A table as HTML, for the report's self-contained page (its style right-aligns `td` and
//! left-aligns `td.t`).
use super::Table;

pub fn render(t: &Table) -> String {
    let mut out = String::from("<table>\n<tr>");
    for h in t.headers() {
        out += &format!("<th>{}</th>", escape(h));
    }
    out += "</tr>\n";
    let right: Vec<bool> = (0..t.columns.len()).map(|i| t.right_aligned(i)).collect();
    for row in &t.rows {
        out += "<tr>";
        for (i, c) in row.iter().enumerate() {
            let class = if right.get(i) == Some(&true) {
                ""
            } else {
                " class=\"t\""
            };
            out += &format!("<td{class}>{}</td>", escape(c));
        }
        out += "</tr>\n";
    }
    out += "</table>\n";
    out
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out += "&amp;",
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '"' => out += "&quot;",
            _ => out.push(c),
        }
    }
    out
}
