//! `attribute RUN`: where a recorded run's CPU time went, box by box, per op.
//!
//! Box ns/op is the box's sampled CPU time (sample count × period) ÷ ops. The measured CPU ns/op
//! is task-clock ÷ ops from the counting group read around the bench, which does not depend on
//! sampling; `unsampled` = measured − Σ boxes is the CPU time the sampler did not see (lost
//! samples, the bench's exec) and is printed, never spread over the boxes.
//!
//! The last line says how much of the allocator's time the rules left unnamed: `other` (no rule
//! matched) plus the `api` boxes (an entry point's own frames, or a whole allocator without rules
//! or symbols), as a share of allocator time + `other`. Allocator time is every box whose shared
//! name is an allocator box (see `analyze/boxes/default.toml`).
use crate::boxes;
use crate::perf_run::Run;
use crate::table::{num, pct, Column, Format, Table};
use anyhow::Result;
use flamegraphs::{Folded, LockKind, Rules};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  hz3-analyze attribute runs/tcmalloc
  hz3-analyze attribute runs/hz3_scale --boxes my-boxes.toml --json
  hz3-analyze attribute runs/glibc --csv > glibc-boxes.csv";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Run directory written by `hz3-analyze record`
    pub run: PathBuf,
    /// Box rules (TOML) read in front of the built-in ones (see analyze/boxes/default.toml)
    #[arg(long, value_name = "FILE")]
    pub boxes: Option<PathBuf>,
    #[command(flatten)]
    pub format: Format,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BoxRow {
    pub name: String,
    /// The box in the schema every allocator shares (`central`, `thread_cache`…).
    pub shared: String,
    pub lock: Option<String>,
    /// Share of the sampled CPU time.
    pub share: f64,
    pub ns_per_op: f64,
    /// Off-CPU ns/op asleep (not runnable) with user code in this box, summed over threads.
    pub asleep_ns_per_op: f64,
    /// Probe events per op for this box's probe keys (non-zero ones), when the run has a dump.
    pub probes_per_op: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LockSplit {
    /// On-CPU time in mutex boxes (pthread_mutex_*, lll locks, the futex path).
    pub mutex: f64,
    /// On-CPU time in spin loops.
    pub spin: f64,
    /// Off-CPU time asleep in the futex path; None when off-CPU time was not recorded.
    pub wait: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OffCpu {
    /// Asleep with user code in a lock box (mutex or spin kind).
    pub wait: f64,
    /// Asleep anywhere else (the bench's barriers, joins, page-in...).
    pub blocked_other: f64,
    pub preempted: f64,
}

/// How much of the allocator's CPU time the rules left unnamed, ns/op.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Unnamed {
    /// Every box whose shared name is an allocator box (api included).
    pub allocator: f64,
    /// The `api` boxes: an entry point's own frames, or an allocator without rules or symbols.
    pub api: f64,
    pub other: f64,
    /// (api + other) / (allocator + other); 0 when there is no such time.
    pub share: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub run: String,
    pub allocator: String,
    pub config: String,
    pub ops: u64,
    /// What the per-X figures are per: `op`, or `run` (a program recorded without an op count;
    /// every `*_ns_per_op` field is then ns per run).
    pub unit: String,
    pub sample_event: String,
    pub samples: u64,
    pub switches: u64,
    /// Measured CPU ns/op and where it came from (`task-clock` or `samples`).
    pub measured_ns_per_op: f64,
    pub measured_from: String,
    pub boxes_ns_per_op: f64,
    pub unsampled_ns_per_op: f64,
    /// The bench's own wall-clock ns/op (secs ÷ ops), for reference.
    pub wall_ns_per_op: f64,
    /// Wall ns/op × the CPUs the bench could use (min of CPUs and threads), when the run says how
    /// many CPUs it had: the CPU time the run occupied, used by the bench or not.
    pub wall_cpu_ns_per_op: Option<f64>,
    pub boxes: Vec<BoxRow>,
    /// perf's warnings about events it lost while recording (they make `unsampled` grow).
    pub perf_warnings: Vec<String>,
    /// ns/op.
    pub lock: LockSplit,
    /// ns/op, summed over threads (not part of the CPU total); None when not recorded.
    pub offcpu: Option<OffCpu>,
    /// Why off-CPU time was not recorded (tracefs missing, --no-offcpu...).
    pub offcpu_not_recorded: Option<String>,
    pub unnamed: Unnamed,
    /// The host's core-to-core round trip probed before and after the recording, ns (those that
    /// succeeded; empty for older runs): `gap` warns when two runs had different host regimes.
    pub round_trip_ns: Vec<f64>,
}

/// The attribution of one loaded run.
pub fn build_report(run: &Run, rules: &Rules) -> Report {
    let a = flamegraphs::attribute(&stacks(run, false), &stacks(run, true), rules);
    let ops = run.ops();
    let sampled = a.cpu_total();
    let probe_counts = run.probe_counts();
    let boxes = a
        .boxes
        .iter()
        .map(|b| BoxRow {
            name: b.name.clone(),
            shared: rules.shared_name(&b.name),
            lock: b.lock.map(|k| lock_name(k).to_string()),
            share: if sampled > 0.0 { b.cpu / sampled } else { 0.0 },
            ns_per_op: b.cpu / ops,
            asleep_ns_per_op: b.asleep / ops,
            probes_per_op: probes_for(&probe_counts, &rules.probe_prefixes(&b.name), ops),
        })
        .collect::<Vec<BoxRow>>();
    let unnamed = unnamed(&boxes, rules);
    let (measured, from) = run.measured_cpu_ns_per_op();
    let offcpu_not_recorded = run.offcpu_missing();
    let recorded = offcpu_not_recorded.is_none();
    Report {
        run: run.dir.display().to_string(),
        allocator: run.allocator().to_string(),
        config: run.config_key(),
        ops: run.bench.ops,
        unit: run.unit().to_string(),
        sample_event: run.profile.sample_event.clone(),
        samples: run.profile.samples,
        switches: run.profile.switches,
        measured_ns_per_op: measured,
        measured_from: from.to_string(),
        boxes_ns_per_op: sampled / ops,
        unsampled_ns_per_op: measured - sampled / ops,
        wall_ns_per_op: run.bench.secs * 1e9 / ops,
        // A program's thread count is unknown, so its occupied CPU time is too.
        wall_cpu_ns_per_op: run
            .meta
            .as_ref()
            .filter(|_| run.program.is_none())
            .and_then(|m| m.cpus)
            .map(|cpus| run.bench.secs * 1e9 / ops * cpus.min(run.bench.config.threads) as f64),
        boxes,
        perf_warnings: run.perf_warnings.clone(),
        lock: LockSplit {
            mutex: a.lock_cpu(LockKind::Mutex) / ops,
            spin: a.lock_cpu(LockKind::Spin) / ops,
            wait: recorded.then(|| a.wait() / ops),
        },
        offcpu: recorded.then(|| OffCpu {
            wait: a.wait() / ops,
            blocked_other: a.asleep_elsewhere() / ops,
            preempted: a.preempted / ops,
        }),
        offcpu_not_recorded,
        unnamed,
        round_trip_ns: run
            .meta
            .iter()
            .flat_map(|m| [m.round_trip_before_ns, m.round_trip_after_ns])
            .flatten()
            .collect(),
    }
}

/// An entry-point frame whose library perf did not print (the folder tags it `[inlined]`).
const LIBRARY_UNKNOWN: &str = " [inlined]";

/// The one library a run preloaded (its file name, symlinks resolved when the file is here, as
/// perf names it), or None: no preload, or a list (`a.so:b.so`), where the interposer and the
/// allocator cannot be told apart.
pub fn preloaded_library(run: &Run) -> Option<String> {
    let preload = run.meta.as_ref()?.preload.as_str();
    let mut libs = preload.split([':', ' ']).filter(|s| !s.is_empty());
    let one = Path::new(libs.next()?);
    if libs.next().is_some() {
        return None;
    }
    let real = std::fs::canonicalize(one).unwrap_or_else(|_| one.to_path_buf());
    real.file_name()?.to_str().map(str::to_string)
}

/// The run's on-CPU (or off-CPU) stacks as the box rules should see them: entry points perf
/// printed without a library carry the preloaded one ([`entry_points_of`]). Whatever classifies a
/// run's stacks (attribution, flamegraphs, exports) reads them through here.
pub fn stacks(run: &Run, offcpu: bool) -> Cow<'_, Folded> {
    let folded = if offcpu {
        &run.profile.offcpu
    } else {
        &run.profile.cpu
    };
    match preloaded_library(run) {
        Some(lib) => entry_points_of(folded, &lib),
        None => Cow::Borrowed(folded),
    }
}

