//! `record --alloc NAME -- <bench args>`: the bench under `perf record`, folded into a run directory.
//!
//! perf runs this same executable in a hidden helper mode (`--exec-counted`) that opens a
//! perf-event2 counting group with `inherit`, starts the bench with the allocator preloaded,
//! and writes the group's counts when the bench exits; so task-clock covers exactly the bench's
//! threads, and neither perf nor the helper runs under the allocator being measured.
use crate::allocators::{self, Allocator};
use crate::perf_run::{self, Meta};
use crate::perf_tool::{self, CountingGroup};
use crate::program;
use crate::runner;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const EXAMPLES: &str = "\
Examples:
  hz3-analyze record --alloc tcmalloc                       # remote-heavy-small into runs/tcmalloc
  hz3-analyze record --alloc hz3_scale_probes -- --preset remote-heavy-small --iters 100000
  hz3-analyze record --alloc mine=/tmp/a.so:/tmp/b.so --call-graph fp --out runs/mine
  hz3-analyze record --alloc glibc --program 'python3 -c \"x=[str(i) for i in range(10**6)]\"' --out runs/py-glibc
  hz3-analyze record --alloc hz3_scale --program './mytool --n 1000' --ops-from 'done ([0-9]+) items'
Then: hz3-analyze attribute runs/tcmalloc; hz3-analyze gap runs/tcmalloc runs/hz3_scale";

const DEFAULT_FREQ: u32 = 4999;
/// `--switch-stack-size` and `--mmap` when not given.
pub const DEFAULT_SWITCH_STACK: u32 = 2048;
pub const DEFAULT_MMAP: &str = "128M";
const DEFAULT_STACK: u32 = 8192;
const QUICK_FREQ: u32 = 999;
const QUICK_STACK: u32 = 4096;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallGraph {
    /// DWARF unwinding of a copied user stack: sees through libc and frame-pointer-less code
    Dwarf,
    /// Frame pointers: small and fast, but stacks break in code built without them (libc)
    Fp,
}

#[derive(clap::Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Allocator: glibc, tcmalloc, jemalloc, mimalloc, snmalloc (jemalloc, mimalloc and snmalloc
    /// built from source by scripts/build-anchors), jemalloc-debian, mimalloc-debian, ceiling,
    /// hz3_<build>, or NAME=PATH
    /// (PATH goes to LD_PRELOAD as given, so `a.so:b.so` works)
    #[arg(
        long,
        value_name = "NAME|NAME=PATH",
        required_unless_present = "exec_counted"
    )]
    pub alloc: Option<String>,
    /// Sampling frequency of cpu-clock, Hz [default: 4999, 999 with --quick]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub freq: Option<u32>,
    /// How perf unwinds stacks
    #[arg(long, value_enum, default_value = "dwarf")]
    pub call_graph: CallGraph,
    /// Bytes of user stack copied per sample with --call-graph dwarf [default: 8192, 4096 with --quick]
    #[arg(long, value_parser = clap::value_parser!(u32).range(512..=65528))]
    pub stack_size: Option<u32>,
    /// Bytes of user stack copied per sched_switch with --call-graph dwarf (every switch is
    /// recorded, so this is most of the perf.data)
    #[arg(long, default_value_t = DEFAULT_SWITCH_STACK, value_parser = clap::value_parser!(u32).range(512..=65528))]
    pub switch_stack_size: u32,
    /// A first look: 999 Hz and a 4 KiB stack copy per sample (about half the perf.data: the
    /// switches stay), unless --freq / --stack-size say otherwise
    #[arg(long)]
    pub quick: bool,
    /// perf's ring buffer per CPU (perf -m); small buffers lose samples at 32 threads
    #[arg(long, default_value = DEFAULT_MMAP)]
    pub mmap: String,
    /// Do not record sched:sched_switch (no off-CPU time)
    #[arg(long)]
    pub no_offcpu: bool,
    /// Run directory to write [default: runs/<alloc name>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// hz3-bench to run [default: next to this executable]
    #[arg(long, value_name = "PATH")]
    pub bench: Option<PathBuf>,
    /// Helper mode (used by record itself under perf): count the command, write the counts here
    #[arg(long, hide = true, value_name = "FILE")]
    pub exec_counted: Option<PathBuf>,
    /// Helper mode: KEY=VALUE set on the counted command only
    #[arg(long, hide = true, value_name = "KEY=VALUE")]
    pub child_env: Vec<String>,
    /// Helper mode: the counted command's stdout and stderr go to these files
    #[arg(long, hide = true, value_name = "FILE", num_args = 2)]
    pub child_output: Vec<PathBuf>,
    /// Record this program instead of hz3-bench: one string, split like a shell would
    /// (child processes and threads are followed)
    #[arg(long, value_name = "'CMD ARGS…'", conflicts_with = "bench_args")]
    pub program: Option<String>,
    /// The program's op count, so figures are per op (without it they are per run)
    #[arg(long, value_name = "N", requires = "program")]
    pub ops: Option<u64>,
    /// Read the op count from the program's output: the first capture group of REGEX's first
    /// match in stdout, else stderr (e.g. 'ops=([0-9]+)')
    #[arg(long, value_name = "REGEX", requires = "program")]
    pub ops_from: Option<String>,
    /// hz3-bench arguments [default: remote --preset remote-heavy-small]; --json is added
    #[arg(last = true, value_name = "BENCH ARGS")]
    pub bench_args: Vec<String>,
}

