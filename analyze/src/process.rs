//! Executables and command lines: where this executable, hz3-bench and a program's argv[0] are;
//! a command with an allocator preloaded exactly; a command line written so a POSIX shell reads
//! it back as the same words.
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// This executable. target/ is shared, so a concurrent build may replace the file while a
/// command runs: Linux then names the old one `PATH (deleted)`, and the new file at PATH is what
/// can still be started (perf starts it as record's counting helper).
pub fn own_executable() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    let text = exe.display().to_string();
    match text.strip_suffix(" (deleted)") {
        Some(path) if Path::new(path).is_file() => Ok(PathBuf::from(path)),
        _ => Ok(exe),
    }
}

/// The profile directory of the running executable (`target/<profile>/`), also for a test binary
/// that lives in `target/<profile>/deps/`.
pub fn own_profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    let mut dir = exe
        .parent()
        .context("the executable has no parent directory")?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().context("deps/ has no parent")?;
    }
    Ok(dir.to_path_buf())
}

/// `hz3-bench` from the same target directory as the running executable, or `explicit`.
pub fn locate_bench(explicit: Option<&Path>) -> Result<PathBuf> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => own_profile_dir()?.join("hz3-bench"),
    };
    if !path.is_file() {
        bail!(
            "hz3-bench not found at {}: build it with `cargo build --release -p hz3-bench` (same profile as hz3-analyze) or pass --bench PATH",
            path.display()
        );
    }
    Ok(path)
}

/// The executable a `--program`'s `argv0` names: a path as given, a bare name searched on PATH.
pub fn locate(argv0: &str) -> Result<PathBuf> {
    let is_exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.is_file()
            && std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
    };
    if argv0.contains('/') {
        let p = PathBuf::from(argv0);
        if !is_exec(&p) {
            bail!("--program: {argv0}: no such executable file");
        }
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(argv0))
        .find(|p| is_exec(p))
        .with_context(|| format!("--program: `{argv0}` not found on PATH"))
}

/// `program args` with `LD_PRELOAD` set exactly to `preload` (an inherited one removed, none
/// for glibc), so the bench and a `--program` run under the same allocator.
pub fn preloaded(program: &Path, args: &[String], preload: Option<&Path>) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).env_remove("LD_PRELOAD");
    if let Some(lib) = preload {
        cmd.env("LD_PRELOAD", lib);
    }
    cmd
}

/// A command line a POSIX shell reads back as the same words.
pub fn shell_line(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(shell_word)
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A path as the user would type it from the current directory.
pub fn relative_to_cwd(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_quote_only_what_a_shell_would_split_or_expand() {
        let line = shell_line(
            "hz3-analyze",
            &[
                "gap".into(),
                "a b".into(),
                "it's".into(),
                "".into(),
                "x=1,2".into(),
            ],
        );
        assert_eq!(line, r"hz3-analyze gap 'a b' 'it'\''s' '' x=1,2");
    }

    #[test]
    fn locates_on_path_or_says_not_found() {
        assert!(locate("sh").unwrap().is_absolute());
        let err = locate("no-such-program-hz3").unwrap_err().to_string();
        assert!(err.contains("not found on PATH"), "{err}");
        assert!(locate("/bin/sh").is_ok());
        assert!(locate("/nonexistent/x").is_err());
    }

    #[test]
    fn preload_is_set_exactly() {
        let lib = Path::new("/nonexistent/libx.so");
        let cmd = preloaded(Path::new("/bin/true"), &[], Some(lib));
        let env: Vec<_> = cmd.get_envs().collect();
        assert!(env.contains(&(
            std::ffi::OsStr::new("LD_PRELOAD"),
            Some(std::ffi::OsStr::new("/nonexistent/libx.so"))
        )));
        let cmd = preloaded(Path::new("/bin/true"), &[], None);
        assert!(
            cmd.get_envs()
                .any(|(k, v)| k == "LD_PRELOAD" && v.is_none()),
            "an inherited LD_PRELOAD must be removed"
        );
    }
}
