//! A recorded run directory (what `record` writes, what `attribute`, `gap` and `flame` read):
//!
//! | file | written by | needed |
//! |---|---|---|
//! | `bench.json` | the bench's `--json` line | yes: `ops` and the configuration |
//! | `meta.json` | `record` | no (allocator name, command, kernel, perf version) |
//! | `counters.json` | the perf-event2 counting group | no: without it the measured CPU time is the sampled one |
//! | `probes.json` | an hz3 probes build | no |
//! | `cpu.folded`, `offcpu.folded`, `profile.json` | `record` (folded after recording) | one of these three sources |
//! | `perf.script` | `perf script` text (the test fixtures) | |
//! | `perf.data` | `perf record` (folded on first use) | |
use anyhow::{bail, Context, Result};
use bench::BenchReport;
use flamegraphs::{Folded, Profile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const BENCH_JSON: &str = "bench.json";
pub const META_JSON: &str = "meta.json";
pub const COUNTERS_JSON: &str = "counters.json";
pub const PROBES_JSON: &str = "probes.json";
pub const CPU_FOLDED: &str = "cpu.folded";
pub const OFFCPU_FOLDED: &str = "offcpu.folded";
pub const PROFILE_JSON: &str = "profile.json";
pub const PERF_SCRIPT: &str = "perf.script";
pub const PERF_DATA: &str = "perf.data";

/// Sampling events whose period is nanoseconds of CPU time.
pub const TIME_EVENTS: &[&str] = &["cpu-clock", "task-clock"];

/// The `perf script` fields the strict reader expects, in this order.
pub const SCRIPT_FIELDS: &str = "comm,pid,tid,time,period,event,trace,ip,sym,dso";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    pub allocator: String,
    /// `LD_PRELOAD` as given (may be a list), empty for none.
    pub preload: String,
    /// The full `perf record` command line.
    pub command: Vec<String>,
    pub bench_args: Vec<String>,
    pub kernel: String,
    pub perf_version: String,
    pub freq: u32,
    pub call_graph: String,
    pub sample_event: String,
    pub hardware_pmu: bool,
    pub offcpu: bool,
    /// Why off-CPU time was not recorded, when it was not.
    #[serde(default)]
    pub offcpu_missing: Option<String>,
    /// `--program`: the command line recorded instead of the bench.
    #[serde(default)]
    pub program: Option<String>,
    pub probes: bool,
    /// CPUs online while recording, to put the bench's wall time in CPU terms.
    #[serde(default)]
    pub cpus: Option<usize>,
    /// The host's core-to-core round trip (`core_round_trip`) just before and just after the
    /// recording, ns: which regime of a VM whose CPUs move the run had. None: not probed, failed,
    /// or an older run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_trip_before_ns: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_trip_after_ns: Option<f64>,
}

/// The counting group's figures, as record's helper writes them to `counters.json`.
pub use crate::perf_tool::Counters;

/// Sample totals kept beside the folded stacks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProfileSummary {
    pub sample_event: String,
    pub samples: u64,
    pub switches: u64,
    pub mean_period: f64,
    /// perf's own warnings about lost events, kept for every later reader.
    #[serde(default)]
    pub perf_warnings: Vec<String>,
}

pub struct Run {
    pub dir: PathBuf,
    pub meta: Option<Meta>,
    pub bench: BenchReport,
    pub counters: Option<Counters>,
    pub probes: Option<probes::reader::Dump>,
    /// A `record --program` run: `bench` then stands in for it (ops = the op count, or 1).
    pub program: Option<crate::program::ProgramRun>,
    pub profile: Profile,
    /// perf's warnings about lost events while recording.
    pub perf_warnings: Vec<String>,
}

