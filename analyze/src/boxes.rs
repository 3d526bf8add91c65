//! The box rules `attribute`, `gap` and `flame` use: the built-in defaults (`analyze/boxes/default.toml`)
//! and an optional `--boxes FILE` in front of them.
use anyhow::{Context, Result};
use flamegraphs::Rules;
use std::path::Path;

pub const DEFAULT_RULES: &str = include_str!("../boxes/default.toml");

pub fn defaults() -> Rules {
    // The defaults are part of this binary and covered by a test, so failing here is a build bug.
    Rules::parse(DEFAULT_RULES, "built-in box rules")
        .map(|(r, _)| r)
        .expect("built-in box rules parse")
}

/// The rules for `--boxes FILE` (or the defaults without one).
pub fn load(file: Option<&Path>) -> Result<Rules> {
    let user = match file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read box rules", path.display()))?;
            Some(Rules::parse(&text, &path.display().to_string())?)
        }
    };
    Ok(Rules::layered(user, defaults()))
}
