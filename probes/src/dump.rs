//! The no-allocation dump writer: one [`Snapshot`] to JSON or CSV through a [`Sink`].
//!
//! This runs inside the allocator (at exit, or from `hz3_probes_dump`), so it must not allocate,
//! must not panic, and must not pull in `core::fmt`: integers are formatted by hand into a stack
//! buffer, and bytes go to the sink through a small stack buffer so a file-descriptor sink sees a
//! few large writes instead of one per token.
//!
//! Both formats carry the same facts in the same, fixed order (catalogue order), so two dumps of
//! the same run are byte-identical and diffs of dumps are readable.
//!
//! JSON shape:
//! ```text
//! {"schema":1,"lane":"scale","pid":42,"wall_ns":1700000000000000000,
//!  "totals":{"malloc.cache_hit":10,...},
//!  "locks":{"central":{"acquire_uncontended":3,...},...},
//!  "threads":[{"tid":42,"events":{...},"locks":{...}},...]}
//! ```
//! (one key per line in the real file). Every event and every lock counter is always present.
//!
//! CSV shape: one table a spreadsheet opens as is, header `scope,tid,key,value`:
//! * `meta,,schema,1`, `meta,,lane,scale`, `meta,,pid,42`, `meta,,wall_ns,...` first;
//! * `total,,<event key>,n` for every event, then `total,,lock.<site>.<stat>,n` for every lock counter;
//! * `thread,<tid>,<key>,n` with the same keys, for each thread row;
//! * a last row `end,,rows,<number of rows before it, header excluded>` so a cut file is detected.
use crate::{Event, LockSite, LockStat, Sink, Snapshot, ThreadRow, LOCK_SLOTS, SCHEMA_VERSION};

/// Prefix of lock keys in the CSV (and in flat key listings): `lock.<site>.<stat>`.
pub const LOCK_KEY_PREFIX: &str = "lock.";

/// Header line of the CSV dump.
pub const CSV_HEADER: &str = "scope,tid,key,value";

const STAGING_BYTES: usize = 1024;

/// Collects small writes and hands them to the inner sink in chunks of up to `STAGING_BYTES`.
struct Staged<'s, S: Sink> {
    inner: &'s mut S,
    buf: [u8; STAGING_BYTES],
    len: usize,
}

impl<'s, S: Sink> Staged<'s, S> {
    fn new(inner: &'s mut S) -> Self {
        Staged {
            inner,
            buf: [0; STAGING_BYTES],
            len: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        if bytes.len() > STAGING_BYTES - self.len {
            self.flush();
        }
        if bytes.len() > STAGING_BYTES {
            self.inner.put(bytes);
            return;
        }
        // `get_mut` keeps the copy panic-free even if the arithmetic above were ever wrong.
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    fn str(&mut self, s: &str) {
        self.put(s.as_bytes());
    }

    fn u64(&mut self, n: u64) {
        let mut digits = [0u8; 20];
        self.put(decimal(n, &mut digits));
    }

    fn flush(&mut self) {
        if self.len > 0 {
            self.inner.put(self.buf.get(..self.len).unwrap_or(&[]));
            self.len = 0;
        }
    }
}

/// A JSON string literal; the lane is ours ("fast"/"scale") but escaping keeps any value valid.
fn json_string<S: Sink>(out: &mut Staged<'_, S>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put(b"\"");
    for &b in s.as_bytes() {
        match b {
            b'"' => out.put(b"\\\""),
            b'\\' => out.put(b"\\\\"),
            0..=0x1f => out.put(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]),
            _ => out.put(&[b]),
        }
    }
    out.put(b"\"");
}

/// A CSV field: quoted (quotes doubled) only when it holds a separator, quote or line break.
fn csv_field<S: Sink>(out: &mut Staged<'_, S>, s: &str) {
    if !s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.str(s);
        return;
    }
    out.put(b"\"");
    for &b in s.as_bytes() {
        if b == b'"' {
            out.put(b"\"\"");
        } else {
            out.put(&[b]);
        }
    }
    out.put(b"\"");
}

/// Opens one member of a JSON object written one member per line: the separator (none before the
/// first), the indent, the quoted key and the colon. The value follows.
fn json_member<S: Sink>(out: &mut Staged<'_, S>, first: bool, indent: &str, key: &str) {
    out.str(if first { "\n" } else { ",\n" });
    out.str(indent);
    out.str("  \"");
    out.str(key);
    out.str("\": ");
}

/// Closes an object opened with `{` whose members `json_member` wrote.
fn json_close<S: Sink>(out: &mut Staged<'_, S>, indent: &str) {
    out.str("\n");
    out.str(indent);
    out.put(b"}");
}