/// `stacks` with each entry point of unknown library (`malloc [inlined]`) given `lib`.
///
/// perf prints a function `NAME (inlined)`, with no library, when its debug info names it by
/// another of its aliases than the symbol perf picked: gperftools' `tc_malloc` is also `malloc`
/// and `__libc_malloc`, and every sample in its body (the inlined thread-cache pop) came out as
/// `malloc (inlined)`, charged to `alloc.entry`. Only the C entry points carry a library tag, so
/// only they can be `[inlined]`. Under LD_PRELOAD of one library every malloc-family call the
/// program makes reaches that library's, so that is whose entry point it is.
pub fn entry_points_of<'f>(stacks: &'f Folded, lib: &str) -> Cow<'f, Folded> {
    if !stacks.stacks.keys().any(|s| s.contains(LIBRARY_UNKNOWN)) {
        return Cow::Borrowed(stacks);
    }
    let tagged = format!(" [{lib}]");
    let mut out = Folded::default();
    for (stack, w) in &stacks.stacks {
        let frames: Vec<String> = stack
            .split(';')
            .map(|f| match f.strip_suffix(LIBRARY_UNKNOWN) {
                Some(name) => format!("{name}{tagged}"),
                None => f.to_string(),
            })
            .collect();
        out.add(&frames.join(";"), *w);
    }
    Cow::Owned(out)
}

