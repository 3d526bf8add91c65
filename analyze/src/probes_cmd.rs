//! `hz3-analyze probes`: an hz3 probes dump as a table of every counter with its meaning, per op,
//! or as the difference of two runs; plus the per-lock-site mutex-versus-spin split.
use crate::table::{Column, Table};
use anyhow::Context;
use probes::reader::Dump;
use probes::{Event, LockSite, LockStat};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  hz3-analyze probes run/probes.json                       # every non-zero counter, with its meaning
  hz3-analyze probes run/probes.json --per-op 1000000      # divided by the bench's op count
  hz3-analyze probes fast.json --diff scale.csv --per-op 1000000   # B - A per counter, and B / A
  hz3-analyze probes run/probes.csv --all --csv > table.csv        # include zero rows, machine-readable

The dump comes from HZ3_PROBES_OUT=path.json|path.csv with a libhz3_*_probes.so preloaded,
or from hz3_probes_dump(path). JSON and CSV dumps are told apart by their content.";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The probes dump to show (run A when --diff is given)
    pub file: PathBuf,
    /// Divide every count by this many operations (the bench's op count)
    #[arg(long, value_name = "OPS", value_parser = clap::value_parser!(u64).range(1..))]
    pub per_op: Option<u64>,
    /// A second dump (run B): show B - A and B / A per counter
    #[arg(long, value_name = "OTHER")]
    pub diff: Option<PathBuf>,
    /// Also show counters that are zero (in both runs, with --diff)
    #[arg(long)]
    pub all: bool,
    /// Print the rows as JSON instead of a table
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print the rows as CSV instead of a table
    #[arg(long)]
    pub csv: bool,
}

/// One counter of the dump (an event, or one lock site's statistic), in one or two runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CounterRow {
    /// The dump key: an event key, or `lock.<site>.<stat>`.
    pub key: String,
    pub meaning: String,
    pub a: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a_per_op: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b_per_op: Option<f64>,
    /// B - A (signed; counts fit in u64, so the difference fits in i128).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<i128>,
    /// B / A; absent when A is zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
}

/// One lock site's split: how acquisitions went, and what contention cost.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LockRow {
    /// `A` or `B` (which run), for --diff; `A` alone otherwise.
    pub run: &'static str,
    pub site: &'static str,
    pub acquisitions: u64,
    pub uncontended: u64,
    pub spun: u64,
    pub spin_iters: u64,
    pub waited: u64,
    pub wait_ns: u64,
    pub futex_wakes: u64,
    /// Share of acquisitions that did not get the lock at the first try, in percent.
    pub contended_pct: Option<f64>,
    /// Wait nanoseconds spread over every acquisition.
    pub ns_per_acquisition: Option<f64>,
    /// Wait nanoseconds per contended (spun or waited) acquisition.
    pub ns_per_contended: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub a: DumpInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<DumpInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_op: Option<u64>,
    pub counters: Vec<CounterRow>,
    pub locks: Vec<LockRow>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DumpInfo {
    pub file: String,
    pub lane: String,
    pub pid: u32,
    pub schema: u32,
    pub threads: usize,
}

fn info(path: &Path, dump: &Dump) -> DumpInfo {
    DumpInfo {
        file: path.display().to_string(),
        lane: dump.lane.clone(),
        pid: dump.pid,
        schema: dump.schema,
        threads: dump.threads.len(),
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den != 0).then(|| num as f64 / den as f64)
}

/// Every counter key with its meaning and its value in `dump`, in catalogue order.
fn counters(dump: &Dump) -> Vec<(String, String, u64)> {
    let mut rows: Vec<_> = Event::ALL
        .iter()
        .map(|e| (e.key().to_string(), e.meaning().to_string(), dump.event(*e)))
        .collect();
    for site in LockSite::ALL {
        for stat in LockStat::ALL {
            rows.push((
                format!(
                    "{}{}.{}",
                    probes::dump::LOCK_KEY_PREFIX,
                    site.key(),
                    stat.key()
                ),
                format!("{}: {}", site.key(), stat.meaning()),
                dump.lock(*site, *stat),
            ));
        }
    }
    rows
}

fn lock_rows(run: &'static str, dump: &Dump) -> Vec<LockRow> {
    LockSite::ALL
        .iter()
        .map(|&site| {
            let get = |stat| dump.lock(site, stat);
            let (uncontended, spun, waited) = (
                get(LockStat::Uncontended),
                get(LockStat::Spun),
                get(LockStat::Waited),
            );
            let acquisitions = uncontended.saturating_add(spun).saturating_add(waited);
            let contended = spun.saturating_add(waited);
            let wait_ns = get(LockStat::WaitNs);
            LockRow {
                run,
                site: site.key(),
                acquisitions,
                uncontended,
                spun,
                spin_iters: get(LockStat::SpinIters),
                waited,
                wait_ns,
                futex_wakes: get(LockStat::Wakes),
                contended_pct: ratio(contended, acquisitions).map(|r| r * 100.0),
                ns_per_acquisition: ratio(wait_ns, acquisitions),
                ns_per_contended: ratio(wait_ns, contended),
            }
        })
        .collect()
}

