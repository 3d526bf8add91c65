//! `flame RUN` and `flame --diff A B`: SVG flamegraphs per op, each frame's box in its tooltip.
use crate::boxes;
use crate::perf_run::Run;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  hz3-analyze flame runs/hz3_scale                       # runs/hz3_scale/flame.svg
  hz3-analyze flame runs/glibc --offcpu --out off.svg    # where threads slept or were preempted
  hz3-analyze flame --diff runs/tcmalloc runs/hz3_scale  # width = hz3_scale, red = more ns/op than tcmalloc
  hz3-analyze flame --diff --by-box runs/tcmalloc runs/hz3_scale  # one frame per box at the bottom
  hz3-analyze flame --per-thread runs/hz3_scale         # one tower per thread
Search the SVG for `box:hz3.central` to highlight a whole box.";

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// One run directory, or two with --diff (A then B)
    #[arg(required = true, num_args = 1..=2, value_name = "RUN")]
    pub runs: Vec<PathBuf>,
    /// Differential flamegraph of B against A, both normalised per op
    #[arg(long)]
    pub diff: bool,
    /// Draw off-CPU time (sleep and preemption, summed over threads) instead of CPU time
    #[arg(long)]
    pub offcpu: bool,
    /// Output SVG [default: RUN/flame.svg, or B/flame-diff.svg]
    #[arg(long, value_name = "F.svg")]
    pub out: Option<PathBuf>,
    /// Box rules (TOML) read in front of the built-in ones
    #[arg(long, value_name = "FILE")]
    pub boxes: Option<PathBuf>,
    /// One tower per thread (perf's comm at the root) instead of the threads merged
    #[arg(long)]
    pub per_thread: bool,
    /// Root every stack at its box, keeping only the frames from where it entered the box
    #[arg(long)]
    pub by_box: bool,
}

fn per_op(run: &Run, offcpu: bool) -> flamegraphs::Folded {
    // The attribution's view of the stacks, so library-less entry points are boxed alike.
    crate::attribute::stacks(run, offcpu).scaled(1.0 / run.ops())
}

/// Which flamegraph: of one run, or of B against A.
#[derive(Clone, Debug, PartialEq)]
pub enum FlameRuns {
    One(PathBuf),
    Diff { a: PathBuf, b: PathBuf },
}

/// What `flame` draws: the typed form of its command line.
#[derive(Clone, Debug, PartialEq)]
pub struct FlameOptions {
    pub runs: FlameRuns,
    pub offcpu: bool,
    /// [default: RUN/flame.svg (flame-offcpu.svg with `offcpu`), or B/flame-diff.svg]
    pub out: Option<PathBuf>,
    pub boxes: Option<PathBuf>,
    pub per_thread: bool,
    pub by_box: bool,
}

impl FlameOptions {
    /// `runs` drawn with every other setting at its default.
    pub fn new(runs: FlameRuns) -> FlameOptions {
        FlameOptions {
            runs,
            offcpu: false,
            out: None,
            boxes: None,
            per_thread: false,
            by_box: false,
        }
    }
}

impl FlameOptions {
    /// The `hz3-analyze flame` arguments that draw these options, for the commands the report
    /// prints.
    pub fn command_words(&self) -> Vec<String> {
        let mut words = vec!["flame".to_string()];
        for (on, flag) in [
            (matches!(self.runs, FlameRuns::Diff { .. }), "--diff"),
            (self.offcpu, "--offcpu"),
            (self.per_thread, "--per-thread"),
            (self.by_box, "--by-box"),
        ] {
            if on {
                words.push(flag.into());
            }
        }
        match &self.runs {
            FlameRuns::One(run) => words.push(run.display().to_string()),
            FlameRuns::Diff { a, b } => {
                words.extend([a.display().to_string(), b.display().to_string()])
            }
        }
        for (flag, path) in [("--out", &self.out), ("--boxes", &self.boxes)] {
            if let Some(p) = path {
                words.extend([flag.to_string(), p.display().to_string()]);
            }
        }
        words
    }
}

impl TryFrom<Args> for FlameOptions {
    type Error = anyhow::Error;

    fn try_from(args: Args) -> Result<FlameOptions> {
        let runs = match (args.diff, <[PathBuf; 2]>::try_from(args.runs)) {
            (true, Ok([a, b])) => FlameRuns::Diff { a, b },
            (true, Err(_)) => bail!("flame --diff takes exactly two runs: A B"),
            (false, Err(mut one)) if one.len() == 1 => FlameRuns::One(one.remove(0)),
            (false, _) => bail!("flame takes one RUN (or --diff A B)"),
        };
        Ok(FlameOptions {
            runs,
            offcpu: args.offcpu,
            out: args.out,
            boxes: args.boxes,
            per_thread: args.per_thread,
            by_box: args.by_box,
        })
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let out = draw(&FlameOptions::try_from(args)?)?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Draws the flamegraph `opts` asks for; returns the SVG file written.
pub fn draw(opts: &FlameOptions) -> Result<PathBuf> {
    let rules = boxes::load(opts.boxes.as_deref())?;
    let layout = flamegraphs::svg::Layout {
        per_thread: opts.per_thread,
        by_box: opts.by_box,
    };
    let what = if opts.offcpu { "off-CPU" } else { "CPU" };
    let (out, result) = match &opts.runs {
        FlameRuns::One(dir) => {
            let run = Run::load(dir)?;
            let out = opts.out.clone().unwrap_or_else(|| {
                dir.join(if opts.offcpu {
                    "flame-offcpu.svg"
                } else {
                    "flame.svg"
                })
            });
            let title = format!("{} — {what} ns/op", run.allocator());
            let mut svg = Vec::new();
            let r = flamegraphs::svg::render(
                &per_op(&run, opts.offcpu),
                &rules,
                layout,
                &title,
                &mut svg,
            );
            (out, r.map(|_| svg))
        }
        FlameRuns::Diff { a: a_dir, b: b_dir } => {
            let (a, b) = (Run::load(a_dir)?, Run::load(b_dir)?);
            if a.config_key() != b.config_key() {
                bail!(
                    "--diff needs two runs of the same bench configuration:\n  A: {}\n  B: {}",
                    a.config_key(),
                    b.config_key()
                );
            }
            let out = opts
                .out
                .clone()
                .unwrap_or_else(|| b_dir.join("flame-diff.svg"));
            let title = format!("{} vs {} — {what} ns/op", b.allocator(), a.allocator());
            let mut svg = Vec::new();
            let r = flamegraphs::svg::render_diff(
                &per_op(&a, opts.offcpu),
                &per_op(&b, opts.offcpu),
                &rules,
                layout,
                &title,
                &mut svg,
            );
            (out, r.map(|_| svg))
        }
    };
    let svg = result.with_context(|| format!("{}: drawing the flamegraph", out.display()))?;
    // inferno writes the SVG by hand; a malformed one is caught here rather than in a browser.
    let text = String::from_utf8(svg).context("the flamegraph is not UTF-8")?;
    flamegraphs::svg::check_well_formed(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: the drawn flamegraph is not well-formed XML: {e}",
            out.display()
        )
    })?;
    std::fs::write(&out, text).with_context(|| format!("{}: cannot write", out.display()))?;
    Ok(out)
}
