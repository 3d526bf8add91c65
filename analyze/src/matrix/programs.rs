//! `matrix --program NAME='CMD ARGS…'`: any program as a row beside the presets, measured per
//! allocator as wall time, CPU time and peak RSS of its whole process tree (wait4's rusage), in
//! the same interleaved rounds as the presets.
use super::stats;
use crate::allocators::Allocator;
use crate::program;
use crate::runner::{self, Crash};
use crate::table::{Column, Table};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// One `--program NAME=CMD`: its name and words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    pub name: String,
    pub command: String,
    pub argv: Vec<String>,
}

/// Parses every `NAME=CMD ARGS…`, checking each command exists before anything runs.
pub fn parse(specs: &[String]) -> Result<Vec<Program>> {
    let mut out: Vec<Program> = Vec::new();
    for spec in specs {
        let (name, command) = program::named(spec)?;
        let mut argv = program::split(&command)?;
        argv[0] = crate::process::locate(&argv[0])?.display().to_string();
        if out.iter().any(|p| p.name == name) {
            anyhow::bail!("--program {name:?} is given twice");
        }
        out.push(Program {
            name,
            command,
            argv,
        });
    }
    Ok(out)
}

/// Median, smallest and largest of a row's runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Option<Spread> {
        (!values.is_empty()).then(|| Spread {
            median: crate::inject_check::median(values.iter().copied()),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    fn cell(this: Option<Spread>, scale: f64) -> String {
        this.map_or("-".into(), |s| {
            format!(
                "{:.3} [{:.3}-{:.3}]",
                s.median * scale,
                s.min * scale,
                s.max * scale
            )
        })
    }
}

/// One (program, allocator) row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgramRow {
    pub program: String,
    pub command: String,
    pub allocator: String,
    pub preload: Option<String>,
    pub samples_wall_s: Vec<f64>,
    /// User + system CPU of the program's whole tree per run.
    pub samples_cpu_s: Vec<f64>,
    /// The largest ru_maxrss in the tree per run, KiB.
    pub samples_peak_rss_kib: Vec<f64>,
    pub wall_s: Option<Spread>,
    pub cpu_s: Option<Spread>,
    pub peak_rss_kib: Option<Spread>,
    pub runs_ok: usize,
    pub crashed: usize,
    pub crashes: Vec<String>,
    /// Rounds the row was not run in, after it had timed out [`runner::TIMEOUTS_BEFORE_SKIP`] times.
    #[serde(default)]
    pub skipped: usize,
}

impl ProgramRow {
    fn new(p: &Program, a: &Allocator) -> ProgramRow {
        ProgramRow {
            program: p.name.clone(),
            command: p.command.clone(),
            allocator: a.name.clone(),
            preload: a.preload.as_ref().map(|l| l.display().to_string()),
            samples_wall_s: Vec::new(),
            samples_cpu_s: Vec::new(),
            samples_peak_rss_kib: Vec::new(),
            wall_s: None,
            cpu_s: None,
            peak_rss_kib: None,
            runs_ok: 0,
            crashed: 0,
            crashes: Vec::new(),
            skipped: 0,
        }
    }

    fn finish(&mut self) {
        self.wall_s = Spread::of(&self.samples_wall_s);
        self.cpu_s = Spread::of(&self.samples_cpu_s);
        self.peak_rss_kib = Spread::of(&self.samples_peak_rss_kib);
    }
}

/// Runs every (program, allocator) `rounds` times, round r rotating both orders by r as the
/// preset rows are. `allocs` are the snapshot's copies; `names` the rows' names.
pub fn measure(
    programs: &[Program],
    allocs: &[Allocator],
    rounds: u32,
    timeout: Duration,
) -> Result<Vec<ProgramRow>> {
    let mut rows: Vec<ProgramRow> = programs
        .iter()
        .flat_map(|p| allocs.iter().map(move |a| ProgramRow::new(p, a)))
        .collect();
    let program_ids: Vec<usize> = (0..programs.len()).collect();
    let alloc_ids: Vec<usize> = (0..allocs.len()).collect();
    for round in 0..rounds as usize {
        for pi in stats::rotated(&program_ids, round) {
            for ai in stats::rotated(&alloc_ids, round) {
                let (p, a) = (&programs[pi], &allocs[ai]);
                let row = &mut rows[pi * allocs.len() + ai];
                if runner::gives_up(&row.crashes) {
                    row.skipped += 1;
                    continue;
                }
                eprintln!(
                    "matrix: program {} / {} (round {}/{rounds})",
                    p.name,
                    a.name,
                    round + 1
                );
                let run = runner::run_command(
                    crate::process::preloaded(
                        Path::new(&p.argv[0]),
                        &p.argv[1..],
                        a.preload.as_deref(),
                    ),
                    timeout,
                )?;
                match run.outcome {
                    Ok(()) => {
                        row.samples_wall_s.push(run.wall.as_secs_f64());
                        row.samples_cpu_s.push(run.usage.cpu_ns as f64 / 1e9);
                        row.samples_peak_rss_kib.push(run.usage.peak_rss_kib as f64);
                        row.runs_ok += 1;
                    }
                    Err(crash) => {
                        eprintln!("{}", crash_line(p, a, &crash, &run.stderr));
                        row.crashed += 1;
                        row.crashes.push(crash.to_string());
                        if runner::gives_up(&row.crashes) && round + 1 < rounds as usize {
                            eprintln!(
                                "hz3-analyze matrix: program {} under {} timed out {} times: not run in the remaining rounds",
                                p.name,
                                a.name,
                                runner::TIMEOUTS_BEFORE_SKIP
                            );
                        }
                    }
                }
            }
        }
    }
    for r in &mut rows {
        r.finish();
    }
    Ok(rows)
}