/// The rows to show: A alone, or A and B side by side; zero rows dropped unless `all`.
pub fn build_report(
    a: (&Path, &Dump),
    b: Option<(&Path, &Dump)>,
    per_op: Option<u64>,
    all: bool,
) -> Report {
    let per = |v: u64| per_op.map(|ops| v as f64 / ops as f64);
    let b_counters = b.map(|(_, d)| counters(d));
    let counters = counters(a.1)
        .into_iter()
        .enumerate()
        .map(|(i, (key, meaning, av))| {
            let bv = b_counters.as_ref().map(|rows| rows[i].2);
            CounterRow {
                key,
                meaning,
                a: av,
                a_per_op: per(av),
                b: bv,
                b_per_op: bv.and_then(per),
                delta: bv.map(|bv| bv as i128 - av as i128),
                ratio: bv.and_then(|bv| ratio(bv, av)),
            }
        })
        .filter(|r| all || r.a != 0 || r.b.unwrap_or(0) != 0)
        .collect();
    let mut locks = lock_rows("A", a.1);
    if let Some((_, bd)) = b {
        locks.extend(lock_rows("B", bd));
    }
    locks.retain(|l| all || l.acquisitions != 0 || l.wait_ns != 0 || l.spin_iters != 0);
    Report {
        a: info(a.0, a.1),
        b: b.map(|(p, d)| info(p, d)),
        per_op,
        counters,
        locks,
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) => format!("{v:.decimals$}"),
        None => "-".to_string(),
    }
}

fn describe(label: &str, i: &DumpInfo) -> String {
    format!(
        "{label}{} (lane {}, pid {}, schema {}, {} thread rows)\n",
        i.file, i.lane, i.pid, i.schema, i.threads
    )
}

/// The human table.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let diff = report.b.is_some();
    match &report.b {
        None => out.push_str(&describe("probes: ", &report.a)),
        Some(b) => {
            out.push_str(&describe("A: ", &report.a));
            out.push_str(&describe("B: ", b));
        }
    }
    if let Some(ops) = report.per_op {
        let _ = writeln!(out, "per op: counts divided by {ops} ops");
    }
    out.push('\n');
    let per_op = report.per_op.is_some();
    let mut columns = vec![Column::left("counter")];
    let numbers: &[&str] = match (diff, per_op) {
        (true, true) => &["A", "B", "B-A", "B/A", "A/op", "B/op"],
        (true, false) => &["A", "B", "B-A", "B/A"],
        (false, true) => &["count", "per op"],
        (false, false) => &["count"],
    };
    columns.extend(numbers.iter().map(|h| Column::right(*h)));
    columns.push(Column::left("meaning"));
    let mut counters = Table::new(columns);
    for r in &report.counters {
        let mut cells = vec![r.key.clone(), r.a.to_string()];
        if diff {
            cells.push(r.b.map_or("-".into(), |b| b.to_string()));
            cells.push(r.delta.map_or("-".into(), |d| format!("{d:+}")));
            cells.push(opt(r.ratio, 3));
        }
        if per_op {
            cells.push(opt(r.a_per_op, 4));
            if diff {
                cells.push(opt(r.b_per_op, 4));
            }
        }
        cells.push(r.meaning.clone());
        counters.push(cells);
    }
    out += &counters.to_text();
    if report.counters.is_empty() {
        out.push_str("(every counter is zero; --all shows them)\n");
    }
    out.push_str("\nlocks: mutex vs spin split per site\n");
    if report.locks.is_empty() {
        out.push_str("(no lock was taken; --all shows every site)\n");
        return out;
    }
    let mut locks = Table::new([Column::left("run"), Column::left("site")]);
    locks.columns.extend(
        [
            "acquisitions",
            "uncontended",
            "spun",
            "spin_iters",
            "waited",
            "wait_ns",
            "wakes",
            "contended%",
            "ns/acq",
            "ns/contd",
        ]
        .map(Column::right),
    );
    for l in &report.locks {
        locks.push(vec![
            l.run.to_string(),
            l.site.to_string(),
            l.acquisitions.to_string(),
            l.uncontended.to_string(),
            l.spun.to_string(),
            l.spin_iters.to_string(),
            l.waited.to_string(),
            l.wait_ns.to_string(),
            l.futex_wakes.to_string(),
            opt(l.contended_pct, 2),
            opt(l.ns_per_acquisition, 1),
            opt(l.ns_per_contended, 1),
        ]);
    }
    out += &locks.to_text();
    out
}

/// One CSV table: the counter rows (`section=counter`) then the lock rows (`section=lock`).
pub fn render_csv(report: &Report) -> anyhow::Result<String> {
    let mut t = Table::new(
        [
            "section", "run", "key", "a", "b", "delta", "ratio", "a_per_op", "b_per_op", "meaning",
        ]
        .map(Column::left),
    );
    let num = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for r in &report.counters {
        t.push(vec![
            "counter".to_string(),
            String::new(),
            r.key.clone(),
            r.a.to_string(),
            r.b.map_or(String::new(), |b| b.to_string()),
            r.delta.map_or(String::new(), |d| d.to_string()),
            num(r.ratio),
            num(r.a_per_op),
            num(r.b_per_op),
            r.meaning.clone(),
        ]);
    }
    for l in &report.locks {
        let derived = [
            ("acquisitions", Some(l.acquisitions as f64)),
            ("contended_pct", l.contended_pct),
            ("ns_per_acquisition", l.ns_per_acquisition),
            ("ns_per_contended", l.ns_per_contended),
        ];
        for (stat, value) in derived {
            let mut row = vec![
                "lock".to_string(),
                l.run.to_string(),
                format!("{}.{stat}", l.site),
                num(value),
            ];
            row.resize(t.columns.len(), String::new());
            t.push(row);
        }
    }
    t.to_csv()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let a = probes::reader::read(&args.file)?;
    let b = match &args.diff {
        Some(path) => Some(probes::reader::read(path)?),
        None => None,
    };
    let report = build_report(
        (&args.file, &a),
        args.diff.as_deref().zip(b.as_ref()),
        args.per_op,
        args.all,
    );
    let text = if args.json {
        crate::table::json::render(&report)?
    } else if args.csv {
        render_csv(&report)?
    } else {
        render_table(&report)
    };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()) {
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.context("writing to stdout")?,
    }
    Ok(ExitCode::SUCCESS)
}
