//! Allocator names → the `.so` to preload: the anchors (glibc, Debian's packages, and the builds
//! `scripts/build-anchors` makes from the sources the -sys crates vendor), the bench's `ceiling`,
//! every hz3 build under `target/preload/`, and explicit `NAME=PATH` specs. Shared by every
//! subcommand that runs the bench under an allocator.
//!
//! `jemalloc`, `mimalloc` and `snmalloc` mean the from-source builds in `target/anchors/` (with
//! symbols, so the box rules see their internals); `jemalloc-debian` and `mimalloc-debian` are the
//! Debian packages users install (stripped). Until `scripts/build-anchors` has run, `jemalloc` and
//! `mimalloc` fall back to Debian's, and each row's [`Allocator::build`] says which one it was.
//! `tcmalloc` is Debian's gperftools: Google's per-CPU tcmalloc builds only with Bazel.
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// An allocator hz3 is measured against.
#[derive(Clone, Copy, Debug)]
pub struct Anchor {
    pub name: &'static str,
    /// Debian's library (None: glibc's own malloc, or an anchor Debian does not ship).
    pub path: Option<&'static str>,
    /// The Debian package that ships `path` ("" when Debian ships none).
    pub package: &'static str,
    /// The from-source build under `target/anchors/` this name means once it exists.
    pub built: Option<&'static str>,
}

const DEBIAN_JEMALLOC: &str = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";
const DEBIAN_MIMALLOC: &str = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";

pub const ANCHORS: [Anchor; 7] = [
    Anchor {
        name: "glibc",
        path: None,
        package: "libc6",
        built: None,
    },
    Anchor {
        name: "tcmalloc",
        path: Some("/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4"),
        package: "libgoogle-perftools4",
        built: None,
    },
    Anchor {
        name: "jemalloc",
        path: Some(DEBIAN_JEMALLOC),
        package: "libjemalloc2",
        built: Some("libjemalloc.so"),
    },
    Anchor {
        name: "mimalloc",
        path: Some(DEBIAN_MIMALLOC),
        package: "libmimalloc2.0",
        built: Some("libmimalloc.so"),
    },
    Anchor {
        name: "snmalloc",
        path: None,
        package: "",
        built: Some("libsnmalloc.so"),
    },
    Anchor {
        name: "jemalloc-debian",
        path: Some(DEBIAN_JEMALLOC),
        package: "libjemalloc2",
        built: None,
    },
    Anchor {
        name: "mimalloc-debian",
        path: Some(DEBIAN_MIMALLOC),
        package: "libmimalloc2.0",
        built: None,
    },
];

/// The anchors a matrix measures by default (the `-debian` packages only when asked for).
const DEFAULT_ANCHORS: [&str; 5] = ["glibc", "tcmalloc", "jemalloc", "mimalloc", "snmalloc"];

/// The anchor an `--alloc` value or a matrix row names, if any (`tcmalloc`, or `tcmalloc=/path`).
pub fn anchor_name(spec: &str) -> Option<&'static str> {
    let name = spec.split_once('=').map_or(spec, |(n, _)| n);
    ANCHORS.iter().map(|a| a.name).find(|a| *a == name)
}

/// Where `scripts/build-anchors` puts its libraries: `target/anchors/`, beside `target/preload/`.
pub fn anchors_dir(preload_dir: &Path) -> PathBuf {
    preload_dir
        .parent()
        .unwrap_or(Path::new("target"))
        .join("anchors")
}

/// The name a row of an older matrix JSON has today: rows named `jemalloc` or `mimalloc` that
/// preloaded Debian's library (every baseline written before the from-source anchors) are
/// `jemalloc-debian` / `mimalloc-debian` now.
pub fn current_row_name(name: &str, preload: Option<&str>) -> String {
    match ANCHORS.iter().find(|a| a.name == name) {
        Some(a) if a.built.is_some() && a.path.is_some() && preload == a.path => {
            format!("{name}-debian")
        }
        _ => name.to_owned(),
    }
}

