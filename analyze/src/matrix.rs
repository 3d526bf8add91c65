//! `matrix`: every allocator on every chosen workload, runs interleaved round by round, reported as
//! median/min/max Mops/s, ratio to a baseline, peak RSS and crashes (table, CSV, JSON, markdown, SVG),
//! optionally compared against an earlier JSON as a regression guard.
use crate::allocators::{self, Allocator};
use crate::core_round_trip;
use crate::runner::{self, Crash};
use crate::stats::{self as interval_stats, Interval};
use anyhow::{bail, Context, Result};
use bench::cli::Preset;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::process::ExitCode;

pub mod chart;
pub mod compare;
pub mod explain;
mod options;
pub mod output;
pub mod programs;
pub mod stats;

pub use options::{GuardOptions, MatrixFiles, MatrixOptions};

/// `--baseline` and `--timeout` when not given.
pub const DEFAULT_BASELINE: &str = "tcmalloc";
pub const DEFAULT_TIMEOUT_SECS: u64 = 120;
/// Exit status when `--compare` finds a regression (1 stays "the command failed").
pub const EXIT_REGRESSION: u8 = 3;
/// Version 3: rows carry the bench's memory figures (live bytes, RSS minus live bytes); version 2's
/// rows read with none. Version 2: presets write their objects unless the row is labelled
/// `:untouched` (version 1's rows never wrote them unless their arguments said `--touch`;
/// [`upgrade`] reads those files).
pub const SCHEMA: &str = "hz3-matrix/3";
const SCHEMA_V2: &str = "hz3-matrix/2";
const SCHEMA_V1: &str = "hz3-matrix/1";
/// The label suffix of a row whose objects are never written (the secondary, untouched form).
pub const UNTOUCHED: &str = ":untouched";
/// Presets whose untouched form `all` keeps as secondary rows: the four that every earlier baseline
/// measured untouched, so their history stays comparable. The other presets are touched only.
pub const UNTOUCHED_ROWS: [Preset; 4] = [
    Preset::RemoteHeavySmall,
    Preset::Remote90,
    Preset::LocalSmall,
    Preset::MixedLarge,
];

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  hz3-analyze matrix --quick
  hz3-analyze matrix --preset all --runs 5 --csv m.csv --json m.json --markdown m.md --svg m.svg
  hz3-analyze matrix --preset realloc-growth,local-small,local-small:untouched
  hz3-analyze matrix --alloc glibc --alloc mine=/tmp/libmine.so --baseline glibc -- --threads 4 --iters 100000
  hz3-analyze matrix --preset all --compare baseline.json --tolerance 5%
  hz3-analyze matrix --compare docs/baseline.json --baseline-preload-dir /tmp/hz3-baseline/target/preload
  hz3-analyze matrix --compare b.json --explain-with hz3_scale=/tmp/old/libhz3_scale.so --explain-dir /tmp/why
  hz3-analyze matrix --preset all --runs 7 --compare docs/baseline.json --summary-md \"$GITHUB_STEP_SUMMARY\"
Every median comes with a 95% bootstrap interval (seeded: the same samples give the same interval),
and so does every ratio. The guard calls a row regressed only when the interval of the change of its
ratio to the anchor lies wholly below -tolerance, or a one-sided Mann-Whitney test (p < 0.05) finds
its per-round ratios below the baseline's lowered by the tolerance, or every run crashed; a row whose
interval holds 0 is \"no change detectable at N runs\", with the runs that would detect the tolerance.
A regressed row with a baseline build is recorded (baseline build, then this one) and its gap names
the box that regressed; without one, the commands that get that explanation are printed.
Exit status: 0 ok (no regression), 3 a row regressed (--compare), 2 bad input (bench arguments, an
unreadable or mismatched --compare file), 1 any other failure.")]
pub struct Args {
    /// Allocator to measure: NAME=PATH.so, or a known name (glibc, tcmalloc, jemalloc, mimalloc,
    /// snmalloc, jemalloc-debian, mimalloc-debian, ceiling, hz3_<build> from target/preload/).
    /// Repeatable. Default: glibc, tcmalloc, jemalloc, mimalloc, snmalloc (once
    /// scripts/build-anchors built it), every libhz3_*.so except
    /// *_probes*/*_failfast*/*_inject*/*_portable* builds, and ceiling
    #[arg(long = "alloc", value_name = "NAME[=PATH]")]
    pub allocs: Vec<String>,
    /// Bench preset(s), comma-separated or repeated, or `all`; objects are written (--touch, the
    /// reference form); PRESET:untouched is the form that never writes them. `all` = every preset,
    /// then the untouched rows of remote-heavy-small, remote-90, local-small and mixed-large
    /// [default: remote-heavy-small]
    #[arg(
        long = "preset",
        value_delimiter = ',',
        value_name = "PRESET[:untouched]"
    )]
    pub presets: Vec<String>,
    /// Rounds: each round runs every (preset, allocator) once, in a rotated order [default: 5, --quick: 2]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: Option<u32>,
    /// Short smoke run: 2 rounds and a tenth of each workload's iterations (unless --runs/--iters given)
    #[arg(long)]
    pub quick: bool,
    /// Allocator the ratio column divides by (must be in the matrix)
    #[arg(long, default_value = DEFAULT_BASELINE)]
    pub baseline: String,
    /// One line per (preset, allocator), unformatted numbers and every sample
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// The full result (what --compare reads back)
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// The table as markdown, with the bench command of each preset
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Bar chart of the medians with min-max whiskers, one panel per preset
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// The hz3-bench binary [default: next to this executable]
    #[arg(long, value_name = "PATH")]
    pub bench: Option<PathBuf>,
    /// Where hz3_* and ceiling .so files are looked up [default: target/preload of this build]
    #[arg(long, value_name = "DIR")]
    pub preload_dir: Option<PathBuf>,
    /// Kill a run after this many seconds and mark it crashed; a row that timed out twice is not run in the remaining rounds
    #[arg(long, default_value_t = DEFAULT_TIMEOUT_SECS)]
    pub timeout: u64,
    /// Regression guard: compare against an earlier `--json` output; exits 3 if any row regressed
    #[arg(long, value_name = "BASELINE.json")]
    pub compare: Option<PathBuf>,
    /// Allowed drop of a row's median relative to the anchor, in percent ("5%" or "5")
    #[arg(long, default_value = "5%", value_parser = compare::parse_tolerance, requires = "compare")]
    pub tolerance: f64,
    /// What the guard compares: Mops/s, or CPU time per op (steadier on a busy machine)
    #[arg(long, value_enum, default_value_t = compare::Metric::Mops, requires = "compare")]
    pub guard_metric: compare::Metric,
    /// The anchor the guard divides by, measured in the same session [default: --baseline]
    #[arg(long, value_name = "NAME", requires = "compare")]
    pub anchor: Option<String>,
    /// Guard: the libhz3_*.so built from the baseline's revision, to name the box of each regressed
    /// row (e.g. `git worktree add /tmp/hz3-baseline REV && (cd /tmp/hz3-baseline && scripts/build-preload)`)
    #[arg(long, value_name = "DIR", requires = "compare")]
    pub baseline_preload_dir: Option<PathBuf>,
    /// Guard: the baseline's build of one allocator, NAME=PATH.so (repeatable; wins over the dir)
    #[arg(long, value_name = "NAME=PATH", requires = "compare")]
    pub explain_with: Vec<String>,
    /// Guard: where each regressed row's recordings, gap and diff flamegraph go [default: target/guard-explain]
    #[arg(long, value_name = "DIR", requires = "compare")]
    pub explain_dir: Option<PathBuf>,
    /// Guard: (baseline build, this build) recording pairs per regressed row; the boxes' medians
    /// over the pairs name the box (a box moves by a few ns/op between two runs of one build)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20), requires = "compare")]
    pub explain_pairs: u32,
    /// Markdown for a CI job's summary page: the matrix, the guard's flagged rows with their
    /// interval and box, links to their flamegraphs
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    /// Any program as a row beside the presets: NAME='CMD ARGS…' (split like a shell would),
    /// repeatable; measured per allocator as wall time, CPU time and peak RSS of its process
    /// tree. Without --preset, only the programs run
    #[arg(long = "program", value_name = "NAME='CMD ARGS…'")]
    pub programs: Vec<String>,
    /// Skip the host probe: by default the round trip of one cache line between the first two
    /// CPUs is measured (25 ms) before and after every run, and when it shows two regimes (a VM
    /// whose virtual CPUs move between near and far physical cores) the medians are also given
    /// per regime
    #[arg(long)]
    pub no_round_trip_probe: bool,
    /// When the host probe finds two regimes, keep running whole rounds after --runs until every
    /// row has at least N runs within each regime (runs whose two probes agree), up to 4x --runs
    /// rounds in all
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100), conflicts_with = "no_round_trip_probe")]
    pub runs_per_regime: Option<u32>,
    /// hz3-bench arguments after `--` (applied after the preset, so they override it)
    #[arg(last = true, value_name = "BENCH ARGS")]
    pub bench_args: Vec<String>,
}

