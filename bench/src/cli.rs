//! The command line: `hz3-bench remote ...`, presets, and validation into a [`Config`].
use crate::workload::Config;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

const DEFAULT_RING: usize = 65536;
const DEFAULT_SEED: u64 = 0x5eed;

#[derive(Parser, Debug)]
#[command(
    name = "hz3-bench",
    version,
    about = "The remote-free multi-thread allocator workload (allocates through the C malloc/free, so LD_PRELOAD picks the allocator)",
    after_help = "Examples:\n  hz3-bench remote --preset remote-heavy-small --json\n  LD_PRELOAD=target/preload/libhz3_scale.so hz3-bench remote --preset remote-90\n  hz3-bench remote --threads 4 --iters 100000 --ws 256 --min 16 --max 2048 --remote-pct 50 --matched"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// T threads, W slots each; a freed object goes to the next thread's ring with probability P%
    Remote(RemoteArgs),
}

/// The configurations the original comparison used. Iterations and slots are sized so one run takes
/// about 0.5-1.5 s with glibc on a 2-core machine (see docs/decisions.md, "bench and matrix").
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// T32 R50 16-2048 B, matched
    #[value(name = "remote-heavy-small")]
    RemoteHeavySmall,
    /// T32 R90 16-2048 B, matched
    #[value(name = "remote-90")]
    Remote90,
    /// T2 R0 16-2048 B, matched
    #[value(name = "local-small")]
    LocalSmall,
    /// T8 R50 16-32768 B, matched
    #[value(name = "mixed-large")]
    MixedLarge,
}

impl Preset {
    pub const ALL: [Preset; 4] = [
        Preset::RemoteHeavySmall,
        Preset::Remote90,
        Preset::LocalSmall,
        Preset::MixedLarge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Preset::RemoteHeavySmall => "remote-heavy-small",
            Preset::Remote90 => "remote-90",
            Preset::LocalSmall => "local-small",
            Preset::MixedLarge => "mixed-large",
        }
    }

    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::from_str(name, false).ok()
    }

    pub fn config(self) -> Config {
        let base = Config {
            threads: 32,
            iters: 0,
            ws: 256,
            min: 16,
            max: 2048,
            remote_pct: 50,
            ring: DEFAULT_RING,
            matched: true,
            touch: false,
            seed: DEFAULT_SEED,
        };
        match self {
            Preset::RemoteHeavySmall => Config {
                iters: 250_000,
                ..base
            },
            Preset::Remote90 => Config {
                iters: 200_000,
                remote_pct: 90,
                ..base
            },
            Preset::LocalSmall => Config {
                threads: 2,
                iters: 20_000_000,
                remote_pct: 0,
                ..base
            },
            Preset::MixedLarge => Config {
                threads: 8,
                iters: 450_000,
                max: 32768,
                ..base
            },
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct RemoteArgs {
    /// Start from a named configuration; explicit flags below override its values
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Threads (T) [default: the preset's, else 32]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: Option<u32>,
    /// Steps per thread (N)
    #[arg(long)]
    pub iters: Option<u64>,
    /// Slots per thread (W): the live working set
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=(1 << 32)))]
    pub ws: Option<u64>,
    /// Smallest allocation size in bytes (A)
    #[arg(long)]
    pub min: Option<u64>,
    /// Largest allocation size in bytes (B), at most 1 GiB
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=(1 << 30)))]
    pub max: Option<u64>,
    /// Percentage of frees sent to the next thread (P)
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub remote_pct: Option<u32>,
    /// Slots in each thread's inbox ring (a power of two) [default: 65536]
    #[arg(long)]
    pub ring: Option<u64>,
    /// Every thread does exactly N steps then drains its inbox: equal op counts for every allocator
    /// [presets: true; `--matched=false` turns it off]
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub matched: Option<bool>,
    /// Write every byte of every allocated object
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub touch: Option<bool>,
    /// PRNG seed (each thread derives its own stream)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print one JSON object on stdout (the human line then goes to stderr)
    #[arg(long)]
    pub json: bool,
}

