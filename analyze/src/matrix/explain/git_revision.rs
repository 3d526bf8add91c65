//! The revision a baseline JSON was committed at, asked of git, for the printed rebuild command.
use std::path::Path;

/// The revision a tracked baseline JSON was last committed at, if git knows it.
pub(super) fn baseline_revision(compare: &Path) -> Option<String> {
    let dir = compare.parent().filter(|d| !d.as_os_str().is_empty());
    let out = std::process::Command::new("git")
        .args(["-C", &dir.unwrap_or(Path::new(".")).display().to_string()])
        .args(["log", "-1", "--format=%h", "--"])
        .arg(compare.file_name()?)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let rev = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !rev.is_empty()).then_some(rev)
}
