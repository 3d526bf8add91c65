//! `gap A B`: how much slower B is than A per op, box by box, and what the boxes leave unexplained.
//!
//! measured difference = B's CPU ns/op − A's, each task-clock ÷ ops from the counting group (an
//! independent measurement; the sampled total only when a run has no counters). Each box's
//! difference comes from the samples. residual = measured difference − Σ box differences: CPU
//! time that the samples of one run saw and the other did not. Off-CPU time is listed apart and
//! is not in either sum: with more threads than CPUs a sleeping thread's CPU is used by another,
//! so adding sleep to CPU time would count it twice.
//!
//! `--level shared` sums each run's boxes into the schema every allocator shares (`hz3.central`
//! and `jemalloc.bin` are both `central`), so two allocators line up row by row; `--level own`
//! (the default) keeps each allocator's own boxes. Boxes only one run has (an allocator's own
//! boxes, a `<lib>.api` box) count as 0 in the other.
use crate::attribute::{build_report, Report};
use crate::boxes;
use crate::perf_run::Run;
use crate::table::{num, signed, Format, Table};
use anyhow::{bail, Result};
use flamegraphs::Level;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  hz3-analyze gap runs/tcmalloc runs/hz3_scale        # positive = hz3_scale spends more ns/op
  hz3-analyze gap runs/glibc runs/jemalloc --json
  hz3-analyze gap runs/jemalloc runs/hz3_scale --level shared   # hz3.central vs jemalloc.bin in one row
  hz3-analyze gap runs/a runs/b --boxes my-boxes.toml --csv";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Baseline run directory
    pub a: PathBuf,
    /// Run compared against the baseline (differences are B − A)
    pub b: PathBuf,
    /// Box rules (TOML) read in front of the built-in ones
    #[arg(long, value_name = "FILE")]
    pub boxes: Option<PathBuf>,
    /// Compare each allocator's own boxes, or the shared schema (api, thread_cache, remote_free,
    /// transfer, central, page_source, os, purge, lock.*, metadata) every allocator maps onto
    #[arg(long, value_enum, default_value_t = LevelArg::Own)]
    pub level: LevelArg,
    #[command(flatten)]
    pub format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelArg {
    Own,
    Shared,
}

