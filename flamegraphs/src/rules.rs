//! Box rules: which frames belong to which named box, read from TOML.
//!
//! ```toml
//! [[box]]
//! name = "hz3.central"          # shown in tables and flamegraph tooltips
//! frames = ["hz3::central::*"]  # globs over frame names; `*` matches any run of characters
//! lock = "spin"                 # optional: "mutex" or "spin", for the lock-cost split
//! absorb = false                # optional: true keeps everything called from inside this box
//! probes = ["central."]         # optional: probe-counter key prefixes shown beside the box
//! ```
//!
//! A frame belongs to the first rule, in file order, with a glob that matches it. A stack belongs
//! to the box of its innermost such frame, so time in `hz3::lock::spin` called from
//! `hz3::central::pop` is lock time, not central time. `absorb` is the exception for paths whose
//! callees are part of their cost: the futex syscall calls the scheduler, and that time is futex
//! time. A stack with no matching frame is `other`, which is always reported.
use serde::Deserialize;
use std::collections::HashMap;

/// The box of stacks no rule matches.
pub const OTHER: &str = "other";

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
}

/// An ordered rule set. Box indices follow first appearance of each name; `other` is last.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub rules: Vec<BoxRule>,
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
            if entry.name.trim().is_empty() || entry.name == OTHER {
                return Err(bad(format!(
                    "box name `{}` is empty or reserved",
                    entry.name
                )));
            }
            if entry.frames.is_empty() || entry.frames.iter().any(|g| g.is_empty()) {
                return Err(bad(format!(
                    "box `{}` needs at least one non-empty frame glob",
                    entry.name
                )));
            }
            rules.push(BoxRule {
                name: entry.name,
                frames: entry.frames,
                lock: entry.lock,
                absorb: entry.absorb,
                probes: entry.probes,
            });
        }
        Ok((Rules { rules }, file.replace_defaults))
    }

    /// A user's file in front of the defaults (its rules win), or alone if it says so.
    pub fn layered(user: Option<(Rules, bool)>, defaults: Rules) -> Rules {
        match user {
            None => defaults,
            Some((user, true)) => user,
            Some((mut user, false)) => {
                user.rules.extend(defaults.rules);
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

/// Maps frames and stacks to boxes, remembering each frame name's answer.
pub struct Classifier<'r> {
    rules: &'r Rules,
    names: Vec<String>,
    index_of_name: HashMap<String, usize>,
    frame_cache: HashMap<String, Option<usize>>,
}

impl<'r> Classifier<'r> {
    pub fn new(rules: &'r Rules) -> Self {
        let names = rules.box_names();
        let index_of_name = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Classifier {
            rules,
            names,
            index_of_name,
            frame_cache: HashMap::new(),
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn other(&self) -> usize {
        self.names.len() - 1
    }

    /// The rule index a frame name matches first, if any.
    fn rule_of_frame(&mut self, frame: &str) -> Option<usize> {
        if let Some(hit) = self.frame_cache.get(frame) {
            return *hit;
        }
        let hit = self
            .rules
            .rules
            .iter()
            .position(|r| r.frames.iter().any(|g| glob_match(g, frame)));
        self.frame_cache.insert(frame.to_string(), hit);
        hit
    }

    /// Box index of each prefix of the stack: entry `i` is the box that time spent in frame `i`
    /// itself (the stack cut after frame `i`) is charged to.
    pub fn prefix_boxes(&mut self, stack: &str) -> Vec<usize> {
        let mut out = Vec::new();
        let mut current: Option<usize> = None;
        let mut absorbed = false;
        for frame in stack.split(';') {
            if !absorbed {
                if let Some(rule) = self.rule_of_frame(frame) {
                    current = Some(rule);
                    absorbed = self.rules.rules[rule].absorb;
                }
            }
            out.push(match current {
                Some(rule) => self.index_of_name[&self.rules.rules[rule].name],
                None => self.other(),
            });
        }
        out
    }

    /// Box index of a whole stack (root first, `;`-separated).
    pub fn box_of_stack(&mut self, stack: &str) -> usize {
        self.prefix_boxes(stack)
            .last()
            .copied()
            .unwrap_or(self.other())
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