pub const CEILING: &str = "ceiling";
const CEILING_FILE: &str = "libceiling.so";

/// One allocator to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocator {
    pub name: String,
    /// What to put in `LD_PRELOAD`; None runs the process's own malloc (glibc).
    pub preload: Option<PathBuf>,
}

impl Allocator {
    /// The `allocator` field `hz3-bench` must report when this allocator answers, as a predicate
    /// (hz3 reports "hz3-<lane>"); None when the name says nothing checkable (a custom NAME=PATH).
    pub fn identity_matches(&self, reported: &str) -> Option<bool> {
        let family = expected_family(&self.name)?;
        Some(if family == "hz3" {
            reported.starts_with("hz3-")
        } else {
            reported == family
        })
    }

    /// Which build this is, in words: `jemalloc 5.3.1 from source (crate …)` (the line
    /// scripts/build-anchors wrote beside the library), `Debian libjemalloc2 5.3.0-1`, `hz3 from
    /// this tree`, or the path of a custom library.
    pub fn build(&self) -> String {
        let Some(path) = &self.preload else {
            return debian_build("libc6", "glibc's malloc");
        };
        let sidecar = PathBuf::from(format!("{}.build", path.display()));
        if let Ok(line) = std::fs::read_to_string(&sidecar) {
            return line.trim().to_owned();
        }
        if let Some(a) = ANCHORS
            .iter()
            .find(|a| a.path.is_some_and(|p| Path::new(p) == path))
        {
            return debian_build(a.package, &a.name.replace("-debian", ""));
        }
        let file = path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        if self.name.starts_with("hz3") || self.name == CEILING {
            format!("{file} built from this tree")
        } else {
            format!("custom library {}", path.display())
        }
    }

    /// The `.so` as `LD_PRELOAD` should see it, or an empty string for none.
    pub fn preload_env(&self) -> String {
        self.preload
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }
}

fn expected_family(name: &str) -> Option<&'static str> {
    if name.starts_with("hz3") {
        return Some("hz3");
    }
    let name = name.strip_suffix("-debian").unwrap_or(name);
    [
        "glibc", "tcmalloc", "jemalloc", "mimalloc", "snmalloc", CEILING,
    ]
    .into_iter()
    .find(|f| name == *f)
}

/// `target/preload/` of the build that produced the running executable.
pub fn default_preload_dir() -> Result<PathBuf> {
    let profile = crate::process::own_profile_dir()?;
    let target = profile
        .parent()
        .context("the profile directory has no parent")?;
    Ok(target.join("preload"))
}

