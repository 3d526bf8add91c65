//! The reader never panics: random bytes, damaged real dumps, and round trips of random snapshots.
#![cfg(feature = "reader")]
use probes::reader::{parse, ReadError};
use probes::{write_csv, write_json, Event, Snapshot, ThreadRow, LOCK_SLOTS};
use proptest::prelude::*;
use std::path::Path;

fn arb_counts<const N: usize>() -> impl Strategy<Value = [u64; N]> {
    proptest::collection::vec(prop_oneof![Just(0u64), 0u64..1000, any::<u64>()], N)
        .prop_map(|v| v.try_into().expect("length N"))
}

fn arb_thread() -> impl Strategy<Value = ThreadRow> {
    (
        any::<u64>(),
        arb_counts::<{ Event::COUNT }>(),
        arb_counts::<LOCK_SLOTS>(),
    )
        .prop_map(|(tid, events, locks)| ThreadRow { tid, events, locks })
}

/// Random dump contents: any lane text (quotes, commas, line breaks, non-ASCII), any counts.
fn arb_dump() -> impl Strategy<Value = probes::reader::Dump> {
    (
        any::<String>(),
        any::<u32>(),
        any::<u64>(),
        arb_counts::<{ Event::COUNT }>(),
        arb_counts::<LOCK_SLOTS>(),
        proptest::collection::vec(arb_thread(), 0..4),
    )
        .prop_map(|(lane, pid, wall_ns, totals, lock_totals, threads)| {
            // Distinct tids: the CSV keys a thread row by its tid.
            let mut seen = std::collections::HashSet::new();
            let threads = threads.into_iter().filter(|t| seen.insert(t.tid)).collect();
            probes::reader::Dump {
                schema: probes::SCHEMA_VERSION,
                lane,
                pid,
                wall_ns,
                totals,
                lock_totals,
                threads,
            }
        })
}

fn render(snap: &Snapshot, csv: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if csv {
        write_csv(&mut out, snap);
    } else {
        write_json(&mut out, snap);
    }
    out
}

/// Every rejection but an I/O one must say where.
fn assert_positioned(result: Result<probes::reader::Dump, ReadError>) {
    if let Err(e) = result {
        let pos = e.position().expect("parse errors carry a position");
        assert!(pos.line >= 1 && pos.column >= 1, "{e}");
        assert!(e.to_string().starts_with("dump.bin:"), "{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_json_and_csv(dump in arb_dump(), csv in any::<bool>()) {
        let bytes = render(&dump.snapshot(), csv);
        let name = if csv { "d.csv" } else { "d.json" };
        let back = parse(&bytes, Path::new(name)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, dump);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        assert_positioned(parse(&bytes, Path::new("dump.bin")));
    }

    #[test]
    fn random_text_with_json_or_csv_start_never_panics(
        body in "[ -~\n]{0,300}", csv in any::<bool>()
    ) {
        let text = if csv { format!("scope,tid,key,value\n{body}") } else { format!("{{{body}") };
        assert_positioned(parse(text.as_bytes(), Path::new("dump.bin")));
    }

    #[test]
    fn damaged_dumps_never_panic(
        dump in arb_dump(),
        csv in any::<bool>(),
        cut in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = render(&dump.snapshot(), csv);
        for (at, byte, kind) in edits {
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
            if bytes.is_empty() { break; }
        }
        assert_positioned(parse(&bytes, Path::new("dump.bin")));
        if !bytes.is_empty() {
            let cut = cut.index(bytes.len());
            assert_positioned(parse(&bytes[..cut], Path::new("dump.bin")));
        }
    }

    #[test]
    fn every_proper_prefix_is_rejected_as_truncated_or_corrupt(dump in arb_dump(), csv in any::<bool>(), cut in any::<prop::sample::Index>()) {
        let bytes = render(&dump.snapshot(), csv);
        let cut = cut.index(bytes.len());
        // Only the final newline may go without losing anything a reader needs (JSON).
        prop_assume!(cut < bytes.len() - 1 || csv);
        let err = parse(&bytes[..cut], Path::new("dump.bin")).expect_err("a cut dump must not parse");
        prop_assert!(err.position().is_some());
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let text = "[".repeat(100_000);
    let err = parse(text.as_bytes(), Path::new("deep.json")).unwrap_err();
    assert!(matches!(err, ReadError::Syntax { .. }), "{err}");
}
