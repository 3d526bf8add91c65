//! The probes reader on checked-in fixtures: the valid dumps round-trip, and each kind of damage
//! gets its own error with the file name and the exact position of the damage.
//!
//! The fixtures are produced by the writer itself (`HZ3_UPDATE_FIXTURES=1 cargo test -p hz3-analyze
//! --test probes_reader` rewrites them); without that variable this test fails when the writer and
//! the checked-in files drift apart.
use probes::reader::{parse, read, Dump, Position, ReadError};
use probes::{
    first_version_with, lock_slot, write_csv, write_json, Event, LockSite, LockStat, ThreadRow,
    ADDED_EVENT_KEYS, LOCK_SLOTS, SCHEMA_VERSION,
};
use std::path::{Path, PathBuf};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probes")
}

/// A small, deterministic dump: some counters zero (so tables have something to omit), two threads.
pub fn sample_dump() -> Dump {
    let mut totals = [0u64; Event::COUNT];
    for (i, t) in totals.iter_mut().enumerate() {
        *t = if i % 5 == 4 {
            0
        } else {
            (i as u64 + 1) * 1000 + i as u64
        };
    }
    let mut locks = [0u64; LOCK_SLOTS];
    let central = |s| lock_slot(LockSite::Central, s);
    locks[central(LockStat::Uncontended)] = 9000;
    locks[central(LockStat::Spun)] = 700;
    locks[central(LockStat::SpinIters)] = 21000;
    locks[central(LockStat::Waited)] = 300;
    locks[central(LockStat::WaitNs)] = 1_500_000;
    locks[central(LockStat::Wakes)] = 290;
    locks[lock_slot(LockSite::PageSource, LockStat::Uncontended)] = 12;
    let half = |v: &[u64]| -> Vec<u64> { v.iter().map(|x| x / 2).collect() };
    let row = |tid, first: bool| ThreadRow {
        tid,
        events: half(&totals).try_into().unwrap(),
        locks: if first {
            half(&locks).try_into().unwrap()
        } else {
            [0; LOCK_SLOTS]
        },
    };
    Dump {
        schema: SCHEMA_VERSION,
        lane: "scale".into(),
        pid: 4242,
        wall_ns: 1_764_028_800_123_456_789,
        totals,
        lock_totals: locks,
        threads: vec![row(4242, true), row(4243, false)],
    }
}

fn render(dump: &Dump, csv: bool) -> String {
    let mut out = Vec::new();
    if csv {
        write_csv(&mut out, &dump.snapshot());
    } else {
        write_json(&mut out, &dump.snapshot());
    }
    String::from_utf8(out).unwrap()
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "fixture recipe: `{from}` not in the dump"
    );
    text.replacen(from, to, 1)
}

fn remove_line_containing(text: &str, needle: &str) -> String {
    let start = text.find(needle).expect("needle in dump");
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = start + text[start..].find('\n').unwrap() + 1;
    format!("{}{}", &text[..line_start], &text[line_end..])
}

/// The schema line of a dump of `version`, as the writer spells it in each format.
fn schema_line(csv: bool, version: u32) -> String {
    if csv {
        format!("meta,,schema,{version}\n")
    } else {
        format!("\"schema\": {version},")
    }
}

/// A current dump rewritten as version `version` wrote it: its schema number, and without the
/// events later versions added (totals and every thread; the CSV's row count follows).
fn as_of_version(text: &str, csv: bool, version: u32) -> String {
    let text = replace_once(
        text,
        &schema_line(csv, SCHEMA_VERSION),
        &schema_line(csv, version),
    );
    let later: Vec<String> = ADDED_EVENT_KEYS
        .iter()
        .filter(|(_, v)| *v > version)
        .map(|(k, _)| {
            if csv {
                format!(",{k},")
            } else {
                format!("\"{k}\": ")
            }
        })
        .collect();
    let kept: String = text
        .split_inclusive('\n')
        .filter(|line| !later.iter().any(|k| line.contains(k.as_str())))
        .collect();
    if !csv {
        return kept;
    }
    // The CSV's last line counts the rows between the header and itself.
    let rows = |t: &str| t.lines().count() - 2;
    replace_once(
        &kept,
        &format!("end,,rows,{}", rows(&text)),
        &format!("end,,rows,{}", rows(&kept)),
    )
}

/// The sample dump as a reader gives back a version-`version` file of it: the events that version
/// lacked read as 0.
fn sample_dump_as_of(version: u32) -> Dump {
    let mut dump = sample_dump();
    dump.schema = version;
    for e in Event::ALL
        .iter()
        .filter(|e| first_version_with(**e) > version)
    {
        dump.totals[e.index()] = 0;
        for t in &mut dump.threads {
            t.events[e.index()] = 0;
        }
    }
    dump
}

