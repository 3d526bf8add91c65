//! `report`: the main job. A fixed plan of steps (matrix → pick the fastest anchor on
//! remote-heavy-small → record the hz3 lanes and that anchor → attribute → gaps → flamegraphs) whose
//! results land in one directory as `index.md`, `index.html` and `report.json`.
//!
//! Every step calls its library function in-process (only perf and the workload it records are
//! child processes); the heavy steps' (matrix, record, flame) notes and printed result go to
//! `logs/`, and beside every piece the report prints the command that reruns that step alone.
use crate::allocators::{self, anchor_name, ANCHORS};
use crate::attribute::{self, build_report};
use crate::flame::{self, FlameOptions, FlameRuns};
use crate::gap::{self, build_gap, Gap};
use crate::matrix::programs::{Program, ProgramRow};
use crate::matrix::MatrixReport;
use crate::matrix::{self, MatrixFiles, MatrixOptions, MatrixPlan, DEFAULT_BASELINE};
use crate::perf_run::Run;
use crate::process::{own_executable, relative_to_cwd, shell_line};
use crate::record::{self, ProgramOptions, RecordOptions};
use crate::table::Format;
use crate::{boxes, perf_tool, process};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod content;
mod doc;
mod machine;

pub const SCHEMA: &str = "hz3-report/1";
/// The workload the question is asked on: records, attribution and gaps all use it.
pub const FOCUS_PRESET: &str = "remote-heavy-small";
/// Matrix rounds with --quick (the matrix's own default is 5).
const QUICK_ROUNDS: u32 = 2;

const EXAMPLES: &str = "\
Examples:
  hz3-analyze report --quick                 # 2 matrix rounds: about 1.5 minutes on 2 cores, into report/
  hz3-analyze report                         # every preset, 5 rounds, 4999 Hz recordings: 3-4 minutes
  hz3-analyze report --out /tmp/r --lane scale --alloc glibc --alloc jemalloc --alloc hz3_scale -- --threads 4
  hz3-analyze report --quick --program 'py=python3 -c \"x=[str(i) for i in range(10**6)]\"'   # the plan on any program
Read report/index.md (or open report/index.html); each piece lists the command that made it.";

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    Scale,
    Fast,
}

impl Lane {
    fn name(self) -> &'static str {
        match self {
            Lane::Scale => "scale",
            Lane::Fast => "fast",
        }
    }
}

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Directory the report is written to (created; earlier files in it are overwritten)
    #[arg(long, default_value = "report", value_name = "DIR")]
    pub out: PathBuf,
    /// Under 5 minutes: matrix of 2 rounds, recordings at 999 Hz with a 4 KiB stack copy
    #[arg(long)]
    pub quick: bool,
    /// Matrix rounds [default: 5, --quick: 2]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub runs: Option<u32>,
    /// Matrix preset(s), comma-separated or repeated, or `all` [default: all];
    /// remote-heavy-small is always added, since the anchor is picked there
    #[arg(long = "preset", value_delimiter = ',', value_name = "PRESET")]
    pub presets: Vec<String>,
    /// Matrix allocators, as `matrix --alloc` takes them [default: the matrix's default set]
    #[arg(long = "alloc", value_name = "NAME[=PATH]")]
    pub allocs: Vec<String>,
    /// hz3 lanes to record [default: scale,fast]; the fast-vs-scale gap needs both
    #[arg(long = "lane", value_enum, value_delimiter = ',')]
    pub lanes: Vec<Lane>,
    /// Record the plain hz3 builds instead of the probes builds (no probes column)
    #[arg(long)]
    pub plain: bool,
    /// The hz3-bench binary [default: next to this executable]
    #[arg(long, value_name = "PATH")]
    pub bench: Option<PathBuf>,
    /// Where hz3_* and ceiling .so files are looked up [default: target/preload of this build]
    #[arg(long, value_name = "DIR")]
    pub preload_dir: Option<PathBuf>,
    /// Box rules (TOML) read in front of the built-in ones, for attribute, gap and flame
    #[arg(long, value_name = "FILE")]
    pub boxes: Option<PathBuf>,
    /// What goes to stdout at the end: the summary table, or `--json` (report.json) / `--csv`
    /// (the hz3_scale-vs-anchor gap table)
    #[command(flatten)]
    pub format: Format,
    /// Ask the question of any program instead of hz3-bench: NAME='CMD ARGS…'. The matrix
    /// measures it (wall, CPU, peak RSS), the anchor is the one with the least CPU time on it,
    /// and the recordings, gaps and flamegraphs are of it
    #[arg(long, value_name = "NAME='CMD ARGS…'", conflicts_with_all = ["presets", "bench_args"])]
    pub program: Option<String>,
    /// With --program: its op count, so figures are per op (without it they are per run)
    #[arg(long, value_name = "N", requires = "program")]
    pub ops: Option<u64>,
    /// With --program: read the op count from its output (first capture group of REGEX)
    #[arg(long, value_name = "REGEX", requires = "program")]
    pub ops_from: Option<String>,
    /// hz3-bench arguments after `--`, applied after the preset in the matrix and the recordings
    #[arg(last = true, value_name = "BENCH ARGS")]
    pub bench_args: Vec<String>,
}

