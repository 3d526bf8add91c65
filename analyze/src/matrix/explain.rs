//! The guard's explanation of a regressed row: the baseline's build and this one recorded under
//! perf on the row's workload, their `gap`, and the box whose CPU time per op grew the most.
//!
//! The old `.so` is normally gone (rebuilt in place), so the baseline build comes from the user:
//! `--explain-with NAME=PATH`, or `--baseline-preload-dir DIR` holding the `libhz3_*.so` built
//! from the baseline's revision. Without one, the exact commands that would produce the
//! explanation are printed instead; the guard's exit status does not depend on any of this.
use super::compare::Regression;
use super::Workload;
use crate::allocators::Allocator;
use crate::attribute::build_report;
use crate::gap::{self, build_gap, Gap, GapRow};
use crate::perf_run::Run;
use crate::table::{num, signed};
use crate::report::{self, shell_line};
use crate::{boxes, cli, inject_check};
use anyhow::{bail, Context, Result};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Boxes listed per explained row, largest |difference| first.
const TOP_BOXES: usize = 3;
/// A single box moves by up to about this much between two runs of the same build (docs/
/// decisions.md, attribution): a smaller difference on one pair of runs names nothing for sure.
const BOX_NOISE_NS: f64 = 5.0;
/// Where the user is told to build the baseline when no build was given.
const WORKTREE: &str = "/tmp/hz3-baseline";

/// Where the baseline's build of each allocator is, as the user said.
#[derive(Debug)]
pub struct BaselineBuilds {
    given: Vec<(String, PathBuf)>,
    dir: Option<PathBuf>,
}

/// Where a row's baseline build was looked for, and what was there.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    Found(PathBuf),
    /// Not in `--baseline-preload-dir`; the path it would have had.
    Missing(PathBuf),
    /// Neither option names a build for it.
    NotGiven,
}

impl BaselineBuilds {
    /// Checks the options against the allocators about to be measured, so that a wrong path
    /// stops the guard before a long matrix, not after it.
    pub fn new(
        explain_with: &[String],
        dir: Option<&Path>,
        measured: &[Allocator],
    ) -> Result<BaselineBuilds> {
        if let Some(d) = dir {
            if !d.is_dir() {
                bail!("--baseline-preload-dir {}: no such directory", d.display());
            }
        }
        let mut given = Vec::new();
        for spec in explain_with {
            let Some((name, path)) = spec
                .split_once('=')
                .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            else {
                bail!("--explain-with {spec:?}: expected NAME=PATH.so (the baseline's build of the allocator NAME)");
            };
            if !measured.iter().any(|a| a.name == name) {
                let names: Vec<&str> = measured.iter().map(|a| a.name.as_str()).collect();
                bail!(
                    "--explain-with {name}: no allocator of that name is measured (measured: {})",
                    names.join(", ")
                );
            }
            if !Path::new(path).is_file() {
                bail!("--explain-with {name}: {path} does not exist");
            }
            given.push((name.to_owned(), PathBuf::from(path)));
        }
        let builds = BaselineBuilds {
            given,
            dir: dir.map(Path::to_path_buf),
        };
        if let Some(d) = &builds.dir {
            let looked: Vec<PathBuf> = measured
                .iter()
                .filter_map(|a| build_file(a).map(|f| d.join(f)))
                .collect();
            if !looked.iter().any(|p| p.is_file()) {
                let shown: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
                bail!(
                    "--baseline-preload-dir {}: holds no build of the allocators measured (looked for {})",
                    d.display(),
                    if shown.is_empty() { "nothing: no hz3 build is measured".into() } else { shown.join(", ") }
                );
            }
        }
        Ok(builds)
    }

