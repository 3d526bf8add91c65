//! `--version`, `completions` and `man`: generated from the clap definition, naming every command.
mod perf_common;
use perf_common::*;

const COMMANDS: [&str; 12] = [
    "matrix",
    "probes",
    "record",
    "attribute",
    "gap",
    "host",
    "inject-check",
    "flame",
    "report",
    "completions",
    "man",
    "export",
];

#[test]
fn version_names_the_commit() {
    let out = analyze(&["--version"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out);
    assert!(
        line.starts_with(concat!("hz3-analyze ", env!("CARGO_PKG_VERSION"), " (")),
        "{line}"
    );
    let expected = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match expected {
        Some(hash) => assert!(
            line.contains(&format!("commit {hash}")),
            "{line} lacks {hash}"
        ),
        None => assert!(line.contains("unknown commit"), "{line}"),
    }
}

#[test]
fn completions_for_each_shell_name_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out = analyze(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for cmd in COMMANDS {
            assert!(script.contains(cmd), "{shell} completion lacks {cmd}");
        }
    }
    let out = analyze(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "an unknown shell is bad input");
    assert!(stderr(&out).contains("tcsh"), "{}", stderr(&out));
}

#[test]
fn bash_completion_is_valid_bash() {
    let Ok(check) = std::process::Command::new("bash")
        .arg("-n")
        .arg("/dev/stdin")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("bash not found: syntax check skipped");
        return;
    };
    let script = analyze(&["completions", "bash"]).stdout;
    let mut check = check;
    use std::io::Write;
    check.stdin.take().unwrap().write_all(&script).unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn man_page_to_stdout_and_one_per_command_into_a_directory() {
    let out = analyze(&["man"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.contains(".TH hz3-analyze 1"), "{page}");
    for cmd in COMMANDS {
        let see_also = format!("hz3\\-analyze\\-{}(1)", cmd.replace('-', "\\-"));
        assert!(page.contains(&see_also), "man page lacks {see_also}");
    }

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let out = analyze(&["man", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for cmd in COMMANDS {
        let page = out_dir.join(format!("hz3-analyze-{cmd}.1"));
        let text =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(
            text.starts_with(".ie") && text.contains(".TH"),
            "{}",
            page.display()
        );
    }
    assert!(out_dir.join("hz3-analyze.1").exists());

    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let out = analyze(&["man", "--out", blocker.join("sub").to_str().unwrap()]);
    assert!(
        !out.status.success(),
        "a directory under a file cannot be created"
    );
    assert!(
        stderr(&out).contains("hz3-analyze: error:"),
        "{}",
        stderr(&out)
    );
}
