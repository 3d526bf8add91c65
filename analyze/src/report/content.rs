//! What the index says, as blocks (`doc`), and the summary printed at the end.
use super::doc::Block;
use super::{files, GapEntry, Recording, Report, FOCUS_PRESET};
use crate::attribute;
use crate::gap;
use crate::host;
use crate::matrix::{output, MatrixReport};
use crate::table::{num, signed, Column, Table};
use std::path::Path;

/// `path` as a link target relative to the report directory.
fn rel(path: &str, out: &Path) -> String {
    Path::new(path)
        .strip_prefix(out)
        .map_or_else(|_| path.to_string(), |p| p.display().to_string())
}

fn median(report: &Report, allocator: &str) -> Option<f64> {
    let matrix = report.matrix.as_ref()?;
    // A probes recording stands for its plain build in the matrix.
    let plain = allocator.strip_suffix("_probes").unwrap_or(allocator);
    matrix
        .row(FOCUS_PRESET, allocator)
        .or_else(|| matrix.row(FOCUS_PRESET, plain))
        .and_then(|r| r.median_mops)
}

fn mops(v: Option<f64>) -> String {
    v.map_or_else(|| "no run".into(), |v| format!("{v:.2} Mops/s"))
}

/// How much of a gap's measured difference the boxes account for, in words.
fn explained(g: &gap::Gap) -> String {
    let share = if g.measured_diff != 0.0 {
        format!(
            ", {:.0}% of the measured difference",
            g.boxes_diff / g.measured_diff * 100.0
        )
    } else {
        String::new()
    };
    format!(
        "Measured CPU ns/op ({}): {} {} vs {} {} (B-A {}); the boxes sum to {}{share}, residual {}.",
        g.measured_from,
        g.allocator_b,
        num(g.measured_b),
        g.allocator_a,
        num(g.measured_a),
        signed(g.measured_diff),
        signed(g.boxes_diff),
        signed(g.residual)
    )
}

pub fn index(report: &Report, out: &Path) -> Vec<Block> {
    let mut b = vec![Block::Heading(1, "hz3 gap report".into())];
    if report.status != "complete" {
        b.push(Block::Para(format!(
            "**Incomplete.** The plan stopped: {}. The steps listed under Commands ran; their files are in this directory.",
            report.status.strip_prefix("failed: ").unwrap_or(&report.status)
        )));
    }
    question(report, out, &mut b);
    machine(report, &mut b);
    if !report.program_rows.is_empty() {
        program_matrix(report, &mut b);
    } else if let Some(m) = &report.matrix {
        matrix(m, report, &mut b);
    }
    if !report.gaps.is_empty() {
        gaps(report, out, &mut b);
    }
    if !report.attribution.is_empty() {
        attribution(report, out, &mut b);
    }
    commands(report, &mut b);
    b
}

/// Which form the recordings' (and the focus rows') figures are: objects written or not.
fn form(record_bench_args: &[String]) -> &'static str {
    let argv = std::iter::once("hz3-bench".to_owned()).chain(record_bench_args.iter().cloned());
    match bench::cli::parse(argv) {
        Ok((_, cfg)) if cfg.touch => "every object written (`--touch`, the reference form)",
        Ok(_) => "objects never written (the untouched form, not the reference)",
        Err(_) => "form unknown (the bench arguments no longer parse)",
    }
}

/// The matrix of a `--program` report: the program's rows (no preset was run).
fn program_matrix(report: &Report, b: &mut Vec<Block>) {
    b.push(Block::Heading(2, "Matrix".into()));
    b.push(Block::Para(
        "Wall time, CPU time and peak RSS of the program's whole process tree per allocator: \
         median [min-max] over the interleaved rounds."
            .into(),
    ));
    b.push(Block::Table(crate::matrix::programs::table(
        &report.program_rows,
    )));
    b.push(Block::Para(format!(
        "Also as [JSON]({}) (`programs`).",
        files::MATRIX_JSON
    )));
    if let Some(step) = report.steps.iter().find(|s| s.name == "matrix") {
        b.push(Block::Code(step.command.clone()));
    }
}