/// Every `libhz3_*.so` under `dir` as `hz3_*`, sorted; the probes, fail-fast, injected-delay
/// (`_inject`, scripts/validate-attribution) and portable-fallbacks (`_portable`, a test build of
/// what other architectures run) builds are left out (they are not what a comparison should
/// measure) unless `with_instrumented`.
pub fn hz3_builds(dir: &Path, with_instrumented: bool) -> Result<Vec<Allocator>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let Some(name) = file.strip_prefix("lib").and_then(|f| f.strip_suffix(".so")) else {
            continue;
        };
        if !name.starts_with("hz3_") {
            continue;
        }
        if !with_instrumented
            && ["_probes", "_failfast", "_inject", "_portable"]
                .iter()
                .any(|tag| name.contains(tag))
        {
            continue;
        }
        found.push(Allocator {
            name: name.to_owned(),
            preload: Some(path),
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// `NAME (Debian PACKAGE VERSION)`, the version as dpkg knows it (left out when dpkg cannot say).
fn debian_build(package: &str, what: &str) -> String {
    let version = std::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|v| !v.is_empty());
    match version {
        Some(v) => format!("{what} from Debian's {package} {v}"),
        None => format!("{what} from Debian's {package}"),
    }
}

/// One line per allocator saying which build it is, for the end of a matrix table.
pub fn builds_legend(allocs: &[Allocator]) -> String {
    let width = allocs.iter().map(|a| a.name.len()).max().unwrap_or(0);
    let mut out = String::from("builds:\n");
    for a in allocs {
        out += &format!("  {:width$}  {}\n", a.name, a.build());
    }
    out
}

/// The default set: the default anchors (snmalloc only once built: it has no Debian package),
/// every (uninstrumented) hz3 build, then the ceiling.
pub fn default_set(preload_dir: &Path) -> Result<Vec<Allocator>> {
    let mut set = Vec::new();
    for name in DEFAULT_ANCHORS {
        match resolve(name, preload_dir) {
            Ok(a) => set.push(a),
            Err(e) if name == "snmalloc" => eprintln!("hz3-analyze: left out: {e}"),
            Err(e) => return Err(e),
        }
    }
    set.extend(hz3_builds(preload_dir, false)?);
    set.push(resolve(CEILING, preload_dir)?);
    Ok(set)
}

/// One `--alloc` value: `NAME=PATH`, or a bare name (an anchor, `ceiling`, or `hz3_X` meaning
/// `<preload_dir>/libhz3_X.so`). Every path is checked to exist, with the fix in the error.
pub fn resolve(spec: &str, preload_dir: &Path) -> Result<Allocator> {
    if let Some((name, path)) = spec.split_once('=') {
        if name.is_empty() || path.is_empty() {
            bail!("--alloc {spec:?}: expected NAME=PATH.so with both parts non-empty");
        }
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("--alloc {name}: {} does not exist", path.display());
        }
        return Ok(Allocator {
            name: name.to_owned(),
            preload: Some(path),
        });
    }
    if let Some(anchor) = ANCHORS.iter().find(|a| a.name == spec) {
        if let Some(file) = anchor.built {
            let built = anchors_dir(preload_dir).join(file);
            if built.is_file() {
                return Ok(Allocator {
                    name: spec.to_owned(),
                    preload: Some(built),
                });
            }
            if anchor.path.is_none() {
                bail!(
                    "{}: {} is missing (run scripts/build-anchors)",
                    anchor.name,
                    built.display()
                );
            }
        }
        let preload = anchor.path.map(PathBuf::from);
        if let Some(path) = &preload {
            if !path.is_file() {
                bail!(
                    "{}: {} is missing (apt-get install {})",
                    anchor.name,
                    path.display(),
                    anchor.package
                );
            }
        }
        return Ok(Allocator {
            name: spec.to_owned(),
            preload,
        });
    }
    let (file, fix) = if spec == CEILING {
        (CEILING_FILE.to_owned(), "scripts/build-ceiling")
    } else if spec.starts_with("hz3_") {
        (format!("lib{spec}.so"), "scripts/build-preload")
    } else {
        bail!(
            "unknown allocator {spec:?}: use {}, ceiling, hz3_<build>, or NAME=PATH.so",
            ANCHORS.map(|a| a.name).join(", ")
        );
    };
    let path = preload_dir.join(file);
    if !path.is_file() {
        bail!("{spec}: {} is missing (run {fix})", path.display());
    }
    Ok(Allocator {
        name: spec.to_owned(),
        preload: Some(path),
    })
}

/// Private copies of the bench and of every preload library, taken when a matrix starts: a long
/// matrix must not mix two builds in one row when someone rebuilds `target/` meanwhile. The copies
/// are removed when this is dropped.
pub struct Snapshot {
    dir: PathBuf,
    pub bench: PathBuf,
    /// The allocators in the same order, with `preload` pointing at the copies.
    pub allocators: Vec<Allocator>,
}

