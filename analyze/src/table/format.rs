//! The `--json` / `--csv` switches the perf subcommands share.
use anyhow::Result;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct Format {
    /// Print JSON instead of the table
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV (one line per row of the table) instead of the table
    #[arg(long)]
    pub csv: bool,
}

impl Format {
    /// Prints `value` as JSON, or the CSV `csv` makes, or the text `text` makes.
    pub fn print<T: serde::Serialize>(
        &self,
        value: &T,
        csv: impl FnOnce() -> Result<String>,
        text: impl FnOnce() -> String,
    ) -> Result<()> {
        if self.json {
            print!("{}", super::json::render(value)?);
        } else if self.csv {
            print!("{}", csv()?);
        } else {
            print!("{}", text());
        }
        Ok(())
    }
}