impl Run {
    /// Loads a run directory, folding `perf.script` / `perf.data` if no folded stacks are there.
    pub fn load(dir: &Path) -> Result<Run> {
        if !dir.is_dir() {
            bail!(
                "{}: not a run directory (make one with `hz3-analyze record`)",
                dir.display()
            );
        }
        let meta: Option<Meta> = read_optional_json(&dir.join(META_JSON))?;
        let program = crate::program::ProgramRun::read(dir)?;
        let bench = match &program {
            Some(p) => p.as_bench_report(meta.as_ref().and_then(|m| m.cpus).unwrap_or(1)),
            None => read_bench(dir)?,
        };
        if bench.ops == 0 {
            bail!(
                "{}: the bench reports 0 ops; nothing can be expressed per op",
                dir.join(BENCH_JSON).display()
            );
        }
        let counters = read_optional_json(&dir.join(COUNTERS_JSON))?;
        let probes_path = dir.join(PROBES_JSON);
        let probes = if probes_path.exists() {
            Some(probes::reader::read(&probes_path)?)
        } else {
            None
        };
        let (profile, perf_warnings) =
            load_profile(dir, counters.and_then(|c: Counters| c.helper_pid))?;
        if !TIME_EVENTS.contains(&profile.sample_event.as_str()) {
            bail!(
                "{}: samples of `{}` have no time unit, so nothing can be said in ns/op: record cpu-clock (hz3-analyze record does)",
                dir.display(),
                profile.sample_event
            );
        }
        Ok(Run {
            dir: dir.to_path_buf(),
            meta,
            bench,
            counters,
            probes,
            program,
            profile,
            perf_warnings,
        })
    }

    /// What per-X figures are per: `op`, or `run` for a program recorded without an op count.
    pub fn unit(&self) -> &'static str {
        self.program.as_ref().map_or("op", |p| p.unit())
    }

    /// Why the run has no off-CPU time, or None when it has (its switches were recorded).
    pub fn offcpu_missing(&self) -> Option<String> {
        match &self.meta {
            Some(m) if !m.offcpu => Some(
                m.offcpu_missing
                    .clone()
                    .unwrap_or_else(|| "sched:sched_switch was not recorded".into()),
            ),
            Some(_) => None,
            None if self.profile.switches == 0 => {
                Some("no sched:sched_switch event in the recording".into())
            }
            None => None,
        }
    }

    pub fn ops(&self) -> f64 {
        self.bench.ops as f64
    }

    pub fn allocator(&self) -> &str {
        self.meta
            .as_ref()
            .map(|m| m.allocator.as_str())
            .unwrap_or(&self.bench.allocator)
    }

    /// Sampled on-CPU nanoseconds (sum of sample periods). Only time-based sampling events
    /// (`cpu-clock`, `task-clock`) have periods in ns.
    pub fn sampled_cpu_ns(&self) -> f64 {
        self.profile.cpu.total()
    }

    /// The measured CPU ns/op: task-clock from the counting group, or the sampled total without one.
    pub fn measured_cpu_ns_per_op(&self) -> (f64, &'static str) {
        match self.counters {
            Some(c) if c.task_clock_ns > 0 => (c.task_clock_ns as f64 / self.ops(), "task-clock"),
            _ => (self.sampled_cpu_ns() / self.ops(), "samples"),
        }
    }

    /// Probe counts by key (`malloc.cache_hit`, `lock.central.acquire_spun`, ...).
    pub fn probe_counts(&self) -> Option<BTreeMap<String, u64>> {
        let dump = self.probes.as_ref()?;
        let mut out = BTreeMap::new();
        for e in probes::Event::ALL {
            out.insert(e.key().to_string(), dump.event(*e));
        }
        for site in probes::LockSite::ALL {
            for stat in probes::LockStat::ALL {
                out.insert(
                    format!("lock.{}.{}", site.key(), stat.key()),
                    dump.lock(*site, *stat),
                );
            }
        }
        Some(out)
    }

    /// The bench configuration two runs must share to be compared (everything but the results).
    pub fn config_key(&self) -> String {
        if let Some(p) = &self.program {
            return p.config_key();
        }
        let b = &self.bench.config;
        format!(
            "bench={} threads={} iters={} ws={} min={} max={} remote_pct={} ring={} matched={} touch={} seed={}",
            b.kind.name(), b.threads, b.iters, b.ws, b.min, b.max, b.remote_pct, b.ring, b.matched, b.touch, b.seed
        )
    }
}

/// The bench's JSON report in a run directory.
pub fn read_bench(dir: &Path) -> Result<BenchReport> {
    read_json(&dir.join(BENCH_JSON))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    // The bench may print its human line after the JSON object; only the first line is JSON.
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let body = if path.ends_with(BENCH_JSON) {
        first
    } else {
        text.as_str()
    };
    serde_json::from_str(body)
        .map_err(|e| anyhow::anyhow!("{}: line {}: {e}", path.display(), e.line()))
}

fn read_optional_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    if path.exists() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