fn question(report: &Report, out: &Path, b: &mut Vec<Block>) {
    b.push(Block::Heading(2, "The question".into()));
    if let (Some(program), Some(anchor)) = (&report.program, &report.anchor) {
        let unit = report.attribution.first().map_or("op", |a| a.unit.as_str());
        b.push(Block::Para(format!(
            "Where does `{program}` spend its allocator time per {unit}, box by box, under hz3 \
             against **{anchor}**, the anchor with the least CPU time on it in the matrix below?"
        )));
        let mut items: Vec<String> = report
            .recordings
            .iter()
            .map(|r| {
                format!(
                    "{} (`{}`): [run directory]({})",
                    r.role,
                    r.allocator,
                    rel(&r.dir, out)
                )
            })
            .collect();
        if let Some(g) = report.gaps.first() {
            items.push(explained(&g.gap));
        }
        b.push(Block::List(items));
        return;
    }
    let Some(anchor) = &report.anchor else {
        b.push(Block::Para(format!(
            "Where does hz3 spend its time per op, box by box, against the fastest anchor on `{FOCUS_PRESET}`? (No anchor was picked yet.)"
        )));
        return;
    };
    b.push(Block::Para(format!(
        "Where does hz3 spend its time per op, box by box, against **{anchor}**, the fastest anchor \
         (glibc, tcmalloc, jemalloc, mimalloc, snmalloc) on `{FOCUS_PRESET}` in the matrix below? \
         Every recording ran `hz3-bench {}`: {}.",
        report.record_bench_args.join(" "),
        form(&report.record_bench_args)
    )));
    let mut items: Vec<String> = report
        .recordings
        .iter()
        .map(|r| {
            format!(
                "{} (`{}`): {} in the matrix; [run directory]({})",
                r.role,
                r.allocator,
                mops(median(report, &r.allocator)),
                rel(&r.dir, out)
            )
        })
        .collect();
    if let Some(g) = report.gaps.first() {
        items.push(explained(&g.gap));
    }
    b.push(Block::List(items));
    if let Some(note) = report.matrix.as_ref().and_then(anchor_noise) {
        b.push(Block::Para(note));
    }
    if report
        .recordings
        .iter()
        .any(|r| r.allocator.ends_with("_probes"))
    {
        b.push(Block::Para(
            "hz3 was recorded with its probes builds (`*_probes`), so the attribution's probes column is filled; \
             the matrix measures the plain builds. The probes add about 7% of the instructions \
             on a single-thread callgrind workload (`scripts/probe-cost`; `docs/decisions.md`, performance campaign); \
             use `--plain` to record the plain builds."
                .into(),
        ));
    }
}

/// A warning when the runner-up anchor's median lies inside the picked anchor's min-max range: the
/// matrix did not tell the two apart, and another run may pick the other.
fn anchor_noise(matrix: &MatrixReport) -> Option<String> {
    let anchors = super::anchors_by_speed(matrix);
    let (first, second) = (anchors.first()?, anchors.get(1)?);
    let runner_up = second.median_mops?;
    if runner_up < first.min_mops? {
        return None;
    }
    Some(format!(
        "Caution: {} ({}) is inside {}'s min-max range ({:.2}-{:.2}) on `{FOCUS_PRESET}`: the matrix \
         did not tell the two anchors apart, and another run may pick {}. More rounds (`--runs`) narrow it.",
        second.allocator,
        mops(Some(runner_up)),
        first.allocator,
        first.min_mops?,
        first.max_mops?,
        second.allocator
    ))
}

fn machine(report: &Report, b: &mut Vec<Block>) {
    let m = &report.machine;
    b.push(Block::Heading(2, "Machine".into()));
    let mut t = Table::new([Column::left("fact"), Column::left("value")]);
    for (k, v) in [
        ("cores (nproc)", m.nproc.to_string()),
        ("CPU", m.cpu_model.clone()),
        ("kernel", m.kernel.clone()),
        ("perf", m.perf_version.clone()),
        ("load average at start", m.load_average.clone()),
        ("date", m.date_utc.clone()),
        ("commit", m.commit.clone().unwrap_or_else(|| "-".into())),
        (
            "core-to-core round trip at start",
            host::nanoseconds(m.host.round_trip_ns),
        ),
        (
            "page walk (TLB miss)",
            host::nanoseconds(m.host.page_walk_ns),
        ),
        (
            "page fault, first touch of 4 KiB",
            host::microseconds(m.host.first_touch_us_per_page),
        ),
        (
            "mode",
            if report.quick {
                "--quick".into()
            } else {
                "default".into()
            },
        ),
    ] {
        t.push(vec![k.to_string(), v]);
    }
    b.push(Block::Table(t));
}