/// One step of the plan as it ran.
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    pub name: String,
    /// The command that reproduces the step (run from the directory the report was run in).
    pub command: String,
    /// The step's notes and printed result (matrix, record and flame steps).
    pub log: Option<String>,
    pub seconds: f64,
}

/// One recorded run.
#[derive(Clone, Debug, Serialize)]
pub struct Recording {
    /// What it stands for in the question: `hz3 scale`, `hz3 fast`, `anchor`.
    pub role: String,
    pub allocator: String,
    pub preload: Option<String>,
    pub dir: String,
    pub flame: Option<String>,
}

/// One gap with where its files are.
#[derive(Clone, Debug, Serialize)]
pub struct GapEntry {
    pub title: String,
    pub gap: Gap,
    pub flame_diff: Option<String>,
}

/// Everything the report produced; `report.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: String,
    /// `complete`, or the one-line error of the step that stopped the plan.
    pub status: String,
    /// The command line that made this report.
    pub command: String,
    pub quick: bool,
    pub machine: machine::Facts,
    pub focus_preset: String,
    pub record_bench_args: Vec<String>,
    pub anchor: Option<String>,
    pub matrix: Option<MatrixReport>,
    /// `--program NAME=CMD`: the program the question is asked of, instead of hz3-bench.
    pub program: Option<String>,
    /// The matrix's rows of that program.
    pub program_rows: Vec<ProgramRow>,
    pub recordings: Vec<Recording>,
    pub attribution: Vec<attribute::Report>,
    pub gaps: Vec<GapEntry>,
    pub steps: Vec<StepRecord>,
}

/// Where the files go inside the output directory.
pub mod files {
    pub const INDEX_MD: &str = "index.md";
    pub const INDEX_HTML: &str = "index.html";
    pub const REPORT_JSON: &str = "report.json";
    pub const MATRIX_JSON: &str = "matrix.json";
    pub const MATRIX_CSV: &str = "matrix.csv";
    pub const MATRIX_MD: &str = "matrix.md";
    pub const MATRIX_SVG: &str = "matrix.svg";
    pub const RUNS: &str = "runs";
    pub const LOGS: &str = "logs";
    pub const TABLES: &str = "tables";
    pub const FLAMES: &str = "flames";
}

/// The plan's driver: one progress bar over every step, each heavy step's output into `logs/`.
struct Driver {
    out: PathBuf,
    exe_shown: String,
    progress: indicatif::ProgressBar,
    report: Report,
}

impl Driver {
    fn begin(&self, name: &str) -> Instant {
        self.progress.set_message(name.to_string());
        Instant::now()
    }

    fn finish(&mut self, name: &str, command: String, log: Option<String>, started: Instant) {
        self.report.steps.push(StepRecord {
            name: name.to_string(),
            command,
            log,
            seconds: started.elapsed().as_secs_f64(),
        });
        self.progress.inc(1);
    }

