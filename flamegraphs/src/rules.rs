//! Box rules: which frames belong to which named box, read from TOML.
//!
//! ```toml
//! [[box]]
//! name = "hz3.central"          # shown in tables and flamegraph tooltips
//! frames = ["hz3::central::*"]  # globs over frame names; `*` matches any run of characters
//! lock = "spin"                 # optional: "mutex" or "spin", for the lock-cost split
//! absorb = false                # optional: true keeps everything called from inside this box
//! probes = ["central."]         # optional: probe-counter key prefixes shown beside the box
//! shared = "central"             # optional: the box of the schema every allocator shares
//! within = ["* [*libjemalloc*"]  # optional: match only below a frame matching one of these
//!
//! # Functions charged to their caller's box (libc's string and memory functions).
//! charged_to_caller = ["mem*", "__mem*_avx*"]
//! # Allocation entry points: below one of them, from a library no rule names, is `<lib>.api`.
//! entry_points = ["malloc", "free", "operator new*"]
//! # The last owner of a caller-less memset: its thread, by name.
//! [[thread]]
//! comm = "bench-*"
//! box = "bench"
//! ```
//!
//! A frame belongs to the first rule, in file order, with a glob that matches it (and, for a rule
//! with `within`, with a frame above it in the stack that matches one of those globs: an
//! allocator's static helpers such as `arena_*` or `bin_*` are named only inside its own calls). A stack belongs
//! to the box of its innermost such frame, so time in `hz3::lock::spin` called from
//! `hz3::central::pop` is lock time, not central time. `absorb` is the exception for paths whose
//! callees are part of their cost: the futex syscall calls the scheduler, and that time is futex
//! time. A stack with no matching frame is `other`, which is always reported.
//!
//! Two things have an owner even without a rule. A `charged_to_caller` frame (memset, memcpy…)
//! never starts a box, so it is charged to whoever called it; when perf could not unwind past it
//! (no caller in the stack at all) the stack is [`CALLER_UNKNOWN`], which the attribution spreads
//! over the callers seen in the stacks that did unwind, or, when none did, charges to the box its
//! thread's `[[thread]]` rule names (the thread name is the stack's first frame). And an
//! allocation entry point of a
//! shared library (`malloc [libwrap.so]`, tagged so by the folder) that no rule names starts the
//! box `wrap.api`: time under an allocator nobody wrote rules for is that allocator's, never its
//! caller's.
//!
//! Every box also has a *shared* name, its place in the schema common to all allocators (api,
//! thread_cache, remote_free, transfer, central, page_source, os, purge, lock.mutex, lock.spin,
//! metadata), so that `hz3.central` and `jemalloc.bin` line up in one row at `--level shared`.
use serde::Deserialize;
use std::collections::HashMap;

/// The box of stacks no rule matches.
pub const OTHER: &str = "other";

/// The pseudo-box of a charged-to-caller frame (memset…) with no caller in its stack: perf could
/// not unwind past it. [`crate::attribute`] spreads it over the callers seen elsewhere.
pub const CALLER_UNKNOWN: &str = "caller_unknown";

/// The shared boxes that are allocator time, in the schema's order. A box is allocator time when
/// its shared name is one of these (`lock.wait` is off-CPU: the attribution's asleep figures).
pub const ALLOCATOR_SHARED: &[&str] = &[
    "api",
    "thread_cache",
    "remote_free",
    "transfer",
    "central",
    "page_source",
    "os",
    "purge",
    "lock.mutex",
    "lock.spin",
    "metadata",
];

/// Which names a table groups boxes by: each allocator's own, or the shared schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    #[default]
    Own,
    Shared,
}

/// What kind of lock cost a box is, for the mutex / spin / wait split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    Mutex,
    Spin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BoxRule {
    pub name: String,
    pub frames: Vec<String>,
    pub lock: Option<LockKind>,
    pub absorb: bool,
    pub probes: Vec<String>,
    pub shared: Option<String>,
    pub within: Vec<String>,
}

/// An ordered rule set. Box indices follow first appearance of each name; `other` is last.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rules {
    pub rules: Vec<BoxRule>,
    /// Frame globs charged to their caller's box (libc's string and memory functions).
    pub charged_to_caller: Vec<String>,
    /// Allocation entry-point name globs (the part before ` [lib]`).
    pub entry_points: Vec<String>,
    /// (thread-name glob, box) for charged-to-caller time no caller was ever seen for.
    pub threads: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin} line {line}: {message}")]
