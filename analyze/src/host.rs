//! `hz3-analyze host`: the machine's prices for a cache line moved between cores, a page walk and
//! a page fault ([`crate::host_costs`]), as a table, JSON or CSV.
use crate::host_costs::HostCosts;
use crate::table::{Column, Format, Table};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  hz3-analyze host              # the table (about a second)
  hz3-analyze host --json       # the figures for a script

Why: none of the three has a box in `attribute`: each lands on whichever instruction waited for it
(a prefetch, the program's memset, the fault handler). On a VM they move: the round trip switches
between near and far cores every few seconds (`matrix` probes it around every run).";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    pub format: Format,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let costs = HostCosts::measure();
    let table = table(&costs);
    args.format
        .print(&costs, || table.to_csv(), || table.to_text())?;
    Ok(ExitCode::SUCCESS)
}

/// One row a price: what, the figure (or "-" when it could not be measured here), and how.
pub fn table(c: &HostCosts) -> Table {
    let cpus = c
        .round_trip_cpus
        .map_or("one CPU: no pair".to_string(), |(a, b)| {
            format!("one cache line, CPU {a} <-> CPU {b}")
        });
    let walk_how = if c.page_walk_ns.is_some() {
        "the 4 KiB read less the 2 MiB read: same lines, only the TLB differs".to_string()
    } else {
        format!(
            "unknown: no transparent huge pages granted (THP {})",
            c.thp.as_deref().unwrap_or("absent")
        )
    };
    let reporting = match c.free_page_reporting {
        Some(true) => "on: free 2 MiB blocks go back to the host, so a THP fault waits for it",
        Some(false) => "off",
        None => "no virtio balloon",
    };
    let mut t = Table::new([
        Column::left("cost"),
        Column::right("value"),
        Column::left("how"),
    ]);
    for (what, value, how) in [
        (
            "core-to-core round trip",
            nanoseconds(c.round_trip_ns),
            cpus,
        ),
        (
            "read, 4 KiB pages",
            nanoseconds(c.read_small_pages_ns),
            format!(
                "dependent reads of random lines of {} MiB: nearly all miss the TLB",
                crate::host_costs::WALK_REGION >> 20
            ),
        ),
        (
            "read, 2 MiB pages",
            nanoseconds(c.read_huge_pages_ns),
            "the same lines on transparent huge pages".to_string(),
        ),
        ("page walk", nanoseconds(c.page_walk_ns), walk_how),
        (
            "page fault, first touch",
            microseconds(c.first_touch_us_per_page),
            "a 4 KiB page of fresh anonymous memory, written once".to_string(),
        ),
        (
            "page fault, after DONTNEED",
            microseconds(c.refault_us_per_page),
            "the same pages after madvise(MADV_DONTNEED): a purged run reused".to_string(),
        ),
        (
            "transparent huge pages",
            c.thp.clone().unwrap_or_else(|| "-".into()),
            "/sys/kernel/mm/transparent_hugepage/enabled".to_string(),
        ),
        (
            "free page reporting",
            reporting.to_string(),
            "virtio-balloon feature bit 5".to_string(),
        ),
    ] {
        t.push(vec![what.to_string(), value, how]);
    }
    t
}

/// A price in whole nanoseconds, "-" when it was not measured (the table says why).
pub fn nanoseconds(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0} ns"))
}

/// A price in microseconds, two decimals, "-" when it was not measured.
pub fn microseconds(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2} µs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_prices_show_as_dashes_and_say_why() {
        let c = HostCosts {
            round_trip_ns: Some(91.4),
            round_trip_cpus: Some((0, 1)),
            read_small_pages_ns: Some(180.2),
            thp: Some("never".into()),
            ..HostCosts::default()
        };
        let text = table(&c).to_text();
        assert!(
            text.contains("91 ns") && text.contains("CPU 0 <-> CPU 1"),
            "{text}"
        );
        assert!(text.contains("180 ns"), "{text}");
        assert!(
            text.contains("unknown: no transparent huge pages granted (THP never)"),
            "{text}"
        );
        assert!(text.contains("no virtio balloon"), "{text}");
        let walk_row = text.lines().find(|l| l.starts_with("page walk")).unwrap();
        assert!(walk_row.contains(" - "), "{walk_row}");
    }
}