impl Snapshot {
    pub fn take(bench: &Path, allocators: &[Allocator]) -> Result<Snapshot> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("hz3-matrix-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // From here on, an error drops the snapshot and so removes the directory.
        let mut snapshot = Snapshot {
            dir,
            bench: PathBuf::new(),
            allocators: Vec::new(),
        };
        snapshot.bench = snapshot.copy(bench, "hz3-bench")?;
        for (i, a) in allocators.iter().enumerate() {
            let preload = match &a.preload {
                Some(p) => {
                    let file = p
                        .file_name()
                        .map_or_else(|| "lib.so".into(), |f| f.to_string_lossy().into_owned());
                    Some(snapshot.copy(p, &format!("{i}-{file}"))?)
                }
                None => None,
            };
            snapshot.allocators.push(Allocator {
                name: a.name.clone(),
                preload,
            });
        }
        Ok(snapshot)
    }

    fn copy(&self, from: &Path, name: &str) -> Result<PathBuf> {
        let to = self.dir.join(name);
        std::fs::copy(from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        Ok(to)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_resolve_or_name_the_missing_path_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "libhz3_scale.so",
            "libhz3_fast.so",
            "libhz3_scale_probes.so",
            "libhz3_fast_failfast.so",
            "libhz3_scale_inject-central-pop.so",
            "libhz3_fast_portable.so",
            "libceiling.so",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        let names: Vec<_> = hz3_builds(dir.path(), false)
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["hz3_fast", "hz3_scale"]);
        assert_eq!(hz3_builds(dir.path(), true).unwrap().len(), 6);

        let probes = resolve("hz3_scale_probes", dir.path()).unwrap();
        assert_eq!(
            probes.preload.unwrap(),
            dir.path().join("libhz3_scale_probes.so")
        );
        assert_eq!(resolve("glibc", dir.path()).unwrap().preload, None);

        let err = resolve("hz3_nope", dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("libhz3_nope.so is missing (run scripts/build-preload)"),
            "{err}"
        );
        let empty = tempfile::tempdir().unwrap();
        let err = resolve("ceiling", empty.path()).unwrap_err().to_string();
        assert!(
            err.contains("libceiling.so is missing (run scripts/build-ceiling)"),
            "{err}"
        );
        let err = resolve("x=/no/such.so", dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/no/such.so does not exist"), "{err}");
        assert!(resolve("=a.so", dir.path()).is_err());
        assert!(resolve("bogus", dir.path())
            .unwrap_err()
            .to_string()
            .contains("unknown allocator"));

        let custom = resolve(
            &format!("mine={}", dir.path().join("notes.txt").display()),
            dir.path(),
        )
        .unwrap();
        assert_eq!(custom.name, "mine");
        assert_eq!(custom.identity_matches("glibc"), None);
    }

    #[test]
    fn from_source_anchors_win_once_built_and_say_which_build_they_are() {
        let target = tempfile::tempdir().unwrap();
        let preload = target.path().join("preload");
        std::fs::create_dir_all(&preload).unwrap();
        std::fs::write(preload.join(CEILING_FILE), b"").unwrap();
        let err = resolve("snmalloc", &preload).unwrap_err().to_string();
        assert!(
            err.contains("libsnmalloc.so is missing (run scripts/build-anchors)"),
            "{err}"
        );
        // Not built yet: snmalloc is left out of the default set, the rest stays.
        assert!(!default_set(&preload)
            .unwrap()
            .iter()
            .any(|a| a.name == "snmalloc"));

        let anchors = anchors_dir(&preload);
        std::fs::create_dir_all(&anchors).unwrap();
        for lib in ["libsnmalloc.so", "libjemalloc.so"] {
            std::fs::write(anchors.join(lib), b"").unwrap();
        }
        std::fs::write(
            anchors.join("libjemalloc.so.build"),
            "jemalloc 5.3.1 from source (test)\n",
        )
        .unwrap();
        let je = resolve("jemalloc", &preload).unwrap();
        assert_eq!(
            je.preload.as_deref(),
            Some(&*anchors.join("libjemalloc.so"))
        );
        assert_eq!(je.build(), "jemalloc 5.3.1 from source (test)");
        assert!(default_set(&preload)
            .unwrap()
            .iter()
            .any(|a| a.name == "snmalloc"));
        assert!(!default_set(&preload)
            .unwrap()
            .iter()
            .any(|a| a.name.ends_with("-debian")));
        // The Debian package keeps its own name (when installed).
        if Path::new(DEBIAN_JEMALLOC).is_file() {
            let deb = resolve("jemalloc-debian", &preload).unwrap();
            assert_eq!(deb.preload.as_deref(), Some(Path::new(DEBIAN_JEMALLOC)));
            assert!(
                deb.build().contains("Debian's libjemalloc2"),
                "{}",
                deb.build()
            );
            // mimalloc is not built here: it falls back to Debian's, and says so.
            if Path::new(DEBIAN_MIMALLOC).is_file() {
                let mi = resolve("mimalloc", &preload).unwrap();
                assert!(
                    mi.build().contains("Debian's libmimalloc2.0"),
                    "{}",
                    mi.build()
                );
            }
        }
        let custom = Allocator {
            name: "mine".into(),
            preload: Some("/opt/libmine.so".into()),
        };
        assert_eq!(custom.build(), "custom library /opt/libmine.so");
    }

    #[test]
    fn old_baseline_rows_of_debian_builds_get_their_debian_name() {
        assert_eq!(
            current_row_name("jemalloc", Some(DEBIAN_JEMALLOC)),
            "jemalloc-debian"
        );
        assert_eq!(
            current_row_name("mimalloc", Some(DEBIAN_MIMALLOC)),
            "mimalloc-debian"
        );
        assert_eq!(
            current_row_name("jemalloc", Some("/x/target/anchors/libjemalloc.so")),
            "jemalloc"
        );
        assert_eq!(
            current_row_name(
                "tcmalloc",
                Some("/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4")
            ),
            "tcmalloc"
        );
        assert_eq!(current_row_name("glibc", None), "glibc");
    }

    #[test]
    fn a_snapshot_keeps_the_bytes_of_the_moment_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let (bench, lib) = (dir.path().join("bench"), dir.path().join("libx.so"));
        std::fs::write(&bench, b"bench v1").unwrap();
        std::fs::write(&lib, b"lib v1").unwrap();
        let allocs = [
            Allocator {
                name: "glibc".into(),
                preload: None,
            },
            Allocator {
                name: "x".into(),
                preload: Some(lib.clone()),
            },
        ];
        let snap = Snapshot::take(&bench, &allocs).unwrap();
        std::fs::write(&lib, b"lib v2, rebuilt during the matrix").unwrap();
        let copy = snap.allocators[1].preload.clone().unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), b"lib v1");
        assert_eq!(std::fs::read(&snap.bench).unwrap(), b"bench v1");
        assert_eq!(snap.allocators[0].preload, None);
        drop(snap);
        assert!(!copy.exists(), "the snapshot directory was not removed");
    }

    #[test]
    fn identity_checks_follow_the_family() {
        let a = |n: &str| Allocator {
            name: n.into(),
            preload: None,
        };
        assert_eq!(a("hz3_scale").identity_matches("hz3-scale"), Some(true));
        assert_eq!(a("hz3_scale-stash").identity_matches("glibc"), Some(false));
        assert_eq!(a("tcmalloc").identity_matches("tcmalloc"), Some(true));
        assert_eq!(a("jemalloc").identity_matches("glibc"), Some(false));
        assert_eq!(a("ceiling").identity_matches("ceiling"), Some(true));
        assert_eq!(
            a("jemalloc-debian").identity_matches("jemalloc"),
            Some(true)
        );
        assert_eq!(a("snmalloc").identity_matches("snmalloc"), Some(true));
        assert_eq!(a("snmalloc").identity_matches("glibc"), Some(false));
    }
}
