//! Any program instead of hz3-bench: its command line split like a shell would, found on PATH, its
//! op count (given, or read from its output), and what one run of it cost (wall, CPU, peak RSS).
//!
//! A recorded program run keeps `program.json` beside the perf data; [`crate::perf_run::Run`]
//! reads it in place of the bench's report, so `attribute`, `gap` and `flame` work per op when
//! an op count is known and per run otherwise.
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file a recorded program run keeps its facts in.
pub const PROGRAM_JSON: &str = "program.json";
/// The program's standard output and error in a run directory.
pub const STDOUT_TXT: &str = "program.stdout";
pub const STDERR_TXT: &str = "program.stderr";

/// A command line split into words by the POSIX shell's quoting rules (no expansion).
pub fn split(command: &str) -> Result<Vec<String>> {
    let words = shlex::split(command).with_context(|| {
        format!("--program {command:?}: unbalanced quotes or a trailing backslash")
    })?;
    if words.is_empty() {
        bail!("--program is empty: give a command, e.g. --program 'python3 -c \"print(1)\"'");
    }
    Ok(words)
}

/// `NAME=CMD ARGS…` (matrix and report): the row's name and the command line.
pub fn named(spec: &str) -> Result<(String, String)> {
    match spec.split_once('=') {
        Some((name, cmd))
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            Ok((name.to_string(), cmd.to_string()))
        }
        _ => bail!(
            "--program {spec:?}: expected NAME=COMMAND (NAME of letters, digits, `-_.`), e.g. --program 'py=python3 -c \"...\"'"
        ),
    }
}

/// Where the op count comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpsSource {
    /// `--ops N`.
    Given(u64),
    /// `--ops-from REGEX`: the first capture group of its first match in stdout, then stderr.
    FromOutput(String),
}

impl OpsSource {
    pub fn from_args(ops: Option<u64>, ops_from: Option<&str>) -> Result<Option<OpsSource>> {
        match (ops, ops_from) {
            (Some(_), Some(_)) => bail!("--ops and --ops-from are exclusive: give one"),
            (Some(0), None) => bail!("--ops must be at least 1"),
            (Some(n), None) => Ok(Some(OpsSource::Given(n))),
            (None, Some(re)) => {
                compile(re)?;
                Ok(Some(OpsSource::FromOutput(re.to_string())))
            }
            (None, None) => Ok(None),
        }
    }

    /// The op count of a run that printed `stdout` and `stderr`.
    pub fn ops(&self, stdout: &str, stderr: &str) -> Result<u64> {
        match self {
            OpsSource::Given(n) => Ok(*n),
            OpsSource::FromOutput(re) => ops_from_output(re, stdout, stderr),
        }
    }
}

fn compile(re: &str) -> Result<regex_automata::meta::Regex> {
    let compiled = regex_automata::meta::Regex::new(re)
        .map_err(|e| anyhow::anyhow!("--ops-from {re:?}: not a regular expression: {e}"))?;
    if compiled.captures_len() < 2 {
        bail!("--ops-from {re:?}: needs a capture group around the number, e.g. 'ops=([0-9]+)'");
    }
    Ok(compiled)
}

/// The number in the first capture group of `re`'s first match in stdout, else in stderr.
/// Thousands separators (`,` `_`) are allowed; a fraction or exponent is rounded.
pub fn ops_from_output(re: &str, stdout: &str, stderr: &str) -> Result<u64> {
    let compiled = compile(re)?;
    let mut caps = compiled.create_captures();
    for text in [stdout, stderr] {
        compiled.captures(text, &mut caps);
        if let Some(span) = caps.get_group(1) {
            let word: String = text[span.start..span.end]
                .chars()
                .filter(|c| *c != ',' && *c != '_')
                .collect();
            let n: f64 = word.trim().parse().map_err(|_| {
                anyhow::anyhow!("--ops-from {re:?}: matched {word:?}, which is not a number")
            })?;
            if !n.is_finite() || n < 1.0 {
                bail!("--ops-from {re:?}: matched {word:?}: the op count must be at least 1");
            }
            return Ok(n.round() as u64);
        }
    }
    bail!("--ops-from {re:?}: no match in the program's output (stdout or stderr)")
}

/// One finished run of the program: what `record` keeps as `program.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramRun {
    /// The command line as given.
    pub command: String,
    pub argv: Vec<String>,
    pub allocator: String,
    /// The op count, or None: figures are then per run.
    pub ops: Option<u64>,
    pub ops_source: Option<OpsSource>,
    pub wall_secs: f64,
    /// User + system CPU of the program and every descendant it waited for (wait4's rusage).
    pub cpu_secs: f64,
    /// The largest ru_maxrss among them, KiB.
    pub peak_rss_kib: u64,
}

