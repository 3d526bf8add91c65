//! Where the guard finds the baseline's build of each allocator: `--explain-with NAME=PATH`, or
//! the same file name in `--baseline-preload-dir DIR` (the `libhz3_*.so` built from the baseline's
//! revision; the old `.so` is normally gone, rebuilt in place).
use crate::allocators::Allocator;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Where the baseline's build of each allocator is, as the user said.
#[derive(Debug)]
pub struct BaselineBuilds {
    given: Vec<(String, PathBuf)>,
    dir: Option<PathBuf>,
}

/// Where a row's baseline build was looked for, and what was there.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    Found(PathBuf),
    /// Not in `--baseline-preload-dir`; the path it would have had.
    Missing(PathBuf),
    /// Neither option names a build for it.
    NotGiven,
}

impl BaselineBuilds {
    /// Checks the options against the allocators about to be measured, so that a wrong path
    /// stops the guard before a long matrix, not after it.
    pub fn new(
        explain_with: &[String],
        dir: Option<&Path>,
        measured: &[Allocator],
    ) -> Result<BaselineBuilds> {
        if let Some(d) = dir {
            if !d.is_dir() {
                bail!("--baseline-preload-dir {}: no such directory", d.display());
            }
        }
        let mut given = Vec::new();
        for spec in explain_with {
            let Some((name, path)) = spec
                .split_once('=')
                .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            else {
                bail!("--explain-with {spec:?}: expected NAME=PATH.so (the baseline's build of the allocator NAME)");
            };
            if !measured.iter().any(|a| a.name == name) {
                let names: Vec<&str> = measured.iter().map(|a| a.name.as_str()).collect();
                bail!(
                    "--explain-with {name}: no allocator of that name is measured (measured: {})",
                    names.join(", ")
                );
            }
            if !Path::new(path).is_file() {
                bail!("--explain-with {name}: {path} does not exist");
            }
            given.push((name.to_owned(), PathBuf::from(path)));
        }
        let builds = BaselineBuilds {
            given,
            dir: dir.map(Path::to_path_buf),
        };
        if let Some(d) = &builds.dir {
            let looked: Vec<PathBuf> = measured
                .iter()
                .filter_map(|a| build_file(a).map(|f| d.join(f)))
                .collect();
            if !looked.iter().any(|p| p.is_file()) {
                let shown: Vec<String> = looked.iter().map(|p| p.display().to_string()).collect();
                bail!(
                    "--baseline-preload-dir {}: holds no build of the allocators measured (looked for {})",
                    d.display(),
                    if shown.is_empty() { "nothing: no hz3 build is measured".into() } else { shown.join(", ") }
                );
            }
        }
        Ok(builds)
    }

    /// `--explain-with` first, then the build of the same file name in `--baseline-preload-dir`.
    pub fn lookup(&self, alloc: &Allocator) -> Lookup {
        if let Some((_, path)) = self.given.iter().find(|(n, _)| *n == alloc.name) {
            return Lookup::Found(path.clone());
        }
        match (&self.dir, build_file(alloc)) {
            (Some(dir), Some(file)) => {
                let path = dir.join(file);
                if path.is_file() {
                    Lookup::Found(path)
                } else {
                    Lookup::Missing(path)
                }
            }
            _ => Lookup::NotGiven,
        }
    }
}

/// The file name an allocator's build has in a preload directory: `libhz3_X.so` for `hz3_X` (what
/// scripts/build-preload writes), else a `NAME=PATH` row's own file name. Anchors have none: their
/// library is the system's, the same for every revision of this tree.
pub(super) fn build_file(alloc: &Allocator) -> Option<String> {
    if alloc.name.starts_with("hz3_") {
        return Some(format!("lib{}.so", alloc.name));
    }
    let preload = alloc.preload.as_ref()?;
    if preload.starts_with("/usr/") {
        return None;
    }
    preload
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::explain::tests::{alloc, strings};

    #[test]
    fn baseline_builds_come_from_explain_with_then_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let so = |name: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, b"").unwrap();
            p
        };
        let (scale, other) = (so("libhz3_scale.so"), so("old-fast.so"));
        let measured = [
            alloc(
                "tcmalloc",
                Some(Path::new("/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4")),
            ),
            alloc("hz3_scale", Some(Path::new("/t/libhz3_scale.so"))),
            alloc("hz3_fast", Some(Path::new("/t/libhz3_fast.so"))),
            alloc("glibc", None),
        ];
        let with = strings(&[&format!("hz3_fast={}", other.display())]);
        let b = BaselineBuilds::new(&with, Some(dir.path()), &measured).unwrap();
        assert_eq!(b.lookup(&measured[1]), Lookup::Found(scale));
        assert_eq!(b.lookup(&measured[2]), Lookup::Found(other));
        assert_eq!(b.lookup(&measured[0]), Lookup::NotGiven);
        assert_eq!(b.lookup(&measured[3]), Lookup::NotGiven);
        let only_with = BaselineBuilds::new(&with, None, &measured).unwrap();
        assert_eq!(only_with.lookup(&measured[1]), Lookup::NotGiven);

        let partial = tempfile::tempdir().unwrap();
        std::fs::write(partial.path().join("libhz3_fast.so"), b"").unwrap();
        let b = BaselineBuilds::new(&[], Some(partial.path()), &measured).unwrap();
        assert_eq!(
            b.lookup(&measured[1]),
            Lookup::Missing(partial.path().join("libhz3_scale.so"))
        );
    }

    #[test]
    fn wrong_baseline_options_are_precise_errors() {
        let dir = tempfile::tempdir().unwrap();
        let measured = [alloc("hz3_scale", Some(Path::new("/t/libhz3_scale.so")))];
        let err = |with: &[&str], d: Option<&Path>| {
            BaselineBuilds::new(&strings(with), d, &measured)
                .unwrap_err()
                .to_string()
        };
        let e = err(&[], Some(&dir.path().join("nope")));
        assert!(e.contains("nope: no such directory"), "{e}");
        let e = err(&[], Some(dir.path()));
        assert!(
            e.contains("holds no build") && e.contains("libhz3_scale.so"),
            "{e}"
        );
        let e = err(&["hz3_scale=/no/such.so"], None);
        assert!(e.contains("hz3_scale: /no/such.so does not exist"), "{e}");
        let e = err(&["hz3_fast=/no/such.so"], None);
        assert!(
            e.contains("no allocator of that name is measured (measured: hz3_scale)"),
            "{e}"
        );
        let e = err(&["hz3_scale"], None);
        assert!(e.contains("expected NAME=PATH.so"), "{e}");
    }
}
