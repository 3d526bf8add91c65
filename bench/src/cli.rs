//! The command line: `hz3-bench remote ...` (alias `run`), presets, and validation into a [`Config`].
use crate::workload::{Config, Kind};
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

const DEFAULT_RING: usize = 65536;
const DEFAULT_SEED: u64 = 0x5eed;

#[derive(Parser, Debug)]
#[command(
    name = "hz3-bench",
    version,
    about = "Allocator workloads that allocate through the C malloc/free/realloc, so LD_PRELOAD picks the allocator",
    after_help = "Examples:\n  hz3-bench remote --preset remote-heavy-small --json\n  LD_PRELOAD=target/preload/libhz3_scale.so hz3-bench remote --preset remote-90\n  hz3-bench remote --preset realloc-growth --untouched\n  hz3-bench run --workload producer-consumer --threads 4 --iters 100000 --min 16 --max 256\n  hz3-bench remote --threads 4 --iters 100000 --ws 256 --min 16 --max 2048 --remote-pct 50 --matched"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a workload (a preset, or --workload with explicit numbers); `run` is the same command
    #[command(visible_alias = "run")]
    Remote(RemoteArgs),
}

/// The standard configurations. Iterations are sized so one run takes about 0.5-3 s with glibc on
/// a quiet 2-core machine (see docs/decisions.md, "bench and matrix"; the presets added with the
/// touched form were sized from their CPU time per op at load average 8-16). Every preset writes its objects
/// (`--touch`, the reference form) unless `--untouched` is given.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// remote: T32 R50 16-2048 B, matched
    #[value(name = "remote-heavy-small")]
    RemoteHeavySmall,
    /// remote: T32 R90 16-2048 B, matched
    #[value(name = "remote-90")]
    Remote90,
    /// remote: T2 R0 16-2048 B, matched
    #[value(name = "local-small")]
    LocalSmall,
    /// remote: T8 R50 16-32768 B, matched
    #[value(name = "mixed-large")]
    MixedLarge,
    /// remote: T2 R50 16-2048 B, matched (no oversubscription)
    #[value(name = "remote-heavy-small-t2")]
    RemoteHeavySmallT2,
    /// remote: T4 R50 16-2048 B, matched
    #[value(name = "remote-heavy-small-t4")]
    RemoteHeavySmallT4,
    /// server-table: T8, 5000 slots a thread, 8-1000 B, regions change hands every round
    #[value(name = "server-table")]
    ServerTable,
    /// producer-consumer: 4 producers -> 4 consumers, 16-2048 B, 4096-slot rings
    #[value(name = "producer-consumer")]
    ProducerConsumer,
    /// random-lifetimes: T8, 16 B-16 KiB log-uniform, lifetimes 1-16383 steps log-uniform
    #[value(name = "random-lifetimes")]
    RandomLifetimes,
    /// realloc-growth: T2, buffers grown in 8 KiB steps to 2-4 MiB
    #[value(name = "realloc-growth")]
    ReallocGrowth,
    /// remote: T4 R50 64 KiB-4 MiB, 8 slots a thread, matched
    #[value(name = "large-churn")]
    LargeChurn,
}