/// The allocator time the rules left in `other` or an `api` box.
fn unnamed(boxes: &[BoxRow], rules: &Rules) -> Unnamed {
    let sum = |keep: &dyn Fn(&BoxRow) -> bool| -> f64 {
        boxes.iter().filter(|b| keep(b)).map(|b| b.ns_per_op).sum()
    };
    let allocator = sum(&|b| rules.is_allocator(&b.name));
    let api = sum(&|b| b.shared == "api");
    let other = sum(&|b| b.name == flamegraphs::OTHER);
    let whole = allocator + other;
    Unnamed {
        allocator,
        api,
        other,
        share: if whole > 0.0 {
            (api + other) / whole
        } else {
            0.0
        },
    }
}

pub fn lock_name(kind: LockKind) -> &'static str {
    match kind {
        LockKind::Mutex => "mutex",
        LockKind::Spin => "spin",
    }
}

fn probes_for(
    counts: &Option<BTreeMap<String, u64>>,
    prefixes: &[String],
    ops: f64,
) -> BTreeMap<String, f64> {
    let Some(counts) = counts else {
        return BTreeMap::new();
    };
    counts
        .iter()
        .filter(|(k, v)| **v > 0 && prefixes.iter().any(|p| k.starts_with(p.as_str())))
        .map(|(k, v)| (k.clone(), *v as f64 / ops))
        .collect()
}