    /// `--explain-with` first, then the build of the same file name in `--baseline-preload-dir`.
    pub fn lookup(&self, alloc: &Allocator) -> Lookup {
        if let Some((_, path)) = self.given.iter().find(|(n, _)| *n == alloc.name) {
            return Lookup::Found(path.clone());
        }
        match (&self.dir, build_file(alloc)) {
            (Some(dir), Some(file)) => {
                let path = dir.join(file);
                if path.is_file() {
                    Lookup::Found(path)
                } else {
                    Lookup::Missing(path)
                }
            }
            _ => Lookup::NotGiven,
        }
    }
}

/// The file name an allocator's build has in a preload directory: `libhz3_X.so` for `hz3_X` (what
/// scripts/build-preload writes), else a `NAME=PATH` row's own file name. Anchors have none: their
/// library is the system's, the same for every revision of this tree.
fn build_file(alloc: &Allocator) -> Option<String> {
    if alloc.name.starts_with("hz3_") {
        return Some(format!("lib{}.so", alloc.name));
    }
    let preload = alloc.preload.as_ref()?;
    if preload.starts_with("/usr/") {
        return None;
    }
    preload
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
}

/// Everything the explanation of one guard run needs from the matrix.
pub struct Plan<'a> {
    pub builds: &'a BaselineBuilds,
    /// The allocators as the user named them (their paths go into printed commands).
    pub allocs: &'a [Allocator],
    /// The same allocators as the matrix measured them (its snapshot copies), in the same order.
    pub measured: &'a [Allocator],
    /// The hz3-bench the matrix ran.
    pub bench: &'a Path,
    /// Each preset's full-length bench arguments: a --quick matrix's tenth of a run leaves a few
    /// dozen samples, too few to attribute.
    pub workloads: &'a [Workload],
    pub out: PathBuf,
    /// (baseline, this build) pairs recorded per row; the gap is the median over them.
    pub pairs: u32,
    /// The baseline JSON, for the revision it was committed at.
    pub compare: &'a Path,
    /// The matrix's own command line, to print it back with --baseline-preload-dir added.
    pub argv: Vec<String>,
}

/// Explains every regressed row on stderr, one after the other (each takes seconds).
pub fn explain(plan: &Plan, regressions: &[Regression]) {
    for r in regressions {
        eprintln!("{}", explain_row(plan, r).trim_end());
    }
}

fn explain_row(plan: &Plan, r: &Regression) -> String {
    let title = format!("{} / {}", r.preset, r.allocator);
    let Some(i) = plan.allocs.iter().position(|a| a.name == r.allocator) else {
        return format!("{title}: not among the allocators measured (internal error)");
    };
    let alloc = &plan.allocs[i];
    let Some(workload) = plan.workloads.iter().find(|w| w.preset == r.preset) else {
        return format!("{title}: no workload {} (internal error)", r.preset);
    };
    if r.now.is_none() {
        return format!(
            "{title}: every run crashed: a crash, not a slowdown, so there is no box to name; reproduce with\n  LD_PRELOAD={} {} {}",
            alloc.preload_env(),
            plan.bench.display(),
            workload.args.join(" ")
        );
    }
    match plan.builds.lookup(alloc) {
        Lookup::Found(baseline) => {
            eprintln!(
                "{title}: recording the baseline build {} and this build on the full-length workload ({} pair(s))...",
                baseline.display(),
                plan.pairs
            );
            let started = Instant::now();
            let dir = plan.out.join(row_dir_name(&r.preset, &r.allocator));
            match record_and_gap(plan, &plan.measured[i], &baseline, workload, &dir) {
                Ok(g) => {
                    let runs = match plan.pairs {
                        1 => "baseline/ and current/".to_string(),
                        n => format!("baseline-1..{n}/ and current-1..{n}/"),
                    };
                    format!(
                        "{}  explained in {:.1}s; files: {} (gap.txt, gap.json, flame-diff.svg, runs {runs})",
                        describe_gap(&title, &g),
                        started.elapsed().as_secs_f64(),
                        dir.display()
                    )
                }
                Err(e) => format!(
                    "{title}: cannot explain: {e:#}\n{}",
                    manual_commands(plan, alloc, workload, &baseline)
                ),
            }
        }
        Lookup::Missing(path) => format!(
            "{title}: no baseline build to explain it with ({} does not exist)\n{}",
            path.display(),
            rebuild_commands(plan, alloc, workload)
        ),
        Lookup::NotGiven if build_file(alloc).is_none() => format!(
            "{title}: {} is a system library, the same in the baseline and now: its ratio moved with the machine or the anchor, not with this tree (rerun the matrix to confirm)",
            r.allocator
        ),
        Lookup::NotGiven => format!(
            "{title}: no baseline build given to name the box\n{}",
            rebuild_commands(plan, alloc, workload)
        ),
    }
}