/// The matrix's own table and list of bench arguments, the cells its output module formats.
fn matrix(m: &MatrixReport, report: &Report, b: &mut Vec<Block>) {
    b.push(Block::Heading(2, "Matrix".into()));
    b.push(Block::Para(output::markdown_intro(m)));
    b.push(Block::Table(output::shown_table(m)));
    b.extend(matrix_summaries(m));
    b.push(Block::Para("Bench arguments per preset:".into()));
    b.push(Block::List(output::bench_arguments(m)));
    b.push(Block::Svg {
        src: files::MATRIX_SVG.into(),
        alt: "matrix: median Mops/s per allocator, min-max whiskers".into(),
    });
    b.push(Block::Para(format!(
        "Also as [CSV]({}), [JSON]({}), [markdown]({}).",
        files::MATRIX_CSV,
        files::MATRIX_JSON,
        files::MATRIX_MD
    )));
    if let Some(step) = report.steps.iter().find(|s| s.name == "matrix") {
        b.push(Block::Code(step.command.clone()));
    }
}

/// What the matrix's text says below its table: peak RSS against the lowest anchor both ways, and
/// the host's core-to-core regimes with each row's medians within them (when it probed).
fn matrix_summaries(m: &MatrixReport) -> Vec<Block> {
    let mut b = Vec::new();
    for (heading, t) in output::summaries(m) {
        b.push(Block::Para(format!("{heading}.")));
        b.extend(t.map(Block::Table));
    }
    b
}

/// The commands of an in-process step, one per line in the order of its results.
fn step_commands<'a>(report: &'a Report, step: &str) -> Vec<&'a str> {
    report
        .steps
        .iter()
        .find(|s| s.name == step)
        .map(|s| s.command.lines().collect())
        .unwrap_or_default()
}

fn table_links(stem: &str) -> String {
    format!(
        "Tables: [text]({}/{stem}.txt), [CSV]({}/{stem}.csv), [JSON]({}/{stem}.json).",
        files::TABLES,
        files::TABLES,
        files::TABLES
    )
}

fn gaps(report: &Report, out: &Path, b: &mut Vec<Block>) {
    b.push(Block::Heading(2, "Gaps".into()));
    b.push(Block::Para(
        "How to read a gap table: each row is a box (a named mechanism, e.g. `hz3.central` or \
         `tcmalloc.central`) with its sampled CPU ns/op in run A and run B; `B-A` > 0 means B spends \
         more time per op there. `sum of boxes` adds the rows, `measured` is task-clock ÷ ops from \
         the counting group (independent of sampling), and `residual` = measured − sum is what the \
         samples did not see; a large residual means the box figures are not the whole story. On \
         this machine a box difference below ~5 ns/op on one pair of runs is noise. Off-CPU time \
         (sleep, preemption) is listed apart and is in neither sum."
            .into(),
    ));
    let gap_commands = step_commands(report, "gap");
    for (i, entry) in report.gaps.iter().enumerate() {
        gap_section(entry, out, gap_commands.get(i).copied(), b);
    }
}