impl From<LevelArg> for Level {
    fn from(l: LevelArg) -> Level {
        match l {
            LevelArg::Own => Level::Own,
            LevelArg::Shared => Level::Shared,
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GapRow {
    pub name: String,
    pub a: f64,
    pub b: f64,
    pub diff: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Gap {
    pub a: String,
    pub b: String,
    pub allocator_a: String,
    pub allocator_b: String,
    pub config: String,
    /// What the figures are per: `op`, or `run` (a program recorded without an op count).
    pub unit: String,
    pub measured_a: f64,
    pub measured_b: f64,
    pub measured_diff: f64,
    pub measured_from: String,
    /// Boxes sorted by |diff|, largest first.
    pub boxes: Vec<GapRow>,
    pub boxes_diff: f64,
    pub residual: f64,
    /// wait / other sleep / preempted, ns/op summed over threads; not in the sums above. Empty
    /// (null in JSON) when either run has no off-CPU time.
    #[serde(serialize_with = "empty_as_null")]
    pub offcpu: Vec<GapRow>,
    /// Why there is no off-CPU comparison (`A: tracefs is not mounted...`).
    pub offcpu_not_recorded: Option<String>,
    /// The bench's own wall-clock ns/op (secs ÷ ops), for reference: it also moves with idle CPU
    /// and leaves out setup, so it is not the figure the boxes are held to.
    pub wall: GapRow,
    /// perf's lost-event warnings of either run, prefixed `A:` / `B:`.
    pub perf_warnings: Vec<String>,
    /// When the two recordings had different host regimes (`core_round_trip::compare_runs`).
    pub host_warning: Option<String>,
}

fn empty_as_null<S: serde::Serializer>(rows: &[GapRow], s: S) -> Result<S::Ok, S::Error> {
    if rows.is_empty() {
        s.serialize_none()
    } else {
        s.collect_seq(rows)
    }
}

/// The gap of each allocator's own boxes.
pub fn build_gap(a: &Report, b: &Report) -> Result<Gap> {
    build_gap_at(a, b, Level::Own)
}

/// Box ns/op of one run at `level`, in first-seen order.
fn boxes_at(r: &Report, level: Level) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for b in &r.boxes {
        let name = match level {
            Level::Own => b.name.clone(),
            Level::Shared => b.shared.clone(),
        };
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v += b.ns_per_op,
            None => out.push((name, b.ns_per_op)),
        }
    }
    out
}

/// The gap at `level` (see the module's note).
pub fn build_gap_at(a: &Report, b: &Report, level: Level) -> Result<Gap> {
    if a.config != b.config {
        bail!(
            "gap needs two runs of the same bench configuration:\n  A: {}\n  B: {}",
            a.config,
            b.config
        );
    }
    let (in_a, in_b) = (boxes_at(a, level), boxes_at(b, level));
    let value = |list: &[(String, f64)], name: &str| {
        list.iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, v)| *v)
    };
    let mut names: Vec<&String> = in_a.iter().map(|(n, _)| n).collect();
    names.extend(
        in_b.iter()
            .map(|(n, _)| n)
            .filter(|n| !in_a.iter().any(|(m, _)| m == *n)),
    );
    let mut boxes: Vec<GapRow> = names
        .into_iter()
        .map(|name| {
            let (x, y) = (value(&in_a, name), value(&in_b, name));
            GapRow {
                name: name.clone(),
                a: x,
                b: y,
                diff: y - x,
            }
        })
        .collect();
    boxes.sort_by(|x, y| {
        y.diff
            .abs()
            .total_cmp(&x.diff.abs())
            .then_with(|| x.name.cmp(&y.name))
    });
    let boxes_diff: f64 = boxes.iter().map(|r| r.diff).sum();
    let measured_diff = b.measured_ns_per_op - a.measured_ns_per_op;
    let row = |name: &str, x: f64, y: f64| GapRow {
        name: name.to_string(),
        a: x,
        b: y,
        diff: y - x,
    };
    let measured_from = if a.measured_from == b.measured_from {
        a.measured_from.clone()
    } else {
        format!("{} / {}", a.measured_from, b.measured_from)
    };
    Ok(Gap {
        a: a.run.clone(),
        b: b.run.clone(),
        allocator_a: a.allocator.clone(),
        allocator_b: b.allocator.clone(),
        config: a.config.clone(),
        measured_a: a.measured_ns_per_op,
        measured_b: b.measured_ns_per_op,
        measured_diff,
        measured_from,
        boxes,
        boxes_diff,
        residual: measured_diff - boxes_diff,
        wall: row(
            &format!("wall ns/{}", a.unit),
            a.wall_ns_per_op,
            b.wall_ns_per_op,
        ),
        perf_warnings: a
            .perf_warnings
            .iter()
            .map(|w| format!("A: {w}"))
            .chain(b.perf_warnings.iter().map(|w| format!("B: {w}")))
            .collect(),
        host_warning: crate::core_round_trip::compare_runs(&a.round_trip_ns, &b.round_trip_ns),
        offcpu: match (&a.offcpu, &b.offcpu) {
            (Some(x), Some(y)) => vec![
                row("off-cpu.lock_wait", x.wait, y.wait),
                row("off-cpu.other_sleep", x.blocked_other, y.blocked_other),
                row("off-cpu.preempted", x.preempted, y.preempted),
            ],
            _ => Vec::new(),
        },
        offcpu_not_recorded: {
            let why: Vec<String> = [("A", a), ("B", b)]
                .iter()
                .filter_map(|(side, r)| {
                    r.offcpu_not_recorded
                        .as_ref()
                        .map(|w| format!("{side}: {w}"))
                })
                .collect();
            (!why.is_empty()).then(|| why.join("; "))
        },
        unit: a.unit.clone(),
    })
}