    /// Runs one step with its output in `logs/NN-NAME.log`; `words` are the hz3-analyze
    /// arguments that rerun it alone. A failure names the step, the log and that command.
    fn step<T>(
        &mut self,
        name: &str,
        words: &[String],
        body: impl FnOnce(&mut File) -> Result<T>,
    ) -> Result<T> {
        let started = self.begin(name);
        let log_name = format!(
            "{:02}-{}.log",
            self.report.steps.len() + 1,
            name.replace([' ', '/'], "-")
        );
        let log_path = self.out.join(files::LOGS).join(&log_name);
        let mut log = File::create(&log_path)
            .with_context(|| format!("{}: cannot create", log_path.display()))?;
        let command = shell_line(&self.exe_shown, words);
        let value = match body(&mut log) {
            Ok(v) => v,
            Err(e) => {
                // The log ends as the step's own run would have: with its error line.
                let _ = writeln!(log, "hz3-analyze: error: {e:#}");
                bail!(
                    "step `{name}` failed: {e:#} [log: {}; command: {command}]",
                    log_path.display()
                );
            }
        };
        self.finish(name, command, Some(log_path.display().to_string()), started);
        Ok(value)
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let plan = Plan::new(&args)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create the report directory", args.out.display()))?;
    for sub in [files::LOGS, files::TABLES, files::FLAMES, files::RUNS] {
        let dir = args.out.join(sub);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    let exe_shown = relative_to_cwd(&own_executable()?);
    // matrix + one record per lane and the anchor + attribute + gaps + a flame per run and per gap
    // + writing the files.
    let runs = plan.lanes.len() as u64 + 1;
    let gaps = if plan.lanes.len() >= 2 { 2 } else { 1 };
    let total = 1 + runs + 1 + 1 + runs + gaps + 1;
    let progress = indicatif::ProgressBar::new(total);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} step {pos}/{len}: {msg}",
        )
        .expect("a valid template"),
    );
    progress.enable_steady_tick(Duration::from_millis(250));
    let mut driver = Driver {
        out: args.out.clone(),
        exe_shown: exe_shown.clone(),
        progress,
        report: Report {
            schema: SCHEMA.into(),
            status: "running".into(),
            command: shell_line(&exe_shown, &std::env::args().skip(1).collect::<Vec<_>>()),
            quick: args.quick,
            machine: machine::Facts::gather(plan.perf_version.clone()),
            focus_preset: plan
                .program
                .as_ref()
                .map_or(FOCUS_PRESET.into(), |p| format!("program {}", p.name)),
            record_bench_args: plan.record_bench_args.clone(),
            anchor: None,
            matrix: None,
            program: args.program.clone(),
            program_rows: Vec::new(),
            recordings: Vec::new(),
            attribution: Vec::new(),
            gaps: Vec::new(),
            steps: Vec::new(),
        },
    };
    match execute(&plan, &args, &mut driver) {
        Ok(()) => {
            driver.progress.finish_and_clear();
            let report = &driver.report;
            let headline = report.gaps.first();
            args.format.print(
                report,
                || match headline {
                    Some(g) => gap::gap_table(&g.gap, true).to_csv(),
                    None => Ok(String::new()),
                },
                || content::summary(report, &args.out),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            driver.progress.abandon();
            driver.report.status = format!("failed: {err:#}");
            // What ran so far stays on disk, with an index that says where the plan stopped.
            let kept = write_files(&driver.report, &args.out);
            let note = match kept {
                Ok(()) => format!(
                    "everything produced so far is in {} (see {})",
                    args.out.display(),
                    args.out.join(files::INDEX_MD).display()
                ),
                Err(e) => format!(
                    "the partial report could not be written either ({e:#}); the steps' files are in {}",
                    args.out.display()
                ),
            };
            Err(err.context(note))
        }
    }
}

/// What the plan needs before any step runs; every check that can fail early fails here.
struct Plan {
    perf_version: String,
    lanes: Vec<Lane>,
    matrix: MatrixOptions,
    record_bench_args: Vec<String>,
    /// Each lane's allocator spec for `record --alloc`, and the name it records under.
    hz3_specs: Vec<(Lane, String, String)>,
    /// `--program`: the program, and how `record` runs it (in place of the bench).
    program: Option<Program>,
    record_program: Option<ProgramOptions>,
}

