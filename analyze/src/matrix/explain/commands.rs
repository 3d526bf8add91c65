//! The commands the guard prints when it cannot record a row itself: this matrix's command line
//! again with `--baseline-preload-dir`, how to build the baseline's revision, and the record + gap
//! commands that compare the two builds by hand.
use super::baseline_builds::build_file;
use super::git_revision::baseline_revision;
use super::{baseline_name, record_options, row_dir_name, Plan};
use crate::allocators::Allocator;
use crate::matrix::Workload;
use crate::process::shell_line;
use std::path::Path;

/// Where the user is told to build the baseline when no build was given.
const WORKTREE: &str = "/tmp/hz3-baseline";

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
pub(super) fn rebuild_commands(plan: &Plan, alloc: &Allocator, workload: &Workload) -> String {
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
pub(super) fn manual_commands(
    plan: &Plan,
    alloc: &Allocator,
    workload: &Workload,
    baseline: &Path,
) -> String {
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
        shell_line(
            program,
            &record_options(base_spec, &base_run, None, workload).command_words()
        ),
        shell_line(
            program,
            &record_options(cur_spec, &cur_run, None, workload).command_words()
        ),
        shell_line(program, &gap_words)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::explain::tests::strings;

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