/// `<preset>--<allocator>` with anything but `[A-Za-z0-9._-]` replaced, as a directory name.
pub(crate) fn row_dir_name(preset: &str, allocator: &str) -> String {
    format!("{preset}--{allocator}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The baseline's recording of an allocator is named so; `hz3...` keeps `record`'s identity check.
fn baseline_name(alloc: &str) -> String {
    format!("{alloc}@baseline")
}

/// `record` arguments: 4999 Hz for enough samples in a sub-second run, the quick 4 KiB stack copy.
fn record_words(
    spec: String,
    out: &Path,
    bench: Option<&Path>,
    workload: &Workload,
) -> Vec<String> {
    let mut words = vec![
        "record".to_string(),
        "--quick".into(),
        "--freq".into(),
        "4999".into(),
        "--alloc".into(),
        spec,
        "--out".into(),
        out.display().to_string(),
    ];
    if let Some(b) = bench {
        words.extend(["--bench".into(), b.display().to_string()]);
    }
    words.push("--".into());
    words.extend(workload.args.iter().cloned());
    words
}

/// Runs a subcommand of this executable from the words its command line would have: in-process,
/// unless a rebuild of the shared target/ replaced the file while the matrix ran. `record` hands
/// perf this executable's path for its counting helper, and the old file's path is then a
/// deleted one (perf exits 255 without a word), so the new file at the same path runs the step.
fn subcommand(words: &[String]) -> Result<()> {
    let running = std::env::current_exe().context("locating the running executable")?;
    let exe = report::own_executable()?;
    if exe != running {
        let status = Command::new(&exe)
            .args(words)
            .env_remove("LD_PRELOAD")
            .status()
            .with_context(|| format!("starting {}", exe.display()))?;
        if !status.success() {
            bail!(
                "`{}` failed ({status})",
                shell_line(&exe.display().to_string(), words)
            );
        }
        return Ok(());
    }
    let cli = cli::Cli::try_parse_from(
        std::iter::once("hz3-analyze").chain(words.iter().map(String::as_str)),
    )
    .map_err(|e| anyhow::anyhow!("`{}`: {e}", words.join(" ")))?;
    let code = cli::run(cli)?;
    if code != ExitCode::SUCCESS {
        bail!("`{}` failed ({code:?})", words.join(" "));
    }
    Ok(())
}

/// The run directories of pair `k` of `pairs`: `baseline`/`current` when there is one pair.
fn pair_dirs(dir: &Path, k: u32, pairs: u32) -> (PathBuf, PathBuf) {
    let suffix = if pairs == 1 {
        String::new()
    } else {
        format!("-{k}")
    };
    (
        dir.join(format!("baseline{suffix}")),
        dir.join(format!("current{suffix}")),
    )
}

/// Records `plan.pairs` pairs (the baseline build, then the measured one) into `dir`; writes their
/// gap (the median over the pairs) and the first pair's differential flamegraph there.
fn record_and_gap(
    plan: &Plan,
    current: &Allocator,
    baseline: &Path,
    workload: &Workload,
    dir: &Path,
) -> Result<Gap> {
    let base_spec = format!("{}={}", baseline_name(&current.name), baseline.display());
    let cur_spec = format!("{}={}", current.name, current.preload_env());
    let rules = boxes::load(None)?;
    let mut gaps = Vec::new();
    for k in 1..=plan.pairs {
        let (base_run, cur_run) = pair_dirs(dir, k, plan.pairs);
        subcommand(&record_words(
            base_spec.clone(),
            &base_run,
            Some(plan.bench),
            workload,
        ))
        .context("recording the baseline build")?;
        subcommand(&record_words(
            cur_spec.clone(),
            &cur_run,
            Some(plan.bench),
            workload,
        ))
        .context("recording this build")?;
        gaps.push(build_gap(
            &build_report(&Run::load(&base_run)?, &rules),
            &build_report(&Run::load(&cur_run)?, &rules),
        )?);
        if k == 1 {
            subcommand(&[
                "flame".into(),
                "--diff".into(),
                base_run.display().to_string(),
                cur_run.display().to_string(),
                "--out".into(),
                dir.join("flame-diff.svg").display().to_string(),
            ])
            .context("drawing the differential flamegraph")?;
        }
    }
    let g = median_gap(&gaps).context("no pair of runs was recorded")?;
    std::fs::write(dir.join("gap.txt"), gap::render_text(&g))
        .with_context(|| format!("{}: cannot write gap.txt", dir.display()))?;
    std::fs::write(
        dir.join("gap.json"),
        serde_json::to_string_pretty(&g)? + "\n",
    )
    .with_context(|| format!("{}: cannot write gap.json", dir.display()))?;
    Ok(g)
}

/// Every figure of a gap as its median over several pairs of runs (boxes matched by name), so
/// one pair disturbed by the shared machine does not decide alone. One pair is returned as is;
/// none gives None.
pub fn median_gap(gaps: &[Gap]) -> Option<Gap> {
    let mut g = gaps.first()?.clone();
    if gaps.len() == 1 {
        return Some(g);
    }
    let median = |f: &dyn Fn(&Gap) -> f64| inject_check::median(gaps.iter().map(f));
    let row_median = |r: &mut GapRow, rows: fn(&Gap) -> &[GapRow]| {
        let field = |pick: fn(&GapRow) -> f64| {
            median(&|x: &Gap| rows(x).iter().find(|o| o.name == r.name).map_or(0.0, pick))
        };
        (r.a, r.b, r.diff) = (field(|o| o.a), field(|o| o.b), field(|o| o.diff));
    };
    for r in &mut g.boxes {
        row_median(r, |x| &x.boxes);
    }
    for r in &mut g.offcpu {
        row_median(r, |x| &x.offcpu);
    }
    row_median(&mut g.wall, |x| std::slice::from_ref(&x.wall));
    g.boxes.sort_by(|x, y| {
        y.diff
            .abs()
            .total_cmp(&x.diff.abs())
            .then_with(|| x.name.cmp(&y.name))
    });
    g.measured_a = median(&|x| x.measured_a);
    g.measured_b = median(&|x| x.measured_b);
    g.measured_diff = median(&|x| x.measured_diff);
    g.boxes_diff = g.boxes.iter().map(|r| r.diff).sum();
    g.residual = g.measured_diff - g.boxes_diff;
    g.a = format!("median of {} pairs: {}, ...", gaps.len(), g.a);
    g.b = format!("median of {} pairs: {}, ...", gaps.len(), g.b);
    g.perf_warnings = gaps.iter().flat_map(|x| x.perf_warnings.clone()).collect();
    Some(g)
}

/// The box that grew the most, when the recordings measured a slowdown at all.
pub fn regressed_box(g: &Gap) -> Option<&gap::GapRow> {
    if g.measured_diff <= 0.0 {
        return None;
    }
    g.boxes
        .iter()
        .filter(|b| b.diff > 0.0)
        .max_by(|x, y| x.diff.total_cmp(&y.diff))
}

/// The explanation of one row from its gap (A = the baseline build, B = this build).
pub fn describe_gap(title: &str, g: &Gap) -> String {
    let mut s = format!(
        "{title}: measured CPU ns/op {} -> {} ({} ns/op, {}; baseline build = A, this build = B)\n",
        num(g.measured_a),
        num(g.measured_b),
        signed(g.measured_diff),
        g.measured_from
    );
    s += "  top boxes by difference (B-A):\n";
    let width = g
        .boxes
        .iter()
        .take(TOP_BOXES)
        .map(|b| b.name.len())
        .max()
        .unwrap_or(0);
    for b in g.boxes.iter().take(TOP_BOXES) {
        s += &format!("    {:width$}  {:>8} ns/op\n", b.name, signed(b.diff));
    }
    let off: Vec<String> = g
        .offcpu
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r.name.trim_start_matches("off-cpu."),
                signed(r.diff)
            )
        })
        .collect();
    match &g.offcpu_not_recorded {
        Some(why) => s += &format!("  off-CPU: {} ({why})\n", crate::attribute::NOT_RECORDED),
        None => s += &format!("  off-CPU ns/op (not in the sums): {}\n", off.join(", ")),
    }
    match regressed_box(g) {
        Some(b) => {
            s += &format!(
                "  regressed box: {} ({} ns/op, {:.0}% of the difference)\n",
                b.name,
                signed(b.diff),
                b.diff / g.measured_diff * 100.0
            );
            if b.diff < BOX_NOISE_NS {
                s += &format!("  (under the ~{BOX_NOISE_NS} ns/op a box moves between two runs of one build: rerun to confirm, or add --explain-pairs 3)\n");
            }
        }
        None => {
            s += &format!(
                "  regressed box: none: these recordings measured no CPU slowdown ({} ns/op); the matrix drop is noise, or time spent off-CPU (above)\n",
                signed(g.measured_diff)
            );
        }
    }
    s
}