impl Plan {
    fn new(args: &Args) -> Result<Plan> {
        let perf_version = perf_tool::require_perf()?;
        perf_tool::check_paranoid()?;
        process::locate_bench(args.bench.as_deref())?;
        let program = match &args.program {
            Some(spec) => {
                Some(crate::matrix::programs::parse(std::slice::from_ref(spec))?.remove(0))
            }
            None => None,
        };
        let mut record_program = None;
        if let Some(p) = &program {
            crate::program::OpsSource::from_args(args.ops, args.ops_from.as_deref())?;
            record_program = Some(ProgramOptions {
                command: p.command.clone(),
                ops: args.ops,
                ops_from: args.ops_from.clone(),
            });
        }
        // A bad rules file would otherwise surface only after the matrix and the recordings.
        boxes::load(args.boxes.as_deref())?;
        let preload_dir = match &args.preload_dir {
            Some(d) => d.clone(),
            None => allocators::default_preload_dir()?,
        };
        let mut lanes = args.lanes.clone();
        if lanes.is_empty() {
            lanes = vec![Lane::Scale, Lane::Fast];
        }
        let mut seen = Vec::new();
        lanes.retain(|l| {
            let first = !seen.contains(l);
            seen.push(*l);
            first
        });
        let mut hz3_specs = Vec::new();
        for &lane in &lanes {
            let plain = format!("hz3_{}", lane.name());
            let probes = format!("{plain}_probes");
            let candidates: &[&String] = if args.plain {
                &[&plain]
            } else {
                &[&probes, &plain]
            };
            let found = candidates.iter().find_map(|name| {
                let path = preload_dir.join(format!("lib{name}.so"));
                path.is_file().then(|| (name.to_string(), path))
            });
            let Some((name, path)) = found else {
                bail!(
                    "no {} build of hz3 in {}: run `scripts/build-preload` (or pick lanes with --lane)",
                    candidates
                        .iter()
                        .map(|n| format!("lib{n}.so"))
                        .collect::<Vec<_>>()
                        .join(" or "),
                    preload_dir.display()
                );
            };
            hz3_specs.push((lane, format!("{name}={}", path.display()), name));
        }
        if !args.allocs.is_empty() && !args.allocs.iter().any(|a| anchor_name(a).is_some()) {
            bail!(
                "--alloc lists no anchor ({}): the report compares hz3 with the fastest of them",
                ANCHORS.map(|a| a.name).join(", ")
            );
        }

        let mut presets = args.presets.clone();
        if presets.is_empty() {
            presets.push("all".into());
        }
        if !presets.iter().any(|p| p == "all" || p == FOCUS_PRESET) {
            presets.insert(0, FOCUS_PRESET.into());
        }
        let file = |name: &str| Some(args.out.join(name));
        let matrix = MatrixOptions {
            // The program alone: the question is asked of it, not of the presets.
            programs: args.program.iter().cloned().collect(),
            presets: if args.program.is_some() {
                Vec::new()
            } else {
                presets
            },
            // Not `matrix --quick`: its tenth of the iterations changes the ranking (short runs
            // favour allocators that never touch their blocks), and the anchor must be the
            // fastest on the workload the recordings run. --quick saves rounds instead.
            runs: args.runs.or(args.quick.then_some(QUICK_ROUNDS)),
            allocs: args.allocs.clone(),
            baseline: matrix_baseline(&args.allocs).unwrap_or_else(|| DEFAULT_BASELINE.into()),
            bench: args.bench.clone(),
            preload_dir: args.preload_dir.clone(),
            bench_args: args.bench_args.clone(),
            files: MatrixFiles {
                json: file(files::MATRIX_JSON),
                csv: file(files::MATRIX_CSV),
                markdown: file(files::MATRIX_MD),
                svg: file(files::MATRIX_SVG),
                summary_md: None,
            },
            // The report draws its own progress bar over the steps.
            progress: false,
            ..MatrixOptions::new()
        };
        let mut record_bench_args: Vec<String> = ["remote", "--preset", FOCUS_PRESET]
            .iter()
            .map(|s| s.to_string())
            .collect();
        record_bench_args.extend(args.bench_args.iter().cloned());
        Ok(Plan {
            perf_version,
            lanes,
            matrix,
            record_bench_args,
            hz3_specs,
            program,
            record_program,
        })
    }
}

