//! The guard's explanation of a regressed row: the baseline's build and this one recorded under
//! perf on the row's workload, their `gap`, and the box whose CPU time per op grew the most.
//!
//! The old `.so` is normally gone (rebuilt in place), so the baseline build comes from the user:
//! `--explain-with NAME=PATH`, or `--baseline-preload-dir DIR` holding the `libhz3_*.so` built
//! from the baseline's revision. Without one, the exact commands that would produce the
//! explanation are printed instead; the guard's exit status does not depend on any of this.
mod baseline_builds;
mod commands;
mod gap_median;
mod gap_text;
mod git_revision;

pub use baseline_builds::{BaselineBuilds, Lookup};
pub use gap_median::{median_gap, regressed_box};
pub use gap_text::describe_gap;

use super::compare::Regression;
use super::Workload;
use crate::allocators::Allocator;
use crate::attribute::build_report;
use crate::boxes;
use crate::flame::{self, FlameOptions, FlameRuns};
use crate::gap::{self, build_gap, Gap};
use crate::perf_run::Run;
use crate::record::{self, RecordOptions};
use anyhow::{Context, Result};
use baseline_builds::build_file;
use commands::{manual_commands, rebuild_commands};
use std::path::{Path, PathBuf};
use std::time::Instant;

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

/// What the guard records: 4999 Hz for enough samples in a sub-second run, the quick 4 KiB
/// stack copy.
fn record_options(
    spec: String,
    out: &Path,
    bench: Option<&Path>,
    workload: &Workload,
) -> RecordOptions {
    RecordOptions {
        quick: true,
        freq: Some(4999),
        out: Some(out.to_path_buf()),
        bench: bench.map(Path::to_path_buf),
        bench_args: workload.args.clone(),
        ..RecordOptions::new(spec)
    }
}

/// Records in-process, its notes on stderr and its summary line on stdout as `record` prints them.
fn record_run(opts: &RecordOptions) -> Result<()> {
    let recorded = record::record(opts, &mut std::io::stderr())?;
    println!("{recorded}");
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
        record_run(&record_options(
            base_spec.clone(),
            &base_run,
            Some(plan.bench),
            workload,
        ))
        .context("recording the baseline build")?;
        record_run(&record_options(
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
            let svg = flame::draw(&FlameOptions {
                out: Some(dir.join("flame-diff.svg")),
                ..FlameOptions::new(FlameRuns::Diff {
                    a: base_run.clone(),
                    b: cur_run.clone(),
                })
            })
            .context("drawing the differential flamegraph")?;
            println!("{}", svg.display());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::compare::Verdict;

    pub(super) fn alloc(name: &str, preload: Option<&Path>) -> Allocator {
        Allocator {
            name: name.into(),
            preload: preload.map(Path::to_path_buf),
        }
    }

    pub(super) fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
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
}