pub struct RulesError {
    pub origin: String,
    pub line: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    replace_defaults: bool,
    #[serde(default, rename = "box")]
    boxes: Vec<RuleEntry>,
    #[serde(default)]
    charged_to_caller: Vec<String>,
    #[serde(default)]
    entry_points: Vec<String>,
    #[serde(default, rename = "thread")]
    threads: Vec<ThreadEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThreadEntry {
    comm: String,
    #[serde(rename = "box")]
    box_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    name: String,
    frames: Vec<String>,
    #[serde(default)]
    lock: Option<LockKind>,
    #[serde(default)]
    absorb: bool,
    #[serde(default)]
    probes: Vec<String>,
    #[serde(default)]
    shared: Option<String>,
    #[serde(default)]
    within: Vec<String>,
}

impl Rules {
    /// Parses a rules file. `origin` names it in errors. Returns the rules and whether the file
    /// asked to replace (rather than extend) the defaults.
    pub fn parse(text: &str, origin: &str) -> Result<(Rules, bool), RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|e| RulesError {
            origin: origin.to_string(),
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(1),
            message: e.message().to_string(),
        })?;
        let mut rules = Vec::with_capacity(file.boxes.len());
        for (i, entry) in file.boxes.into_iter().enumerate() {
            let bad = |message: String| RulesError {
                origin: origin.to_string(),
                line: nth_box_line(text, i),
                message,
            };
            if entry.name.trim().is_empty() || entry.name == OTHER || entry.name == CALLER_UNKNOWN {
                return Err(bad(format!(
                    "box name `{}` is empty or reserved",
                    entry.name
                )));
            }
            if entry.frames.is_empty()
                || entry
                    .frames
                    .iter()
                    .chain(&entry.within)
                    .any(|g| g.is_empty())
            {
                return Err(bad(format!(
                    "box `{}` needs at least one frame glob, and no empty glob",
                    entry.name
                )));
            }
            rules.push(BoxRule {
                name: entry.name,
                frames: entry.frames,
                lock: entry.lock,
                absorb: entry.absorb,
                probes: entry.probes,
                shared: entry.shared,
                within: entry.within,
            });
        }
        if let Some(at) = file
            .charged_to_caller
            .iter()
            .chain(&file.entry_points)
            .chain(file.threads.iter().flat_map(|t| [&t.comm, &t.box_name]))
            .position(|g| g.trim().is_empty())
        {
            return Err(RulesError {
                origin: origin.to_string(),
                line: 1,
                message: format!(
                    "charged_to_caller / entry_points / thread item {} is empty",
                    at + 1
                ),
            });
        }
        let rules = Rules {
            rules,
            charged_to_caller: file.charged_to_caller,
            entry_points: file.entry_points,
            threads: file
                .threads
                .into_iter()
                .map(|t| (t.comm, t.box_name))
                .collect(),
        };
        Ok((rules, file.replace_defaults))
    }

    /// A user's file in front of the defaults (its rules win), or alone if it says so.
    pub fn layered(user: Option<(Rules, bool)>, defaults: Rules) -> Rules {
        match user {
            None => defaults,
            Some((user, true)) => user,
            Some((mut user, false)) => {
                user.rules.extend(defaults.rules);
                user.charged_to_caller.extend(defaults.charged_to_caller);
                user.entry_points.extend(defaults.entry_points);
                user.threads.extend(defaults.threads);
                user
            }
        }
    }

    /// Box names in report order, `other` last.
    pub fn box_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for r in &self.rules {
            if !names.contains(&r.name) {
                names.push(r.name.clone());
            }
        }
        names.push(OTHER.to_string());
        names
    }

    /// The lock kind of a box (the first rule with that name that says one).
    pub fn lock_kind(&self, name: &str) -> Option<LockKind> {
        self.rules
            .iter()
            .filter(|r| r.name == name)
            .find_map(|r| r.lock)
    }

    /// The box's name in the schema every allocator shares: its rule's `shared`, `api` for the
    /// `<lib>.api` box of an allocator without rules, else the box's own name (`bench`, `other`).
    pub fn shared_name(&self, name: &str) -> String {
        if let Some(shared) = self
            .rules
            .iter()
            .filter(|r| r.name == name)
            .find_map(|r| r.shared.clone())
        {
            return shared;
        }
        if name.ends_with(".api") && !self.rules.iter().any(|r| r.name == name) {
            return "api".to_string();
        }
        name.to_string()
    }

    /// The box a thread's caller-less string time falls back to, by the thread's name.
    pub fn thread_box(&self, comm: &str) -> Option<&str> {
        self.threads
            .iter()
            .find(|(glob, _)| glob_match(glob, comm))
            .map(|(_, b)| b.as_str())
    }

    /// Whether the box's time is the allocator's (its shared name is an allocator box).
    pub fn is_allocator(&self, name: &str) -> bool {
        ALLOCATOR_SHARED.contains(&self.shared_name(name).as_str())
    }

    /// Probe-key prefixes for a box, from every rule with that name.
    pub fn probe_prefixes(&self, name: &str) -> Vec<String> {
        self.rules
            .iter()
            .filter(|r| r.name == name)
            .flat_map(|r| r.probes.iter().cloned())
            .collect()
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Line of the `i`-th `[[box]]` header, for errors found after parsing.
fn nth_box_line(text: &str, i: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[box]]"))
        .nth(i)
        .map(|(n, _)| n + 1)
        .unwrap_or(1)
}