/// What `record` runs and how: the typed form of its command line.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordOptions {
    /// NAME, or NAME=PATH (PATH may be a `:`-separated preload list).
    pub alloc: String,
    pub freq: Option<u32>,
    pub call_graph: CallGraph,
    pub stack_size: Option<u32>,
    pub switch_stack_size: u32,
    pub quick: bool,
    pub mmap: String,
    pub no_offcpu: bool,
    /// [default: runs/<alloc name>]
    pub out: Option<PathBuf>,
    pub bench: Option<PathBuf>,
    /// A program recorded instead of hz3-bench.
    pub program: Option<ProgramOptions>,
    pub bench_args: Vec<String>,
}

/// `--program CMD` with where its op count comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramOptions {
    pub command: String,
    pub ops: Option<u64>,
    pub ops_from: Option<String>,
}

impl RecordOptions {
    /// `alloc` recorded with every other setting at its default.
    pub fn new(alloc: impl Into<String>) -> RecordOptions {
        RecordOptions {
            alloc: alloc.into(),
            freq: None,
            call_graph: CallGraph::Dwarf,
            stack_size: None,
            switch_stack_size: DEFAULT_SWITCH_STACK,
            quick: false,
            mmap: DEFAULT_MMAP.into(),
            no_offcpu: false,
            out: None,
            bench: None,
            program: None,
            bench_args: Vec::new(),
        }
    }

    /// The `hz3-analyze record` arguments that run these options (defaults left out), for the
    /// commands the guard and the report print.
    pub fn command_words(&self) -> Vec<String> {
        let mut words = vec!["record".to_string()];
        if self.quick {
            words.push("--quick".into());
        }
        if let Some(f) = self.freq {
            words.extend(["--freq".into(), f.to_string()]);
        }
        if self.call_graph != CallGraph::Dwarf {
            words.extend(["--call-graph".into(), "fp".into()]);
        }
        if let Some(s) = self.stack_size {
            words.extend(["--stack-size".into(), s.to_string()]);
        }
        if self.switch_stack_size != DEFAULT_SWITCH_STACK {
            words.extend([
                "--switch-stack-size".into(),
                self.switch_stack_size.to_string(),
            ]);
        }
        if self.mmap != DEFAULT_MMAP {
            words.extend(["--mmap".into(), self.mmap.clone()]);
        }
        if self.no_offcpu {
            words.push("--no-offcpu".into());
        }
        words.extend(["--alloc".into(), self.alloc.clone()]);
        if let Some(o) = &self.out {
            words.extend(["--out".into(), o.display().to_string()]);
        }
        if let Some(b) = &self.bench {
            words.extend(["--bench".into(), b.display().to_string()]);
        }
        match &self.program {
            Some(p) => {
                words.extend(["--program".into(), p.command.clone()]);
                if let Some(n) = p.ops {
                    words.extend(["--ops".into(), n.to_string()]);
                }
                if let Some(re) = &p.ops_from {
                    words.extend(["--ops-from".into(), re.clone()]);
                }
            }
            None => {
                words.push("--".into());
                words.extend(self.bench_args.iter().cloned());
            }
        }
        words
    }
}