/// The matrix's ratio column divides by tcmalloc when it is measured, else by the first anchor.
fn matrix_baseline(allocs: &[String]) -> Option<String> {
    if allocs.is_empty() {
        return None;
    }
    let anchors: Vec<&str> = allocs.iter().filter_map(|a| anchor_name(a)).collect();
    let pick = if anchors.contains(&"tcmalloc") {
        "tcmalloc"
    } else {
        anchors.first()?
    };
    Some(pick.to_string())
}

/// The anchors that finished a run on the focus preset, fastest median first.
pub fn anchors_by_speed(matrix: &MatrixReport) -> Vec<&crate::matrix::Row> {
    let mut rows: Vec<_> = matrix
        .rows
        .iter()
        .filter(|r| r.preset == FOCUS_PRESET && anchor_name(&r.allocator).is_some())
        .filter(|r| r.median_mops.is_some())
        .collect();
    rows.sort_by(|a, b| {
        b.median_mops
            .unwrap_or(0.0)
            .total_cmp(&a.median_mops.unwrap_or(0.0))
    });
    rows
}

/// The anchor with the highest median on the focus preset.
pub fn fastest_anchor(matrix: &MatrixReport) -> Result<&crate::matrix::Row> {
    anchors_by_speed(matrix).first().copied().with_context(|| {
        format!(
            "no anchor finished a run on {FOCUS_PRESET} in the matrix: nothing to compare hz3 with"
        )
    })
}

