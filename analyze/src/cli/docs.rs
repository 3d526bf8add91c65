//! `completions SHELL` and `man`: shell completion scripts and roff manual pages, generated from the
//! clap definition in `cli.rs` so they never drift from `--help`.
use anyhow::{Context, Result};
use clap::CommandFactory;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

const COMPLETION_EXAMPLES: &str = "\
Examples:
  hz3-analyze completions bash > ~/.local/share/bash-completion/completions/hz3-analyze
  hz3-analyze completions zsh  > ~/.zfunc/_hz3-analyze      # with fpath+=~/.zfunc before compinit
  hz3-analyze completions fish > ~/.config/fish/completions/hz3-analyze.fish";

const MAN_EXAMPLES: &str = "\
Examples:
  hz3-analyze man | man -l -                     # read the top-level page now
  hz3-analyze man --out /usr/local/share/man/man1  # hz3-analyze.1 and hz3-analyze-<command>.1";

#[derive(clap::Args, Debug)]
#[command(after_help = COMPLETION_EXAMPLES)]
pub struct CompletionArgs {
    /// The shell to write a completion script for (to stdout)
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
#[command(after_help = MAN_EXAMPLES)]
pub struct ManArgs {
    /// Write one page per command (hz3-analyze.1, hz3-analyze-<command>.1) into DIR instead of the
    /// top-level page to stdout
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn completions(args: CompletionArgs) -> Result<ExitCode> {
    let mut cmd = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "hz3-analyze", &mut script);
    write_stdout(&script)
}

pub fn man(args: ManArgs) -> Result<ExitCode> {
    let cmd = super::Cli::command();
    match args.out {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            write_stdout(&page)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