/// `*` matches any run of characters (including none); everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// What one frame name can do to the box of the frames below it.
#[derive(Debug, Clone, Default)]
struct FrameInfo {
    /// Every rule it matches, in file order (the first whose `within` holds wins).
    rules: Vec<usize>,
    /// An allocation entry point of a library: the `<lib>.api` box, used when no rule matches.
    entry: Option<usize>,
    /// Charged to its caller.
    to_caller: bool,
    /// The `within` scopes this frame opens for the frames below it.
    opens: Vec<usize>,
}

/// Maps frames and stacks to boxes, remembering each frame name's answer. Box indices: the rules'
/// names, then `other`, then boxes met on the way (`<lib>.api`, [`CALLER_UNKNOWN`]).
pub struct Classifier<'r> {
    rules: &'r Rules,
    names: Vec<String>,
    other: usize,
    index_of_name: HashMap<String, usize>,
    /// Each distinct `within` list, and the scope of each rule (None: matches anywhere).
    scopes: Vec<&'r [String]>,
    scope_of_rule: Vec<Option<usize>>,
    frames: Vec<FrameInfo>,
    frame_cache: HashMap<String, usize>,
}

impl<'r> Classifier<'r> {
    pub fn new(rules: &'r Rules) -> Self {
        let names = rules.box_names();
        let index_of_name = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let mut scopes: Vec<&'r [String]> = Vec::new();
        let scope_of_rule = rules
            .rules
            .iter()
            .map(|r| {
                if r.within.is_empty() {
                    return None;
                }
                Some(
                    scopes
                        .iter()
                        .position(|s| *s == r.within)
                        .unwrap_or_else(|| {
                            scopes.push(&r.within);
                            scopes.len() - 1
                        }),
                )
            })
            .collect();
        Classifier {
            rules,
            other: names.len() - 1,
            names,
            index_of_name,
            scopes,
            scope_of_rule,
            frames: Vec::new(),
            frame_cache: HashMap::new(),
        }
    }

