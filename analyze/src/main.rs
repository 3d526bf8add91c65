//! Thin binary over the `analyze` library: parse arguments, run one subcommand, print one error line.
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = analyze::cli::Cli::parse();
    match analyze::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hz3-analyze: error: {err:#}");
            ExitCode::from(1)
        }
    }
}
