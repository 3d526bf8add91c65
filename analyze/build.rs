//! Names the commit `hz3-analyze --version` was built from: `git rev-parse --short HEAD` (with
//! `-dirty` when tracked files differ), or "unknown commit" outside a git tree (a crates.io
//! install, a source tarball) or without git.
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status.success().then(|| text.trim().to_owned())
}

fn main() {
    let commit = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) if !hash.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!("commit {hash}{}", if dirty { "-dirty" } else { "" })
        }
        _ => "unknown commit".to_owned(),
    };
    println!("cargo:rustc-env=HZ3_ANALYZE_COMMIT={commit}");
    // Rebuild when HEAD moves (a commit, a checkout) or the index changes (dirtiness). Only files
    // that exist: cargo reruns the script on every build for a missing one (a packed branch ref).
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for path in ["HEAD", "index"].into_iter().chain(branch.as_deref()) {
        if let Some(p) = git(&["rev-parse", "--git-path", path]) {
            if std::path::Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