/// `n` in decimal, most significant digit first, written into the right of `buf` (u64::MAX has 20
/// digits); returns the digits. No allocation, no `core::fmt` (hz3's preload `.so` links neither),
/// and slots are walked with an iterator so no index can go out of bounds.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut used = 0;
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        used += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = buf.len() - used;
    buf.get(start..).unwrap_or(&[])
}

fn json_events<S: Sink>(out: &mut Staged<'_, S>, events: &[u64; Event::COUNT], indent: &str) {
    out.put(b"{");
    for (i, e) in Event::ALL.iter().enumerate() {
        json_member(out, i == 0, indent, e.key());
        out.u64(events[e.index()]);
    }
    json_close(out, indent);
}

fn json_locks<S: Sink>(out: &mut Staged<'_, S>, locks: &[u64; LOCK_SLOTS], indent: &str) {
    out.put(b"{");
    for (i, site) in LockSite::ALL.iter().enumerate() {
        json_member(out, i == 0, indent, site.key());
        out.put(b"{");
        for (j, stat) in LockStat::ALL.iter().enumerate() {
            out.str(if j == 0 { "\"" } else { ", \"" });
            out.str(stat.key());
            out.str("\": ");
            out.u64(locks[crate::lock_slot(*site, *stat)]);
        }
        out.put(b"}");
    }
    json_close(out, indent);
}

/// Writes `snap` as one JSON document (see the module docs for the shape), ending in a newline.
pub fn write_json<S: Sink>(sink: &mut S, snap: &Snapshot) {
    let mut out = Staged::new(sink);
    out.str("{\n  \"schema\": ");
    out.u64(SCHEMA_VERSION as u64);
    out.str(",\n  \"lane\": ");
    json_string(&mut out, snap.lane);
    out.str(",\n  \"pid\": ");
    out.u64(snap.pid as u64);
    out.str(",\n  \"wall_ns\": ");
    out.u64(snap.wall_ns);
    out.str(",\n  \"totals\": ");
    json_events(&mut out, snap.totals, "  ");
    out.str(",\n  \"locks\": ");
    json_locks(&mut out, snap.lock_totals, "  ");
    out.str(",\n  \"threads\": [");
    for (i, row) in snap.threads.iter().enumerate() {
        out.str(if i == 0 {
            "\n    {\"tid\": "
        } else {
            ",\n    {\"tid\": "
        });
        out.u64(row.tid);
        out.str(",\n     \"events\": ");
        json_events(&mut out, &row.events, "     ");
        out.str(",\n     \"locks\": ");
        json_locks(&mut out, &row.locks, "     ");
        out.str("}");
    }
    out.str(if snap.threads.is_empty() {
        "]\n}\n"
    } else {
        "\n  ]\n}\n"
    });
    out.flush();
}

/// Counts the data rows so the trailer can state how many there were.
struct CsvRows<'o, 's, S: Sink> {
    out: &'o mut Staged<'s, S>,
    rows: u64,
}

impl<S: Sink> CsvRows<'_, '_, S> {
    fn row(&mut self, scope: &str, tid: Option<u64>, key_parts: &[&str], value: u64) {
        self.out.str(scope);
        self.out.put(b",");
        if let Some(tid) = tid {
            self.out.u64(tid);
        }
        self.out.put(b",");
        for part in key_parts {
            self.out.str(part);
        }
        self.out.put(b",");
        self.out.u64(value);
        self.out.put(b"\n");
        self.rows += 1;
    }

    fn counters(
        &mut self,
        scope: &str,
        tid: Option<u64>,
        events: &[u64; Event::COUNT],
        locks: &[u64; LOCK_SLOTS],
    ) {
        for e in Event::ALL {
            self.row(scope, tid, &[e.key()], events[e.index()]);
        }
        for site in LockSite::ALL {
            for stat in LockStat::ALL {
                let parts = [LOCK_KEY_PREFIX, site.key(), ".", stat.key()];
                self.row(scope, tid, &parts, locks[crate::lock_slot(*site, *stat)]);
            }
        }
    }
}

/// Writes `snap` as one CSV table (see the module docs for the rows), ending in a newline.
pub fn write_csv<S: Sink>(sink: &mut S, snap: &Snapshot) {
    let mut out = Staged::new(sink);
    out.str(CSV_HEADER);
    out.put(b"\n");
    let mut rows = CsvRows {
        out: &mut out,
        rows: 0,
    };
    rows.row("meta", None, &["schema"], SCHEMA_VERSION as u64);
    rows.out.str("meta,,lane,");
    csv_field(rows.out, snap.lane);
    rows.out.put(b"\n");
    rows.rows += 1;
    rows.row("meta", None, &["pid"], snap.pid as u64);
    rows.row("meta", None, &["wall_ns"], snap.wall_ns);
    rows.counters("total", None, snap.totals, snap.lock_totals);
    for ThreadRow { tid, events, locks } in snap.threads {
        rows.counters("thread", Some(*tid), events, locks);
    }
    let count = rows.rows;
    rows.row("end", None, &["rows"], count);
    out.flush();
}

