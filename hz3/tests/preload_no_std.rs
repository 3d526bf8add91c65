//! Every `libhz3_*.so` in the preload directory carries nothing of std's panic runtime: no unwinder,
//! no backtrace symbolizer (gimli, addr2line, miniz_oxide), no libgcc_s dependency, and no
//! panicking call on an allocation path. A panic inside malloc would otherwise run std's hook (which
//! formats and allocates, maybe with a pool lock held); hz3's own handler writes one line and aborts.
//! Only the probes builds' dump writer (run at exit or on request, never inside malloc) keeps
//! bounds-checked slicing.

mod common;

use common::preload_lib;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The preload libraries present (stale leftovers included: they are what a user would preload).
fn libraries() -> Vec<PathBuf> {
    // preload_lib asserts the shipped plain build exists and names the directory.
    let dir = preload_lib("fast")
        .parent()
        .expect("preload dir")
        .to_path_buf();
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("libhz3_") && name.ends_with(".so")
        })
        .collect();
    libs.sort();
    assert!(!libs.is_empty(), "no libhz3_*.so in {}", dir.display());
    libs
}

fn tool(program: &str, args: &[&str], lib: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .arg(lib)
        .output()
        .unwrap_or_else(|e| panic!("run {program} (binutils): {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        lib.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 tool output")
}

fn is_probes_build(lib: &Path) -> bool {
    lib.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains("_probes"))
}

#[test]
fn no_std_runtime_or_libgcc_in_any_library() {
    for lib in libraries() {
        let needed = tool("readelf", &["-d", "-W"], &lib);
        let needs: Vec<&str> = needed.lines().filter(|l| l.contains("(NEEDED)")).collect();
        assert!(
            !needs.is_empty(),
            "{}: no NEEDED entries?\n{needed}",
            lib.display()
        );
        assert!(
            needs
                .iter()
                .all(|l| !l.contains("libgcc_s") && !l.contains("libstd")),
            "{} needs {needs:?} (rebuild with scripts/build-preload if stale)",
            lib.display()
        );
        let symbols = tool("nm", &["--demangle"], &lib);
        assert!(
            symbols.contains("hz3"),
            "{}: no hz3 symbols (stripped?)",
            lib.display()
        );
        let banned = [
            "gimli",
            "addr2line",
            "miniz",
            "backtrace",
            "std::",
            "_Unwind_",
            "rust_eh_personality",
        ];
        let found: Vec<&str> = symbols
            .lines()
            .filter(|l| banned.iter().any(|b| l.contains(b)))
            .collect();
        assert!(
            found.is_empty(),
            "{} holds std's panic/unwind machinery: {found:?} (rebuild with scripts/build-preload if stale)",
            lib.display()
        );
    }
}

/// Functions calling into core's panic entry points, by caller name.
fn panicking_callers(lib: &Path) -> Vec<String> {
    let asm = tool("objdump", &["-d", "--no-show-raw-insn", "--demangle"], lib);
    let mut current = String::new();
    let mut callers = Vec::new();
    for line in asm.lines() {
        if let Some(name) = line
            .strip_suffix(">:")
            .and_then(|l| l.split_once(" <"))
            .map(|(_, n)| n)
        {
            current = name.to_string();
            continue;
        }
        let is_call = line.contains("\tcall") || line.contains("\tjmp");
        let to_panic = [
            "core::panicking::",
            "slice_index_fail",
            "panic_bounds_check",
        ]
        .iter()
        .any(|p| line.contains(p));
        let inside_core =
            current.starts_with("core::panicking::") || current.starts_with("core::slice::index::");
        if is_call && to_panic && !inside_core && !callers.contains(&current) {
            callers.push(current.clone());
        }
    }
    callers
}

#[test]
fn allocation_paths_have_no_panicking_call() {
    for lib in libraries() {
        let callers = panicking_callers(&lib);
        let allowed = |f: &String| is_probes_build(&lib) && f.contains("probes::");
        let bad: Vec<&String> = callers.iter().filter(|f| !allowed(f)).collect();
        assert!(
            bad.is_empty(),
            "{}: functions that may panic: {bad:?} (all callers: {callers:?})",
            lib.display()
        );
    }
}

#[test]
fn the_checks_can_see_a_std_library() {
    // The same filters find std's machinery in a Rust cdylib that links std, so an empty result
    // above means "absent", not "the filters no longer match". The ceiling allocator links std.
    let dir = preload_lib("fast")
        .parent()
        .expect("preload dir")
        .to_path_buf();
    let ceiling = dir.join("libceiling.so");
    assert!(
        ceiling.is_file(),
        "{} is missing: run scripts/build-ceiling (scripts/test does it)",
        ceiling.display()
    );
    let symbols = tool("nm", &["--demangle"], &ceiling);
    assert!(
        symbols.lines().any(|l| l.contains("std::")),
        "{}",
        ceiling.display()
    );
    let needed = tool("readelf", &["-d", "-W"], &ceiling);
    assert!(needed.contains("libgcc_s"), "{}", ceiling.display());
    assert!(
        !panicking_callers(&ceiling).is_empty(),
        "{}",
        ceiling.display()
    );
}
