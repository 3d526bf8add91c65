//! The command line: one clap-derived enum, dispatching to the subcommand modules, whose clap
//! `Args` convert into the typed options their library functions take (no library module
//! imports this one).
use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod docs;

const EXAMPLES: &str = "\
Examples:
  hz3-analyze matrix --quick                      # every allocator on the remote-heavy-small preset
  hz3-analyze matrix --preset local-small --csv m.csv --svg m.svg
  hz3-analyze probes run/probes.json --per-op 1000000
  hz3-analyze record --alloc hz3_scale -- --preset remote-heavy-small
  hz3-analyze gap runs/tcmalloc runs/hz3_scale
  hz3-analyze host                                # this machine's price of a line, a page walk, a fault
  hz3-analyze report --quick                      # the whole gap report into report/
  hz3-analyze completions bash > /etc/bash_completion.d/hz3-analyze
  hz3-analyze export runs/hz3_scale --format pprof -o hz3_scale.pb.gz
Exit status: 0 ok, 2 bad input (flags, bench arguments, a mismatched --compare file), 3 the matrix
guard found a regression, 1 any other failure.";

/// `--version`: the crate version and the commit it was built from (build.rs; "unknown commit"
/// outside a git tree, e.g. a crates.io install).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("HZ3_ANALYZE_COMMIT"),
    ")"
);

#[derive(Parser, Debug)]
#[command(name = "hz3-analyze", version = VERSION, about = "Explain why one allocator beats another: matrix, perf attribution to boxes, flamegraphs", after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
// Parsed once per process: the size of the largest subcommand's arguments costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Interleaved benchmark matrix of allocators (medians, spread, RSS, ratios)
    Matrix(crate::matrix::Args),
    /// Print an hz3 probes dump as a table, per op, or as a difference of two runs
    Probes(crate::probes_cmd::Args),
    /// Run hz3-bench under perf record with one allocator preloaded
    Record(crate::record::Args),
    /// Attribute a recorded run's samples to named boxes
    Attribute(crate::attribute::Args),
    /// Per-box ns/op difference between two recorded runs, with the residual
    Gap(crate::gap::Args),
    /// The machine's prices: a cache line between cores, a page walk, a page fault
    Host(crate::host::Args),
    /// Check gap against a delay injected into one hz3 box (inject-* builds)
    InjectCheck(crate::inject_check::Args),
    /// Flamegraph of a run, or a differential flamegraph of two runs
    Flame(crate::flame::Args),
    /// The main job: matrix + record + attribute + gap + flamegraphs into report/
    Report(crate::report::Args),
    /// Shell completion script for bash, zsh, fish, elvish or powershell, to stdout
    Completions(docs::CompletionArgs),
    /// Manual page (roff) to stdout, or one page per command into a directory
    Man(docs::ManArgs),
    /// A recorded run as pprof (profile.proto), folded stacks rooted at their box, or JSON
    Export(crate::export::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Matrix(a) => crate::matrix::run(a),
        Command::Probes(a) => crate::probes_cmd::run(a),
        Command::Record(a) => crate::record::run(a),
        Command::Attribute(a) => crate::attribute::run(a),
        Command::Gap(a) => crate::gap::run(a),
        Command::Host(a) => crate::host::run(a),
        Command::InjectCheck(a) => crate::inject_check::run(a),
        Command::Flame(a) => crate::flame::run(a),
        Command::Report(a) => crate::report::run(a),
        Command::Completions(a) => docs::completions(a),
        Command::Man(a) => docs::man(a),
        Command::Export(a) => crate::export::run(a),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
