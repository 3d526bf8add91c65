//! Folded stacks: built by inferno's perf collapser from validated events, stored as
//! `frame;frame;frame weight` lines, scaled per op, and compared.
use crate::script::Frame;
use crate::symbols;
use inferno::collapse::Collapse;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Stacks (root first, `;`-separated) and their weights. The unit is the caller's: nanoseconds of
/// CPU or off-CPU time after folding, ns/op after [`Folded::scaled`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Folded {
    pub stacks: BTreeMap<String, f64>,
}

/// A folded-stack text rejection, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("folded stacks line {line}: {message}")]
pub struct FoldedError {
    pub line: usize,
    pub message: String,
}

impl Folded {
    pub fn total(&self) -> f64 {
        self.stacks.values().sum()
    }

    pub fn add(&mut self, stack: &str, weight: f64) {
        *self.stacks.entry(stack.to_string()).or_insert(0.0) += weight;
    }

    /// Every weight multiplied by `factor` (e.g. `1 / ops` for per-op figures).
    pub fn scaled(&self, factor: f64) -> Folded {
        Folded {
            stacks: self
                .stacks
                .iter()
                .map(|(s, w)| (s.clone(), w * factor))
                .collect(),
        }
    }

    /// `stack weight` lines, sorted by stack.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (stack, weight) in &self.stacks {
            let _ = writeln!(out, "{stack} {weight}");
        }
        out
    }

    /// Parses `stack weight` lines (blank lines allowed). The weight is the last space-separated
    /// word, so frames may contain spaces.
    pub fn from_text(text: &str) -> Result<Folded, FoldedError> {
        let mut folded = Folded::default();
        for (i, line) in text.lines().enumerate() {
            let err = |message: &str| FoldedError {
                line: i + 1,
                message: message.to_string(),
            };
            if line.trim().is_empty() {
                continue;
            }
            let (stack, weight) = line
                .rsplit_once(' ')
                .ok_or_else(|| err("expected `STACK WEIGHT`"))?;
            let weight: f64 = weight
                .parse()
                .map_err(|_| err("the weight is not a number"))?;
            if !weight.is_finite() || weight < 0.0 {
                return Err(err("the weight must be a finite number >= 0"));
            }
            if stack.is_empty() {
                return Err(err("empty stack"));
            }
            folded.add(stack, weight);
        }
        Ok(folded)
    }
}

/// One stack of a differential view: the weight in the baseline and in the comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffRow {
    pub stack: String,
    pub before: f64,
    pub after: f64,
}

/// Every stack present in either side, with both weights (0 where absent).
pub fn diff(before: &Folded, after: &Folded) -> Vec<DiffRow> {
    let mut rows: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for (s, w) in &before.stacks {
        rows.entry(s).or_default().0 += w;
    }
    for (s, w) in &after.stacks {
        rows.entry(s).or_default().1 += w;
    }
    rows.into_iter()
        .map(|(s, (b, a))| DiffRow {
            stack: s.to_string(),
            before: b,
            after: a,
        })
        .collect()
}

/// Collects events as canonical perf-script text, then folds them all at once with inferno.
///
/// Each event's weight is written as its perf "period", which inferno sums per stack; so CPU
/// samples (weight = sample period in ns) and off-CPU intervals (weight = time away in ns) go
/// through the same collapser.
#[derive(Default)]
pub struct StackFolder {
    text: String,
    names: HashMap<(String, String), String>,
    events: u64,
    annotate_kernel: bool,
}

/// Suffix inferno puts on kernel frames when asked to (see [`StackFolder::with_kernel_marks`]).
pub const KERNEL_MARK: &str = "_[k]";