/// The run's profile and perf's warnings about lost events.
fn load_profile(dir: &Path, helper_pid: Option<u32>) -> Result<(Profile, Vec<String>)> {
    let (cpu_path, summary_path) = (dir.join(CPU_FOLDED), dir.join(PROFILE_JSON));
    if cpu_path.exists() && summary_path.exists() {
        let summary: ProfileSummary = read_json(&summary_path)?;
        let folded = |p: PathBuf| -> Result<Folded> {
            if !p.exists() {
                return Ok(Folded::default());
            }
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("{}: cannot read", p.display()))?;
            Folded::from_text(&text).with_context(|| p.display().to_string())
        };
        let cpu = folded(cpu_path)?;
        if summary.samples == 0 || cpu.total() <= 0.0 {
            bail!("{}: no samples in this run", dir.display());
        }
        let profile = Profile {
            cpu,
            offcpu: folded(dir.join(OFFCPU_FOLDED))?,
            sample_event: summary.sample_event,
            samples: summary.samples,
            switches: summary.switches,
            mean_period: summary.mean_period,
        };
        return Ok((profile, summary.perf_warnings));
    }
    let script = dir.join(PERF_SCRIPT);
    if script.exists() {
        let file = std::fs::File::open(&script)
            .with_context(|| format!("{}: cannot read", script.display()))?;
        let profile =
            flamegraphs::from_script_where(std::io::BufReader::new(file), not_pid(helper_pid))
                .with_context(|| script.display().to_string())?;
        return Ok((profile, Vec::new()));
    }
    let data = dir.join(PERF_DATA);
    if data.exists() {
        let (profile, warnings) = fold_perf_data(&data, helper_pid)?;
        // The cache only saves the next reader a `perf script`; a read-only run stays readable.
        if let Err(e) = save_profile(dir, &profile, &warnings) {
            eprintln!("hz3-analyze: warning: folded stacks not cached: {e:#}");
        }
        return Ok((profile, warnings));
    }
    bail!(
        "{}: no samples to read: none of {CPU_FOLDED}, {PERF_SCRIPT}, {PERF_DATA} is there",
        dir.display()
    )
}

fn not_pid(pid: Option<u32>) -> impl Fn(&flamegraphs::Event) -> bool {
    move |e| Some(e.pid) != pid
}

/// Runs `perf script` on a perf.data and folds its output as it streams, leaving out the events
/// of `exclude_pid` (the counting helper). Also returns perf's warnings about lost events: lost
/// samples are CPU time no box gets, lost switches lengthen off-CPU intervals.
pub fn fold_perf_data(data: &Path, exclude_pid: Option<u32>) -> Result<(Profile, Vec<String>)> {
    crate::perf_tool::require_perf()?;
    let mut child = std::process::Command::new("perf")
        .arg("script")
        .arg("-i")
        .arg(data)
        .args(["-F", SCRIPT_FIELDS])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting `perf script`")?;
    let stdout = child.stdout.take().context("perf script has no stdout")?;
    let mut stderr = child.stderr.take().context("perf script has no stderr")?;
    // Drained on its own thread so a chatty stderr cannot stall perf while stdout is read.
    let warnings = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text.lines()
            .filter(|l| l.contains("lost"))
            .map(|l| l.trim().to_string())
            .collect::<Vec<_>>()
    });
    let parsed = flamegraphs::from_script_where(
        std::io::BufReader::with_capacity(1 << 20, stdout),
        not_pid(exclude_pid),
    );
    let status = child.wait().context("waiting for `perf script`")?;
    let warnings = warnings.join().unwrap_or_default();
    let profile = parsed.with_context(|| format!("`perf script -i {}`", data.display()))?;
    if !status.success() {
        bail!("`perf script -i {}` failed ({status})", data.display());
    }
    Ok((profile, warnings))
}

/// Writes the folded stacks and their summary so later commands skip `perf script`.
pub fn save_profile(dir: &Path, profile: &Profile, perf_warnings: &[String]) -> Result<()> {
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("{}: cannot write", p.display()))
    };
    write(CPU_FOLDED, profile.cpu.to_text())?;
    write(OFFCPU_FOLDED, profile.offcpu.to_text())?;
    let summary = ProfileSummary {
        sample_event: profile.sample_event.clone(),
        samples: profile.samples,
        switches: profile.switches,
        mean_period: profile.mean_period,
        perf_warnings: perf_warnings.to_vec(),
    };
    write(PROFILE_JSON, serde_json::to_string_pretty(&summary)? + "\n")
}