    /// Every box name so far: the rules' in order, `other`, then the ones met in stacks.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn other(&self) -> usize {
        self.other
    }

    /// The index of a box met in a stack, added on first sight.
    fn index_of(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index_of_name.get(name) {
            return i;
        }
        self.names.push(name.to_string());
        self.index_of_name
            .insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }

    fn frame_info(&mut self, frame: &str) -> usize {
        if let Some(&i) = self.frame_cache.get(frame) {
            return i;
        }
        let rules = self.rules;
        let matches = |globs: &[String]| globs.iter().any(|g| glob_match(g, frame));
        let info = FrameInfo {
            rules: (0..rules.rules.len())
                .filter(|&r| matches(&rules.rules[r].frames))
                .collect(),
            entry: entry_point_library(frame, &rules.entry_points)
                .map(|lib| self.index_of(&format!("{lib}.api"))),
            to_caller: matches(&rules.charged_to_caller),
            opens: (0..self.scopes.len())
                .filter(|&s| matches(self.scopes[s]))
                .collect(),
        };
        self.frames.push(info);
        self.frame_cache
            .insert(frame.to_string(), self.frames.len() - 1);
        self.frames.len() - 1
    }

    /// Whether the frame is charged to its caller (memset, memcpy…).
    pub fn is_charged_to_caller(&mut self, frame: &str) -> bool {
        let i = self.frame_info(frame);
        self.frames[i].to_caller
    }

    /// Box index of each prefix of the stack: entry `i` is the box that time spent in frame `i`
    /// itself (the stack cut after frame `i`) is charged to.
    pub fn prefix_boxes(&mut self, stack: &str) -> Vec<usize> {
        let mut out = Vec::new();
        let mut current: Option<usize> = None;
        let mut absorbed = false;
        let mut open = vec![false; self.scopes.len()];
        // Whether a real caller frame came before: the first frame is the thread's name, and
        // `[unknown]` is a frame perf could not name.
        let mut seen_caller = false;
        for (at, frame) in stack.split(';').enumerate() {
            let i = self.frame_info(frame);
            if !absorbed {
                let info = &self.frames[i];
                let rule = info
                    .rules
                    .iter()
                    .copied()
                    .find(|&r| self.scope_of_rule[r].is_none_or(|s| open[s]));
                if let Some(rule) = rule {
                    let r = &self.rules.rules[rule];
                    current = Some(self.index_of_name[&r.name]);
                    absorbed = r.absorb;
                } else if let Some(entry) = info.entry {
                    current = Some(entry);
                } else if info.to_caller && current.is_none() && !seen_caller {
                    current = Some(self.index_of(CALLER_UNKNOWN));
                }
            }
            seen_caller |= at > 0 && frame != "[unknown]" && !self.frames[i].to_caller;
            for &s in &self.frames[i].opens {
                open[s] = true;
            }
            out.push(current.unwrap_or(self.other));
        }
        out
    }

    /// Box index of a whole stack (root first, `;`-separated).
    pub fn box_of_stack(&mut self, stack: &str) -> usize {
        self.prefix_boxes(stack)
            .last()
            .copied()
            .unwrap_or(self.other)
    }

    /// The stack with ` [box:NAME]` after every frame, for flamegraph tooltips and search.
    pub fn annotate(&mut self, stack: &str) -> String {
        let boxes = self.prefix_boxes(stack);
        let mut out = String::with_capacity(stack.len() + boxes.len() * 16);
        for (i, (frame, b)) in stack.split(';').zip(boxes).enumerate() {
            if i > 0 {
                out.push(';');
            }
            out.push_str(frame);
            out.push_str(" [box:");
            out.push_str(&self.names[b]);
            out.push(']');
        }
        out
    }
}