impl TryFrom<Args> for RecordOptions {
    type Error = anyhow::Error;

    fn try_from(args: Args) -> Result<RecordOptions> {
        Ok(RecordOptions {
            alloc: args.alloc.context("--alloc is required")?,
            freq: args.freq,
            call_graph: args.call_graph,
            stack_size: args.stack_size,
            switch_stack_size: args.switch_stack_size,
            quick: args.quick,
            mmap: args.mmap,
            no_offcpu: args.no_offcpu,
            out: args.out,
            bench: args.bench,
            program: args.program.map(|command| ProgramOptions {
                command,
                ops: args.ops,
                ops_from: args.ops_from,
            }),
            bench_args: args.bench_args,
        })
    }
}

/// What a recording left in its run directory.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub dir: PathBuf,
    pub samples: u64,
    pub switches: u64,
}

/// The line `record` ends with.
impl std::fmt::Display for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{}: {} samples, {} context switches recorded; next: hz3-analyze attribute {}",
            self.dir.display(),
            self.samples,
            self.switches,
            self.dir.display()
        )
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    if let Some(counts_file) = &args.exec_counted {
        return exec_counted(
            counts_file,
            &args.child_env,
            &args.child_output,
            &args.bench_args,
        );
    }
    let recorded = record(&RecordOptions::try_from(args)?, &mut std::io::stderr())?;
    println!("{recorded}");
    Ok(ExitCode::SUCCESS)
}