impl RemoteArgs {
    /// Preset values, then explicit flags; without a preset the numbers default to
    /// remote-heavy-small's but `matched` defaults to false (the flag's plain meaning).
    pub fn resolve(&self) -> Result<Config, String> {
        let base = match self.preset {
            Some(p) => p.config(),
            None => Config {
                matched: false,
                ..Preset::RemoteHeavySmall.config()
            },
        };
        let cfg = Config {
            threads: self.threads.map_or(base.threads, |v| v as usize),
            iters: self.iters.unwrap_or(base.iters),
            ws: self.ws.map_or(base.ws, |v| v as usize),
            min: self.min.map_or(base.min, |v| v as usize),
            max: self.max.map_or(base.max, |v| v as usize),
            remote_pct: self.remote_pct.unwrap_or(base.remote_pct),
            ring: self.ring.map_or(base.ring, |v| v as usize),
            matched: self.matched.unwrap_or(base.matched),
            touch: self.touch.unwrap_or(base.touch),
            seed: self.seed.unwrap_or(base.seed),
        };
        if cfg.min > cfg.max {
            return Err(format!(
                "--min ({}) must not exceed --max ({})",
                cfg.min, cfg.max
            ));
        }
        if cfg.ring < 2 || !cfg.ring.is_power_of_two() {
            return Err(format!(
                "--ring ({}) must be a power of two, at least 2",
                cfg.ring
            ));
        }
        Ok(cfg)
    }
}

/// Parses `hz3-bench` arguments (argv[0] first) into the resolved configuration, with clap errors
/// (exit code 2) for everything wrong, including cross-field checks. `hz3-analyze` uses this to
/// reject bad bench arguments before spawning anything.
pub fn parse<I, T>(argv: I) -> Result<(RemoteArgs, Config), clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let Command::Remote(args) = Cli::try_parse_from(argv)?.command;
    match args.resolve() {
        Ok(cfg) => Ok((args, cfg)),
        Err(msg) => Err(Cli::command().error(ErrorKind::ValueValidation, msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(args: &[&str]) -> Config {
        parse(["hz3-bench", "remote"].iter().chain(args))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .1
    }

    fn parse_err(args: &[&str]) -> clap::Error {
        parse(["hz3-bench", "remote"].iter().chain(args)).expect_err("should be rejected")
    }

    #[test]
    fn presets_match_the_issue_and_explicit_flags_override() {
        let c = parse_ok(&["--preset", "remote-heavy-small"]);
        assert_eq!(
            (c.threads, c.remote_pct, c.min, c.max, c.matched),
            (32, 50, 16, 2048, true)
        );
        let c = parse_ok(&["--preset", "remote-90"]);
        assert_eq!(
            (c.threads, c.remote_pct, c.max, c.matched),
            (32, 90, 2048, true)
        );
        let c = parse_ok(&["--preset", "local-small"]);
        assert_eq!((c.threads, c.remote_pct), (2, 0));
        let c = parse_ok(&["--preset", "mixed-large"]);
        assert_eq!((c.threads, c.remote_pct, c.min, c.max), (8, 50, 16, 32768));
        let c = parse_ok(&[
            "--preset",
            "mixed-large",
            "--threads",
            "3",
            "--matched=false",
            "--touch",
        ]);
        assert_eq!(
            (c.threads, c.max, c.matched, c.touch),
            (3, 32768, false, true)
        );
        assert!(
            !parse_ok(&[]).matched,
            "without a preset, matched is off unless asked for"
        );
        assert!(parse_ok(&["--matched"]).matched);
        for p in Preset::ALL {
            assert_eq!(Preset::from_name(p.name()), Some(p));
        }
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_arguments_are_clap_errors_with_exit_code_2() {
        let cases: [(&[&str], &str); 6] = [
            (
                &["--min", "64", "--max", "16"],
                "--min (64) must not exceed --max (16)",
            ),
            (&["--ws", "0"], "--ws"),
            (&["--threads", "0"], "--threads"),
            (&["--remote-pct", "101"], "--remote-pct"),
            (&["--ring", "1000"], "power of two"),
            (&["--preset", "nope"], "remote-heavy-small"),
        ];
        for (args, needle) in cases {
            let err = parse_err(args);
            assert_eq!(err.exit_code(), 2, "{args:?}");
            let text = err.to_string();
            assert!(text.contains(needle), "{args:?}: {text}");
        }
    }
}
