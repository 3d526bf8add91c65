//! `export RUN --format pprof|folded|json -o FILE`: a recorded run's CPU profile in formats other
//! tools open. Each stack carries the box it is charged to (the same rules as `attribute`), the
//! allocator, the hz3 lane and the thread (perf's comm, the folded stack's root frame).
//!
//! The run is read by [`Run::load`] (folded stacks, `perf.script` or `perf.data`, whichever the
//! directory has) and the boxes by the `flamegraphs` classifier; nothing here parses perf output.
use crate::boxes;
use crate::perf_run::Run;
use anyhow::{bail, Context, Result};
use flamegraphs::{Classifier, Rules};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

pub mod folded;
pub mod pprof;
pub mod protobuf;

const EXAMPLES: &str = "\
Examples:
  hz3-analyze export runs/hz3_scale --format pprof -o hz3_scale.pb.gz
  go tool pprof -top hz3_scale.pb.gz                       # or the standalone `pprof -top`
  go tool pprof -top -tagfocus box=hz3.central hz3_scale.pb.gz
  go tool pprof -top -diff_base tcmalloc.pb.gz hz3_scale.pb.gz
  hz3-analyze export runs/glibc --format folded -o glibc.folded   # inferno-flamegraph, flamegraph.pl, speedscope
  hz3-analyze export runs/glibc --format json -o glibc.json
Every sample is labelled box, allocator, lane (hz3 lanes; \"none\" otherwise) and thread.
Exit status: 0 ok, 2 bad input (a flag, an unreadable run or box file), 1 an unwritable output.";

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Gzipped profile.proto (pprof, Go tooling, Pyroscope, Perfetto, speedscope): cpu
    /// nanoseconds and samples per stack, labels box/allocator/lane/thread
    Pprof,
    /// One `box;thread;root;...;leaf NANOSECONDS` line per stack (inferno, flamegraph.pl, speedscope)
    Folded,
    /// The labelled stacks as JSON
    Json,
}

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Run directory written by `hz3-analyze record`
    pub run: PathBuf,
    #[arg(long, value_enum)]
    pub format: Format,
    /// Output file
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: PathBuf,
    /// Box rules (TOML) read in front of the built-in ones (see analyze/boxes/default.toml)
    #[arg(long, value_name = "FILE")]
    pub boxes: Option<PathBuf>,
}

/// Label value of runs that are not hz3 (pprof labels have no "absent" but a missing key).
pub const NO_LANE: &str = "none";

/// One folded stack with its labels.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stack {
    /// The box the stack's time is charged to.
    #[serde(rename = "box")]
    pub box_name: String,
    /// perf's comm of the sampled thread.
    pub thread: String,
    /// Root first, without the thread.
    pub frames: Vec<String>,
    pub cpu_ns: f64,
    /// Samples behind `cpu_ns` (its time over the mean sample period, at least 1).
    pub samples: u64,
}

/// A run's CPU profile, labelled: what every export format writes.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recording {
    pub run: String,
    pub allocator: String,
    pub lane: String,
    pub sample_event: String,
    /// Mean sampling period, ns.
    pub period_ns: f64,
    /// The bench's wall time, ns.
    pub duration_ns: f64,
    pub ops: u64,
    pub stacks: Vec<Stack>,
}

impl Recording {
    pub fn from_run(run: &Run, rules: &Rules) -> Recording {
        let mut classifier = Classifier::new(rules);
        let period = run.profile.mean_period;
        let cpu = crate::attribute::stacks(run, false);
        let stacks = cpu
            .stacks
            .iter()
            .filter(|(_, w)| **w > 0.0)
            .map(|(stack, &cpu_ns)| {
                let b = classifier.box_of_stack(stack);
                let box_name = classifier.names()[b].clone();
                let mut frames = stack.split(';').map(str::to_owned);
                let thread = frames.next().unwrap_or_default();
                let samples = if period > 0.0 {
                    ((cpu_ns / period).round() as u64).max(1)
                } else {
                    1
                };
                Stack {
                    box_name,
                    thread,
                    frames: frames.collect(),
                    cpu_ns,
                    samples,
                }
            })
            .collect();
        Recording {
            run: run.dir.display().to_string(),
            allocator: run.allocator().to_owned(),
            lane: lane_of(&run.bench.allocator),
            sample_event: run.profile.sample_event.clone(),
            period_ns: period,
            duration_ns: run.bench.secs * 1e9,
            ops: run.bench.ops,
            stacks,
        }
    }
}