/// One workload: a label (the preset's name, or "custom") and the full bench argument list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    pub preset: String,
    pub args: Vec<String>,
}

/// One (preset, allocator) row of the result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub preset: String,
    pub allocator: String,
    pub preload: Option<String>,
    /// Which build the row measured (version and source; see `Allocator::build`).
    #[serde(default)]
    pub build: Option<String>,
    /// What the bench reported as the answering allocator.
    pub identity: Option<String>,
    pub samples_mops: Vec<f64>,
    pub median_mops: Option<f64>,
    pub min_mops: Option<f64>,
    pub max_mops: Option<f64>,
    /// median / the baseline's median on the same preset.
    pub ratio: Option<f64>,
    /// 95% bootstrap interval of `median_mops` (seeded by preset and allocator).
    #[serde(default)]
    pub median_ci_mops: Option<Interval>,
    /// 95% bootstrap interval of `ratio` (rounds resampled with the baseline's run of each round).
    #[serde(default)]
    pub ratio_ci: Option<Interval>,
    /// CPU time of all bench threads in the timed section per op, one per successful run: it does
    /// not count time spent waiting for a core, so it drifts far less than Mops/s on a busy machine.
    #[serde(default)]
    pub samples_cpu_ns_per_op: Vec<f64>,
    /// Median of `samples_cpu_ns_per_op`.
    #[serde(default)]
    pub cpu_ns_per_op: Option<f64>,
    /// Largest ru_maxrss over the row's runs, KiB.
    pub peak_rss_kib: u64,
    /// Per successful run, from the bench's samples (KiB): the most bytes it held live (its
    /// objects as requested plus its own heap: rings, table, wheels), the RSS at that sample, the
    /// highest sampled RSS less that most live (`excess`: what the allocator needed beyond the
    /// largest live set) and the peak of RSS minus live bytes over the timed section (`overhead`:
    /// the same at its worst moment, which also counts a moment's dip of the live set). Empty in
    /// schema 2 files and for a bench that does not report them.
    #[serde(default)]
    pub samples_live_peak_kib: Vec<f64>,
    #[serde(default)]
    pub samples_rss_at_live_peak_kib: Vec<f64>,
    #[serde(default)]
    pub samples_excess_kib: Vec<f64>,
    #[serde(default)]
    pub samples_overhead_peak_kib: Vec<f64>,
    /// Medians of the four.
    #[serde(default)]
    pub live_peak_kib: Option<f64>,
    #[serde(default)]
    pub rss_at_live_peak_kib: Option<f64>,
    #[serde(default)]
    pub excess_kib: Option<f64>,
    #[serde(default)]
    pub overhead_peak_kib: Option<f64>,
    /// The host's core-to-core round trip (`core_round_trip`) probed just before and just after
    /// each successful run, ns (null where a probe failed); empty with the probe off, in older
    /// files, and on a one-CPU machine.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples_round_trip_before_ns: Vec<Option<f64>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples_round_trip_after_ns: Vec<Option<f64>>,
    pub runs_ok: usize,
    pub crashed: usize,
    /// How each crashed run ended ("SIGSEGV", "exit 1", "timeout 120s").
    pub crashes: Vec<String>,
    /// Rounds the row was not run in, after it had timed out [`runner::TIMEOUTS_BEFORE_SKIP`] times.
    #[serde(default)]
    pub skipped: usize,
}

/// Everything a matrix run produced; the `--json` file and what `--compare` reads back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatrixReport {
    pub schema: String,
    pub baseline: String,
    pub runs: u32,
    pub quick: bool,
    pub workloads: Vec<Workload>,
    pub rows: Vec<Row>,
    /// The two CPUs the core-to-core round trip was probed between (None: not probed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_trip_cpus: Option<(usize, usize)>,
}