fn gap_section(entry: &GapEntry, out: &Path, command: Option<&str>, b: &mut Vec<Block>) {
    let g = &entry.gap;
    b.push(Block::Heading(
        3,
        format!("{} (B) against {} (A)", g.allocator_b, g.allocator_a),
    ));
    b.push(Block::Para(format!(
        "A = `{}`, B = `{}`; `{}`.",
        rel(&g.a, out),
        rel(&g.b, out),
        g.config
    )));
    b.push(Block::Table(gap::gap_table(g, false)));
    b.push(Block::Para(explained(g)));
    if let Some(why) = &g.offcpu_not_recorded {
        b.push(Block::Para(format!(
            "Off-CPU time (lock wait, other sleep, preempted): {} ({why}).",
            crate::attribute::NOT_RECORDED
        )));
    }
    b.push(Block::List(
        g.offcpu
            .iter()
            .map(|r| {
                format!(
                    "{} (off-CPU, summed over threads): A {}, B {}, B-A {}",
                    r.name,
                    num(r.a),
                    num(r.b),
                    signed(r.diff)
                )
            })
            .collect(),
    ));
    b.push(Block::Para(table_links(&format!(
        "gap-{}-vs-{}",
        g.allocator_b, g.allocator_a
    ))));
    if let Some(svg) = &entry.flame_diff {
        b.push(Block::Svg {
            src: rel(svg, out),
            alt: format!(
                "differential flamegraph rooted at boxes: width = {}, red = more ns/op than {}",
                g.allocator_b, g.allocator_a
            ),
        });
    }
    if let Some(c) = command {
        b.push(Block::Code(c.to_string()));
    }
}

fn attribution(report: &Report, out: &Path, b: &mut Vec<Block>) {
    b.push(Block::Heading(2, "Attribution".into()));
    b.push(Block::Para(
        "Each recorded run's sampled CPU time per op, box by box (share of the samples, ns/op, \
         off-CPU sleep with user code in the box, and hz3's probe events per op for the probes builds)."
            .into(),
    ));
    let commands = step_commands(report, "attribute");
    for (i, a) in report.attribution.iter().enumerate() {
        let rec: Option<&Recording> = report.recordings.get(i);
        let role = rec.map_or(String::new(), |r| format!(" ({})", r.role));
        b.push(Block::Heading(3, format!("{}{role}", a.allocator)));
        b.push(Block::Para(format!(
            "{} ops, {} {} samples, {} context switches. CPU ns/op: measured {} ({}), in boxes {}, unsampled {}; wall ns/op {}.",
            a.ops,
            a.samples,
            a.sample_event,
            a.switches,
            num(a.measured_ns_per_op),
            a.measured_from,
            num(a.boxes_ns_per_op),
            num(a.unsampled_ns_per_op),
            num(a.wall_ns_per_op)
        )));
        if !a.perf_warnings.is_empty() {
            b.push(Block::List(
                a.perf_warnings
                    .iter()
                    .map(|w| format!("perf warning: {w}"))
                    .collect(),
            ));
        }
        b.push(Block::Table(attribute::boxes_table(a, false)));
        b.push(Block::Para(table_links(&format!(
            "attribute-{}",
            a.allocator
        ))));
        if let Some(svg) = rec.and_then(|r| r.flame.as_ref()) {
            b.push(Block::Svg {
                src: rel(svg, out),
                alt: format!("{}: CPU flamegraph, ns/op", a.allocator),
            });
        }
        if let Some(c) = commands.get(i) {
            b.push(Block::Code(c.to_string()));
        }
    }
}

fn commands(report: &Report, b: &mut Vec<Block>) {
    b.push(Block::Heading(2, "Commands".into()));
    b.push(Block::Para(
        "Every step in order, with the command that reproduces it (run from the directory the \
         report was made in) and its log. The whole report:"
            .into(),
    ));
    b.push(Block::Code(report.command.clone()));
    for s in &report.steps {
        let log = s
            .log
            .as_ref()
            .map_or(String::new(), |l| format!(" — log `{l}`"));
        b.push(Block::Para(format!(
            "**{}** ({:.1} s){log}",
            s.name, s.seconds
        )));
        if !s.command.is_empty() {
            b.push(Block::Code(s.command.clone()));
        }
    }
}