/// Every fixture: name and content, all derived from the sample dump.
fn fixtures() -> Vec<(&'static str, String)> {
    let dump = sample_dump();
    let json = render(&dump, false);
    let csv = render(&dump, true);
    let miss = dump.event(Event::MallocCacheMiss);
    let json_miss = format!("\"malloc.cache_miss\": {miss}");
    let csv_miss = format!("total,,malloc.cache_miss,{miss}\n");
    // A version-1 dump: the same counts, less the events added since, plus a retired
    // owner-routing event in the totals.
    let retired = probes::RETIRED_EVENT_KEYS[0];
    let json_v1 = replace_once(
        &as_of_version(&json, false, 1),
        "\"malloc.cache_hit\"",
        &format!("\"{retired}\": 7,\n    \"malloc.cache_hit\""),
    );
    let csv_v1 = {
        let text = as_of_version(&csv, true, 1);
        let rows = text.lines().count() - 2;
        replace_once(
            &replace_once(
                &text,
                "total,,malloc.cache_hit,",
                &format!("total,,{retired},7\ntotal,,malloc.cache_hit,"),
            ),
            &format!("end,,rows,{rows}"),
            &format!("end,,rows,{}", rows + 1),
        )
    };
    let csv_rows = csv.lines().count() - 2;
    let newer = SCHEMA_VERSION + 1;
    vec![
        ("retired_v1.json", json_v1),
        ("retired_v1.csv", csv_v1),
        ("previous_v2.json", as_of_version(&json, false, 2)),
        ("previous_v2.csv", as_of_version(&csv, true, 2)),
        ("valid.json", json.clone()),
        ("valid.csv", csv.clone()),
        ("truncated.json", json[..json.len() / 2].to_string()),
        (
            "syntax.json",
            replace_once(&json, ",\n  \"wall_ns\"", "\n  \"wall_ns\""),
        ),
        (
            "version.json",
            replace_once(
                &json,
                &schema_line(false, SCHEMA_VERSION),
                &schema_line(false, newer),
            ),
        ),
        (
            "unknown_key.json",
            replace_once(&json, "\"malloc.cache_miss\"", "\"malloc.cache_mess\""),
        ),
        (
            "missing_key.json",
            remove_line_containing(&json, "\"free.local\""),
        ),
        (
            "duplicate_key.json",
            replace_once(&json, "\"free.local\"", "\"malloc.cache_hit\""),
        ),
        (
            "negative.json",
            replace_once(
                &json,
                &json_miss,
                &format!("\"malloc.cache_miss\": -{miss}"),
            ),
        ),
        (
            "fraction.json",
            replace_once(
                &json,
                &json_miss,
                &format!("\"malloc.cache_miss\": {miss}.5"),
            ),
        ),
        ("truncated.csv", csv[..csv.len() / 2].to_string()),
        ("truncated_rows.csv", {
            let cut = csv[..csv.len() / 2].rfind('\n').unwrap() + 1;
            csv[..cut].to_string()
        }),
        (
            "syntax.csv",
            replace_once(&csv, &csv_miss, "total,,malloc.cache_miss\n"),
        ),
        (
            "version.csv",
            replace_once(
                &csv,
                &schema_line(true, SCHEMA_VERSION),
                &schema_line(true, newer),
            ),
        ),
        (
            "unknown_key.csv",
            replace_once(
                &csv,
                &csv_miss,
                &csv_miss.replace("cache_miss", "cache_mess"),
            ),
        ),
        ("missing_key.csv", {
            let text = remove_line_containing(&csv, "total,,free.local,");
            replace_once(
                &text,
                &format!("end,,rows,{csv_rows}"),
                &format!("end,,rows,{}", csv_rows - 1),
            )
        }),
        (
            "negative.csv",
            replace_once(
                &csv,
                &csv_miss,
                &format!("total,,malloc.cache_miss,-{miss}\n"),
            ),
        ),
        (
            "fraction.csv",
            replace_once(
                &csv,
                &csv_miss,
                &format!("total,,malloc.cache_miss,{miss}.5\n"),
            ),
        ),
    ]
}

#[test]
fn fixtures_match_the_writer() {
    let dir = fixture_dir();
    let update = std::env::var_os("HZ3_UPDATE_FIXTURES").is_some();
    for (name, content) in fixtures() {
        let path = dir.join(name);
        if update {
            std::fs::write(&path, &content).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with HZ3_UPDATE_FIXTURES=1)", path.display()));
        assert!(
            on_disk == content,
            "{} is stale: rerun with HZ3_UPDATE_FIXTURES=1",
            path.display()
        );
    }
}