impl Preset {
    pub const ALL: [Preset; 11] = [
        Preset::RemoteHeavySmall,
        Preset::Remote90,
        Preset::LocalSmall,
        Preset::MixedLarge,
        Preset::RemoteHeavySmallT2,
        Preset::RemoteHeavySmallT4,
        Preset::ServerTable,
        Preset::ProducerConsumer,
        Preset::RandomLifetimes,
        Preset::ReallocGrowth,
        Preset::LargeChurn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Preset::RemoteHeavySmall => "remote-heavy-small",
            Preset::Remote90 => "remote-90",
            Preset::LocalSmall => "local-small",
            Preset::MixedLarge => "mixed-large",
            Preset::RemoteHeavySmallT2 => "remote-heavy-small-t2",
            Preset::RemoteHeavySmallT4 => "remote-heavy-small-t4",
            Preset::ServerTable => "server-table",
            Preset::ProducerConsumer => "producer-consumer",
            Preset::RandomLifetimes => "random-lifetimes",
            Preset::ReallocGrowth => "realloc-growth",
            Preset::LargeChurn => "large-churn",
        }
    }

    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::from_str(name, false).ok()
    }

    pub fn config(self) -> Config {
        let base = Config {
            kind: Kind::Remote,
            threads: 32,
            iters: 0,
            ws: 256,
            min: 16,
            max: 2048,
            remote_pct: 50,
            ring: DEFAULT_RING,
            matched: true,
            touch: true,
            seed: DEFAULT_SEED,
        };
        // Fields a kind does not read keep the base values (the report prints them all).
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
            Preset::RemoteHeavySmallT2 => Config {
                threads: 2,
                iters: 16_000_000,
                ..base
            },
            Preset::RemoteHeavySmallT4 => Config {
                threads: 4,
                iters: 8_000_000,
                ..base
            },
            Preset::ServerTable => Config {
                kind: Kind::ServerTable,
                threads: 8,
                iters: 3_000_000,
                ws: 5000,
                min: 8,
                max: 1000,
                matched: false,
                ..base
            },
            Preset::ProducerConsumer => Config {
                kind: Kind::ProducerConsumer,
                threads: 8,
                iters: 4_000_000,
                ring: 4096,
                matched: false,
                ..base
            },
            Preset::RandomLifetimes => Config {
                kind: Kind::RandomLifetimes,
                threads: 8,
                iters: 2_000_000,
                ws: 16384,
                max: 16384,
                matched: false,
                ..base
            },
            Preset::ReallocGrowth => Config {
                kind: Kind::ReallocGrowth,
                threads: 2,
                iters: 1_500,
                min: 8192,
                max: 4 << 20,
                matched: false,
                ..base
            },
            Preset::LargeChurn => Config {
                threads: 4,
                iters: 5_000,
                ws: 8,
                min: 64 << 10,
                max: 4 << 20,
                ..base
            },
        }
    }

    /// The preset a kind's numbers default to when `--workload` is given without `--preset`.
    fn home(kind: Kind) -> Preset {
        match kind {
            Kind::Remote => Preset::RemoteHeavySmall,
            Kind::ServerTable => Preset::ServerTable,
            Kind::ProducerConsumer => Preset::ProducerConsumer,
            Kind::RandomLifetimes => Preset::RandomLifetimes,
            Kind::ReallocGrowth => Preset::ReallocGrowth,
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "What the numbers mean per workload (a flag a workload does not read is refused):
  remote            T threads, W slots each, sizes A..B uniform; a freed object goes to the next
                    thread's ring (--ring slots) with probability P%; --matched drains every ring
  server-table      T threads, a shared table of T x W slots, sizes A..B uniform; N replacements a
                    thread in rounds of W, each round on another thread's region
  producer-consumer T/2 producers allocate N objects each (sizes A..B uniform) and hand them through
                    a --ring-slot ring to T/2 consumers that free them (T even)
  random-lifetimes  T threads, N steps: one object a step, size A..B and lifetime 1..W-1 steps,
                    both log-uniform
  realloc-growth    T threads, N buffers each, grown by realloc in A-byte steps to a size in [B/2, B]"
)]
pub struct RemoteArgs {
    /// Start from a named configuration; explicit flags below override its values
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// The traffic [default: the preset's, else remote]
    #[arg(long, value_enum)]
    pub workload: Option<Kind>,
    /// Threads (T) [default: the preset's, else 32]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: Option<u32>,
    /// Steps per thread (N): steps, replacements, objects or buffers, per workload
    #[arg(long)]
    pub iters: Option<u64>,
    /// Slots per thread (W): the live working set (remote, server-table); the longest lifetime + 1
    /// (random-lifetimes)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=(1 << 32)))]
    pub ws: Option<u64>,
    /// Smallest allocation size in bytes (A); the growth step for realloc-growth
    #[arg(long)]
    pub min: Option<u64>,
    /// Largest allocation size in bytes (B), at most 1 GiB
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=(1 << 30)))]
    pub max: Option<u64>,
    /// Percentage of frees sent to the next thread (P), remote only
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub remote_pct: Option<u32>,
    /// Slots in each ring (a power of two) [default: 65536; producer-consumer preset: 4096]
    #[arg(long)]
    pub ring: Option<u64>,
    /// Every thread does exactly N steps then drains its inbox: equal op counts for every allocator
    /// (remote only) [presets: true; `--matched=false` turns it off]
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub matched: Option<bool>,
    /// Write every byte of every allocated object (the default: the reference form)
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub touch: Option<bool>,
    /// Never write the objects (the form older results used; same as --touch=false)
    #[arg(long, visible_alias = "no-touch", conflicts_with = "touch")]
    pub untouched: bool,
    /// PRNG seed (each thread derives its own stream)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print one JSON object on stdout (the human line then goes to stderr)
    #[arg(long)]
    pub json: bool,
    /// Read the live bytes and the RSS every N ms for the report's memory figures (0: only at the
    /// start, when the threads finish and at the end)
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub sample_ms: u64,
}