impl ProgramRun {
    /// What figures are divided by: the op count, or 1 (per run).
    pub fn divisor(&self) -> u64 {
        self.ops.unwrap_or(1).max(1)
    }

    /// "op" or "run": the unit every per-X figure of this run is in.
    pub fn unit(&self) -> &'static str {
        if self.ops.is_some() {
            "op"
        } else {
            "run"
        }
    }

    /// The key two runs must share to be compared: the same command and the same op count source.
    pub fn config_key(&self) -> String {
        let ops = match &self.ops_source {
            None => "per run".to_string(),
            Some(OpsSource::Given(n)) => format!("ops={n}"),
            Some(OpsSource::FromOutput(re)) => format!("ops from /{re}/"),
        };
        format!("program: {}  ({ops})", self.command.escape_debug())
    }

    /// A bench report standing in for the bench's, so every reader of a run works unchanged:
    /// `ops` is the divisor, `secs` the wall time, `threads` the CPUs. The rest of its
    /// configuration (a workload kind among them) means nothing for a program and is never read:
    /// a program run's config key is [`ProgramRun::config_key`].
    pub fn as_bench_report(&self, cpus: usize) -> bench::BenchReport {
        bench::BenchReport {
            config: bench::Config {
                kind: bench::Kind::Remote,
                threads: cpus.max(1),
                iters: 0,
                ws: 0,
                min: 0,
                max: 0,
                remote_pct: 0,
                ring: 0,
                matched: false,
                touch: false,
                seed: 0,
            },
            preset: None,
            allocator: self.allocator.clone(),
            ops: self.divisor(),
            counts: bench::Counts::default(),
            secs: self.wall_secs,
            mops: self.divisor() as f64 / self.wall_secs.max(1e-9) / 1e6,
            cpu_secs: self.cpu_secs,
            // A program's live bytes are not known: no memory figures.
            memory: None,
        }
    }

    pub fn read(dir: &Path) -> Result<Option<ProgramRun>> {
        let path = dir.join(PROGRAM_JSON);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(PROGRAM_JSON);
        std::fs::write(&path, serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("{}: cannot write", path.display()))
    }
}

/// The last `n` non-blank lines of `text`, joined by ` | ` (for one-line error messages).
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split(r#"python3 -c 'print("a b")' "x y" z\ w"#).unwrap(),
            ["python3", "-c", r#"print("a b")"#, "x y", "z w"]
        );
        assert!(split("perl -e 'unclosed").is_err());
        assert!(split("   ").is_err());
        assert_eq!(
            named("py=python3 -c 'x=1'").unwrap(),
            ("py".into(), "python3 -c 'x=1'".into())
        );
        assert!(named("python3 -c 1").is_err());
        assert!(named("=python3").is_err());
    }

    #[test]
    fn ops_from_the_first_capture_of_stdout_then_stderr() {
        assert_eq!(
            ops_from_output(r"ops=([0-9,]+)", "ops=1,000\n", "").unwrap(),
            1000
        );
        assert_eq!(
            ops_from_output(r"done (\S+) ops", "", "done 2.5e3 ops").unwrap(),
            2500
        );
        let no_match = ops_from_output(r"ops=(\d+)", "nothing", "").unwrap_err();
        assert!(no_match.to_string().contains("no match"), "{no_match}");
        assert!(ops_from_output(r"ops=(\w+)", "ops=many", "").is_err());
        assert!(ops_from_output(r"ops=(\d+)", "ops=0", "").is_err());
        assert!(
            OpsSource::from_args(None, Some("ops=\\d+")).is_err(),
            "no group"
        );
        assert!(OpsSource::from_args(None, Some("(")).is_err());
        assert!(OpsSource::from_args(Some(3), Some("(x)")).is_err());
        assert!(OpsSource::from_args(Some(0), None).is_err());
        assert_eq!(
            OpsSource::from_args(Some(7), None)
                .unwrap()
                .unwrap()
                .ops("", "")
                .unwrap(),
            7
        );
    }

    #[test]
    fn per_run_without_ops() {
        let mut r = ProgramRun {
            command: "x".into(),
            argv: vec!["x".into()],
            allocator: "glibc".into(),
            ops: None,
            ops_source: None,
            wall_secs: 0.5,
            cpu_secs: 1.0,
            peak_rss_kib: 10,
        };
        assert_eq!((r.divisor(), r.unit()), (1, "run"));
        assert_eq!(r.as_bench_report(2).ops, 1);
        r.ops = Some(40);
        assert_eq!((r.divisor(), r.unit()), (40, "op"));
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b | c");
    }
}