/// The revision a tracked baseline JSON was last committed at, if git knows it.
fn baseline_revision(compare: &Path) -> Option<String> {
    let dir = compare.parent().filter(|d| !d.as_os_str().is_empty());
    let out = std::process::Command::new("git")
        .args(["-C", &dir.unwrap_or(Path::new(".")).display().to_string()])
        .args(["log", "-1", "--format=%h", "--"])
        .arg(compare.file_name()?)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let rev = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !rev.is_empty()).then_some(rev)
}

/// This matrix's command line again, with `--baseline-preload-dir DIR` in place of any given.
fn rerun_with_dir(argv: &[String], dir: &str) -> String {
    let (program, rest) = argv
        .split_first()
        .map_or(("hz3-analyze", &[][..]), |(p, r)| (p.as_str(), r));
    let mut words: Vec<String> = Vec::new();
    let mut skip_value = false;
    let mut bench_args = None;
    for (i, w) in rest.iter().enumerate() {
        if skip_value {
            skip_value = false;
        } else if w == "--" {
            bench_args = Some(i);
            break;
        } else if w == "--baseline-preload-dir" {
            skip_value = true;
        } else if !w.starts_with("--baseline-preload-dir=") {
            words.push(w.clone());
        }
    }
    words.extend(["--baseline-preload-dir".into(), dir.into()]);
    if let Some(i) = bench_args {
        words.extend(rest[i..].iter().cloned());
    }
    shell_line(program, &words)
}