/// Records `opts`'s workload under perf into its run directory; notes (no PMU, no off-CPU
/// time, perf's warnings) go to `log`.
pub fn record(opts: &RecordOptions, log: &mut dyn Write) -> Result<Recorded> {
    let spec = opts.alloc.as_str();
    // A bad command line is bad input, found before perf is even looked for.
    let program = match &opts.program {
        Some(p) => {
            let cmd = &p.command;
            let argv = program::split(cmd)?;
            let exe = crate::process::locate(&argv[0])?;
            let ops = program::OpsSource::from_args(p.ops, p.ops_from.as_deref())?;
            Some((cmd.clone(), argv, exe, ops))
        }
        None => None,
    };
    let perf_version = perf_tool::require_perf()?;
    perf_tool::check_paranoid()?;
    let allocator = resolve_allocator(spec)?;
    let (workload, bench_args) = match &program {
        Some((_, argv, exe, _)) => {
            let mut words = vec![exe.display().to_string()];
            words.extend(argv[1..].iter().cloned());
            (words, argv.clone())
        }
        None => {
            let bench = crate::process::locate_bench(opts.bench.as_deref())?;
            let bench_args = bench_arguments(&opts.bench_args);
            let mut words = vec![bench.display().to_string()];
            words.extend(bench_args.iter().cloned());
            (words, bench_args)
        }
    };
    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&allocator.name));
    prepare_dir(&dir)?;

    let freq = opts
        .freq
        .unwrap_or(if opts.quick { QUICK_FREQ } else { DEFAULT_FREQ });
    let stack_size = opts.stack_size.unwrap_or(if opts.quick {
        QUICK_STACK
    } else {
        DEFAULT_STACK
    });
    let hardware_pmu = perf_tool::hardware_pmu();
    if !hardware_pmu {
        writeln!(log, "record: no hardware PMU here (cycles cannot be counted): sampling the software cpu-clock event")?;
    }
    let offcpu_missing = if opts.no_offcpu {
        Some("--no-offcpu".to_string())
    } else {
        perf_tool::ensure_sched_switch().err()
    };
    if let Some(why) = offcpu_missing.as_deref().filter(|_| !opts.no_offcpu) {
        writeln!(log, "record: no off-CPU time: {why}")?;
    }
    let offcpu = offcpu_missing.is_none();
    let probes = allocator.name.starts_with("hz3");
    let data = dir.join(perf_run::PERF_DATA);
    let mut perf = vec![
        "perf".to_string(),
        "record".into(),
        "-q".into(),
        "-o".into(),
        data.display().to_string(),
    ];
    // The frequency is a term of cpu-clock alone: a global -F would also sample sched_switch
    // (once every N switches), and off-CPU intervals need every switch.
    perf.extend(["-e".into(), format!("cpu-clock/freq={freq}/")]);
    if offcpu {
        // Every switch carries a stack: with the samples' 8 KiB copy, perf (starved of CPU by 32
        // bench threads on 2 cores) lost 14% of the samples and 22% of the switches; 2 KiB still
        // reaches the user frames that classify a sleep and lost nothing, 1 KiB does not.
        let switch = match opts.call_graph {
            CallGraph::Dwarf => {
                format!(
                    "sched:sched_switch/call-graph=dwarf,stack-size={}/",
                    opts.switch_stack_size
                )
            }
            CallGraph::Fp => "sched:sched_switch".to_string(),
        };
        perf.extend(["-e".into(), switch]);
    }
    let cg = match opts.call_graph {
        CallGraph::Dwarf => format!("dwarf,{stack_size}"),
        CallGraph::Fp => "fp".into(),
    };
    perf.extend([
        "--call-graph".into(),
        cg.clone(),
        "-m".into(),
        opts.mmap.clone(),
        "--".into(),
    ]);
    // A rebuild while this runs leaves "/path (deleted)": perf then runs the new file at the path.
    let me = crate::process::own_executable()?;
    perf.extend([
        me.display().to_string(),
        "record".into(),
        "--exec-counted".into(),
    ]);
    perf.push(dir.join(perf_run::COUNTERS_JSON).display().to_string());
    perf.extend([
        "--child-env".into(),
        format!("LD_PRELOAD={}", allocator.preload_env()),
    ]);
    if probes {
        let probes_out = std::path::absolute(dir.join(perf_run::PROBES_JSON))?;
        perf.extend([
            "--child-env".into(),
            format!("HZ3_PROBES_OUT={}", probes_out.display()),
        ]);
    }
    if program.is_some() {
        perf.push("--child-output".into());
        for f in [program::STDOUT_TXT, program::STDERR_TXT] {
            perf.push(std::path::absolute(dir.join(f))?.display().to_string());
        }
    }
    perf.push("--".into());
    perf.extend(workload.iter().cloned());

    writeln!(
        log,
        "record: {} under perf ({} Hz, {cg}) into {}",
        allocator.name,
        freq,
        dir.display()
    )?;
    let log_path = dir.join("perf-record.log");
    // A program's output goes to its own files (through the helper); perf's stdout to the log.
    let stdout = if program.is_some() {
        std::fs::File::create(&log_path)?
    } else {
        std::fs::File::create(dir.join(perf_run::BENCH_JSON))?
    };
    let round_trip_cpus = crate::core_round_trip::first_pair();
    let round_trip_before = round_trip_cpus.and_then(crate::core_round_trip::measure);
    let status = Command::new(&perf[0])
        .args(&perf[1..])
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(std::fs::File::create(&log_path)?)
        .status()
        .context("starting perf record")?;
    let round_trip_after = round_trip_cpus.and_then(crate::core_round_trip::measure);
    let counted: Option<perf_run::Counters> =
        std::fs::read_to_string(dir.join(perf_run::COUNTERS_JSON))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
    if let (Some((cmd, ..)), Some(failure)) = (&program, counted.and_then(|c| c.exit)) {
        let stderr = std::fs::read_to_string(dir.join(program::STDERR_TXT)).unwrap_or_default();
        bail!(
            "--program {cmd:?} under {} failed ({failure}); its last stderr lines: {}",
            allocator.name,
            program::last_lines(&stderr, 5)
        );
    }
    if !status.success() {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bail!(
            "perf record failed ({status}); {}: {}",
            log_path.display(),
            tail.join(" | ")
        );
    }
    let counters: perf_run::Counters = {
        let path = dir.join(perf_run::COUNTERS_JSON);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: the counting helper wrote nothing", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{}: unreadable counts", path.display()))?
    };
    match &program {
        Some((cmd, argv, _, ops)) => {
            record_program_run(&dir, &allocator, cmd, argv, ops.as_ref(), &counters)?;
            check_program_allocates(&allocator, &dir, cmd)?;
        }
        None => check_identity(&allocator, &dir)?,
    }
    if probes && !dir.join(perf_run::PROBES_JSON).exists() {
        writeln!(
            log,
            "record: {} wrote no probes dump (not a probes build): no probes column",
            allocator.name
        )?;
    }

    let (profile, perf_warnings) = perf_run::fold_perf_data(&data, counters.helper_pid)?;
    for w in &perf_warnings {
        writeln!(log, "record: perf: {w}")?;
    }
    if program.is_some() {
        warn_if_allocator_unsampled(&allocator, &profile, log)?;
    }
    perf_run::save_profile(&dir, &profile, &perf_warnings)?;
    let meta = Meta {
        allocator: allocator.name.clone(),
        preload: allocator.preload_env(),
        command: perf,
        bench_args,
        kernel: perf_tool::kernel_release(),
        perf_version,
        freq,
        call_graph: cg,
        sample_event: profile.sample_event.clone(),
        hardware_pmu,
        offcpu,
        offcpu_missing,
        program: opts.program.as_ref().map(|p| p.command.clone()),
        probes: dir.join(perf_run::PROBES_JSON).exists(),
        cpus: std::thread::available_parallelism().ok().map(|n| n.get()),
        round_trip_before_ns: round_trip_before,
        round_trip_after_ns: round_trip_after,
    };
    std::fs::write(
        dir.join(perf_run::META_JSON),
        serde_json::to_string_pretty(&meta)? + "\n",
    )?;
    Ok(Recorded {
        dir,
        samples: profile.samples,
        switches: profile.switches,
    })
}