impl Row {
    /// A row before its first run.
    pub fn empty(preset: &str, allocator: &Allocator) -> Row {
        Row {
            preset: preset.to_owned(),
            allocator: allocator.name.clone(),
            preload: allocator.preload.as_ref().map(|p| p.display().to_string()),
            build: Some(allocator.build()),
            identity: None,
            samples_mops: Vec::new(),
            samples_cpu_ns_per_op: Vec::new(),
            cpu_ns_per_op: None,
            median_mops: None,
            min_mops: None,
            max_mops: None,
            ratio: None,
            median_ci_mops: None,
            ratio_ci: None,
            peak_rss_kib: 0,
            samples_live_peak_kib: Vec::new(),
            samples_rss_at_live_peak_kib: Vec::new(),
            samples_excess_kib: Vec::new(),
            samples_overhead_peak_kib: Vec::new(),
            live_peak_kib: None,
            rss_at_live_peak_kib: None,
            excess_kib: None,
            overhead_peak_kib: None,
            samples_round_trip_before_ns: Vec::new(),
            samples_round_trip_after_ns: Vec::new(),
            runs_ok: 0,
            crashed: 0,
            crashes: Vec::new(),
            skipped: 0,
        }
    }

    pub fn record_run(&mut self, identity: &str, mops: f64, cpu_ns_per_op: f64) {
        self.identity = Some(identity.to_owned());
        self.samples_mops.push(mops);
        self.samples_cpu_ns_per_op.push(cpu_ns_per_op);
        self.runs_ok += 1;
    }

    /// A successful run's memory figures, as the bench sampled them.
    pub fn record_memory(&mut self, m: &bench::live::MemoryPeaks) {
        let kib = |bytes: f64| bytes / 1024.0;
        self.samples_live_peak_kib
            .push(kib(m.live_peak_bytes as f64));
        self.samples_rss_at_live_peak_kib
            .push(kib(m.rss_at_live_peak_bytes as f64));
        self.samples_excess_kib.push(kib(m.excess_bytes() as f64));
        self.samples_overhead_peak_kib
            .push(kib(m.overhead_peak_bytes as f64));
    }

    /// This row's runs (Mops/s) whose two host probes put them in `regime`.
    pub fn runs_in(
        &self,
        regimes: &core_round_trip::Regimes,
        regime: core_round_trip::Regime,
    ) -> Vec<f64> {
        self.samples_mops
            .iter()
            .zip(&self.samples_round_trip_before_ns)
            .zip(&self.samples_round_trip_after_ns)
            .filter_map(|((m, before), after)| {
                (regimes.of((*before)?, (*after)?) == regime).then_some(*m)
            })
            .collect()
    }

    /// The host probes around a successful run (after `record_run`).
    pub fn record_round_trip(&mut self, before: Option<f64>, after: Option<f64>) {
        self.samples_round_trip_before_ns.push(before);
        self.samples_round_trip_after_ns.push(after);
    }

    pub fn record_crash(&mut self, how: String) {
        self.crashed += 1;
        self.crashes.push(how);
    }

    /// Whether every round ran this row to the end (none crashed, none skipped).
    pub fn every_round_ran(&self) -> bool {
        self.crashed == 0 && self.skipped == 0
    }

    /// Whether the row has timed out often enough not to be run again ([`runner::gives_up`]).
    fn gives_up(&self) -> bool {
        runner::gives_up(&self.crashes)
    }
}

/// A row with these runs and crashes, for the tests of every output.
#[cfg(test)]
pub(crate) fn test_row(preset: &str, allocator: &str, samples: &[f64], crashes: &[&str]) -> Row {
    let mut row = Row::empty(
        preset,
        &Allocator {
            name: allocator.into(),
            preload: None,
        },
    );
    for &m in samples {
        row.record_run(allocator, m, 1000.0 / m);
    }
    for c in crashes {
        row.record_crash(c.to_string());
    }
    row
}

impl MatrixReport {
    pub fn row(&self, preset: &str, allocator: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.preset == preset && r.allocator == allocator)
    }
}

/// Why a matrix could not start: bad bench arguments and an unusable `--compare` file are bad
/// input (the CLI's exit 2); anything else is a failure.
#[derive(Debug)]
pub enum MatrixError {
    BenchArgs(clap::Error),
    Compare(anyhow::Error),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for MatrixError {
    fn from(e: anyhow::Error) -> MatrixError {
        MatrixError::Other(e)
    }
}

impl From<MatrixError> for anyhow::Error {
    fn from(e: MatrixError) -> anyhow::Error {
        match e {
            MatrixError::BenchArgs(e) => anyhow::anyhow!("bad bench arguments after `--`: {e}"),
            MatrixError::Compare(e) => e.context("--compare"),
            MatrixError::Other(e) => e,
        }
    }
}

/// A matrix checked and ready to run: every check that can fail before a long measurement
/// fails in [`MatrixPlan::new`].
pub struct MatrixPlan {
    opts: MatrixOptions,
    workloads: Vec<Workload>,
    programs: Vec<programs::Program>,
    preload_dir: PathBuf,
    allocs: Vec<Allocator>,
    anchor: String,
    previous: Option<MatrixReport>,
    builds: explain::BaselineBuilds,
    bench: PathBuf,
    rounds: u32,
}

/// What a matrix measured.
pub struct Matrix {
    pub report: MatrixReport,
    pub program_rows: Vec<programs::ProgramRow>,
    /// The allocators as named, in the rows' order.
    pub allocs: Vec<Allocator>,
    /// The private copies the rows were measured from (the guard records from them too).
    pub snapshot: allocators::Snapshot,
}

impl MatrixPlan {
    pub fn new(opts: &MatrixOptions) -> Result<MatrixPlan, MatrixError> {
        let programs = programs::parse(&opts.programs)?;
        let programs_only =
            !programs.is_empty() && opts.presets.is_empty() && opts.bench_args.is_empty();
        let workloads = match workloads(&opts.presets, &opts.bench_args, opts.quick) {
            Ok(_) if programs_only => Vec::new(),
            Ok(w) => w,
            Err(WorkloadError::Bench(e)) => return Err(MatrixError::BenchArgs(e)),
            Err(WorkloadError::Other(e)) => return Err(MatrixError::Other(e)),
        };
        let preload_dir = match &opts.preload_dir {
            Some(d) => d.clone(),
            None => allocators::default_preload_dir()?,
        };
        let allocs = if opts.allocs.is_empty() {
            allocators::default_set(&preload_dir)?
        } else {
            opts.allocs
                .iter()
                .map(|s| allocators::resolve(s, &preload_dir))
                .collect::<Result<Vec<_>>>()?
        };
        check_unique_names(&allocs)?;
        if !allocs.iter().any(|a| a.name == opts.baseline) {
            return Err(anyhow::anyhow!("baseline {:?} is not among the allocators measured: add --alloc {0} or pick another --baseline", opts.baseline).into());
        }
        let guard = opts.guard.as_ref();
        let anchor = guard
            .and_then(|g| g.anchor.clone())
            .unwrap_or_else(|| opts.baseline.clone());
        let previous = match guard {
            Some(g) => Some(
                compare::load(&g.compare)
                    .and_then(|p| {
                        compare::check_same_arguments(&p, &workloads)?;
                        check_some_row_in_common(&p, &workloads)?;
                        Ok(p)
                    })
                    .map_err(MatrixError::Compare)?,
            ),
            None => None,
        };
        if !allocs.iter().any(|a| a.name == anchor) && previous.is_some() {
            return Err(anyhow::anyhow!(
                "--compare anchor {anchor:?} is not among the allocators measured"
            )
            .into());
        }
        let builds = explain::BaselineBuilds::new(
            guard.map_or(&[][..], |g| &g.explain_with),
            guard.and_then(|g| g.baseline_preload_dir.as_deref()),
            &allocs,
        )?;
        let bench = crate::process::locate_bench(opts.bench.as_deref())?;
        let rounds = opts.runs.unwrap_or(if opts.quick { 2 } else { 5 });
        Ok(MatrixPlan {
            opts: opts.clone(),
            workloads,
            programs,
            preload_dir,
            allocs,
            anchor,
            previous,
            builds,
            bench,
            rounds,
        })
    }