impl StackFolder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A folder whose kernel frames end in [`KERNEL_MARK`], so the user-space part of a stack can
    /// be told apart (off-CPU stacks are classified by where user code was when it went to sleep).
    pub fn with_kernel_marks() -> Self {
        StackFolder {
            annotate_kernel: true,
            ..Self::default()
        }
    }

    /// Adds one event. `frames` are innermost first, as perf prints them. Zero weights are skipped.
    pub fn push(&mut self, comm: &str, weight: u64, frames: &[Frame]) {
        if weight == 0 {
            return;
        }
        self.events += 1;
        // inferno reads `COMM TID TIME: PERIOD EVENT:`; a COMM with spaces or made only of digits
        // would be misread as the TID, so it is made one non-numeric word.
        let mut comm: String = comm
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        if comm.is_empty() || comm.bytes().all(|b| b.is_ascii_digit()) {
            comm.insert_str(0, "comm-");
        }
        let _ = writeln!(self.text, "{comm} 1/1 0.000000: {weight} folded:");
        for (i, f) in frames.iter().enumerate() {
            let lib = library_of(frames, i);
            let key = (f.sym.clone(), lib.to_string());
            let name = self
                .names
                .entry(key)
                .or_insert_with(|| clean_name(&symbols::frame_name(&f.sym, lib)));
            let dso = if f.dso.is_empty() {
                "unknown".to_string()
            } else {
                f.dso.replace(char::is_whitespace, "_")
            };
            let _ = writeln!(self.text, "\t{:x} {} ({})", f.ip, name, dso);
        }
        if frames.is_empty() {
            let _ = writeln!(self.text, "\t0 [no stack] (unknown)");
        }
        self.text.push('\n');
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    /// Runs inferno's perf collapser over everything pushed so far.
    pub fn fold(self) -> std::io::Result<Folded> {
        let mut options = inferno::collapse::perf::Options::default();
        options.nthreads = 1;
        options.annotate_kernel = self.annotate_kernel;
        let mut folder = inferno::collapse::perf::Folder::from(options);
        let mut out = Vec::new();
        folder.collapse(self.text.as_bytes(), &mut out)?;
        let text = String::from_utf8_lossy(&out);
        Folded::from_text(&text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

/// perf prints an inlined call as `ADDR name (inlined)`, followed by the function it was inlined
/// into at the same address, which names the real library; a frame takes that library when there
/// is one.
fn library_of(frames: &[Frame], i: usize) -> &str {
    let f = &frames[i];
    if f.dso != "inlined" {
        return &f.dso;
    }
    frames[i + 1..]
        .iter()
        .take_while(|g| g.ip == f.ip)
        .find(|g| g.dso != "inlined")
        .map(|g| g.dso.as_str())
        .unwrap_or(&f.dso)
}

/// inferno drops frames that start with `(` and splits names at `->`; neither is meant here.
fn clean_name(name: &str) -> String {
    let name = name.replace("->", "-\u{203a}");
    if name.is_empty() {
        "[unknown]".to_string()
    } else if name.starts_with('(') {
        format!("fn {name}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(sym: &str, dso: &str) -> Frame {
        Frame {
            ip: 0x10,
            sym: sym.to_string(),
            dso: dso.to_string(),
        }
    }

    #[test]
    fn folds_with_weights_root_first_and_demangled() {
        let mut f = StackFolder::new();
        let leaf = frame("_ZN3hz37central3pop17h0123456789abcdefE", "/l/libhz3.so");
        let root = frame("worker", "/b/hz3-bench");
        f.push("hz3 bench", 300, &[leaf.clone(), root.clone()]);
        f.push("hz3 bench", 200, &[leaf, root.clone()]);
        f.push("hz3 bench", 0, &[root]);
        let folded = f.fold().unwrap();
        assert_eq!(folded.stacks.len(), 1);
        assert_eq!(folded.stacks["hz3_bench;worker;hz3::central::pop"], 500.0);
    }

    #[test]
    fn inlined_entry_points_take_the_library_of_their_address() {
        let mut f = StackFolder::new();
        let frames = [
            Frame {
                ip: 0x20,
                sym: "malloc".into(),
                dso: "inlined".into(),
            },
            Frame {
                ip: 0x20,
                sym: "tc_malloc".into(),
                dso: "/l/libtcmalloc.so.4".into(),
            },
            Frame {
                ip: 0x30,
                sym: "free".into(),
                dso: "inlined".into(),
            },
            Frame {
                ip: 0x40,
                sym: "worker".into(),
                dso: "/b/x".into(),
            },
        ];
        f.push("b", 1, &frames);
        let folded = f.fold().unwrap();
        assert_eq!(
            folded.stacks.keys().next().unwrap(),
            "b;worker;free [inlined];tc_malloc;malloc [libtcmalloc.so.4]"
        );
    }

    #[test]
    fn kernel_marks_only_when_asked() {
        let frames = [
            Frame {
                ip: 0xffff0,
                sym: "schedule".into(),
                dso: "[kernel.kallsyms]".into(),
            },
            Frame {
                ip: 0x40,
                sym: "worker".into(),
                dso: "/b/x".into(),
            },
        ];
        let mut plain = StackFolder::new();
        plain.push("b", 1, &frames);
        assert!(plain
            .fold()
            .unwrap()
            .stacks
            .contains_key("b;worker;schedule"));
        let mut marked = StackFolder::with_kernel_marks();
        marked.push("b", 1, &frames);
        assert!(marked
            .fold()
            .unwrap()
            .stacks
            .contains_key("b;worker;schedule_[k]"));
    }

    #[test]
    fn folded_text_round_trips_and_rejects_with_line() {
        let mut a = Folded::default();
        a.add("a;b c", 1.5);
        a.add("a", 2.0);
        assert_eq!(Folded::from_text(&a.to_text()).unwrap(), a);
        assert_eq!(Folded::from_text("a 1\nb x\n").unwrap_err().line, 2);
        assert_eq!(Folded::from_text("a 1\n\nnoweight\n").unwrap_err().line, 3);
    }

    #[test]
    fn diff_covers_both_sides() {
        let a = Folded::from_text("x 1\ny 2\n").unwrap();
        let b = Folded::from_text("y 5\nz 1\n").unwrap();
        let d = diff(&a, &b);
        assert_eq!(d.len(), 3);
        assert_eq!(
            d[1],
            DiffRow {
                stack: "y".into(),
                before: 2.0,
                after: 5.0
            }
        );
    }
}