/// The bench names the allocator that answered malloc; a silently failed preload would otherwise
/// be recorded under the wrong name.
fn check_identity(allocator: &Allocator, dir: &Path) -> Result<()> {
    let report = perf_run::read_bench(dir)?;
    if allocator.identity_matches(&report.allocator) == Some(false) {
        bail!(
            "{}: the bench reports `{}` answering malloc, not {}: LD_PRELOAD={} did not take",
            dir.join(perf_run::BENCH_JSON).display(),
            report.allocator,
            allocator.name,
            allocator.preload_env()
        );
    }
    Ok(())
}

/// Writes `program.json` from the helper's counts and the program's output (the op count).
fn record_program_run(
    dir: &Path,
    allocator: &Allocator,
    command: &str,
    argv: &[String],
    ops: Option<&program::OpsSource>,
    counters: &perf_run::Counters,
) -> Result<()> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    let ops_count = match ops {
        Some(source) => Some(source.ops(&read(program::STDOUT_TXT), &read(program::STDERR_TXT))?),
        None => None,
    };
    program::ProgramRun {
        command: command.to_string(),
        argv: argv.to_vec(),
        allocator: allocator.name.clone(),
        ops: ops_count,
        ops_source: ops.cloned(),
        wall_secs: counters.wall_ns.unwrap_or(0) as f64 / 1e9,
        cpu_secs: counters.child_cpu_ns.unwrap_or(0) as f64 / 1e9,
        peak_rss_kib: counters.child_peak_rss_kib.unwrap_or(0),
    }
    .write(dir)
}

/// A program that never calls malloc (a static binary ignores LD_PRELOAD) would be recorded
/// under a name it never used. hz3's probes builds say so reliably: their dump counts every
/// malloc, and a library that was never loaded writes no dump. Other builds cannot tell, and are
/// checked later by the samples (a warning, see [`warn_if_allocator_unsampled`]).
fn check_program_allocates(allocator: &Allocator, dir: &Path, command: &str) -> Result<()> {
    if !allocator.name.starts_with("hz3") || !allocator.name.contains("probes") {
        return Ok(());
    }
    let path = dir.join(perf_run::PROBES_JSON);
    let calls = if path.exists() {
        let dump = probes::reader::read(&path)?;
        probes::Event::ALL
            .iter()
            .filter(|e| e.key().starts_with("malloc."))
            .map(|e| dump.event(*e))
            .sum::<u64>()
    } else {
        0
    };
    if calls == 0 {
        bail!(
            "--program {command:?} never allocated under {} (its probes counted no malloc{}): a statically linked program ignores LD_PRELOAD",
            allocator.name,
            if path.exists() { "" } else { "; hz3 was never loaded" }
        );
    }
    Ok(())
}

