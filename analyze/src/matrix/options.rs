//! `matrix`'s typed options: what it measures, the files it writes, the regression guard; what
//! its clap `Args` convert into and what `report` builds directly.
use super::{compare, Args, DEFAULT_BASELINE, DEFAULT_TIMEOUT_SECS};
use std::path::PathBuf;
use std::time::Duration;

/// What `matrix` measures and writes: the typed form of its command line.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixOptions {
    /// NAME[=PATH] each [default: the default set of allocators].
    pub allocs: Vec<String>,
    /// PRESET[:untouched] each, or `all`.
    pub presets: Vec<String>,
    /// [default: 5, quick: 2]
    pub runs: Option<u32>,
    pub quick: bool,
    pub baseline: String,
    pub bench: Option<PathBuf>,
    pub preload_dir: Option<PathBuf>,
    pub timeout: Duration,
    /// NAME=CMD ARGS… each.
    pub programs: Vec<String>,
    pub bench_args: Vec<String>,
    pub files: MatrixFiles,
    pub guard: Option<GuardOptions>,
    /// Draw the progress bar on stderr (off when the caller draws its own).
    pub progress: bool,
    /// Probe the host's core-to-core round trip around every run (`core_round_trip`).
    pub round_trip_probe: bool,
    /// Rounds past `runs` until every row has this many runs in each of two host regimes.
    pub runs_per_regime: Option<u32>,
}

/// The files a matrix writes (none by default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MatrixFiles {
    pub csv: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub svg: Option<PathBuf>,
    pub summary_md: Option<PathBuf>,
}

/// The regression guard: `--compare` and what explains a regressed row.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardOptions {
    pub compare: PathBuf,
    pub tolerance: f64,
    pub metric: compare::Metric,
    /// [default: the baseline]
    pub anchor: Option<String>,
    pub baseline_preload_dir: Option<PathBuf>,
    pub explain_with: Vec<String>,
    /// [default: guard-explain beside the preload dir]
    pub explain_dir: Option<PathBuf>,
    pub explain_pairs: u32,
    /// The matrix's command line, printed back with --baseline-preload-dir added.
    pub argv: Vec<String>,
}

impl MatrixOptions {
    /// The default matrix (the default allocators on remote-heavy-small, 5 rounds, no files).
    pub fn new() -> MatrixOptions {
        MatrixOptions {
            allocs: Vec::new(),
            presets: Vec::new(),
            runs: None,
            quick: false,
            baseline: DEFAULT_BASELINE.into(),
            bench: None,
            preload_dir: None,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            programs: Vec::new(),
            bench_args: Vec::new(),
            files: MatrixFiles::default(),
            guard: None,
            progress: true,
            round_trip_probe: true,
            runs_per_regime: None,
        }
    }

    /// The `hz3-analyze matrix` arguments that run these options (defaults and the guard left
    /// out), for the command the report prints beside the matrix.
    pub fn command_words(&self) -> Vec<String> {
        let mut words = vec!["matrix".to_string()];
        for p in &self.programs {
            words.extend(["--program".into(), p.clone()]);
        }
        if !self.presets.is_empty() {
            words.extend(["--preset".into(), self.presets.join(",")]);
        }
        if self.quick {
            words.push("--quick".into());
        }
        if let Some(r) = self.runs {
            words.extend(["--runs".into(), r.to_string()]);
        }
        for a in &self.allocs {
            words.extend(["--alloc".into(), a.clone()]);
        }
        if self.baseline != DEFAULT_BASELINE {
            words.extend(["--baseline".into(), self.baseline.clone()]);
        }
        if self.timeout != Duration::from_secs(DEFAULT_TIMEOUT_SECS) {
            words.extend(["--timeout".into(), self.timeout.as_secs().to_string()]);
        }
        let files = &self.files;
        for (flag, file) in [
            ("--json", &files.json),
            ("--csv", &files.csv),
            ("--markdown", &files.markdown),
            ("--svg", &files.svg),
            ("--summary-md", &files.summary_md),
        ] {
            if let Some(f) = file {
                words.extend([flag.to_string(), f.display().to_string()]);
            }
        }
        if let Some(b) = &self.bench {
            words.extend(["--bench".into(), b.display().to_string()]);
        }
        if let Some(d) = &self.preload_dir {
            words.extend(["--preload-dir".into(), d.display().to_string()]);
        }
        if !self.round_trip_probe {
            words.push("--no-round-trip-probe".into());
        }
        if let Some(n) = self.runs_per_regime {
            words.extend(["--runs-per-regime".into(), n.to_string()]);
        }
        if !self.bench_args.is_empty() {
            words.push("--".into());
            words.extend(self.bench_args.iter().cloned());
        }
        words
    }
}

impl Default for MatrixOptions {
    fn default() -> MatrixOptions {
        MatrixOptions::new()
    }
}

impl From<Args> for MatrixOptions {
    fn from(args: Args) -> MatrixOptions {
        let guard = args.compare.map(|compare| GuardOptions {
            compare,
            tolerance: args.tolerance,
            metric: args.guard_metric,
            anchor: args.anchor,
            baseline_preload_dir: args.baseline_preload_dir,
            explain_with: args.explain_with,
            explain_dir: args.explain_dir,
            explain_pairs: args.explain_pairs,
            // Lossy: a non-UTF-8 argument must not panic here (it is only printed back).
            argv: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        });
        MatrixOptions {
            allocs: args.allocs,
            presets: args.presets,
            runs: args.runs,
            quick: args.quick,
            baseline: args.baseline,
            bench: args.bench,
            preload_dir: args.preload_dir,
            timeout: Duration::from_secs(args.timeout),
            programs: args.programs,
            bench_args: args.bench_args,
            files: MatrixFiles {
                csv: args.csv,
                json: args.json,
                markdown: args.markdown,
                svg: args.svg,
                summary_md: args.summary_md,
            },
            guard,
            progress: true,
            round_trip_probe: !args.no_round_trip_probe,
            runs_per_regime: args.runs_per_regime,
        }
    }
}