/// How to get a baseline build, then the explanation.
fn rebuild_commands(plan: &Plan, alloc: &Allocator, workload: &Workload) -> String {
    let rev = baseline_revision(plan.compare).unwrap_or_else(|| {
        let file = plan
            .compare
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        format!("<the revision {file} was measured at>")
    });
    let preload = format!("{WORKTREE}/target/preload");
    let file = build_file(alloc).unwrap_or_else(|| "lib.so".into());
    format!(
        "  to name the box, build the baseline's revision and rerun the guard with it:\n    git worktree add {WORKTREE} {rev} && (cd {WORKTREE} && scripts/build-preload)\n    {}\n{}",
        rerun_with_dir(&plan.argv, &preload),
        manual_commands(plan, alloc, workload, &Path::new(&preload).join(file))
    )
}

/// The record + gap commands that compare the two builds by hand.
fn manual_commands(plan: &Plan, alloc: &Allocator, workload: &Workload, baseline: &Path) -> String {
    let program = plan.argv.first().map_or("hz3-analyze", String::as_str);
    let dir = plan.out.join(row_dir_name(&workload.preset, &alloc.name));
    let (base_run, cur_run) = (dir.join("baseline"), dir.join("current"));
    let base_spec = format!("{}={}", baseline_name(&alloc.name), baseline.display());
    let cur_spec = format!("{}={}", alloc.name, alloc.preload_env());
    let gap_words = [
        "gap".to_string(),
        base_run.display().to_string(),
        cur_run.display().to_string(),
    ];
    format!(
        "  or compare the two builds by hand:\n    {}\n    {}\n    {}",
        shell_line(program, &record_words(base_spec, &base_run, None, workload)),
        shell_line(program, &record_words(cur_spec, &cur_run, None, workload)),
        shell_line(program, &gap_words)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::compare::Verdict;

    fn alloc(name: &str, preload: Option<&Path>) -> Allocator {
        Allocator {
            name: name.into(),
            preload: preload.map(Path::to_path_buf),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn baseline_builds_come_from_explain_with_then_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let so = |name: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, b"").unwrap();
            p
        };
        let (scale, other) = (so("libhz3_scale.so"), so("old-fast.so"));
        let measured = [
            alloc(
                "tcmalloc",
                Some(Path::new("/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4")),
            ),
            alloc("hz3_scale", Some(Path::new("/t/libhz3_scale.so"))),
            alloc("hz3_fast", Some(Path::new("/t/libhz3_fast.so"))),
            alloc("glibc", None),
        ];
        let with = strings(&[&format!("hz3_fast={}", other.display())]);
        let b = BaselineBuilds::new(&with, Some(dir.path()), &measured).unwrap();
        assert_eq!(b.lookup(&measured[1]), Lookup::Found(scale));
        assert_eq!(b.lookup(&measured[2]), Lookup::Found(other));
        assert_eq!(b.lookup(&measured[0]), Lookup::NotGiven);
        assert_eq!(b.lookup(&measured[3]), Lookup::NotGiven);
        let only_with = BaselineBuilds::new(&with, None, &measured).unwrap();
        assert_eq!(only_with.lookup(&measured[1]), Lookup::NotGiven);

        let partial = tempfile::tempdir().unwrap();
        std::fs::write(partial.path().join("libhz3_fast.so"), b"").unwrap();
        let b = BaselineBuilds::new(&[], Some(partial.path()), &measured).unwrap();
        assert_eq!(
            b.lookup(&measured[1]),
            Lookup::Missing(partial.path().join("libhz3_scale.so"))
        );
    }

    #[test]
    fn wrong_baseline_options_are_precise_errors() {
        let dir = tempfile::tempdir().unwrap();
        let measured = [alloc("hz3_scale", Some(Path::new("/t/libhz3_scale.so")))];
        let err = |with: &[&str], d: Option<&Path>| {
            BaselineBuilds::new(&strings(with), d, &measured)
                .unwrap_err()
                .to_string()
        };
        let e = err(&[], Some(&dir.path().join("nope")));
        assert!(e.contains("nope: no such directory"), "{e}");
        let e = err(&[], Some(dir.path()));
        assert!(
            e.contains("holds no build") && e.contains("libhz3_scale.so"),
            "{e}"
        );
        let e = err(&["hz3_scale=/no/such.so"], None);
        assert!(e.contains("hz3_scale: /no/such.so does not exist"), "{e}");
        let e = err(&["hz3_fast=/no/such.so"], None);
        assert!(
            e.contains("no allocator of that name is measured (measured: hz3_scale)"),
            "{e}"
        );
        let e = err(&["hz3_scale"], None);
        assert!(e.contains("expected NAME=PATH.so"), "{e}");
    }

    fn gap_with(boxes: &[(&str, f64)], measured_diff: f64) -> Gap {
        let row = |name: &str, diff: f64| GapRow {
            name: name.into(),
            a: 10.0,
            b: 10.0 + diff,
            diff,
        };
        Gap {
            a: "base".into(),
            b: "cur".into(),
            allocator_a: "hz3_x@baseline".into(),
            allocator_b: "hz3_x".into(),
            config: "c".into(),
            unit: "op".into(),
            measured_a: 30.0,
            measured_b: 30.0 + measured_diff,
            measured_diff,
            measured_from: "task-clock".into(),
            boxes: boxes.iter().map(|(n, d)| row(n, *d)).collect(),
            boxes_diff: boxes.iter().map(|(_, d)| d).sum(),
            residual: 0.0,
            offcpu: vec![row("off-cpu.lock_wait", 0.5)],
            offcpu_not_recorded: None,
            wall: row("bench wall ns/op", 1.0),
            perf_warnings: Vec::new(),
        }
    }

    #[test]
    fn the_regressed_box_is_the_one_that_grew_most() {
        // Sorted by |diff| as build_gap sorts: a shrinking box can lead the list.
        let g = gap_with(
            &[
                ("bench", -30.0),
                ("hz3.slow_alloc", 20.0),
                ("hz3.api", 3.0),
                ("other", 1.0),
            ],
            25.0,
        );
        assert_eq!(regressed_box(&g).unwrap().name, "hz3.slow_alloc");
        let text = describe_gap("p / hz3_x", &g);
        assert!(
            text.contains("regressed box: hz3.slow_alloc (+20.00 ns/op, 80% of the difference)"),
            "{text}"
        );
        assert!(
            text.contains("measured CPU ns/op 30.00 -> 55.00 (+25.00 ns/op, task-clock"),
            "{text}"
        );
        let listed: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.contains("top boxes"))
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(listed, ["bench", "hz3.slow_alloc", "hz3.api"]);
        assert!(text.contains("lock_wait +0.50"), "{text}");
        assert!(!text.contains("rerun to confirm"), "{text}");

        let small = gap_with(&[("hz3.api", 2.0)], 2.5);
        assert!(describe_gap("t", &small).contains("rerun to confirm"));
        let none = gap_with(&[("hz3.api", 2.0), ("bench", -4.0)], -1.0);
        assert!(regressed_box(&none).is_none());
        assert!(describe_gap("t", &none).contains("regressed box: none"));
    }

    #[test]
    fn several_pairs_give_each_box_its_median_difference() {
        let pairs = [
            gap_with(&[("hz3.central", 9.0), ("bench", 1.0)], 10.0),
            // A disturbed pair: bench jumps, hz3.central is missing (no samples in either run).
            gap_with(&[("bench", 40.0)], 41.0),
            gap_with(&[("bench", 2.0), ("hz3.central", 8.0)], 11.0),
        ];
        let m = median_gap(&pairs).unwrap();
        let diff = |name: &str| m.boxes.iter().find(|b| b.name == name).unwrap().diff;
        assert_eq!((diff("hz3.central"), diff("bench")), (8.0, 2.0));
        assert_eq!(m.boxes[0].name, "hz3.central", "re-sorted by |median|");
        assert_eq!(m.measured_diff, 11.0);
        assert_eq!((m.boxes_diff, m.residual), (10.0, 1.0));
        assert_eq!(regressed_box(&m).unwrap().name, "hz3.central");
        assert!(m.a.starts_with("median of 3 pairs"), "{}", m.a);
        assert_eq!(median_gap(&pairs[..1]), Some(pairs[0].clone()));
        assert_eq!(median_gap(&[]), None);
    }

    #[test]
    fn rows_that_cannot_be_recorded_say_why_and_how_to_get_an_explanation() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("libhz3_fast.so"), b"").unwrap();
        let allocs = [
            alloc(
                "tcmalloc",
                Some(Path::new("/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4")),
            ),
            alloc(
                "hz3_scale",
                Some(Path::new("target/preload/libhz3_scale.so")),
            ),
            alloc("hz3_fast", Some(Path::new("target/preload/libhz3_fast.so"))),
        ];
        let workloads = [Workload {
            preset: "p".into(),
            args: strings(&["remote", "--preset", "p"]),
        }];
        let regression = |allocator: &str, now: Option<f64>| Regression {
            preset: "p".into(),
            allocator: allocator.into(),
            before: 2.0,
            now,
            change: None,
            p_value: None,
            runs: 1,
            verdict: if now.is_some() {
                Verdict::Regressed
            } else {
                Verdict::Crashed
            },
        };
        let explain = |builds: &BaselineBuilds, r: &Regression| {
            let plan = Plan {
                builds,
                allocs: &allocs,
                measured: &allocs,
                bench: Path::new("/b/hz3-bench"),
                workloads: &workloads,
                out: PathBuf::from("/why"),
                pairs: 1,
                compare: Path::new("/nowhere/base.json"),
                argv: strings(&["hz3-analyze", "matrix", "--compare", "/nowhere/base.json"]),
            };
            explain_row(&plan, r)
        };
        let none = BaselineBuilds::new(&[], None, &allocs).unwrap();
        let text = explain(&none, &regression("hz3_scale", None));
        assert!(
            text.contains("every run crashed")
                && text.contains(
                    "LD_PRELOAD=target/preload/libhz3_scale.so /b/hz3-bench remote --preset p"
                ),
            "{text}"
        );
        let text = explain(&none, &regression("tcmalloc", Some(1.0)));
        assert!(text.contains("tcmalloc is a system library"), "{text}");
        let text = explain(&none, &regression("hz3_scale", Some(1.0)));
        assert!(text.contains("no baseline build given"), "{text}");
        assert!(
            text.contains(
                "git worktree add /tmp/hz3-baseline <the revision base.json was measured at> &&"
            ),
            "{text}"
        );
        assert!(text.contains("hz3-analyze matrix --compare /nowhere/base.json --baseline-preload-dir /tmp/hz3-baseline/target/preload"), "{text}");
        assert!(text.contains("record --quick --freq 4999 --alloc hz3_scale@baseline=/tmp/hz3-baseline/target/preload/libhz3_scale.so --out /why/p--hz3_scale/baseline -- remote --preset p"), "{text}");
        assert!(
            text.contains("hz3-analyze gap /why/p--hz3_scale/baseline /why/p--hz3_scale/current"),
            "{text}"
        );

        let in_dir = BaselineBuilds::new(&[], Some(dir.path()), &allocs).unwrap();
        let text = explain(&in_dir, &regression("hz3_scale", Some(1.0)));
        assert!(
            text.contains(&format!(
                "no baseline build to explain it with ({}/libhz3_scale.so does not exist)",
                dir.path().display()
            )),
            "{text}"
        );
    }

    #[test]
    fn the_rerun_command_replaces_the_directory_and_keeps_the_bench_arguments() {
        let argv = strings(&[
            "hz3-analyze",
            "matrix",
            "--compare",
            "b.json",
            "--baseline-preload-dir",
            "/old",
            "--quick",
            "--",
            "--threads",
            "4",
        ]);
        assert_eq!(
            rerun_with_dir(&argv, "/tmp/x"),
            "hz3-analyze matrix --compare b.json --quick --baseline-preload-dir /tmp/x -- --threads 4"
        );
        let argv = strings(&[
            "a",
            "matrix",
            "--baseline-preload-dir=/old",
            "--compare",
            "b c.json",
        ]);
        assert_eq!(
            rerun_with_dir(&argv, "/d"),
            "a matrix --compare 'b c.json' --baseline-preload-dir /d"
        );
        assert_eq!(
            row_dir_name("remote-heavy-small", "x/y z"),
            "remote-heavy-small--x_y_z"
        );
    }
}