impl RemoteArgs {
    /// The sampler's period, or None for no sampler thread.
    pub fn sample_period(&self) -> Option<std::time::Duration> {
        (self.sample_ms > 0).then(|| std::time::Duration::from_millis(self.sample_ms))
    }
}

impl RemoteArgs {
    /// Preset values, then explicit flags; without a preset the numbers default to the workload's
    /// own preset (remote-heavy-small for remote, with `matched` off: the flag's plain meaning).
    pub fn resolve(&self) -> Result<Config, String> {
        let kind = match (self.preset, self.workload) {
            (Some(p), Some(k)) if p.config().kind != k => {
                return Err(format!(
                    "--workload {} contradicts --preset {} (a {} preset): give one of them",
                    k.name(),
                    p.name(),
                    p.config().kind.name()
                ))
            }
            (Some(p), _) => p.config().kind,
            (None, k) => k.unwrap_or(Kind::Remote),
        };
        let base = match self.preset {
            Some(p) => p.config(),
            None => Config {
                matched: false,
                ..Preset::home(kind).config()
            },
        };
        self.refuse_unread_flags(kind)?;
        let cfg = Config {
            kind,
            threads: self.threads.map_or(base.threads, |v| v as usize),
            iters: self.iters.unwrap_or(base.iters),
            ws: self.ws.map_or(base.ws, |v| v as usize),
            min: self.min.map_or(base.min, |v| v as usize),
            max: self.max.map_or(base.max, |v| v as usize),
            remote_pct: self.remote_pct.unwrap_or(base.remote_pct),
            ring: self.ring.map_or(base.ring, |v| v as usize),
            matched: self.matched.unwrap_or(base.matched),
            touch: !self.untouched && self.touch.unwrap_or(base.touch),
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
        match kind {
            Kind::ProducerConsumer if cfg.threads < 2 || !cfg.threads.is_multiple_of(2) => Err(format!(
                "--threads ({}) must be even and at least 2 for producer-consumer (half produce, half consume)",
                cfg.threads
            )),
            Kind::RandomLifetimes if cfg.ws < 2 => Err(format!(
                "--ws ({}) must be at least 2 for random-lifetimes (lifetimes are 1..W-1 steps)",
                cfg.ws
            )),
            Kind::ReallocGrowth if cfg.min == 0 => {
                Err("--min (the growth step) must be at least 1 byte for realloc-growth".into())
            }
            _ => Ok(cfg),
        }
    }

    /// A flag the workload never reads would be silently ignored: refuse it instead.
    fn refuse_unread_flags(&self, kind: Kind) -> Result<(), String> {
        let given = [
            (
                "--ws",
                self.ws.is_some(),
                !matches!(kind, Kind::ProducerConsumer | Kind::ReallocGrowth),
            ),
            (
                "--remote-pct",
                self.remote_pct.is_some(),
                kind == Kind::Remote,
            ),
            ("--matched", self.matched.is_some(), kind == Kind::Remote),
            (
                "--ring",
                self.ring.is_some(),
                matches!(kind, Kind::Remote | Kind::ProducerConsumer),
            ),
        ];
        match given.iter().find(|(_, set, read)| *set && !*read) {
            Some((flag, _, _)) => Err(format!(
                "{flag} has no meaning for the {} workload (see `hz3-bench remote --help`)",
                kind.name()
            )),
            None => Ok(()),
        }
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
    fn every_preset_writes_its_objects_unless_untouched_is_asked_for() {
        for p in Preset::ALL {
            let c = parse_ok(&["--preset", p.name()]);
            assert!(c.touch, "{} must be touched by default", p.name());
            for flag in ["--untouched", "--no-touch", "--touch=false"] {
                assert!(!parse_ok(&["--preset", p.name(), flag]).touch, "{flag}");
            }
        }
        assert!(parse_ok(&[]).touch);
        let err = parse_err(&["--touch", "--untouched"]);
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn the_new_presets_pick_their_workload_and_numbers() {
        let c = parse_ok(&["--preset", "remote-heavy-small-t2"]);
        assert_eq!(
            (c.kind, c.threads, c.remote_pct, c.max),
            (Kind::Remote, 2, 50, 2048)
        );
        let c = parse_ok(&["--preset", "remote-heavy-small-t4"]);
        assert_eq!((c.kind, c.threads, c.remote_pct), (Kind::Remote, 4, 50));
        let c = parse_ok(&["--preset", "server-table"]);
        assert_eq!(
            (c.kind, c.threads, c.ws, c.min, c.max),
            (Kind::ServerTable, 8, 5000, 8, 1000)
        );
        let c = parse_ok(&["--preset", "producer-consumer"]);
        assert_eq!(
            (c.kind, c.threads, c.ring),
            (Kind::ProducerConsumer, 8, 4096)
        );
        let c = parse_ok(&["--preset", "random-lifetimes"]);
        assert_eq!((c.kind, c.min, c.max), (Kind::RandomLifetimes, 16, 16384));
        let c = parse_ok(&["--preset", "realloc-growth"]);
        assert_eq!((c.kind, c.min, c.max), (Kind::ReallocGrowth, 8192, 4 << 20));
        let c = parse_ok(&["--preset", "large-churn"]);
        assert_eq!(
            (c.kind, c.min, c.max, c.matched),
            (Kind::Remote, 64 << 10, 4 << 20, true)
        );
        // --workload alone takes its numbers from the workload's own preset.
        let c = parse_ok(&["--workload", "realloc-growth", "--iters", "3"]);
        assert_eq!((c.kind, c.min, c.iters), (Kind::ReallocGrowth, 8192, 3));
        assert_eq!(
            parse_ok(&["--preset", "server-table", "--workload", "server-table"]).kind,
            Kind::ServerTable
        );
    }

    #[test]
    fn the_run_alias_is_the_same_command() {
        let (_, c) = parse(["hz3-bench", "run", "--preset", "large-churn"]).unwrap();
        assert_eq!(c, Preset::LargeChurn.config());
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_arguments_are_clap_errors_with_exit_code_2() {
        let cases: [(&[&str], &str); 13] = [
            (
                &["--min", "64", "--max", "16"],
                "--min (64) must not exceed --max (16)",
            ),
            (&["--ws", "0"], "--ws"),
            (&["--threads", "0"], "--threads"),
            (&["--remote-pct", "101"], "--remote-pct"),
            (&["--ring", "1000"], "power of two"),
            (&["--preset", "nope"], "remote-heavy-small"),
            (&["--preset", "nope"], "realloc-growth"),
            (&["--iters", "ten"], "--iters"),
            (
                &["--preset", "producer-consumer", "--threads", "3"],
                "must be even",
            ),
            (
                &["--preset", "realloc-growth", "--min", "0"],
                "at least 1 byte",
            ),
            (
                &["--workload", "random-lifetimes", "--ws", "1"],
                "at least 2",
            ),
            (
                &["--preset", "server-table", "--remote-pct", "50"],
                "--remote-pct has no meaning for the server-table workload",
            ),
            (
                &["--preset", "local-small", "--workload", "realloc-growth"],
                "contradicts --preset local-small",
            ),
        ];
        for (args, needle) in cases {
            let err = parse_err(args);
            assert_eq!(err.exit_code(), 2, "{args:?}");
            let text = err.to_string();
            assert!(text.contains(needle), "{args:?}: {text}");
        }
    }
}