/// The hz3 lane from the identity the bench reports ("hz3-scale" → "scale").
fn lane_of(identity: &str) -> String {
    match identity.strip_prefix("hz3-") {
        Some(lane) if !lane.is_empty() => lane.to_owned(),
        _ => NO_LANE.to_owned(),
    }
}

/// Which run `export` writes, in which format, where.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportOptions {
    pub run: PathBuf,
    pub format: Format,
    pub out: PathBuf,
    pub boxes: Option<PathBuf>,
}

impl From<Args> for ExportOptions {
    fn from(args: Args) -> ExportOptions {
        ExportOptions {
            run: args.run,
            format: args.format,
            out: args.out,
            boxes: args.boxes,
        }
    }
}

/// The run's stacks labelled with their boxes; an unreadable run or rules file, or a run
/// without CPU samples, is an error of the input.
pub fn load(opts: &ExportOptions) -> Result<Recording> {
    let rules = boxes::load(opts.boxes.as_deref())?;
    let recording = Recording::from_run(&Run::load(&opts.run)?, &rules);
    if recording.stacks.is_empty() {
        bail!("{}: no CPU samples to export", opts.run.display());
    }
    Ok(recording)
}

/// Writes `recording` to `opts.out` in `opts.format`.
pub fn write(recording: &Recording, opts: &ExportOptions) -> Result<()> {
    let bytes = match opts.format {
        Format::Pprof => pprof::gzipped(recording)?,
        Format::Folded => folded::text(recording).into_bytes(),
        Format::Json => (serde_json::to_string_pretty(recording)? + "\n").into_bytes(),
    };
    std::fs::write(&opts.out, bytes)
        .with_context(|| format!("{}: cannot write", opts.out.display()))
}

pub fn run(args: Args) -> Result<ExitCode> {
    let opts = ExportOptions::from(args);
    // A run or box file that cannot be read is bad input (exit 2), as a bad flag is.
    let recording = match load(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hz3-analyze export: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    write(&recording, &opts)?;
    println!("{}", opts.out.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Two threads, three stacks, two boxes: what every format's test writes.
    pub(crate) fn sample() -> Recording {
        let stack = |b: &str, t: &str, frames: &[&str], ns: f64| Stack {
            box_name: b.into(),
            thread: t.into(),
            frames: frames.iter().map(|f| f.to_string()).collect(),
            cpu_ns: ns,
            samples: (ns / 1000.0) as u64,
        };
        Recording {
            run: "runs/x".into(),
            allocator: "hz3_scale".into(),
            lane: "scale".into(),
            sample_event: "cpu-clock".into(),
            period_ns: 1000.0,
            duration_ns: 5e6,
            ops: 100,
            stacks: vec![
                stack(
                    "hz3.central",
                    "w1",
                    &["main", "malloc", "central_pop"],
                    3000.0,
                ),
                stack("hz3.fast", "w1", &["main", "malloc"], 5000.0),
                stack(
                    "hz3.central",
                    "w2",
                    &["main", "free", "central_push"],
                    2000.0,
                ),
            ],
        }
    }

    #[test]
    fn lanes_come_from_the_bench_identity() {
        assert_eq!(lane_of("hz3-scale"), "scale");
        assert_eq!(lane_of("hz3-fast"), "fast");
        assert_eq!(lane_of("glibc"), NO_LANE);
        assert_eq!(lane_of("hz3-"), NO_LANE);
    }
}
