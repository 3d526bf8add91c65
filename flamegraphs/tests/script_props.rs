//! Property tests of the strict `perf script` reader and of the whole text → profile path:
//! random and mutated text never panics, and every rejection names a line that exists.
use flamegraphs::script;
use proptest::prelude::*;

const VALID: &str = "\
hz3-bench 10/11 100.000000100: 200040 cpu-clock:
\t7f0000001000 hz3::central::Central::pop (/x/libhz3_scale.so)
\t7f0000002000 malloc (inlined)
\t55000000a000 bench::workload::worker (/x/hz3-bench)

hz3-bench 10/11 100.000000200: 1 sched:sched_switch: prev_comm=hz3-bench prev_pid=11 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
\tffffffff81000000 __schedule ([kernel.kallsyms])
\tffffffff81000100 futex_wait ([kernel.kallsyms])
\t55000000a000 bench::workload::worker (/x/hz3-bench)

hz3-bench 10/12 100.000000300: 200040 cpu-clock:
\t7f0000003000 _ZN3hz36remote5flush17h0123456789abcdefE (/x/libhz3_scale.so)

";

fn check(text: &str) {
    let lines = text.split_inclusive('\n').count().max(1);
    match flamegraphs::from_script(text.as_bytes()) {
        Ok(p) => assert!(p.samples > 0),
        Err(e) => assert!(
            e.line >= 1 && e.line <= lines,
            "line {} of {lines}: {e}",
            e.line
        ),
    }
    if let Err(e) = script::parse(text.as_bytes(), |_| Ok(())) {
        assert!(e.line >= 1 && e.line <= lines);
    }
}

#[test]
fn the_valid_sample_reads() {
    let p = flamegraphs::from_script(VALID.as_bytes()).unwrap();
    assert_eq!((p.samples, p.switches), (2, 1));
    assert!(p.cpu.stacks.contains_key("hz3-bench;hz3::remote::flush"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    // \PC draws Unicode spaces too: this found the PID/TID scan that stood still on U+2000
    // (regression test in script.rs).
    #[test]
    fn random_text_never_panics(text in "(\\PC|\\t|\\n| |:|/|\\(|\\)|[0-9a-f.])*") {
        check(&text);
    }

    #[test]
    fn cut_anywhere_is_ok_or_names_a_line(cut in 0usize..VALID.len()) {
        if VALID.is_char_boundary(cut) {
            check(&VALID[..cut]);
        }
    }

    #[test]
    fn mutated_text_never_panics(pos in 0usize..VALID.len(), byte in any::<u8>(), delete in any::<bool>()) {
        let mut bytes = VALID.as_bytes().to_vec();
        if delete { bytes.remove(pos); } else { bytes[pos] = byte; }
        match String::from_utf8(bytes) {
            Ok(text) => check(&text),
            Err(e) => {
                let err = script::parse(e.as_bytes(), |_| Ok(())).unwrap_err();
                prop_assert!(err.line >= 1);
            }
        }
    }

    #[test]
    fn mutated_lines_are_rejected_at_their_own_line(line in 0usize..13, junk in "[a-z][a-z ]{0,11}") {
        let mut lines: Vec<String> = VALID.lines().map(String::from).collect();
        // Replace a header or frame line (not a blank separator) with junk that cannot be either.
        if lines[line].is_empty() { return Ok(()); }
        let indent = if lines[line].starts_with('\t') { "\t" } else { "" };
        lines[line] = format!("{indent}{junk}");
        let text = lines.join("\n") + "\n";
        match flamegraphs::from_script(text.as_bytes()) {
            Ok(_) => {}
            Err(e) => prop_assert!(e.line == line + 1 || e.message.contains("no samples"), "{e}"),
        }
    }
}