fn execute(plan: &Plan, args: &Args, d: &mut Driver) -> Result<()> {
    let out = args.out.clone();

    // 1. The matrix, with every output file.
    // The snapshot's private copies of the libraries go as soon as the matrix is measured.
    let matrix::Matrix {
        report: matrix,
        program_rows,
        ..
    } = d.step("matrix", &plan.matrix.command_words(), |log| {
        let m = MatrixPlan::new(&plan.matrix)
            .map_err(anyhow::Error::from)?
            .measure(log)?;
        write!(log, "{}", matrix::render_text(&m))?;
        matrix::write_outputs(&m.report, &m.program_rows, &plan.matrix.files)?;
        Ok(m)
    })?;
    // (allocator, preload) of the anchor hz3 is compared with.
    let anchor_row: (String, Option<String>) = match &plan.program {
        Some(p) => {
            let rows = program_rows;
            let anchors: Vec<&str> = ANCHORS.iter().map(|a| a.name).collect();
            let row = crate::matrix::programs::fastest(&rows, &p.name, &anchors)
                .with_context(|| {
                    format!(
                        "step `pick the anchor` failed: no anchor finished a run of program {} in the matrix",
                        p.name
                    )
                })?;
            let picked = (row.allocator.clone(), row.preload.clone());
            d.report.program_rows = rows;
            picked
        }
        None => {
            let row = fastest_anchor(&matrix).context("step `pick the anchor` failed")?;
            (row.allocator.clone(), row.preload.clone())
        }
    };
    d.report.anchor = Some(anchor_row.0.clone());
    d.report.matrix = Some(matrix);

    // 2. Records: hz3's lanes, then the anchor, all on the focus preset.
    // A Debian anchor at its usual path is named as `record` knows it; anything else by path.
    let (anchor_name, anchor_preload) = &anchor_row;
    let usual = ANCHORS
        .iter()
        .any(|a| a.name == *anchor_name && a.path == anchor_preload.as_deref());
    let anchor_spec = match anchor_preload {
        Some(p) if !usual => format!("{anchor_name}={p}"),
        _ => anchor_name.clone(),
    };
    let mut to_record: Vec<(String, String, String)> = plan
        .hz3_specs
        .iter()
        .map(|(lane, spec, name)| (format!("hz3 {}", lane.name()), spec.clone(), name.clone()))
        .collect();
    to_record.push(("anchor".into(), anchor_spec, anchor_name.clone()));
    for (role, spec, name) in &to_record {
        let dir = out.join(files::RUNS).join(name);
        let opts = RecordOptions {
            out: Some(dir.clone()),
            quick: args.quick,
            bench: args.bench.clone(),
            program: plan.record_program.clone(),
            bench_args: match plan.record_program {
                Some(_) => Vec::new(),
                None => plan.record_bench_args.clone(),
            },
            ..RecordOptions::new(spec.clone())
        };
        d.step(&format!("record {name}"), &opts.command_words(), |log| {
            let recorded = record::record(&opts, log)?;
            writeln!(log, "{recorded}")?;
            Ok(())
        })?;
        d.report.recordings.push(Recording {
            role: role.clone(),
            allocator: name.clone(),
            preload: spec.split_once('=').map(|(_, p)| p.to_string()),
            dir: dir.display().to_string(),
            flame: None,
        });
    }

    // 3. Attribution of every run, in-process; tables in tables/.
    let started = d.begin("attribute");
    let rules = boxes::load(args.boxes.as_deref()).context("step `attribute` failed")?;
    let mut commands = Vec::new();
    for rec in &d.report.recordings {
        let run = Run::load(Path::new(&rec.dir)).context("step `attribute` failed")?;
        let a = build_report(&run, &rules);
        let stem = out
            .join(files::TABLES)
            .join(format!("attribute-{}", rec.allocator));
        write_formats(
            &stem,
            &a,
            attribute::boxes_table(&a, true).to_csv()?,
            attribute::render_text(&a),
        )?;
        commands.push(shell_line(
            &d.exe_shown,
            &with_boxes(&["attribute", &rec.dir], args),
        ));
        d.report.attribution.push(a);
    }
    d.finish("attribute", commands.join("\n"), None, started);

    // 4. Gaps: hz3 scale (or the one lane) against the anchor, then fast against scale.
    let started = d.begin("gap");
    let index_of = |role: &str| d.report.recordings.iter().position(|r| r.role == role);
    let anchor_i = index_of("anchor").context("the anchor run is missing")?;
    // The question is about hz3 scale; with only the fast lane recorded, about that.
    let headline_lane = index_of("hz3 scale").unwrap_or(0);
    let mut pairs = vec![(anchor_i, headline_lane)];
    if let (Some(s), Some(f)) = (index_of("hz3 scale"), index_of("hz3 fast")) {
        pairs.push((s, f));
    }
    let mut commands = Vec::new();
    for &(ai, bi) in &pairs {
        let (a, b) = (&d.report.attribution[ai], &d.report.attribution[bi]);
        let g = build_gap(a, b).context("step `gap` failed")?;
        let title = format!("{} vs {}", b.allocator, a.allocator);
        let stem = out
            .join(files::TABLES)
            .join(format!("gap-{}-vs-{}", b.allocator, a.allocator));
        write_formats(
            &stem,
            &g,
            gap::gap_table(&g, true).to_csv()?,
            gap::render_text(&g),
        )?;
        let (ra, rb) = (&d.report.recordings[ai].dir, &d.report.recordings[bi].dir);
        commands.push(shell_line(
            &d.exe_shown,
            &with_boxes(&["gap", ra, rb], args),
        ));
        d.report.gaps.push(GapEntry {
            title,
            gap: g,
            flame_diff: None,
        });
    }
    d.finish("gap", commands.join("\n"), None, started);

    // 5. Flamegraphs: one per run, one differential per gap.
    for i in 0..d.report.recordings.len() {
        let rec = d.report.recordings[i].clone();
        let svg = out
            .join(files::FLAMES)
            .join(format!("{}.svg", rec.allocator));
        let opts = FlameOptions {
            out: Some(svg),
            boxes: args.boxes.clone(),
            ..FlameOptions::new(FlameRuns::One(PathBuf::from(&rec.dir)))
        };
        let svg = draw_flame(d, &format!("flame {}", rec.allocator), &opts)?;
        d.report.recordings[i].flame = Some(svg);
    }
    for (gi, &(ai, bi)) in pairs.iter().enumerate() {
        let (a, b) = (
            d.report.recordings[ai].clone(),
            d.report.recordings[bi].clone(),
        );
        let svg = out
            .join(files::FLAMES)
            .join(format!("diff-{}-vs-{}.svg", b.allocator, a.allocator));
        let opts = FlameOptions {
            out: Some(svg),
            boxes: args.boxes.clone(),
            by_box: true,
            ..FlameOptions::new(FlameRuns::Diff {
                a: PathBuf::from(&a.dir),
                b: PathBuf::from(&b.dir),
            })
        };
        let name = format!("flame diff {} vs {}", b.allocator, a.allocator);
        let svg = draw_flame(d, &name, &opts)?;
        d.report.gaps[gi].flame_diff = Some(svg);
    }

    // 6. The report files.
    let started = d.begin("write index");
    d.report.status = "complete".into();
    d.finish("write index", String::new(), None, started);
    write_files(&d.report, &out)?;
    Ok(())
}

