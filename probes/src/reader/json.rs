//! The JSON dump parser: a hand-written recursive descent over the bytes, so each rejection names
//! its `file:line:column`.

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
        let counters = self.scope(schema, root, (totals, "totals"), locks)?;
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
            .map(|t| self.thread(schema, t))
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

    fn thread(&self, schema: u32, node: &Node) -> Result<ThreadRow, ReadError> {
        let members = self.object(node, "a thread row")?;
        let [tid, events, locks] = self.members(members, ["tid", "events", "locks"])?;
        let tid = self.count(self.required(tid, node, "tid")?, "tid")?;
        let counters = self.scope(schema, node, (events, "events"), locks)?;
        Ok(ThreadRow {
            tid,
            events: counters.events,
            locks: counters.locks,
        })
    }

    /// One scope's counters (the totals or a thread row) from `parent`'s event table, named by
    /// `events.1`, and its `locks` table; both must be there.
    fn scope(
        &self,
        schema: u32,
        parent: &Node,
        events: (Option<&Node>, &str),
        locks: Option<&Node>,
    ) -> Result<Counters, ReadError> {
        let mut counters = Counters::new(schema);
        self.events(self.required(events.0, parent, events.1)?, &mut counters)?;
        self.locks(self.required(locks, parent, "locks")?, &mut counters)?;
        Ok(counters)
    }

    fn events(&self, node: &Node, into: &mut Counters) -> Result<(), ReadError> {
        for (key, key_at, value) in self.object(node, "an event table")? {
            let slot =
                event_slot(into.schema, key).ok_or_else(|| self.src.unknown(*key_at, key))?;
            if !into.set(slot, self.count(value, key)?) {
                return Err(self.src.duplicate(*key_at, key));
            }
        }
        match into.first_missing_event() {
            Some(e) => Err(self.src.missing(node.at, e.key())),
            None => Ok(()),
        }
    }

    fn locks(&self, node: &Node, into: &mut Counters) -> Result<(), ReadError> {
        let mut seen_sites = [false; LockSite::COUNT];
        for (site_key, site_at, site_node) in self.object(node, "a lock table")? {
            let site =
                LockSite::from_key(site_key).ok_or_else(|| self.src.unknown(*site_at, site_key))?;
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