#[cfg(all(test, feature = "reader"))]
mod tests {
    use super::*;

    #[test]
    fn decimal_digits() {
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(4096, &mut buf), b"4096");
        assert_eq!(decimal(u64::MAX, &mut buf), b"18446744073709551615");
    }

    /// A sink that records each `put` separately, to check the staging.
    struct Chunks(std::vec::Vec<std::vec::Vec<u8>>);
    impl Sink for Chunks {
        fn put(&mut self, bytes: &[u8]) {
            self.0.push(bytes.to_vec());
        }
    }

    /// Counters with distinct values (and one u64::MAX) and two thread rows.
    struct Sample {
        totals: [u64; Event::COUNT],
        locks: [u64; LOCK_SLOTS],
        threads: std::vec::Vec<ThreadRow>,
    }

    impl Sample {
        fn snapshot<'a>(&'a self, lane: &'a str) -> Snapshot<'a> {
            Snapshot {
                lane,
                pid: 7,
                wall_ns: 12,
                totals: &self.totals,
                lock_totals: &self.locks,
                threads: &self.threads,
            }
        }
    }

    fn sample() -> Sample {
        let mut totals = [0u64; Event::COUNT];
        let mut locks = [0u64; LOCK_SLOTS];
        for (i, t) in totals.iter_mut().enumerate() {
            *t = (i as u64) * 1_000_003;
        }
        totals[0] = u64::MAX;
        for (i, l) in locks.iter_mut().enumerate() {
            *l = i as u64 + 7;
        }
        let row = ThreadRow {
            tid: 99,
            events: totals,
            locks,
        };
        Sample {
            totals,
            locks,
            threads: std::vec![row, ThreadRow { tid: 100, ..row }],
        }
    }

    fn json_of(snap: &Snapshot) -> serde_json::Value {
        let mut out = std::vec::Vec::new();
        write_json(&mut out, snap);
        serde_json::from_slice(&out).expect("valid JSON")
    }

    #[test]
    fn json_is_valid_and_carries_every_key() {
        let sample = sample();
        let snap = sample.snapshot("sc\"ale\n");
        let v = json_of(&snap);
        assert_eq!(v["schema"], SCHEMA_VERSION);
        assert_eq!(v["lane"], "sc\"ale\n");
        assert_eq!(v["totals"]["malloc.cache_hit"], u64::MAX);
        assert_eq!(v["totals"].as_object().unwrap().len(), Event::COUNT);
        assert_eq!(v["locks"]["large"]["futex_wakes"], LOCK_SLOTS as u64 + 6);
        assert_eq!(v["threads"][1]["tid"], 100);
        assert_eq!(
            v["threads"][1]["locks"]["central"]["acquire_uncontended"],
            7
        );
    }

    #[test]
    fn empty_thread_list_is_valid_json() {
        let totals = [0u64; Event::COUNT];
        let locks = [0u64; LOCK_SLOTS];
        let snap = Snapshot {
            lane: "fast",
            pid: 1,
            wall_ns: 0,
            totals: &totals,
            lock_totals: &locks,
            threads: &[],
        };
        let v = json_of(&snap);
        assert_eq!(v["threads"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn csv_rows_and_trailer_agree() {
        let sample = sample();
        let snap = sample.snapshot("a,b");
        let mut out = std::vec::Vec::new();
        write_csv(&mut out, &snap);
        let text = std::string::String::from_utf8(out).unwrap();
        let lines: std::vec::Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines[2], "meta,,lane,\"a,b\"");
        let per_scope = Event::COUNT + LOCK_SLOTS;
        let data_rows = 4 + per_scope * 3;
        assert_eq!(lines.len(), 1 + data_rows + 1);
        assert_eq!(
            *lines.last().unwrap(),
            std::format!("end,,rows,{data_rows}")
        );
        assert!(text.contains("\nthread,100,lock.large.futex_wakes,"));
    }

    #[test]
    fn staging_batches_small_writes() {
        let sample = sample();
        let snap = sample.snapshot("scale");
        let mut chunks = Chunks(std::vec::Vec::new());
        write_json(&mut chunks, &snap);
        let mut whole = std::vec::Vec::new();
        write_json(&mut whole, &snap);
        assert!(chunks.0.iter().all(|c| c.len() <= STAGING_BYTES));
        assert!(
            chunks.0.len() < whole.len() / 100,
            "{} puts for {} bytes",
            chunks.0.len(),
            whole.len()
        );
        assert_eq!(chunks.0.concat(), whole);
    }
}