/// What `report` prints at the end: where the report is, the anchor, the headline gap.
pub fn summary(report: &Report, out: &Path) -> String {
    let mut s = format!(
        "hz3 gap report: {} (also {}, {})\n",
        out.join(files::INDEX_MD).display(),
        files::INDEX_HTML,
        files::REPORT_JSON
    );
    if let Some(program) = &report.program {
        // A probes recording stands for its plain build in the matrix.
        let cpu = |name: &str| {
            let plain = name.strip_suffix("_probes").unwrap_or(name);
            report
                .program_rows
                .iter()
                .find(|r| r.allocator == name || r.allocator == plain)
                .and_then(|r| r.cpu_s)
                .map_or("no run".to_string(), |c| format!("{:.3} CPU s", c.median))
        };
        if let Some(anchor) = &report.anchor {
            s += &format!(
                "anchor with the least CPU time on `{program}`: {anchor} ({})\n",
                cpu(anchor)
            );
        }
        for r in report.recordings.iter().filter(|r| r.role != "anchor") {
            s += &format!("{}: {}\n", r.allocator, cpu(&r.allocator));
        }
    } else {
        if let Some(anchor) = &report.anchor {
            s += &format!(
                "fastest anchor on {FOCUS_PRESET}: {anchor} ({})\n",
                mops(median(report, anchor))
            );
        }
        for r in report.recordings.iter().filter(|r| r.role != "anchor") {
            s += &format!("{}: {}\n", r.allocator, mops(median(report, &r.allocator)));
        }
    }
    if let Some(g) = report.gaps.first() {
        s += "\n";
        s += &gap::render_text(&g.gap);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{finish_rows, test_row};

    fn matrix(tcmalloc: &[f64]) -> MatrixReport {
        let mut rows = vec![
            test_row(FOCUS_PRESET, "jemalloc", &[9.0, 8.0, 10.0], &[]),
            test_row(FOCUS_PRESET, "tcmalloc", tcmalloc, &[]),
            test_row(FOCUS_PRESET, "hz3_scale", &[8.5], &[]),
        ];
        finish_rows(&mut rows, "jemalloc");
        MatrixReport {
            schema: crate::matrix::SCHEMA.into(),
            baseline: "jemalloc".into(),
            runs: 3,
            quick: false,
            workloads: vec![],
            rows,
            round_trip_cpus: None,
        }
    }

    #[test]
    fn the_question_says_which_form_the_figures_are() {
        let args = |extra: &[&str]| -> Vec<String> {
            ["remote", "--preset", FOCUS_PRESET]
                .iter()
                .chain(extra)
                .map(|s| s.to_string())
                .collect()
        };
        assert!(form(&args(&[])).contains("every object written"));
        assert!(form(&args(&["--touch"])).contains("reference form"));
        assert!(form(&args(&["--untouched"])).contains("never written"));
        assert!(form(&args(&["--threads", "zero"])).contains("unknown"));
    }

    #[test]
    fn the_matrix_section_carries_the_rss_and_host_regime_summaries() {
        let mut m = matrix(&[7.0, 7.5]);
        m.workloads = vec![crate::matrix::Workload {
            preset: FOCUS_PRESET.into(),
            args: vec![],
        }];
        assert!(
            matrix_summaries(&m).len() == 2,
            "hz3_scale against the anchors' RSS, no probe: one paragraph and its table"
        );
        // Two runs of each row near (~90 ns) and two far (~450 ns).
        for r in &mut m.rows {
            let n = r.samples_mops.len();
            r.samples_round_trip_before_ns = (0..n)
                .map(|i| Some(if i % 2 == 0 { 90.0 } else { 450.0 }))
                .collect();
            r.samples_round_trip_after_ns = r.samples_round_trip_before_ns.clone();
        }
        m.round_trip_cpus = Some((0, 1));
        let text = crate::report::doc::markdown(&matrix_summaries(&m));
        assert!(text.contains("two regimes, near 90-90 ns"), "{text}");
        assert!(text.contains("| near Mops/s |"), "{text}");
    }

    #[test]
    fn a_runner_up_inside_the_anchors_range_is_called_out() {
        assert_eq!(anchor_noise(&matrix(&[7.0, 7.5])), None);
        let note = anchor_noise(&matrix(&[8.2, 8.6])).expect("8.4 lies inside 8-10");
        assert!(
            note.contains("tcmalloc (8.40 Mops/s) is inside jemalloc's min-max range (8.00-10.00)"),
            "{note}"
        );
        // hz3 inside the range is no anchor and is not the runner-up.
        assert_eq!(anchor_noise(&matrix(&[])), None);
    }
}
