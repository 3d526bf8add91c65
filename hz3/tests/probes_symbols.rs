//! The probes feature is all or nothing in the shipped libraries: the plain `.so` files export no
//! probe entry point and hold no counter storage; the probes builds export both C entry points.

mod common;

use common::{preload_lib, LANES};
use std::process::Command;

/// `nm` output for `lib` (`dynamic`: the exported table only; else every symbol, demangled).
fn symbols(lib: &std::path::Path, dynamic: bool) -> String {
    let mut cmd = Command::new("nm");
    if dynamic {
        cmd.args(["-D", "--defined-only"]);
    } else {
        cmd.args(["--defined-only", "--demangle"]);
    }
    let out = cmd.arg(lib).output().expect("run nm (binutils)");
    assert!(
        out.status.success(),
        "nm {}: {}",
        lib.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn names(table: &str) -> Vec<&str> {
    table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect()
}

#[test]
fn plain_libraries_have_no_probe_symbol() {
    for lane in LANES {
        let lib = preload_lib(lane);
        let exported = symbols(&lib, true);
        assert!(
            names(&exported).contains(&"hz3_lane"),
            "{lane}: not an hz3 library?\n{exported}"
        );
        let leaks: Vec<_> = names(&exported)
            .into_iter()
            .filter(|n| n.contains("probes"))
            .collect();
        assert!(leaks.is_empty(), "{lane}: plain build exports {leaks:?}");
        // No counter storage either: nothing of the probes glue or the dump writer survives.
        let all = symbols(&lib, false);
        let storage: Vec<_> = all
            .lines()
            .filter(|l| l.contains("hz3::probes::") || l.contains("probes::dump::"))
            .collect();
        assert!(
            storage.is_empty(),
            "{lane}: plain build holds probe symbols {storage:?}"
        );
    }
}

#[test]
fn probes_libraries_export_dump_and_reset() {
    for lane in LANES {
        let lib = preload_lib(&format!("{lane}_probes"));
        let exported = symbols(&lib, true);
        let names = names(&exported);
        for want in ["hz3_lane", "hz3_probes_dump", "hz3_probes_reset"] {
            assert!(names.contains(&want), "{lane}: probes build lacks {want}");
        }
        // The same filter that finds nothing in the plain build finds the counters here, so an
        // empty result there means "compiled out", not "the filter no longer matches".
        let all = symbols(&lib, false);
        assert!(
            all.lines().any(|l| l.contains("hz3::probes::")),
            "{lane}: no counter symbols in the probes build"
        );
    }
}