/// For allocators without probes: no CPU sample in the preloaded library at all suggests the
/// program never allocated through it (or allocated too little to be seen).
fn warn_if_allocator_unsampled(
    allocator: &Allocator,
    profile: &flamegraphs::Profile,
    log: &mut dyn Write,
) -> Result<()> {
    let Some(preload) = &allocator.preload else {
        return Ok(());
    };
    let libs: Vec<String> = preload
        .display()
        .to_string()
        .split(':')
        .filter_map(|p| {
            Path::new(p)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .collect();
    let seen = profile
        .cpu
        .stacks
        .keys()
        .any(|s| libs.iter().any(|l| s.contains(l.as_str())));
    if !seen {
        writeln!(
            log,
            "record: no CPU sample fell in {} ({}): the program may not allocate through it (a static binary ignores LD_PRELOAD), or too little to be seen",
            allocator.name,
            libs.join(", ")
        )?;
    }
    Ok(())
}

/// `NAME=a.so:b.so` is a preload list, which the shared resolver (one file per name) does not take.
fn resolve_allocator(spec: &str) -> Result<Allocator> {
    if let Some((name, list)) = spec.split_once('=') {
        if list.contains(':') && !name.is_empty() {
            for lib in list.split(':') {
                if !Path::new(lib).is_file() {
                    bail!("--alloc {name}: {lib} does not exist");
                }
            }
            return Ok(Allocator {
                name: name.to_string(),
                preload: Some(PathBuf::from(list)),
            });
        }
    }
    allocators::resolve(spec, &allocators::default_preload_dir()?)
}

/// The bench's arguments: the default workload when none, `remote` in front of bare flags, `--json` added.
pub fn bench_arguments(given: &[String]) -> Vec<String> {
    let mut args: Vec<String> = if given.is_empty() {
        ["remote", "--preset", "remote-heavy-small"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else if given[0].starts_with('-') {
        std::iter::once("remote".to_string())
            .chain(given.iter().cloned())
            .collect()
    } else {
        given.to_vec()
    };
    if !args.iter().any(|a| a == "--json") {
        args.push("--json".into());
    }
    args
}

/// Creates the run directory and removes a previous recording's derived files from it.
fn prepare_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    for f in [
        perf_run::CPU_FOLDED,
        perf_run::OFFCPU_FOLDED,
        perf_run::PROFILE_JSON,
        perf_run::PROBES_JSON,
        perf_run::COUNTERS_JSON,
        perf_run::META_JSON,
        perf_run::PERF_SCRIPT,
        program::PROGRAM_JSON,
        program::STDOUT_TXT,
        program::STDERR_TXT,
    ] {
        let p = dir.join(f);
        if p.exists() {
            std::fs::remove_file(&p)
                .with_context(|| format!("{}: cannot remove the old file", p.display()))?;
        }
    }
    Ok(())
}

/// Helper mode: run `command` with `env` under an inherited counting group, write the counts.
fn exec_counted(
    counts_file: &Path,
    env: &[String],
    output: &[PathBuf],
    command: &[String],
) -> Result<ExitCode> {
    let (program, rest) = command
        .split_first()
        .context("--exec-counted needs a command after --")?;
    let mut child = Command::new(program);
    child.args(rest).env_remove("LD_PRELOAD");
    for kv in env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--child-env {kv:?}: expected KEY=VALUE"))?;
        if !v.is_empty() {
            child.env(k, v);
        }
    }
    if let [stdout, stderr] = output {
        let create = |p: &PathBuf| {
            std::fs::File::create(p).with_context(|| format!("{}: cannot create", p.display()))
        };
        child.stdout(create(stdout)?).stderr(create(stderr)?);
    }
    let mut group = CountingGroup::open()?;
    group.enable()?;
    let started = std::time::Instant::now();
    let status = child
        .status()
        .with_context(|| format!("starting {program}"))?;
    let wall = started.elapsed();
    let mut counters = group.finish()?;
    // The helper's only child is the command: its children's rusage is the command's whole
    // tree (every descendant it waited for), CPU and the largest peak RSS.
    let tree = runner::children_rusage();
    counters.wall_ns = Some(wall.as_nanos() as u64);
    counters.child_cpu_ns = Some(tree.cpu_ns);
    counters.child_peak_rss_kib = Some(tree.peak_rss_kib);
    counters.exit = runner::crash_of(status);
    std::fs::write(counts_file, serde_json::to_string_pretty(&counters)? + "\n")
        .with_context(|| format!("{}: cannot write", counts_file.display()))?;
    if !status.success() {
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        eprintln!("record: the bench failed ({status})");
        return Ok(ExitCode::from(code.clamp(1, 255) as u8));
    }
    Ok(ExitCode::SUCCESS)
}
