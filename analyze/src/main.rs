//! Thin binary over the `analyze` library: parse arguments, run one subcommand, print one error line.
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // `hz3-analyze attribute --json | head` closes the pipe early: end quietly as other Unix tools
    // do, instead of panicking inside println!.
    // SAFETY: called before any thread starts; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = analyze::cli::Cli::parse();
    match analyze::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("hz3-analyze: error: {err:#}");
            ExitCode::from(1)
        }
    }
}