#[test]
fn valid_fixtures_round_trip() {
    let expected = sample_dump();
    for name in ["valid.json", "valid.csv"] {
        let path = fixture_dir().join(name);
        let dump = read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dump, expected, "{name}");
        // Writing the read dump again gives the file back byte for byte.
        let again = render(&dump, name.ends_with(".csv"));
        assert_eq!(again, std::fs::read_to_string(&path).unwrap(), "{name}");
    }
}

fn position_of_offset(text: &str, at: usize) -> Position {
    let line = 1 + text[..at].matches('\n').count();
    Position {
        line,
        column: 1 + at - text[..at].rfind('\n').map_or(0, |i| i + 1),
    }
}

/// 1-based line and column of the first occurrence of `needle` (plus `skip` bytes) in `text`.
fn position_of(text: &str, needle: &str, skip: usize) -> Position {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in fixture"))
        + skip;
    position_of_offset(text, at)
}

fn end_position(text: &str) -> Position {
    position_of_offset(text, text.len())
}

fn read_fixture(name: &str) -> (String, ReadError) {
    let path = fixture_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let err = read(&path).expect_err(name);
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}:", path.display())),
        "{name}: message must name the file: {msg}"
    );
    let pos = err.position().expect("positioned");
    assert!(
        msg.contains(&format!(":{pos}:")),
        "{name}: message must carry the position: {msg}"
    );
    (text, err)
}

#[test]
fn truncated_files_are_reported_at_their_end() {
    for name in ["truncated.json", "truncated.csv", "truncated_rows.csv"] {
        let (text, err) = read_fixture(name);
        assert!(matches!(err, ReadError::Truncated { .. }), "{name}: {err}");
        assert_eq!(err.position(), Some(end_position(&text)), "{name}: {err}");
    }
}

#[test]
fn syntax_errors_point_at_the_bad_token() {
    let (text, err) = read_fixture("syntax.json");
    assert!(matches!(err, ReadError::Syntax { .. }), "{err}");
    assert_eq!(err.position(), Some(position_of(&text, "\"wall_ns\"", 0)));
    let (text, err) = read_fixture("syntax.csv");
    assert!(matches!(err, ReadError::Syntax { .. }), "{err}");
    assert_eq!(
        err.position(),
        Some(position_of(&text, "total,,malloc.cache_miss\n", 0))
    );
}

#[test]
fn wrong_version_is_named_with_its_value() {
    let newer = (SCHEMA_VERSION + 1).to_string();
    let (text, err) = read_fixture("version.json");
    assert!(
        matches!(&err, ReadError::Version { found, .. } if *found == newer),
        "{err}"
    );
    assert_eq!(
        err.position(),
        Some(position_of(&text, &format!("\"schema\": {newer}"), 10))
    );
    let (text, err) = read_fixture("version.csv");
    assert!(
        matches!(&err, ReadError::Version { found, .. } if *found == newer),
        "{err}"
    );
    assert_eq!(
        err.position(),
        Some(position_of(&text, &format!("meta,,schema,{newer}"), 13))
    );
}

#[test]
fn an_older_dump_reads_the_events_added_since_as_zero_and_may_not_hold_them() {
    let expected = sample_dump_as_of(2);
    assert_eq!(expected.event(Event::TransferForeign), 0);
    assert_ne!(sample_dump().event(Event::TransferForeign), 0);
    for (name, csv) in [("previous_v2.json", false), ("previous_v2.csv", true)] {
        let path = fixture_dir().join(name);
        let dump = read(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dump, expected, "{name}");
        let text = std::fs::read_to_string(&path).unwrap();
        // The same file claiming the current version lacks a key that version must hold.
        let current = replace_once(
            &text,
            &schema_line(csv, 2),
            &schema_line(csv, SCHEMA_VERSION),
        );
        let err = parse(current.as_bytes(), Path::new(name)).unwrap_err();
        assert!(
            matches!(&err, ReadError::MissingKey { key, .. } if key == "transfer.foreign"),
            "{name}: {err}"
        );
    }
    // A version-2 dump holding an event version 3 added: a key that version never wrote.
    let json = render(&sample_dump(), false);
    let v2 = replace_once(
        &json,
        &schema_line(false, SCHEMA_VERSION),
        &schema_line(false, 2),
    );
    let err = parse(v2.as_bytes(), Path::new("v2.json")).unwrap_err();
    assert!(
        matches!(&err, ReadError::UnknownKey { key, .. } if key == "transfer.foreign"),
        "{err}"
    );
    assert_eq!(
        err.position(),
        Some(position_of(&v2, "\"transfer.foreign\"", 0))
    );
}