/// The gap table, then the sum, the measured difference and the residual. For CSV (`csv`): every
/// box and unrounded numbers; for people: boxes either run sampled (and `other`, always), rounded.
pub fn gap_table(gap: &Gap, csv: bool) -> Table {
    let a_head = format!("A ns/{} ({})", gap.unit, gap.allocator_a);
    let b_head = format!("B ns/{} ({})", gap.unit, gap.allocator_b);
    let mut t = Table::named_rows(&["box", &a_head, &b_head, "B-A"]);
    let cells = |name: String, a: Option<f64>, b: Option<f64>, d: f64| -> Vec<String> {
        let fmt = |v: f64| if csv { v.to_string() } else { num(v) };
        let diff = if csv { d.to_string() } else { signed(d) };
        vec![
            name,
            a.map(fmt).unwrap_or_default(),
            b.map(fmt).unwrap_or_default(),
            diff,
        ]
    };
    for r in gap
        .boxes
        .iter()
        .chain(&gap.offcpu)
        .filter(|r| csv || r.a != 0.0 || r.b != 0.0 || r.name == flamegraphs::OTHER)
    {
        if !csv && r.name.starts_with("off-cpu.") {
            continue;
        }
        t.push(cells(r.name.clone(), Some(r.a), Some(r.b), r.diff));
    }
    t.push(cells("sum of boxes".into(), None, None, gap.boxes_diff));
    t.push(cells(
        format!("measured ({})", gap.measured_from),
        Some(gap.measured_a),
        Some(gap.measured_b),
        gap.measured_diff,
    ));
    t.push(cells(
        "residual (measured - sum)".into(),
        None,
        None,
        gap.residual,
    ));
    t
}

pub fn render_text(gap: &Gap) -> String {
    let mut out = format!(
        "A = {} ({})\nB = {} ({})\n{}\n\n",
        gap.a, gap.allocator_a, gap.b, gap.allocator_b, gap.config
    );
    for w in &gap.perf_warnings {
        out += &format!("warning: perf: {w}\n");
    }
    if let Some(w) = &gap.host_warning {
        out += &format!("warning: {w}\n");
    }
    out += &gap_table(gap, false).to_text();
    if gap.measured_diff != 0.0 {
        out += &format!(
            "boxes explain {:.0}% of the measured difference\n",
            gap.boxes_diff / gap.measured_diff * 100.0
        );
    }
    let unit = &gap.unit;
    out += &format!(
        "for reference, the wall ns/{unit}: A {}  B {}  B-A {}\n",
        num(gap.wall.a),
        num(gap.wall.b),
        signed(gap.wall.diff)
    );
    out += "\n";
    if let Some(why) = &gap.offcpu_not_recorded {
        out += &format!(
            "off-CPU (lock wait, other sleep, preempted): {} ({why})\n",
            crate::attribute::NOT_RECORDED
        );
        return out;
    }
    let (ah, bh) = (format!("A ns/{unit}"), format!("B ns/{unit}"));
    let mut off = Table::named_rows(&["off-CPU (not in the sums)", &ah, &bh, "B-A"]);
    for r in &gap.offcpu {
        off.push(vec![r.name.clone(), num(r.a), num(r.b), signed(r.diff)]);
    }
    out += &off.to_text();
    out
}

/// Which two runs `gap` compares (B - A), with which rules, at which level of boxes.
#[derive(Clone, Debug, PartialEq)]
pub struct GapOptions {
    pub a: PathBuf,
    pub b: PathBuf,
    pub boxes: Option<PathBuf>,
    pub level: Level,
}

impl From<&Args> for GapOptions {
    fn from(args: &Args) -> GapOptions {
        GapOptions {
            a: args.a.clone(),
            b: args.b.clone(),
            boxes: args.boxes.clone(),
            level: args.level.into(),
        }
    }
}

/// Per-box ns/op of B minus A, with the residual.
pub fn gap(opts: &GapOptions) -> Result<Gap> {
    let rules = boxes::load(opts.boxes.as_deref())?;
    let a = build_report(&Run::load(&opts.a)?, &rules);
    let b = build_report(&Run::load(&opts.b)?, &rules);
    build_gap_at(&a, &b, opts.level)
}

pub fn run(args: Args) -> Result<ExitCode> {
    let gap = gap(&GapOptions::from(&args))?;
    args.format.print(
        &gap,
        || gap_table(&gap, true).to_csv(),
        || render_text(&gap),
    )?;
    Ok(ExitCode::SUCCESS)
}