    /// Runs every row from private copies of the bench and the libraries; a crashed run's line
    /// goes to `log`.
    pub fn measure(&self, log: &mut dyn std::io::Write) -> Result<Matrix> {
        let timeout = self.opts.timeout;
        let snapshot = allocators::Snapshot::take(&self.bench, &self.allocs)?;
        let report = measure(
            &snapshot,
            &self.workloads,
            &self.allocs,
            self.rounds,
            &self.opts,
            log,
        )?;
        let program_rows =
            programs::measure(&self.programs, &snapshot.allocators, self.rounds, timeout)?;
        Ok(Matrix {
            report,
            program_rows,
            allocs: self.allocs.clone(),
            snapshot,
        })
    }

    /// The anchor the guard divides by.
    pub fn anchor(&self) -> &str {
        &self.anchor
    }

    /// The `--compare` baseline, read and checked against this matrix's rows.
    pub fn previous(&self) -> Option<&MatrixReport> {
        self.previous.as_ref()
    }

    /// Where the guard's explanations go: --explain-dir, or guard-explain beside the preload dir.
    pub fn explain_dir(&self) -> PathBuf {
        match self.opts.guard.as_ref().and_then(|g| g.explain_dir.clone()) {
            Some(d) => d,
            None => self
                .preload_dir
                .parent()
                .unwrap_or(std::path::Path::new("target"))
                .join("guard-explain"),
        }
    }