#[test]
fn a_version_1_dump_reads_without_its_retired_events_which_a_current_one_may_not_hold() {
    let expected = sample_dump_as_of(1);
    for name in ["retired_v1.json", "retired_v1.csv"] {
        let dump = read(fixture_dir().join(name)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dump, expected, "{name}");
    }
    let retired = probes::RETIRED_EVENT_KEYS[0];
    let quoted = format!("\"{retired}\"");
    for (name, from, to, key_at) in [
        (
            "retired_v1.json",
            "\"schema\": 1,",
            "\"schema\": 2,",
            quoted.as_str(),
        ),
        (
            "retired_v1.csv",
            "meta,,schema,1\n",
            "meta,,schema,2\n",
            retired,
        ),
    ] {
        let text = std::fs::read_to_string(fixture_dir().join(name)).unwrap();
        let current = replace_once(&text, from, to);
        let err = parse(current.as_bytes(), Path::new(name)).unwrap_err();
        assert!(
            matches!(&err, ReadError::UnknownKey { key, .. } if key == retired),
            "{name}: {err}"
        );
        assert_eq!(err.position(), Some(position_of(&current, key_at, 0)));
    }
}

#[test]
fn unknown_keys_are_named_where_they_stand() {
    let (text, err) = read_fixture("unknown_key.json");
    assert!(
        matches!(&err, ReadError::UnknownKey { key, .. } if key == "malloc.cache_mess"),
        "{err}"
    );
    assert_eq!(
        err.position(),
        Some(position_of(&text, "\"malloc.cache_mess\"", 0))
    );
    let (text, err) = read_fixture("unknown_key.csv");
    assert!(
        matches!(&err, ReadError::UnknownKey { key, .. } if key == "malloc.cache_mess"),
        "{err}"
    );
    assert_eq!(
        err.position(),
        Some(position_of(&text, "malloc.cache_mess", 0))
    );
}

#[test]
fn missing_and_duplicate_keys_are_named() {
    let (text, err) = read_fixture("missing_key.json");
    assert!(
        matches!(&err, ReadError::MissingKey { key, .. } if key == "free.local"),
        "{err}"
    );
    // The table that lacks it: the totals object.
    assert_eq!(
        err.position(),
        Some(position_of(&text, "\"totals\": {", 10))
    );
    let (text, err) = read_fixture("missing_key.csv");
    assert!(
        matches!(&err, ReadError::MissingKey { key, .. } if key == "free.local"),
        "{err}"
    );
    assert_eq!(err.position(), Some(position_of(&text, "end,,rows,", 0)));
    let (text, err) = read_fixture("duplicate_key.json");
    assert!(
        matches!(&err, ReadError::DuplicateKey { key, .. } if key == "malloc.cache_hit"),
        "{err}"
    );
    // The second occurrence is the one reported.
    let first = text.find("\"malloc.cache_hit\"").unwrap() + 1;
    let second = text[first..].find("\"malloc.cache_hit\"").unwrap() + first;
    assert_eq!(err.position(), Some(position_of_offset(&text, second)));
}

#[test]
fn negative_and_fractional_counts_are_refused() {
    let miss = sample_dump().event(Event::MallocCacheMiss);
    for (name, bad) in [
        ("negative.json", format!("-{miss}")),
        ("fraction.json", format!("{miss}.5")),
        ("negative.csv", format!("-{miss}")),
        ("fraction.csv", format!("{miss}.5")),
    ] {
        let (text, err) = read_fixture(name);
        assert!(
            matches!(&err, ReadError::BadCount { key, text, .. } if key == "malloc.cache_miss" && *text == bad),
            "{name}: {err}"
        );
        let needle = if name.ends_with(".json") {
            format!(": {bad}")
        } else {
            format!(",{bad}")
        };
        assert_eq!(
            err.position(),
            Some(position_of(
                &text,
                &needle,
                if name.ends_with(".json") { 2 } else { 1 }
            )),
            "{name}"
        );
    }
}

#[test]
fn empty_and_foreign_files_are_refused() {
    let err = parse(b"", Path::new("empty.json")).unwrap_err();
    assert!(matches!(err, ReadError::Truncated { .. }), "{err}");
    let err = parse(b"hello world\n", Path::new("notes.txt")).unwrap_err();
    assert!(matches!(err, ReadError::Syntax { .. }), "{err}");
    let err = read(fixture_dir().join("does-not-exist.json")).unwrap_err();
    assert!(
        matches!(err, ReadError::Io { .. }) && err.to_string().contains("does-not-exist.json"),
        "{err}"
    );
}