/// The probes column: the three largest events/op of the box.
fn probes_cell(probes: &BTreeMap<String, f64>) -> String {
    let mut top: Vec<_> = probes.iter().collect();
    top.sort_by(|a, b| b.1.total_cmp(a.1));
    top.iter()
        .take(3)
        .map(|(k, v)| format!("{k}={}", num(**v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What an off-CPU figure prints as when off-CPU time was not recorded: never a zero.
pub const NOT_RECORDED: &str = "not recorded";

/// The per-box table. For CSV (`csv`): every box, unrounded numbers, all probe keys; for people:
/// boxes with samples (and `other`, always), rounded. Without off-CPU time the asleep column
/// says so (empty in CSV).
pub fn boxes_table(report: &Report, csv: bool) -> Table {
    let unit = &report.unit;
    let (ns, asleep, probes_head) = (
        format!("ns/{unit}"),
        format!("asleep ns/{unit}"),
        format!("probes (events/{unit})"),
    );
    let mut t = Table::new([
        Column::left("box"),
        Column::left("lock"),
        Column::right("share"),
        Column::right(ns),
        Column::right(asleep),
        Column::auto(probes_head),
    ]);
    let recorded = report.offcpu.is_some();
    for b in report.boxes.iter().filter(|b| {
        csv || b.share > 0.0 || b.asleep_ns_per_op > 0.0 || b.name == flamegraphs::OTHER
    }) {
        let lock = b.lock.clone().unwrap_or_default();
        t.push(if csv {
            let probes = b
                .probes_per_op
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            vec![
                b.name.clone(),
                lock,
                b.share.to_string(),
                b.ns_per_op.to_string(),
                if recorded {
                    b.asleep_ns_per_op.to_string()
                } else {
                    String::new()
                },
                probes,
            ]
        } else {
            vec![
                b.name.clone(),
                lock,
                pct(b.share),
                num(b.ns_per_op),
                if recorded {
                    num(b.asleep_ns_per_op)
                } else {
                    NOT_RECORDED.into()
                },
                probes_cell(&b.probes_per_op),
            ]
        });
    }
    t
}

/// An off-CPU figure, or "not recorded".
pub fn offcpu_cell(v: Option<f64>) -> String {
    v.map_or_else(|| NOT_RECORDED.to_string(), num)
}

pub fn render_text(report: &Report) -> String {
    let unit = &report.unit;
    let count = if unit == "op" {
        format!("ops {}", report.ops)
    } else {
        "per run (no op count)".to_string()
    };
    let mut out = format!(
        "run {}  allocator {}  {count}  {} {} samples  {} switches\n",
        report.run, report.allocator, report.samples, report.sample_event, report.switches
    );
    out += &format!(
        "CPU ns/{unit}: measured {} ({})  in boxes {}  unsampled {}\n",
        num(report.measured_ns_per_op),
        report.measured_from,
        num(report.boxes_ns_per_op),
        num(report.unsampled_ns_per_op),
    );
    out += &format!("wall ns/{unit} {}", num(report.wall_ns_per_op));
    if let Some(occupied) = report.wall_cpu_ns_per_op {
        out += &format!(
            " (x CPUs = {} CPU ns/{unit} occupied; the workload's threads ran {} of them)",
            num(occupied),
            num(report.measured_ns_per_op)
        );
    }
    out += "\n\n";
    for w in &report.perf_warnings {
        out += &format!("warning: perf: {w}\n");
    }
    if !report.perf_warnings.is_empty() {
        out += "\n";
    }
    out += &boxes_table(report, false).to_text();
    out += &format!(
        "\nlock ns/{unit}: mutex {} (on-CPU)  spin {} (on-CPU)  wait {} (asleep in a lock box)\n",
        num(report.lock.mutex),
        num(report.lock.spin),
        offcpu_cell(report.lock.wait)
    );
    match (&report.offcpu, &report.offcpu_not_recorded) {
        (Some(off), _) => {
            out += &format!(
                "off-CPU ns/{unit}, summed over threads, not in the CPU figures: lock wait {}  other sleep {}  preempted {}\n",
                num(off.wait),
                num(off.blocked_other),
                num(off.preempted)
            )
        }
        (None, why) => {
            out += &format!(
                "off-CPU (lock wait, other sleep, preempted): {NOT_RECORDED} ({})\n",
                why.as_deref().unwrap_or("no sched_switch events")
            )
        }
    }
    out += &format!(
        "allocator CPU ns/op {}: left in other {} + api {} = {} of allocator time + other\n",
        num(report.unnamed.allocator),
        num(report.unnamed.other),
        num(report.unnamed.api),
        pct(report.unnamed.share)
    );
    out
}

/// Which run `attribute` reads, with which box rules in front of the built-in ones.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeOptions {
    pub run: PathBuf,
    pub boxes: Option<PathBuf>,
}

impl From<&Args> for AttributeOptions {
    fn from(args: &Args) -> AttributeOptions {
        AttributeOptions {
            run: args.run.clone(),
            boxes: args.boxes.clone(),
        }
    }
}

/// The run's samples attributed to boxes.
pub fn attribute(opts: &AttributeOptions) -> Result<Report> {
    let rules = boxes::load(opts.boxes.as_deref())?;
    Ok(build_report(&Run::load(&opts.run)?, &rules))
}

pub fn run(args: Args) -> Result<ExitCode> {
    let report = attribute(&AttributeOptions::from(&args))?;
    args.format.print(
        &report,
        || boxes_table(&report, true).to_csv(),
        || render_text(&report),
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_less_entry_points_take_the_preloaded_library() {
        let mut stacks = Folded::default();
        stacks.add("bench-1;worker;malloc [inlined]", 3.0);
        stacks.add(
            "bench-1;worker;free [inlined];tcmalloc::ThreadCache::Scavenge",
            2.0,
        );
        stacks.add("bench-1;worker;memset", 1.0);
        let tagged = entry_points_of(&stacks, "libtcmalloc.so.4.5.10");
        let keys: Vec<&String> = tagged.stacks.keys().collect();
        assert_eq!(
            keys,
            [
                "bench-1;worker;free [libtcmalloc.so.4.5.10];tcmalloc::ThreadCache::Scavenge",
                "bench-1;worker;malloc [libtcmalloc.so.4.5.10]",
                "bench-1;worker;memset",
            ]
        );
        assert_eq!(tagged.total(), 6.0);
        // Nothing to tag: the profile is not copied.
        let mut plain = Folded::default();
        plain.add("bench-1;worker;malloc [libhz3_scale.so]", 1.0);
        assert!(matches!(entry_points_of(&plain, "x.so"), Cow::Borrowed(_)));
    }

    #[test]
    fn boxes_classify_the_tagged_frames_by_their_library() {
        let rules = crate::boxes::defaults();
        let mut stacks = Folded::default();
        stacks.add("bench-1;worker;malloc [inlined]", 1.0);
        let tagged = entry_points_of(&stacks, "libtcmalloc.so.4");
        let a = flamegraphs::attribute(&tagged, &Folded::default(), &rules);
        let named: Vec<&str> = a
            .boxes
            .iter()
            .filter(|b| b.cpu > 0.0)
            .map(|b| b.name.as_str())
            .collect();
        assert_eq!(named, ["tcmalloc.thread_cache"]);
    }
}