/// The library stem of an allocation entry point of a shared library, as the folder tags it:
/// `malloc [libwrap.so.1]` → `wrap`. None for other frames, and for the program's own entry points
/// (an executable's file name has no `.so`).
fn entry_point_library<'f>(frame: &'f str, entry_points: &[String]) -> Option<&'f str> {
    let (name, tag) = frame.strip_suffix(']')?.rsplit_once(" [")?;
    let so = tag.find(".so")?;
    if !entry_points.iter().any(|g| glob_match(g, name)) {
        return None;
    }
    // A matrix snapshot copies libraries as `<n>-<file>`; the library is the same.
    let file = &tag[..so];
    let file = match file.split_once('-') {
        Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => file,
    };
    Some(
        file.strip_prefix("lib")
            .filter(|s| !s.is_empty())
            .unwrap_or(file),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_stars_anywhere() {
        assert!(glob_match("hz3::central::*", "hz3::central::Central::pop"));
        assert!(glob_match(
            "*SpinLock::SpinLoop*",
            "base::internal::SpinLock::SpinLoop"
        ));
        assert!(glob_match("malloc [libc.so*]", "malloc [libc.so.6]"));
        assert!(!glob_match("malloc", "malloc [libc.so.6]"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("*", ""));
    }

    const RULES: &str = r#"
[[box]]
name = "hz3.central"
frames = ["hz3::central::*"]

[[box]]
name = "hz3.lock.spin"
frames = ["hz3::lock::*"]
lock = "spin"

[[box]]
name = "futex"
frames = ["do_futex"]
lock = "mutex"
absorb = true

[[box]]
name = "kernel.sched"
frames = ["schedule"]
"#;

    #[test]
    fn innermost_frame_wins_absorb_keeps_callees_other_is_last() {
        let (rules, replace) = Rules::parse(RULES, "test").unwrap();
        assert!(!replace);
        let mut c = Classifier::new(&rules);
        let name = |c: &mut Classifier, s: &str| {
            let b = c.box_of_stack(s);
            c.names()[b].clone()
        };
        assert_eq!(
            name(&mut c, "main;hz3::central::pop;hz3::lock::spin;pause"),
            "hz3.lock.spin"
        );
        assert_eq!(name(&mut c, "main;hz3::central::pop;memcpy"), "hz3.central");
        assert_eq!(
            name(&mut c, "main;hz3::central::pop;do_futex;schedule"),
            "futex"
        );
        assert_eq!(name(&mut c, "main;schedule"), "kernel.sched");
        assert_eq!(name(&mut c, "main;memcpy"), OTHER);
        assert_eq!(c.names().last().unwrap(), OTHER);
        assert_eq!(
            c.annotate("main;hz3::central::pop"),
            "main [box:other];hz3::central::pop [box:hz3.central]"
        );
    }

    const SCHEMA: &str = r#"
charged_to_caller = ["memset", "__memset*"]
entry_points = ["malloc", "free", "operator new*"]

[[box]]
name = "je.bin"
shared = "central"
within = ["* [libje*"]
frames = ["arena_*"]

[[box]]
name = "glibc.arena"
shared = "central"
frames = ["arena_*"]

[[box]]
name = "je.api"
shared = "api"
frames = ["* [libje*"]

[[box]]
name = "bench"
frames = ["worker"]
"#;

    fn name_of(c: &mut Classifier, s: &str) -> String {
        let b = c.box_of_stack(s);
        c.names()[b].clone()
    }

    #[test]
    fn within_limits_a_rule_to_frames_below_its_scope() {
        let (rules, _) = Rules::parse(SCHEMA, "t").unwrap();
        let mut c = Classifier::new(&rules);
        assert_eq!(
            name_of(&mut c, "b;worker;malloc [libje.so];arena_alloc"),
            "je.bin"
        );
        assert_eq!(
            name_of(&mut c, "b;worker;malloc [libc.so.6];arena_get2"),
            "glibc.arena"
        );
        assert_eq!(rules.shared_name("je.bin"), "central");
        assert_eq!(rules.shared_name("bench"), "bench");
        assert!(rules.is_allocator("je.bin") && !rules.is_allocator("bench"));
    }

    #[test]
    fn an_unknown_library_s_entry_point_owns_what_is_below_it() {
        let (rules, _) = Rules::parse(SCHEMA, "t").unwrap();
        let mut c = Classifier::new(&rules);
        // The interposer's own work, and the libc string function it calls, are its own box.
        let s = "b;worker;malloc [libwrap.so.1];wrap_burn;memset";
        assert_eq!(name_of(&mut c, s), "wrap.api");
        assert_eq!(
            name_of(&mut c, "b;worker;malloc [libwrap.so.1]"),
            "wrap.api"
        );
        // What it calls into a known allocator is that allocator's.
        let s = "b;worker;malloc [libwrap.so.1];malloc [libje.so];arena_x";
        assert_eq!(name_of(&mut c, s), "je.bin");
        // A matrix snapshot's copy, C++'s operators, the program's own malloc.
        assert_eq!(name_of(&mut c, "b;free [3-libwrap.so]"), "wrap.api");
        assert_eq!(name_of(&mut c, "b;operator new [libfoo.so]"), "foo.api");
        assert_eq!(name_of(&mut c, "b;worker;malloc [myprog]"), "bench");
        assert_eq!(rules.shared_name("wrap.api"), "api");
        assert!(rules.is_allocator("wrap.api"));
        let other = c.other();
        assert_eq!(c.names()[other], OTHER);
    }

    #[test]
    fn string_functions_go_to_their_caller_or_are_marked_without_one() {
        let (rules, _) = Rules::parse(SCHEMA, "t").unwrap();
        let mut c = Classifier::new(&rules);
        assert_eq!(name_of(&mut c, "b;worker;memset"), "bench");
        assert_eq!(
            name_of(&mut c, "b;worker;malloc [libje.so];memset"),
            "je.api"
        );
        // perf could not unwind past it: no caller frame at all.
        assert_eq!(name_of(&mut c, "b;__memset_avx2"), CALLER_UNKNOWN);
        assert_eq!(name_of(&mut c, "b;[unknown];memset"), CALLER_UNKNOWN);
        // A caller no rule names is the caller's box: other.
        assert_eq!(name_of(&mut c, "b;main;memset"), OTHER);
        assert!(Rules::parse(
            "[[box]]\nname = \"caller_unknown\"\nframes = [\"a\"]\n",
            "t"
        )
        .is_err());
        assert!(Rules::parse("charged_to_caller = [\"\"]\n", "t").is_err());
    }

    #[test]
    fn bad_files_name_their_line() {
        let err = Rules::parse("[[box]]\nname = \"x\"\nframes = 3\n", "f.toml").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        let err = Rules::parse("[[box]]\nname = \"a\"\nframes = [\"a\"]\n[[box]]\nname = \"other\"\nframes = [\"b\"]\n", "f.toml")
            .unwrap_err();
        assert_eq!(err.line, 4, "{err}");
        assert!(Rules::parse(
            "[[box]]\nname = \"a\"\nframes = [\"a\"]\nlock = \"rw\"\n",
            "f"
        )
        .is_err());
    }
}