fn crash_line(p: &Program, a: &Allocator, crash: &Crash, stderr: &str) -> String {
    format!(
        "hz3-analyze matrix: program {} under {} failed ({crash}): {}",
        p.name,
        a.name,
        program::last_lines(stderr, 3)
    )
}

/// The program rows as a table: medians with [min-max].
pub fn table(rows: &[ProgramRow]) -> Table {
    let mut t = Table::new([
        Column::left("program"),
        Column::left("allocator"),
        Column::right("wall s [min-max]"),
        Column::right("CPU s [min-max]"),
        Column::right("peak RSS MiB [min-max]"),
        Column::right("runs"),
        Column::auto("crashed"),
    ]);
    for r in rows {
        t.push(vec![
            r.program.clone(),
            r.allocator.clone(),
            Spread::cell(r.wall_s, 1.0),
            Spread::cell(r.cpu_s, 1.0),
            Spread::cell(r.peak_rss_kib, 1.0 / 1024.0),
            r.runs_ok.to_string(),
            runner::crash_summary(&r.crashes, r.skipped),
        ]);
    }
    t
}

/// The fastest allocator by median CPU time on `program` among `candidates`.
pub fn fastest<'r>(
    rows: &'r [ProgramRow],
    program: &str,
    candidates: &[&str],
) -> Option<&'r ProgramRow> {
    rows.iter()
        .filter(|r| r.program == program && candidates.contains(&r.allocator.as_str()))
        .filter_map(|r| r.cpu_s.map(|s| (r, s.median)))
        .min_by(|x, y| x.1.total_cmp(&y.1))
        .map(|(r, _)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_measure_the_whole_tree_and_keep_crashes() {
        let programs = parse(&[
            "py=sh -c 'python3 -c \"b = bytearray(40 << 20)\"'".to_string(),
            "bad=sh -c 'echo broken >&2; exit 2'".to_string(),
        ])
        .unwrap();
        let glibc = Allocator {
            name: "glibc".into(),
            preload: None,
        };
        let rows = measure(&programs, &[glibc], 2, Duration::from_secs(60)).unwrap();
        assert_eq!(rows.len(), 2);
        let py = &rows[0];
        assert_eq!((py.program.as_str(), py.runs_ok), ("py", 2));
        // The grandchild python's 40 MiB is in the tree's peak RSS.
        assert!(py.peak_rss_kib.unwrap().min >= 40.0 * 1024.0, "{py:?}");
        let s = py.wall_s.unwrap();
        assert!(s.min <= s.median && s.median <= s.max);
        assert_eq!(rows[1].crashes, ["exit 2", "exit 2"]);
        assert!(rows[1].wall_s.is_none());
        let text = table(&rows).to_text();
        assert!(text.contains("2 (exit 2)"), "{text}");
        assert_eq!(fastest(&rows, "py", &["glibc"]).unwrap().allocator, "glibc");
        assert!(fastest(&rows, "bad", &["glibc"]).is_none());
    }

    #[test]
    fn a_program_that_timed_out_twice_is_run_no_more() {
        let programs = parse(&["hang=sleep 30".to_string()]).unwrap();
        let glibc = Allocator {
            name: "glibc".into(),
            preload: None,
        };
        let started = std::time::Instant::now();
        let rows = measure(&programs, &[glibc], 5, Duration::from_secs(1)).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        let row = &rows[0];
        assert_eq!((row.crashed, row.skipped, row.runs_ok), (2, 3, 0));
        let text = table(&rows).to_text();
        assert!(text.contains("2 (timeout 1s), then 3 not run"), "{text}");
    }

    #[test]
    fn bad_specs_are_rejected_before_running() {
        assert!(parse(&["py=no-such-program-hz3".into()])
            .unwrap_err()
            .to_string()
            .contains("not found on PATH"));
        assert!(parse(&["python3 -c 1".into()]).is_err());
        assert!(parse(&["a=true".into(), "a=true".into()])
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }
}