/// One flamegraph step; the SVG's path as the report lists it.
fn draw_flame(d: &mut Driver, name: &str, opts: &FlameOptions) -> Result<String> {
    let svg = d.step(name, &opts.command_words(), |log| {
        let svg = flame::draw(opts)?;
        writeln!(log, "{}", svg.display())?;
        Ok(svg)
    })?;
    Ok(svg.display().to_string())
}

fn with_boxes(base: &[&str], args: &Args) -> Vec<String> {
    let mut v: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    if let Some(b) = &args.boxes {
        v.extend(["--boxes".into(), b.display().to_string()]);
    }
    v
}

/// `STEM.txt`, `STEM.json`, `STEM.csv`: the three forms every tabular command prints.
fn write_formats<T: Serialize>(stem: &Path, value: &T, csv: String, text: String) -> Result<()> {
    let write = |ext: &str, body: String| -> Result<()> {
        let path = stem.with_extension(ext);
        std::fs::write(&path, body).with_context(|| format!("{}: cannot write", path.display()))
    };
    write("txt", text)?;
    write("json", serde_json::to_string_pretty(value)? + "\n")?;
    write("csv", csv)
}

/// index.md, index.html and report.json from what the report holds so far.
fn write_files(report: &Report, out: &Path) -> Result<()> {
    let blocks = content::index(report, out);
    let write = |name: &str, body: String| -> Result<()> {
        let path = out.join(name);
        std::fs::write(&path, body).with_context(|| format!("{}: cannot write", path.display()))
    };
    write(
        files::REPORT_JSON,
        serde_json::to_string_pretty(report)? + "\n",
    )?;
    write(files::INDEX_MD, doc::markdown(&blocks))?;
    write(files::INDEX_HTML, doc::html("hz3 gap report", &blocks))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_baseline_prefers_tcmalloc_then_the_first_anchor() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(matrix_baseline(&[]), None);
        assert_eq!(
            matrix_baseline(&s(&["hz3_scale", "jemalloc", "tcmalloc"])).as_deref(),
            Some("tcmalloc")
        );
        assert_eq!(
            matrix_baseline(&s(&["hz3_scale", "mimalloc=/x.so", "glibc"])).as_deref(),
            Some("mimalloc")
        );
        assert_eq!(matrix_baseline(&s(&["hz3_scale"])), None);
    }

    #[test]
    fn the_fastest_anchor_is_picked_on_the_focus_preset_only() {
        use crate::matrix::{finish_rows, test_row};
        let mut rows = vec![
            test_row(FOCUS_PRESET, "glibc", &[5.0, 6.0], &[]),
            test_row(FOCUS_PRESET, "jemalloc", &[9.0, 8.0], &[]),
            test_row(FOCUS_PRESET, "hz3_scale", &[50.0], &[]),
            test_row(FOCUS_PRESET, "mimalloc", &[], &["SIGSEGV"]),
            test_row("local-small", "tcmalloc", &[99.0], &[]),
            test_row(FOCUS_PRESET, "tcmalloc", &[7.0], &[]),
        ];
        finish_rows(&mut rows, "glibc");
        let mut m = MatrixReport {
            schema: crate::matrix::SCHEMA.into(),
            baseline: "glibc".into(),
            runs: 2,
            quick: true,
            workloads: vec![],
            rows,
            round_trip_cpus: None,
        };
        assert_eq!(fastest_anchor(&m).unwrap().allocator, "jemalloc");
        m.rows
            .retain(|r| r.preset != FOCUS_PRESET || r.allocator == "hz3_scale");
        let err = fastest_anchor(&m).unwrap_err().to_string();
        assert!(err.contains("no anchor finished"), "{err}");
    }
}