    /// The guard's explanation of each regressed row (explain/), from the matrix's own snapshot,
    /// on stderr as each row is explained.
    pub fn explain_regressions(
        &self,
        m: &Matrix,
        regressions: &[compare::Regression],
    ) -> Result<()> {
        let Some(guard) = &self.opts.guard else {
            return Ok(());
        };
        let full_length = match workloads(&self.opts.presets, &self.opts.bench_args, false) {
            Ok(w) => w,
            Err(WorkloadError::Bench(e)) => bail!("bench arguments: {e}"),
            Err(WorkloadError::Other(e)) => return Err(e),
        };
        let plan = explain::Plan {
            builds: &self.builds,
            allocs: &self.allocs,
            measured: &m.snapshot.allocators,
            bench: &m.snapshot.bench,
            workloads: &full_length,
            out: self.explain_dir(),
            pairs: guard.explain_pairs,
            compare: &guard.compare,
            argv: guard.argv.clone(),
        };
        explain::explain(&plan, regressions);
        Ok(())
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let opts = MatrixOptions::from(args);
    let plan = match MatrixPlan::new(&opts) {
        Ok(p) => p,
        Err(MatrixError::BenchArgs(e)) => {
            eprintln!("hz3-analyze matrix: bad bench arguments after `--`:");
            let _ = e.print();
            return Ok(ExitCode::from(2));
        }
        Err(MatrixError::Compare(e)) => {
            eprintln!("hz3-analyze matrix: --compare: {e:#}");
            return Ok(ExitCode::from(2));
        }
        Err(MatrixError::Other(e)) => return Err(e),
    };
    let m = plan.measure(&mut std::io::stderr())?;
    print!("{}", render_text(&m));
    write_outputs(&m.report, &m.program_rows, &opts.files)?;

    let (Some(previous), Some(guard)) = (plan.previous(), &opts.guard) else {
        write_summary(&opts.files, &m.report, None)?;
        return Ok(ExitCode::SUCCESS);
    };
    let anchor = plan.anchor();
    {
        let compared =
            compare::compare_rows(previous, &m.report, anchor, guard.tolerance, guard.metric)?;
        eprintln!(
            "{}",
            compare::describe_all(&compared, anchor, guard.tolerance)
        );
        let regressions: Vec<compare::Regression> = compared
            .iter()
            .filter(|r| r.is_regression())
            .cloned()
            .collect();
        let summary = output::Guard {
            anchor,
            tolerance: guard.tolerance,
            rows: &compared,
            explain_dir: plan.explain_dir(),
        };
        if !regressions.is_empty() {
            eprintln!(
                "{}",
                compare::describe(&regressions, anchor, guard.tolerance)
            );
            // The verdict is the regression; an explanation that cannot be had does not change it.
            if let Err(e) = plan.explain_regressions(&m, &regressions) {
                eprintln!("hz3-analyze matrix: cannot explain the regression: {e:#}");
            }
            write_summary(&opts.files, &m.report, Some(&summary))?;
            return Ok(ExitCode::from(EXIT_REGRESSION));
        }
        eprintln!(
            "hz3-analyze matrix: no row regressed more than {}% relative to {anchor}",
            guard.tolerance * 100.0
        );
        write_summary(&opts.files, &m.report, Some(&summary))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What `matrix` prints: the table of the preset rows, of the program rows, and which build each
/// allocator was.
pub fn render_text(m: &Matrix) -> String {
    let mut text = String::new();
    if !m.report.rows.is_empty() {
        text += &output::table(&m.report);
    }
    if !m.program_rows.is_empty() {
        text += &programs::table(&m.program_rows).to_text();
    }
    text + &allocators::builds_legend(&m.allocs)
}

fn write_summary(
    files: &MatrixFiles,
    report: &MatrixReport,
    guard: Option<&output::Guard>,
) -> Result<()> {
    if let Some(p) = &files.summary_md {
        std::fs::write(p, output::summary_markdown(report, guard))
            .with_context(|| format!("writing the summary to {}", p.display()))?;
    }
    Ok(())
}

enum WorkloadError {
    Bench(clap::Error),
    Other(anyhow::Error),
}

/// The workloads in order: one per preset and form (`all` = every preset touched, then the
/// untouched [`UNTOUCHED_ROWS`]), or one "custom" workload when only bench arguments are given.
/// Every argument list is validated by the bench's own parser; a row's label is its preset and,
/// when its objects are not written, [`UNTOUCHED`].
fn workloads(
    presets: &[String],
    bench_args: &[String],
    quick: bool,
) -> Result<Vec<Workload>, WorkloadError> {
    let mut chosen: Vec<(Option<Preset>, bool)> = Vec::new();
    for name in presets {
        if name == "all" {
            chosen.extend(Preset::ALL.map(|p| (Some(p), true)));
            chosen.extend(UNTOUCHED_ROWS.map(|p| (Some(p), false)));
            continue;
        }
        let (base, touched) = match name.strip_suffix(UNTOUCHED) {
            Some(base) => (base, false),
            None => (name.as_str(), true),
        };
        let preset = Preset::from_name(base).ok_or_else(|| {
            let known: Vec<_> = Preset::ALL.iter().map(|p| p.name()).collect();
            WorkloadError::Other(anyhow::anyhow!(
                "unknown preset {name:?}: use one of {}, each optionally with {UNTOUCHED}, or all",
                known.join(", ")
            ))
        })?;
        chosen.push((Some(preset), touched));
    }
    if chosen.is_empty() {
        let preset = bench_args.is_empty().then_some(Preset::RemoteHeavySmall);
        chosen.push((preset, true));
    }
    let mut out = Vec::new();
    for (preset, touched) in chosen {
        let mut args = vec!["remote".to_owned()];
        if let Some(p) = preset {
            args.extend(["--preset".to_owned(), p.name().to_owned()]);
        }
        let parse = |args: &[String]| {
            bench::cli::parse(std::iter::once("hz3-bench".to_owned()).chain(args.iter().cloned()))
                .map_err(WorkloadError::Bench)
        };
        let (given, _) = parse(&[args.clone(), bench_args.to_vec()].concat())?;
        // Bench arguments that choose the form themselves win over the row's form.
        if !touched && given.touch.is_none() && !given.untouched {
            args.push("--untouched".to_owned());
        }
        args.extend(bench_args.iter().cloned());
        let (parsed, cfg) = parse(&args)?;
        if quick && parsed.iters.is_none() {
            args.extend(["--iters".to_owned(), (cfg.iters / 10).max(1).to_string()]);
        }
        let label = row_label(preset.map_or("custom", Preset::name), cfg.touch);
        if out.iter().any(|w: &Workload| w.preset == label) {
            continue;
        }
        out.push(Workload {
            preset: label,
            args,
        });
    }
    Ok(out)
}

/// `preset`, or `preset:untouched` when the row's objects are never written.
fn row_label(preset: &str, touched: bool) -> String {
    if touched {
        preset.to_owned()
    } else {
        format!("{preset}{UNTOUCHED}")
    }
}

/// Which form the rows measure, for the first line of the table and the markdown.
pub fn form_note(report: &MatrixReport) -> &'static str {
    let untouched = |w: &&Workload| w.preset.ends_with(UNTOUCHED);
    match report.workloads.iter().filter(untouched).count() {
        0 => "objects written (--touch, the reference form)",
        n if n == report.workloads.len() => {
            "objects never written (the untouched form: not the reference)"
        }
        _ => "objects written (--touch, the reference form) except rows labelled :untouched (secondary)",
    }
}

/// A matrix JSON as this version reads it: schema 3 as is; schema 2 with no memory figures (its
/// rows' fields default to none); schema 1 (presets untouched unless the arguments said `--touch`)
/// relabelled as well, so its untouched rows compare with today's `PRESET:untouched` rows and its
/// `--touch` rows with today's plain ones. Anything else is refused.
pub fn upgrade(mut report: MatrixReport) -> Result<MatrixReport, String> {
    if report.schema == SCHEMA {
        return Ok(report);
    }
    if report.schema == SCHEMA_V2 {
        report.schema = SCHEMA.to_owned();
        return Ok(report);
    }
    if report.schema != SCHEMA_V1 {
        return Err(format!(
            "schema {:?}, expected {SCHEMA:?} (or {SCHEMA_V2:?}, read without memory figures, or {SCHEMA_V1:?}, read as untouched rows): regenerate it with `hz3-analyze matrix --json`",
            report.schema
        ));
    }
    for w in &mut report.workloads {
        let touch_flags = ["--touch", "--touch=true", "--touch=false"];
        let touched = w.args.iter().any(|a| a == "--touch" || a == "--touch=true");
        w.args.retain(|a| !touch_flags.contains(&a.as_str()));
        if touched {
            continue;
        }
        // Where today's matrix puts it: after the subcommand and preset.
        let at = match w.args.iter().position(|a| a == "--preset") {
            Some(i) => (i + 2).min(w.args.len()),
            None => 1.min(w.args.len()),
        };
        w.args.insert(at, "--untouched".to_owned());
        let old = std::mem::take(&mut w.preset);
        w.preset = row_label(&old, false);
        for row in report.rows.iter_mut().filter(|r| r.preset == old) {
            row.preset = w.preset.clone();
        }
    }
    report.schema = SCHEMA.to_owned();
    Ok(report)
}

/// A guard that compares nothing would pass silently: refuse a baseline that shares no preset (and
/// form) with this run, naming what it has.
fn check_some_row_in_common(previous: &MatrixReport, workloads: &[Workload]) -> Result<()> {
    if workloads
        .iter()
        .any(|w| previous.workloads.iter().any(|p| p.preset == w.preset))
    {
        return Ok(());
    }
    let has: Vec<&str> = previous
        .workloads
        .iter()
        .map(|w| w.preset.as_str())
        .collect();
    let wants: Vec<&str> = workloads.iter().map(|w| w.preset.as_str()).collect();
    bail!(
        "--compare: the baseline has no row of {} (it has {}); rows labelled {UNTOUCHED} never write their objects (every row of a {SCHEMA_V1} file that did not say --touch)",
        wants.join(", "),
        has.join(", ")
    )
}

fn check_unique_names(allocs: &[Allocator]) -> Result<()> {
    for (i, a) in allocs.iter().enumerate() {
        if allocs[..i].iter().any(|b| b.name == a.name) {
            bail!("allocator {:?} is listed twice", a.name);
        }
    }
    Ok(())
}

/// Every host probe of these rows (before and after each run).
pub fn round_trip_probes(rows: &[Row]) -> Vec<f64> {
    rows.iter()
        .flat_map(|r| {
            r.samples_round_trip_before_ns
                .iter()
                .chain(&r.samples_round_trip_after_ns)
        })
        .filter_map(|p| *p)
        .collect()
}

/// `--runs-per-regime`: whether some row still has fewer than `n` runs in one of two host regimes
/// (false when the probes show one regime: there is nothing to fill); a row that gave up on
/// timeouts is run no more, so it asks for nothing.
fn short_of_regime_runs(rows: &[Row], n: usize) -> bool {
    let Some(regimes) = core_round_trip::split(&round_trip_probes(rows)) else {
        return false;
    };
    rows.iter().filter(|r| !r.gives_up()).any(|r| {
        [core_round_trip::Regime::Near, core_round_trip::Regime::Far]
            .into_iter()
            .any(|regime| r.runs_in(&regimes, regime).len() < n)
    })
}

/// Most rounds `--runs-per-regime` adds up to, as a multiple of `--runs`.
const REGIME_ROUNDS_CAP: u32 = 4;

/// Runs every (workload, allocator) `rounds` times from the snapshot's copies, interleaved: round r visits the workloads and,
/// within each, the allocators in an order rotated by r, so slow drift of a shared machine lands on
/// every row alike.
fn measure(
    snapshot: &allocators::Snapshot,
    workloads: &[Workload],
    allocs: &[Allocator],
    rounds: u32,
    opts: &MatrixOptions,
    log: &mut dyn std::io::Write,
) -> Result<MatrixReport> {
    let timeout = opts.timeout;
    let mut rows: Vec<Row> = workloads
        .iter()
        .flat_map(|w| allocs.iter().map(move |a| Row::empty(&w.preset, a)))
        .collect();
    let total = rounds as u64 * rows.len() as u64;
    let progress = if opts.progress {
        indicatif::ProgressBar::new(total)
    } else {
        indicatif::ProgressBar::hidden()
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} run {pos}/{len} {msg} [{elapsed}<{eta}]")
            .expect("a valid template"),
    );
    let workload_ids: Vec<usize> = (0..workloads.len()).collect();
    let alloc_ids: Vec<usize> = (0..allocs.len()).collect();
    let round_trip_cpus = opts
        .round_trip_probe
        .then(core_round_trip::first_pair)
        .flatten();
    let probe = || round_trip_cpus.and_then(core_round_trip::measure);
    // Each probe serves as the "after" of one run and the "before" of the next.
    let mut last_probe = probe();
    let per_regime = opts.runs_per_regime.filter(|_| round_trip_cpus.is_some());
    let mut round = 0usize;
    loop {
        let planned = round < rounds as usize;
        let more = per_regime.is_some_and(|n| {
            round < (REGIME_ROUNDS_CAP * rounds) as usize && short_of_regime_runs(&rows, n as usize)
        });
        if !planned && !more {
            break;
        }
        if !planned {
            progress.inc_length(rows.len() as u64);
        }
        for wi in stats::rotated(&workload_ids, round) {
            for ai in stats::rotated(&alloc_ids, round) {
                let (workload, alloc) = (&workloads[wi], &allocs[ai]);
                let row = &mut rows[wi * allocs.len() + ai];
                if row.gives_up() {
                    row.skipped += 1;
                    progress.inc(1);
                    continue;
                }
                let which = if planned {
                    format!("round {}/{rounds}", round + 1)
                } else {
                    format!("round {}, past {rounds} for --runs-per-regime", round + 1)
                };
                progress.set_message(format!("{} / {} ({which})", workload.preset, alloc.name));
                let result = runner::run_bench(
                    &snapshot.bench,
                    &snapshot.allocators[ai],
                    &workload.args,
                    timeout,
                )
                .with_context(|| format!("{} under {}", workload.preset, alloc.name))?;
                let before = last_probe;
                last_probe = probe();
                row.peak_rss_kib = row.peak_rss_kib.max(result.peak_rss_kib);
                match result.outcome {
                    Ok(report) => {
                        if alloc.identity_matches(&report.allocator) == Some(false) {
                            progress.abandon();
                            bail!(
                                "row {} / {}: hz3-bench reports {:?} answering malloc, not {} (LD_PRELOAD={}): the preload did not take effect",
                                workload.preset,
                                alloc.name,
                                report.allocator,
                                alloc.name,
                                alloc.preload_env()
                            );
                        }
                        row.record_run(&report.allocator, report.mops, report.cpu_ns_per_op());
                        if round_trip_cpus.is_some() {
                            row.record_round_trip(before, last_probe);
                        }
                        if let Some(m) = &report.memory {
                            row.record_memory(m);
                        }
                    }
                    Err(crash) => {
                        let line = crash_line(workload, alloc, &crash, &result.stderr);
                        progress.suspend(|| writeln!(log, "{line}"))?;
                        row.record_crash(crash.to_string());
                        if row.gives_up() && round + 1 < rounds as usize {
                            progress.suspend(|| {
                                writeln!(
                                    log,
                                    "hz3-analyze matrix: {} / {} timed out {} times: not run in the remaining rounds",
                                    workload.preset,
                                    alloc.name,
                                    runner::TIMEOUTS_BEFORE_SKIP
                                )
                            })?;
                        }
                    }
                }
                progress.inc(1);
            }
        }
        round += 1;
    }
    progress.finish_and_clear();
    finish_rows(&mut rows, &opts.baseline);
    Ok(MatrixReport {
        schema: SCHEMA.into(),
        baseline: opts.baseline.clone(),
        runs: round as u32,
        quick: opts.quick,
        workloads: workloads.to_vec(),
        rows,
        round_trip_cpus,
    })
}

fn crash_line(workload: &Workload, alloc: &Allocator, crash: &Crash, stderr: &str) -> String {
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    format!(
        "hz3-analyze matrix: {} / {} crashed ({crash}): {last}",
        workload.preset, alloc.name
    )
}

/// Fills median/min/max, the ratio to `baseline` on the same preset, and their 95% intervals
/// (each row's resampling seeded by its preset and allocator, so a report is reproducible).
pub fn finish_rows(rows: &mut [Row], baseline: &str) {
    for row in rows.iter_mut() {
        let s = stats::summarize(&row.samples_mops);
        row.median_mops = s.map(|s| s.median);
        row.min_mops = s.map(|s| s.min);
        row.max_mops = s.map(|s| s.max);
        row.cpu_ns_per_op = stats::summarize(&row.samples_cpu_ns_per_op).map(|s| s.median);
        let median = |v: &[f64]| stats::summarize(v).map(|s| s.median);
        row.live_peak_kib = median(&row.samples_live_peak_kib);
        row.rss_at_live_peak_kib = median(&row.samples_rss_at_live_peak_kib);
        row.excess_kib = median(&row.samples_excess_kib);
        row.overhead_peak_kib = median(&row.samples_overhead_peak_kib);
        row.median_ci_mops =
            interval_stats::median_interval(&row.samples_mops, &mut row_rng(row, "median"));
    }
    let baselines: Vec<Row> = rows
        .iter()
        .filter(|r| r.allocator == baseline)
        .cloned()
        .collect();
    for row in rows.iter_mut() {
        let base = baselines.iter().find(|b| b.preset == row.preset);
        row.ratio = stats::ratio(row.median_mops, base.and_then(|b| b.median_mops));
        row.ratio_ci = base.and_then(|base| {
            let pair = interval_stats::Pair::new(
                &row.samples_mops,
                &base.samples_mops,
                row.every_round_ran() && base.every_round_ran(),
            );
            interval_stats::ratio_interval(pair, &mut row_rng(row, "ratio"))
        });
    }
}

fn row_rng(row: &Row, what: &str) -> interval_stats::Rng {
    interval_stats::Rng::for_key(&format!("{what}/{}/{}", row.preset, row.allocator))
}

/// Writes the files `files` names: CSV, JSON (the program rows beside the preset rows),
/// markdown, SVG chart.
pub fn write_outputs(
    report: &MatrixReport,
    program_rows: &[programs::ProgramRow],
    files: &MatrixFiles,
) -> Result<()> {
    let write = |path: &Option<PathBuf>, what: &str, text: String| -> Result<()> {
        if let Some(p) = path {
            std::fs::write(p, text)
                .with_context(|| format!("writing the {what} to {}", p.display()))?;
        }
        Ok(())
    };
    if files.csv.is_some() {
        write(&files.csv, "CSV", output::csv(report)?)?;
    }
    if files.json.is_some() {
        // The program rows ride beside the preset rows; readers of the preset rows ignore them.
        let mut value: serde_json::Value = serde_json::from_str(&output::json(report)?)?;
        if !program_rows.is_empty() {
            value["programs"] = serde_json::to_value(program_rows)?;
        }
        write(
            &files.json,
            "JSON",
            serde_json::to_string_pretty(&value)? + "\n",
        )?;
    }
    let mut markdown = output::markdown(report);
    if !program_rows.is_empty() {
        markdown += "\nPrograms (wall time, CPU time and peak RSS of the whole process tree):\n\n";
        markdown += &format!("```\n{}```\n", programs::table(program_rows).to_text());
    }
    write(&files.markdown, "markdown", markdown)?;
    if let Some(p) = files.svg.as_ref().filter(|_| !report.rows.is_empty()) {
        chart::draw(report, p).with_context(|| format!("drawing the chart to {}", p.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn workloads_expand_presets_apply_overrides_and_quick() {
        let w = workloads(&strings(&["all"]), &[], false).ok().unwrap();
        let touched: Vec<String> = Preset::ALL.iter().map(|p| p.name().to_owned()).collect();
        let untouched: Vec<String> = UNTOUCHED_ROWS
            .iter()
            .map(|p| format!("{}:untouched", p.name()))
            .collect();
        assert_eq!(
            w.iter().map(|w| w.preset.clone()).collect::<Vec<_>>(),
            [touched, untouched].concat(),
            "headline (touched) rows first, the untouched ones after"
        );
        assert_eq!(
            w[0].args,
            strings(&["remote", "--preset", "remote-heavy-small"])
        );
        assert_eq!(
            w.last().unwrap().args,
            strings(&["remote", "--preset", "mixed-large", "--untouched"])
        );

        let w = workloads(
            &strings(&["local-small", "local-small"]),
            &strings(&["--threads", "3"]),
            true,
        )
        .ok()
        .unwrap();
        assert_eq!(w.len(), 1);
        let expected_iters = (Preset::LocalSmall.config().iters / 10).to_string();
        assert_eq!(
            w[0].args,
            strings(&[
                "remote",
                "--preset",
                "local-small",
                "--threads",
                "3",
                "--iters",
                &expected_iters
            ])
        );

        let w = workloads(&[], &strings(&["--iters", "7"]), true)
            .ok()
            .unwrap();
        assert_eq!(
            (w[0].preset.as_str(), w[0].args.clone()),
            ("custom", strings(&["remote", "--iters", "7"]))
        );

        assert!(matches!(
            workloads(&[], &strings(&["--min", "9", "--max", "1"]), false),
            Err(WorkloadError::Bench(_))
        ));
        assert!(matches!(
            workloads(&strings(&["nope"]), &[], false),
            Err(WorkloadError::Other(_))
        ));
        assert!(matches!(
            workloads(&strings(&["local-small:touched"]), &[], false),
            Err(WorkloadError::Other(_))
        ));
    }

    #[test]
    fn the_untouched_form_is_a_labelled_row_and_bench_arguments_choose_the_form_themselves() {
        let w = workloads(
            &strings(&["realloc-growth:untouched", "realloc-growth"]),
            &strings(&["--iters", "3"]),
            true,
        )
        .ok()
        .unwrap();
        assert_eq!(
            w.iter()
                .map(|w| (w.preset.as_str(), w.args.join(" ")))
                .collect::<Vec<_>>(),
            [
                (
                    "realloc-growth:untouched",
                    "remote --preset realloc-growth --untouched --iters 3".to_owned()
                ),
                (
                    "realloc-growth",
                    "remote --preset realloc-growth --iters 3".to_owned()
                ),
            ]
        );
        // `-- --untouched` makes every row untouched: one row per preset, labelled so.
        let w = workloads(
            &strings(&["local-small", "local-small:untouched"]),
            &strings(&["--untouched"]),
            false,
        )
        .ok()
        .unwrap();
        assert_eq!(
            w.iter().map(|w| w.preset.as_str()).collect::<Vec<_>>(),
            ["local-small:untouched"]
        );
        let w = workloads(&[], &strings(&["--touch=false"]), false)
            .ok()
            .unwrap();
        assert_eq!(w[0].preset, "custom:untouched");
    }

    fn report_with(schema: &str, workloads: &[(&str, &[&str])]) -> MatrixReport {
        MatrixReport {
            schema: schema.into(),
            baseline: "tcmalloc".into(),
            runs: 1,
            quick: false,
            workloads: workloads
                .iter()
                .map(|(p, args)| Workload {
                    preset: p.to_string(),
                    args: strings(args),
                })
                .collect(),
            rows: workloads
                .iter()
                .map(|(p, _)| test_row(p, "glibc", &[1.0], &[]))
                .collect(),
            round_trip_cpus: None,
        }
    }

    /// `--runs-per-regime` asks for more rounds only while two regimes exist and some row lacks runs
    /// in one of them; runs that straddle a switch count for neither.
    #[test]
    fn rounds_continue_until_every_row_has_n_runs_in_each_regime() {
        let row = |probes: &[(f64, f64)]| {
            let mut r = test_row("t2", "a", &vec![10.0; probes.len()], &[]);
            for &(before, after) in probes {
                r.record_round_trip(Some(before), Some(after));
            }
            r
        };
        let near = (90.0, 95.0);
        let far = (450.0, 460.0);
        let straddled = (90.0, 450.0);
        let rows = [
            row(&[near, near, far, far]),
            row(&[near, far, near, far, straddled]),
        ];
        assert!(!short_of_regime_runs(&rows, 2));
        assert!(short_of_regime_runs(&rows, 3));
        let lopsided = [row(&[near, near, near, far]), row(&[near, far, far, far])];
        assert!(
            short_of_regime_runs(&lopsided, 2),
            "the first row has one far run"
        );
        let steady = [row(&[near, near]), row(&[near, near])];
        assert!(
            !short_of_regime_runs(&steady, 5),
            "one regime: nothing to fill"
        );
        // A row that timed out twice is run no more: its lack of runs asks for no round.
        let mut hopeless = test_row("t2", "b", &[], &["timeout 60s", "timeout 60s"]);
        assert!(hopeless.gives_up());
        let with_hopeless = [rows[0].clone(), hopeless.clone()];
        assert!(!short_of_regime_runs(&with_hopeless, 2));
        hopeless.crashes.pop();
        assert!(!hopeless.gives_up(), "one timeout may be the machine's");
        assert!(short_of_regime_runs(&[rows[0].clone(), hopeless], 2));
    }

    #[test]
    fn a_schema_1_file_reads_as_untouched_rows_unless_it_said_touch() {
        let old = report_with(
            "hz3-matrix/1",
            &[
                ("remote-90", &["remote", "--preset", "remote-90"]),
                (
                    "remote-heavy-small",
                    &["remote", "--preset", "remote-heavy-small", "--touch"],
                ),
                ("custom", &["remote", "--threads", "4"]),
            ],
        );
        let new = upgrade(old).unwrap();
        assert_eq!(new.schema, SCHEMA);
        let today = workloads(
            &strings(&["remote-90:untouched", "remote-heavy-small"]),
            &[],
            false,
        )
        .ok()
        .unwrap();
        assert_eq!(
            new.workloads[..2],
            today[..],
            "upgraded rows match today's arguments"
        );
        assert_eq!(
            (
                new.workloads[2].preset.as_str(),
                new.workloads[2].args.join(" ")
            ),
            (
                "custom:untouched",
                "remote --untouched --threads 4".to_owned()
            )
        );
        assert!(new.row("remote-90:untouched", "glibc").is_some());
        assert!(new.row("remote-90", "glibc").is_none());
        assert!(new.row("remote-heavy-small", "glibc").is_some());

        let current = report_with(SCHEMA, &[("local-small", &["remote"])]);
        assert_eq!(upgrade(current.clone()).unwrap(), current);
        let err = upgrade(report_with("hz3-matrix/9", &[])).unwrap_err();
        assert!(err.contains("regenerate"), "{err}");
    }

    #[test]
    fn a_baseline_with_no_row_in_common_is_refused() {
        let old = upgrade(report_with(
            SCHEMA_V1,
            &[("remote-90", &["remote", "--preset", "remote-90"])],
        ))
        .unwrap();
        let touched = workloads(&strings(&["remote-90"]), &[], false)
            .ok()
            .unwrap();
        let err = check_some_row_in_common(&old, &touched).unwrap_err();
        assert!(
            format!("{err}").contains("no row of remote-90 (it has remote-90:untouched)"),
            "{err}"
        );
        let both = workloads(&strings(&["remote-90", "remote-90:untouched"]), &[], false)
            .ok()
            .unwrap();
        check_some_row_in_common(&old, &both).unwrap();
    }

    #[test]
    fn the_summary_says_which_form_the_rows_are() {
        let touched = report_with(SCHEMA, &[("a", &[])]);
        assert!(form_note(&touched).starts_with("objects written"));
        let both = report_with(SCHEMA, &[("a", &[]), ("a:untouched", &[])]);
        assert!(form_note(&both).contains("except rows labelled :untouched"));
        let untouched = report_with(SCHEMA, &[("a:untouched", &[])]);
        assert!(form_note(&untouched).contains("never written"));
        assert!(output::table(&both)
            .lines()
            .next()
            .unwrap()
            .contains("reference form"));
        assert!(output::markdown(&both)
            .lines()
            .next()
            .unwrap()
            .contains("reference form"));
    }

    #[test]
    fn slow_large_block_rows_keep_three_significant_digits() {
        let mut report = report_with(SCHEMA, &[("a", &[])]);
        report.rows = vec![test_row("a", "x", &[0.00312, 0.0801, 12.345], &[])];
        finish_rows(&mut report.rows, "x");
        let table = output::table(&report);
        assert!(
            table.contains("0.0801  [0.00312, 12.35]  0.00312  12.35"),
            "{table}"
        );
    }

    #[test]
    fn ratios_divide_by_the_baseline_of_the_same_preset() {
        let row =
            |preset: &str, alloc: &str, samples: &[f64]| test_row(preset, alloc, samples, &[]);
        let mut rows = vec![
            row("a", "base", &[2.0, 4.0, 3.0]),
            row("a", "x", &[6.0, 9.0, 1.0]),
            row("b", "base", &[10.0]),
            row("b", "x", &[5.0, 5.0]),
            row("b", "dead", &[]),
        ];
        finish_rows(&mut rows, "base");
        assert_eq!(rows[1].median_mops, Some(6.0));
        assert_eq!((rows[1].min_mops, rows[1].max_mops), (Some(1.0), Some(9.0)));
        assert_eq!(rows[1].ratio, Some(2.0));
        assert_eq!(rows[0].ratio, Some(1.0));
        assert_eq!(rows[3].ratio, Some(0.5));
        assert_eq!((rows[4].median_mops, rows[4].ratio), (None, None));
    }
}
