//! A [`Recording`] as folded stacks with the box as the root frame: `box;thread;root;...;leaf N`,
//! N in whole nanoseconds (inferno and flamegraph.pl read integer counts). A flamegraph of it
//! has one tower per box; speedscope opens it as is.
use super::Recording;
use std::fmt::Write as _;

pub fn text(rec: &Recording) -> String {
    let mut out = String::new();
    for s in &rec.stacks {
        let ns = s.cpu_ns.round() as u64;
        if ns == 0 {
            continue;
        }
        let _ = write!(out, "{};{}", s.box_name, s.thread);
        for f in &s.frames {
            let _ = write!(out, ";{f}");
        }
        let _ = writeln!(out, " {ns}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_stack_rooted_at_its_box() {
        let t = text(&super::super::tests::sample());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines,
            [
                "hz3.central;w1;main;malloc;central_pop 3000",
                "hz3.fast;w1;main;malloc 5000",
                "hz3.central;w2;main;free;central_push 2000",
            ]
        );
        // The project's own folded reader takes it back.
        let back = flamegraphs::Folded::from_text(&t).unwrap();
        assert_eq!(back.total(), 10000.0);
    }
}
