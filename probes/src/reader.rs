//! Reads a dump written by [`crate::dump`] back, for `hz3-analyze`.
//!
//! Both parsers are written by hand over the raw bytes so every rejection can say exactly where
//! it happened (`file:line:column`) and what kind of damage it is: a cut-off file, broken syntax,
//! a dump from another schema version, a key the catalogue does not know (or one it lacks, or one
//! given twice), or a count that is not a non-negative integer. No input makes them panic; nesting
//! depth is bounded so hostile input cannot exhaust the stack.
use crate::dump::{CSV_HEADER, LOCK_KEY_PREFIX};
use crate::{
    first_version_with, lock_slot, Event, LockSite, LockStat, Snapshot, ThreadRow, LOCK_SLOTS,
    RETIRED_EVENT_KEYS, SCHEMA_VERSION,
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
    #[error("{}:{pos}: probes dump has schema version {found}, this reader understands versions {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION}", path.display())]
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
            Ok(v)
                if (OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&v)
                    && text.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Ok(v)
            }
            _ => Err(self.version(at, text)),
        }
    }
}

/// The oldest dump version this reader reads: version 1 differs only by the retired events.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// Every counter key of one scope (events, then locks) and where its value goes.
#[derive(Clone, Copy)]
enum Slot {
    Event(Event),
    Lock(LockSite, LockStat),
    /// A retired event in a version-1 dump: its count is checked, then dropped.
    Retired,
}

/// The slot of event key `key` in a dump of version `schema`; `None` for a key it cannot hold (one
/// no version had, or one a later version added).
fn event_slot(schema: u32, key: &str) -> Option<Slot> {
    match Event::from_key(key) {
        Some(e) if first_version_with(e) <= schema => Some(Slot::Event(e)),
        Some(_) => None,
        None if schema == 1 && RETIRED_EVENT_KEYS.contains(&key) => Some(Slot::Retired),
        None => None,
    }
}

/// Collects one scope's counters (totals or one thread), tracking which keys were seen.
struct Counters {
    schema: u32,
    events: [u64; Event::COUNT],
    locks: [u64; LOCK_SLOTS],
    seen_events: [bool; Event::COUNT],
    seen_locks: [bool; LOCK_SLOTS],
}

impl Counters {
    fn new(schema: u32) -> Self {
        Counters {
            schema,
            events: [0; Event::COUNT],
            locks: [0; LOCK_SLOTS],
            seen_events: [false; Event::COUNT],
            seen_locks: [false; LOCK_SLOTS],
        }
    }

    /// Records a value; `false` when the key was already set.
    fn set(&mut self, slot: Slot, value: u64) -> bool {
        let (seen, cell) = match slot {
            Slot::Retired => return true,
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

    /// The first event a dump of this version must hold and did not: an older dump predates the
    /// events later versions added, which read as 0 there.
    fn first_missing_event(&self) -> Option<Event> {
        Event::ALL
            .iter()
            .copied()
            .find(|e| !self.seen_events[e.index()] && first_version_with(*e) <= self.schema)
    }

    /// The key (as written in the file, given `lock_key`'s spelling) of the first counter never set.
    fn first_missing(&self, lock_key: impl Fn(LockSite, LockStat) -> String) -> Option<String> {
        if let Some(e) = self.first_missing_event() {
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

mod csv;
mod json;
