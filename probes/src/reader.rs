//! Reads a dump written by [`crate::dump`] back, for `hz3-analyze`.
//!
//! Both parsers are written by hand over the raw bytes so every rejection can say exactly where
//! it happened (`file:line:column`) and what kind of damage it is: a cut-off file, broken syntax,
//! a dump from another schema version, a key the catalogue does not know (or one it lacks, or one
//! given twice), or a count that is not a non-negative integer. No input makes them panic; nesting
//! depth is bounded so hostile input cannot exhaust the stack.
use crate::dump::{CSV_HEADER, LOCK_KEY_PREFIX};
use crate::{
    lock_slot, Event, LockSite, LockStat, Snapshot, ThreadRow, LOCK_SLOTS, SCHEMA_VERSION,
};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A dump as read back: the owned twin of [`Snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dump {
    pub schema: u32,
    pub lane: String,
    pub pid: u32,
    pub wall_ns: u64,
    pub totals: [u64; Event::COUNT],
    pub lock_totals: [u64; LOCK_SLOTS],
    pub threads: Vec<ThreadRow>,
}

impl Dump {
    pub fn event(&self, event: Event) -> u64 {
        self.totals[event.index()]
    }

    pub fn lock(&self, site: LockSite, stat: LockStat) -> u64 {
        self.lock_totals[lock_slot(site, stat)]
    }

    /// Borrowed view, so a read dump can be written again by the same writer.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot {
            lane: &self.lane,
            pid: self.pid,
            wall_ns: self.wall_ns,
            totals: &self.totals,
            lock_totals: &self.lock_totals,
            threads: &self.threads,
        }
    }
}

/// 1-based line and column (in bytes) inside the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: cannot read probes dump: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{pos}: truncated probes dump: {what}", path.display())]
    Truncated {
        path: PathBuf,
        pos: Position,
        what: String,
    },
    #[error("{}:{pos}: corrupt probes dump: {what}", path.display())]
    Syntax {
        path: PathBuf,
        pos: Position,
        what: String,
    },
    #[error("{}:{pos}: probes dump has schema version {found}, this reader understands version {SCHEMA_VERSION}", path.display())]
    Version {
        path: PathBuf,
        pos: Position,
        found: String,
    },
    #[error("{}:{pos}: unknown key `{key}` in probes dump", path.display())]
    UnknownKey {
        path: PathBuf,
        pos: Position,
        key: String,
    },
    #[error("{}:{pos}: missing key `{key}` in probes dump", path.display())]
    MissingKey {
        path: PathBuf,
        pos: Position,
        key: String,
    },
    #[error("{}:{pos}: key `{key}` given twice in probes dump", path.display())]
    DuplicateKey {
        path: PathBuf,
        pos: Position,
        key: String,
    },
    #[error("{}:{pos}: `{key}` is `{text}`, not a non-negative integer that fits", path.display())]
    BadCount {
        path: PathBuf,
        pos: Position,
        key: String,
        text: String,
    },
}

impl ReadError {
    /// Where in the file the problem is (`None` for I/O errors).
    pub fn position(&self) -> Option<Position> {
        match self {
            ReadError::Io { .. } => None,
            ReadError::Truncated { pos, .. }
            | ReadError::Syntax { pos, .. }
            | ReadError::Version { pos, .. }
            | ReadError::UnknownKey { pos, .. }
            | ReadError::MissingKey { pos, .. }
            | ReadError::DuplicateKey { pos, .. }
            | ReadError::BadCount { pos, .. } => Some(*pos),
        }
    }
}

/// Reads a JSON or CSV dump; the format is told by the content (`{` = JSON, the CSV header = CSV),
/// then by the extension.
pub fn read(path: impl AsRef<Path>) -> Result<Dump, ReadError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes, path)
}

/// Parses dump bytes; `path` is only used to name the file in errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Dump, ReadError> {
    let src = Source { bytes, path };
    let first = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let Some(first) = first else {
        return Err(src.truncated(bytes.len(), "the file is empty"));
    };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if bytes[first] == b'{' || (!bytes.starts_with(b"scope,") && ext.eq_ignore_ascii_case("json")) {
        json::parse(&src)
    } else if bytes.starts_with(CSV_HEADER.as_bytes()) || ext.eq_ignore_ascii_case("csv") {
        csv::parse(&src)
    } else if CSV_HEADER.as_bytes().starts_with(bytes) {
        Err(src.truncated(bytes.len(), "the file ends inside the CSV header"))
    } else {
        Err(src.syntax(
            first,
            "neither a JSON probes dump (`{`) nor a CSV one (`scope,tid,key,value`)",
        ))
    }
}

/// The bytes being parsed and the file name, to build positioned errors.
struct Source<'a> {
    bytes: &'a [u8],
    path: &'a Path,
}

impl Source<'_> {
    fn pos(&self, offset: usize) -> Position {
        let before = &self.bytes[..offset.min(self.bytes.len())];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        Position {
            line,
            column: 1 + before.len() - line_start,
        }
    }
    fn path(&self) -> PathBuf {
        self.path.to_path_buf()
    }
    fn truncated(&self, at: usize, what: &str) -> ReadError {
        ReadError::Truncated {
            path: self.path(),
            pos: self.pos(at),
            what: what.to_string(),
        }
    }
    fn syntax(&self, at: usize, what: impl Into<String>) -> ReadError {
        ReadError::Syntax {
            path: self.path(),
            pos: self.pos(at),
            what: what.into(),
        }
    }
    fn version(&self, at: usize, found: &str) -> ReadError {
        ReadError::Version {
            path: self.path(),
            pos: self.pos(at),
            found: found.to_string(),
        }
    }
    fn unknown(&self, at: usize, key: &str) -> ReadError {
        ReadError::UnknownKey {
            path: self.path(),
            pos: self.pos(at),
            key: key.to_string(),
        }
    }
    fn missing(&self, at: usize, key: &str) -> ReadError {
        ReadError::MissingKey {
            path: self.path(),
            pos: self.pos(at),
            key: key.to_string(),
        }
    }
    fn duplicate(&self, at: usize, key: &str) -> ReadError {
        ReadError::DuplicateKey {
            path: self.path(),
            pos: self.pos(at),
            key: key.to_string(),
        }
    }
    fn bad_count(&self, at: usize, key: &str, text: &str) -> ReadError {
        ReadError::BadCount {
            path: self.path(),
            pos: self.pos(at),
            key: key.to_string(),
            text: text.to_string(),
        }
    }

    /// A count: plain decimal digits fitting a u64 (no sign, fraction, exponent or leading `+`).
    fn count(&self, at: usize, key: &str, text: &str) -> Result<u64, ReadError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.bad_count(at, key, text));
        }
        text.parse::<u64>()
            .map_err(|_| self.bad_count(at, key, text))
    }

    fn schema(&self, at: usize, text: &str) -> Result<u32, ReadError> {
        match text.parse::<u32>() {
            Ok(v) if v == SCHEMA_VERSION && text.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
            _ => Err(self.version(at, text)),
        }
    }
}

/// Every counter key of one scope (events, then locks) and where its value goes.
#[derive(Clone, Copy)]
enum Slot {
    Event(Event),
    Lock(LockSite, LockStat),
}

/// Collects one scope's counters (totals or one thread), tracking which keys were seen.
struct Counters {
    events: [u64; Event::COUNT],
    locks: [u64; LOCK_SLOTS],
    seen_events: [bool; Event::COUNT],
    seen_locks: [bool; LOCK_SLOTS],
}

impl Counters {
    fn new() -> Self {
        Counters {
            events: [0; Event::COUNT],
            locks: [0; LOCK_SLOTS],
            seen_events: [false; Event::COUNT],
            seen_locks: [false; LOCK_SLOTS],
        }
    }

    /// Records a value; `false` when the key was already set.
    fn set(&mut self, slot: Slot, value: u64) -> bool {
        let (seen, cell) = match slot {
            Slot::Event(e) => (
                &mut self.seen_events[e.index()],
                &mut self.events[e.index()],
            ),
            Slot::Lock(s, t) => (
                &mut self.seen_locks[lock_slot(s, t)],
                &mut self.locks[lock_slot(s, t)],
            ),
        };
        let fresh = !*seen;
        *seen = true;
        *cell = value;
        fresh
    }

    /// The key (as written in the file, given `lock_key`'s spelling) of the first counter never set.
    fn first_missing(&self, lock_key: impl Fn(LockSite, LockStat) -> String) -> Option<String> {
        if let Some(e) = Event::ALL.iter().find(|e| !self.seen_events[e.index()]) {
            return Some(e.key().to_string());
        }
        for site in LockSite::ALL {
            for stat in LockStat::ALL {
                if !self.seen_locks[lock_slot(*site, *stat)] {
                    return Some(lock_key(*site, *stat));
                }
            }
        }
        None
    }
}

mod json {
    use super::*;

    /// Deeper than any real dump (4 levels); bounds recursion on hostile input.
    const MAX_DEPTH: usize = 16;

    struct Node {
        at: usize,
        value: Value,
    }

    enum Value {
        Literal(&'static str),
        Number(String),
        Str(String),
        Array(Vec<Node>),
        /// Key, the key's offset, the value.
        Object(Vec<(String, usize, Node)>),
    }

    impl Value {
        fn kind(&self) -> &'static str {
            match self {
                Value::Literal(l) => l,
                Value::Number(_) => "a number",
                Value::Str(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            }
        }
    }

    struct Parser<'s, 'a> {
        src: &'s Source<'a>,
        at: usize,
    }

    impl Parser<'_, '_> {
        fn peek(&self) -> Option<u8> {
            self.src.bytes.get(self.at).copied()
        }

        fn skip_ws(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.at += 1;
            }
        }

        /// The next byte, or a truncation error naming what was expected.
        fn next_or_truncated(&mut self, expecting: &str) -> Result<u8, ReadError> {
            match self.peek() {
                Some(b) => {
                    self.at += 1;
                    Ok(b)
                }
                None => Err(self.src.truncated(
                    self.at,
                    &format!("the file ends where {expecting} was expected"),
                )),
            }
        }

        fn value(&mut self, depth: usize) -> Result<Node, ReadError> {
            self.skip_ws();
            let at = self.at;
            if depth > MAX_DEPTH {
                return Err(self
                    .src
                    .syntax(at, format!("nested deeper than {MAX_DEPTH} levels")));
            }
            let value = match self.next_or_truncated("a value")? {
                b'{' => self.object(depth)?,
                b'[' => self.array(depth)?,
                b'"' => Value::Str(self.string_body()?),
                b'-' | b'0'..=b'9' => {
                    self.at = at;
                    Value::Number(self.number()?)
                }
                b't' => self.literal(at, "true")?,
                b'f' => self.literal(at, "false")?,
                b'n' => self.literal(at, "null")?,
                other => {
                    return Err(self
                        .src
                        .syntax(at, format!("unexpected {}", describe(other))))
                }
            };
            Ok(Node { at, value })
        }

        fn literal(&mut self, at: usize, word: &'static str) -> Result<Value, ReadError> {
            self.at = at;
            for &expected in word.as_bytes() {
                let here = self.at;
                let got = self.next_or_truncated(&format!("`{word}`"))?;
                if got != expected {
                    return Err(self
                        .src
                        .syntax(here, format!("unexpected {} in `{word}`", describe(got))));
                }
            }
            Ok(Value::Literal(word))
        }

        /// JSON number grammar, kept as text: deciding what a count may be is the schema's job.
        fn number(&mut self) -> Result<String, ReadError> {
            let start = self.at;
            if self.peek() == Some(b'-') {
                self.at += 1;
            }
            self.digits("a digit")?;
            if self.peek() == Some(b'.') {
                self.at += 1;
                self.digits("a digit after `.`")?;
            }
            if matches!(self.peek(), Some(b'e' | b'E')) {
                self.at += 1;
                if matches!(self.peek(), Some(b'+' | b'-')) {
                    self.at += 1;
                }
                self.digits("an exponent")?;
            }
            Ok(String::from_utf8_lossy(&self.src.bytes[start..self.at]).into_owned())
        }

        fn digits(&mut self, expecting: &str) -> Result<(), ReadError> {
            let start = self.at;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.at += 1;
            }
            if self.at > start {
                return Ok(());
            }
            match self.peek() {
                None => Err(self.src.truncated(
                    self.at,
                    &format!("the file ends where {expecting} was expected"),
                )),
                Some(b) => Err(self.src.syntax(
                    self.at,
                    format!("expected {expecting}, found {}", describe(b)),
                )),
            }
        }

        /// After the opening quote; returns the decoded text.
        fn string_body(&mut self) -> Result<String, ReadError> {
            let mut out = Vec::new();
            loop {
                let here = self.at;
                match self.next_or_truncated("the end of a string")? {
                    b'"' => break,
                    b'\\' => {
                        let esc_at = self.at;
                        let decoded = match self.next_or_truncated("an escape")? {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => self.unicode_escape(esc_at)?,
                            other => {
                                return Err(self
                                    .src
                                    .syntax(esc_at, format!("bad escape {}", describe(other))))
                            }
                        };
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(decoded.encode_utf8(&mut buf).as_bytes());
                    }
                    b if b < 0x20 => {
                        return Err(self
                            .src
                            .syntax(here, format!("raw {} inside a string", describe(b))));
                    }
                    b => out.push(b),
                }
            }
            let start = self.at;
            String::from_utf8(out).map_err(|_| {
                self.src
                    .syntax(start.saturating_sub(1), "string is not valid UTF-8")
            })
        }

        fn hex4(&mut self) -> Result<u32, ReadError> {
            let mut v = 0u32;
            for _ in 0..4 {
                let here = self.at;
                let b = self.next_or_truncated("a hex digit")?;
                let d = (b as char).to_digit(16).ok_or_else(|| {
                    self.src
                        .syntax(here, format!("expected a hex digit, found {}", describe(b)))
                })?;
                v = v * 16 + d;
            }
            Ok(v)
        }

        fn unicode_escape(&mut self, esc_at: usize) -> Result<char, ReadError> {
            let hi = self.hex4()?;
            let code = if (0xD800..0xDC00).contains(&hi) {
                let pair_at = self.at;
                if self.next_or_truncated("a low surrogate")? != b'\\'
                    || self.next_or_truncated("a low surrogate")? != b'u'
                {
                    return Err(self
                        .src
                        .syntax(pair_at, "high surrogate without its low half"));
                }
                let lo = self.hex4()?;
                if !(0xDC00..0xE000).contains(&lo) {
                    return Err(self
                        .src
                        .syntax(pair_at, "high surrogate without its low half"));
                }
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            } else {
                hi
            };
            char::from_u32(code).ok_or_else(|| {
                self.src
                    .syntax(esc_at, "escape is not a Unicode scalar value")
            })
        }

        fn array(&mut self, depth: usize) -> Result<Value, ReadError> {
            let mut items = Vec::new();
            self.skip_ws();
            if self.peek() == Some(b']') {
                self.at += 1;
                return Ok(Value::Array(items));
            }
            loop {
                items.push(self.value(depth + 1)?);
                self.skip_ws();
                let here = self.at;
                match self.next_or_truncated("`,` or `]`")? {
                    b',' => continue,
                    b']' => return Ok(Value::Array(items)),
                    other => {
                        return Err(self.src.syntax(
                            here,
                            format!("expected `,` or `]`, found {}", describe(other)),
                        ))
                    }
                }
            }
        }

        fn object(&mut self, depth: usize) -> Result<Value, ReadError> {
            let mut members = Vec::new();
            self.skip_ws();
            if self.peek() == Some(b'}') {
                self.at += 1;
                return Ok(Value::Object(members));
            }
            loop {
                self.skip_ws();
                let key_at = self.at;
                match self.next_or_truncated("a key")? {
                    b'"' => {}
                    other => {
                        return Err(self.src.syntax(
                            key_at,
                            format!("expected a quoted key, found {}", describe(other)),
                        ))
                    }
                }
                let key = self.string_body()?;
                self.skip_ws();
                let colon_at = self.at;
                match self.next_or_truncated("`:`")? {
                    b':' => {}
                    other => {
                        return Err(self
                            .src
                            .syntax(colon_at, format!("expected `:`, found {}", describe(other))))
                    }
                }
                let value = self.value(depth + 1)?;
                members.push((key, key_at, value));
                self.skip_ws();
                let here = self.at;
                match self.next_or_truncated("`,` or `}`")? {
                    b',' => continue,
                    b'}' => return Ok(Value::Object(members)),
                    other => {
                        return Err(self.src.syntax(
                            here,
                            format!("expected `,` or `}}`, found {}", describe(other)),
                        ))
                    }
                }
            }
        }
    }

    fn describe(b: u8) -> String {
        if b.is_ascii_graphic() {
            format!("`{}`", b as char)
        } else {
            format!("byte 0x{b:02x}")
        }
    }

    pub(super) fn parse(src: &Source) -> Result<Dump, ReadError> {
        let mut p = Parser { src, at: 0 };
        let root = p.value(0)?;
        p.skip_ws();
        if p.at < src.bytes.len() {
            return Err(src.syntax(p.at, "data after the end of the JSON document"));
        }
        Schema { src }.dump(&root)
    }

    /// Checks the parsed tree against the dump's shape.
    struct Schema<'s, 'a> {
        src: &'s Source<'a>,
    }

    impl Schema<'_, '_> {
        fn object<'n>(
            &self,
            node: &'n Node,
            what: &str,
        ) -> Result<&'n [(String, usize, Node)], ReadError> {
            match &node.value {
                Value::Object(members) => Ok(members),
                other => Err(self.src.syntax(
                    node.at,
                    format!("{what} should be an object, found {}", other.kind()),
                )),
            }
        }

        fn count(&self, node: &Node, key: &str) -> Result<u64, ReadError> {
            match &node.value {
                Value::Number(text) => self.src.count(node.at, key, text),
                other => Err(self.src.bad_count(node.at, key, other.kind())),
            }
        }

        /// Looks members up by name, rejecting unknown and repeated keys; missing ones are `None`.
        fn members<'n, const N: usize>(
            &self,
            members: &'n [(String, usize, Node)],
            names: [&str; N],
        ) -> Result<[Option<&'n Node>; N], ReadError> {
            let mut found = [None; N];
            for (key, key_at, value) in members {
                let i = names
                    .iter()
                    .position(|n| n == key)
                    .ok_or_else(|| self.src.unknown(*key_at, key))?;
                if found[i].replace(value).is_some() {
                    return Err(self.src.duplicate(*key_at, key));
                }
            }
            Ok(found)
        }

        fn required<'n>(
            &self,
            node: Option<&'n Node>,
            parent: &Node,
            key: &str,
        ) -> Result<&'n Node, ReadError> {
            node.ok_or_else(|| self.src.missing(parent.at, key))
        }

        fn dump(&self, root: &Node) -> Result<Dump, ReadError> {
            let members = self.object(root, "the dump")?;
            // The version decides how everything else is read, so it is checked before any other key.
            let schema_node = members
                .iter()
                .find(|(k, _, _)| k == "schema")
                .map(|(_, _, v)| v);
            let schema_node = self.required(schema_node, root, "schema")?;
            let schema = match &schema_node.value {
                Value::Number(text) => self.src.schema(schema_node.at, text)?,
                other => return Err(self.src.version(schema_node.at, other.kind())),
            };
            let [_, lane, pid, wall_ns, totals, locks, threads] = self.members(
                members,
                [
                    "schema", "lane", "pid", "wall_ns", "totals", "locks", "threads",
                ],
            )?;
            let lane_node = self.required(lane, root, "lane")?;
            let Value::Str(lane) = &lane_node.value else {
                return Err(self.src.syntax(
                    lane_node.at,
                    format!(
                        "`lane` should be a string, found {}",
                        lane_node.value.kind()
                    ),
                ));
            };
            let pid_node = self.required(pid, root, "pid")?;
            let pid = self.count(pid_node, "pid")?;
            let pid = u32::try_from(pid)
                .map_err(|_| self.src.bad_count(pid_node.at, "pid", &pid.to_string()))?;
            let wall_ns = self.count(self.required(wall_ns, root, "wall_ns")?, "wall_ns")?;
            let mut counters = Counters::new();
            self.events(self.required(totals, root, "totals")?, &mut counters)?;
            self.locks(self.required(locks, root, "locks")?, &mut counters)?;
            let threads_node = self.required(threads, root, "threads")?;
            let Value::Array(items) = &threads_node.value else {
                return Err(self.src.syntax(
                    threads_node.at,
                    format!(
                        "`threads` should be an array, found {}",
                        threads_node.value.kind()
                    ),
                ));
            };
            let threads = items
                .iter()
                .map(|t| self.thread(t))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Dump {
                schema,
                lane: lane.clone(),
                pid,
                wall_ns,
                totals: counters.events,
                lock_totals: counters.locks,
                threads,
            })
        }

        fn thread(&self, node: &Node) -> Result<ThreadRow, ReadError> {
            let members = self.object(node, "a thread row")?;
            let [tid, events, locks] = self.members(members, ["tid", "events", "locks"])?;
            let tid = self.count(self.required(tid, node, "tid")?, "tid")?;
            let mut counters = Counters::new();
            self.events(self.required(events, node, "events")?, &mut counters)?;
            self.locks(self.required(locks, node, "locks")?, &mut counters)?;
            Ok(ThreadRow {
                tid,
                events: counters.events,
                locks: counters.locks,
            })
        }

        fn events(&self, node: &Node, into: &mut Counters) -> Result<(), ReadError> {
            for (key, key_at, value) in self.object(node, "an event table")? {
                let event = Event::from_key(key).ok_or_else(|| self.src.unknown(*key_at, key))?;
                if !into.set(Slot::Event(event), self.count(value, key)?) {
                    return Err(self.src.duplicate(*key_at, key));
                }
            }
            match Event::ALL.iter().find(|e| !into.seen_events[e.index()]) {
                Some(e) => Err(self.src.missing(node.at, e.key())),
                None => Ok(()),
            }
        }

        fn locks(&self, node: &Node, into: &mut Counters) -> Result<(), ReadError> {
            let mut seen_sites = [false; LockSite::COUNT];
            for (site_key, site_at, site_node) in self.object(node, "a lock table")? {
                let site = LockSite::from_key(site_key)
                    .ok_or_else(|| self.src.unknown(*site_at, site_key))?;
                if std::mem::replace(&mut seen_sites[site.index()], true) {
                    return Err(self.src.duplicate(*site_at, site_key));
                }
                let stats = self.object(site_node, "a lock site")?;
                for (stat_key, stat_at, value) in stats {
                    let full_key = format!("{site_key}.{stat_key}");
                    let stat = LockStat::from_key(stat_key)
                        .ok_or_else(|| self.src.unknown(*stat_at, &full_key))?;
                    if !into.set(Slot::Lock(site, stat), self.count(value, &full_key)?) {
                        return Err(self.src.duplicate(*stat_at, &full_key));
                    }
                }
                if let Some(stat) = LockStat::ALL
                    .iter()
                    .find(|t| !into.seen_locks[lock_slot(site, **t)])
                {
                    return Err(self
                        .src
                        .missing(site_node.at, &format!("{site_key}.{}", stat.key())));
                }
            }
            match LockSite::ALL.iter().find(|s| !seen_sites[s.index()]) {
                Some(s) => Err(self.src.missing(node.at, s.key())),
                None => Ok(()),
            }
        }
    }
}

mod csv {
    use super::*;

    /// One CSV field and the byte offset where it starts.
    struct Field {
        at: usize,
        text: String,
    }

    /// Splits the file into records, honouring quoted fields (which may hold `,`, `"` and line breaks).
    fn records(src: &Source) -> Result<Vec<Vec<Field>>, ReadError> {
        let bytes = src.bytes;
        if bytes.last() != Some(&b'\n') {
            return Err(src.truncated(bytes.len(), "the last line has no line break"));
        }
        let mut records = Vec::new();
        let mut record = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let start = at;
            let mut text = Vec::new();
            if bytes[at] == b'"' {
                at += 1;
                loop {
                    match bytes.get(at) {
                        None => {
                            return Err(src.truncated(at, "the file ends inside a quoted field"))
                        }
                        Some(b'"') if bytes.get(at + 1) == Some(&b'"') => {
                            text.push(b'"');
                            at += 2;
                        }
                        Some(b'"') => {
                            at += 1;
                            break;
                        }
                        Some(&b) => {
                            text.push(b);
                            at += 1;
                        }
                    }
                }
                if !matches!(bytes.get(at), Some(b',' | b'\n' | b'\r')) {
                    return Err(src.syntax(at, "text after a closing quote"));
                }
            } else {
                while let Some(&b) = bytes.get(at) {
                    match b {
                        b',' | b'\n' | b'\r' => break,
                        b'"' => return Err(src.syntax(at, "quote inside an unquoted field")),
                        _ => {
                            text.push(b);
                            at += 1;
                        }
                    }
                }
            }
            let text = String::from_utf8(text)
                .map_err(|_| src.syntax(start, "field is not valid UTF-8"))?;
            record.push(Field { at: start, text });
            match bytes.get(at) {
                Some(b',') => at += 1,
                Some(b'\r') if bytes.get(at + 1) == Some(&b'\n') => {
                    at += 2;
                    records.push(std::mem::take(&mut record));
                }
                Some(b'\n') => {
                    at += 1;
                    records.push(std::mem::take(&mut record));
                }
                _ => return Err(src.syntax(at, "stray carriage return")),
            }
        }
        Ok(records)
    }

    fn lock_key(site: LockSite, stat: LockStat) -> String {
        format!("{LOCK_KEY_PREFIX}{}.{}", site.key(), stat.key())
    }

    fn slot_for(key: &str) -> Option<Slot> {
        if let Some(e) = Event::from_key(key) {
            return Some(Slot::Event(e));
        }
        let rest = key.strip_prefix(LOCK_KEY_PREFIX)?;
        let (site, stat) = rest.split_once('.')?;
        Some(Slot::Lock(
            LockSite::from_key(site)?,
            LockStat::from_key(stat)?,
        ))
    }

    pub(super) fn parse(src: &Source) -> Result<Dump, ReadError> {
        let records = records(src)?;
        let Some((header, rows)) = records.split_first() else {
            return Err(src.truncated(0, "no header line"));
        };
        let header_text: Vec<&str> = header.iter().map(|f| f.text.as_str()).collect();
        if header_text.join(",") != CSV_HEADER {
            return Err(src.syntax(0, format!("the header should be `{CSV_HEADER}`")));
        }
        for row in rows {
            if row.len() != 4 {
                return Err(
                    src.syntax(row[0].at, format!("expected 4 fields, found {}", row.len()))
                );
            }
        }
        // The version decides how everything else is read, so it is checked before any other row.
        let schema_row = rows
            .iter()
            .find(|r| r[0].text == "meta" && r[2].text == "schema");
        let schema = match schema_row {
            Some(r) => src.schema(r[3].at, &r[3].text)?,
            None => return Err(src.missing(header[0].at, "schema")),
        };

        let mut meta: [Option<&Field>; 3] = [None; 3];
        const META_KEYS: [&str; 3] = ["lane", "pid", "wall_ns"];
        let mut totals = Counters::new();
        let mut threads: Vec<(u64, usize, Counters)> = Vec::new();
        let mut thread_index: HashMap<u64, usize> = HashMap::new();
        let mut seen_schema = false;
        let mut end = None;
        for (i, row) in rows.iter().enumerate() {
            let [scope, tid, key, value] = [&row[0], &row[1], &row[2], &row[3]];
            if scope.text != "thread" && !tid.text.is_empty() {
                return Err(src.syntax(tid.at, format!("`{}` rows have no tid", scope.text)));
            }
            match scope.text.as_str() {
                "meta" if key.text == "schema" => {
                    if std::mem::replace(&mut seen_schema, true) {
                        return Err(src.duplicate(key.at, "schema"));
                    }
                }
                "meta" => {
                    let i = META_KEYS
                        .iter()
                        .position(|k| *k == key.text)
                        .ok_or_else(|| src.unknown(key.at, &key.text))?;
                    if meta[i].replace(value).is_some() {
                        return Err(src.duplicate(key.at, &key.text));
                    }
                }
                "total" => {
                    let slot = slot_for(&key.text).ok_or_else(|| src.unknown(key.at, &key.text))?;
                    if !totals.set(slot, src.count(value.at, &key.text, &value.text)?) {
                        return Err(src.duplicate(key.at, &key.text));
                    }
                }
                "thread" => {
                    let tid_value = src.count(tid.at, "tid", &tid.text)?;
                    let slot = slot_for(&key.text).ok_or_else(|| src.unknown(key.at, &key.text))?;
                    let index = *thread_index.entry(tid_value).or_insert_with(|| {
                        threads.push((tid_value, scope.at, Counters::new()));
                        threads.len() - 1
                    });
                    if !threads[index]
                        .2
                        .set(slot, src.count(value.at, &key.text, &value.text)?)
                    {
                        return Err(
                            src.duplicate(key.at, &format!("{} (tid {tid_value})", key.text))
                        );
                    }
                }
                "end" => {
                    if key.text != "rows" {
                        return Err(src.unknown(key.at, &key.text));
                    }
                    let stated = src.count(value.at, "rows", &value.text)?;
                    if stated != i as u64 {
                        return Err(src.syntax(
                            value.at,
                            format!("the trailer counts {stated} rows, the file has {i}"),
                        ));
                    }
                    if i + 1 != rows.len() {
                        return Err(src.syntax(rows[i + 1][0].at, "rows after the `end` trailer"));
                    }
                    end = Some(scope.at);
                }
                other => {
                    return Err(src.syntax(
                        scope.at,
                        format!("unknown scope `{other}` (meta, total, thread, end)"),
                    ))
                }
            }
        }
        let Some(end_at) = end else {
            return Err(src.truncated(src.bytes.len(), "no `end,,rows,N` trailer"));
        };
        let [lane, pid, wall_ns] = meta;
        let lane = lane
            .ok_or_else(|| src.missing(end_at, "lane"))?
            .text
            .clone();
        let pid_field = pid.ok_or_else(|| src.missing(end_at, "pid"))?;
        let pid = src.count(pid_field.at, "pid", &pid_field.text)?;
        let pid =
            u32::try_from(pid).map_err(|_| src.bad_count(pid_field.at, "pid", &pid_field.text))?;
        let wall_field = wall_ns.ok_or_else(|| src.missing(end_at, "wall_ns"))?;
        let wall_ns = src.count(wall_field.at, "wall_ns", &wall_field.text)?;
        if let Some(key) = totals.first_missing(lock_key) {
            return Err(src.missing(end_at, &key));
        }
        let threads = threads
            .into_iter()
            .map(|(tid, first_at, c)| match c.first_missing(lock_key) {
                Some(key) => Err(src.missing(first_at, &format!("{key} (tid {tid})"))),
                None => Ok(ThreadRow {
                    tid,
                    events: c.events,
                    locks: c.locks,
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Dump {
            schema,
            lane,
            pid,
            wall_ns,
            totals: totals.events,
            lock_totals: totals.locks,
            threads,
        })
    }
}
