//! Number formats for table cells.

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
