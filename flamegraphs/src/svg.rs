//! SVG flamegraphs through inferno, every frame labelled with its box.
//!
//! Weights arrive per op (ns/op) and are drawn in picoseconds per op: inferno rounds the counts
//! it shows to integers, and whole nanoseconds would erase most allocator frames. Each frame's
//! name carries ` [box:NAME]`, so its tooltip names the box and the SVG's search box highlights a
//! whole box at once (search `box:hz3.central`). In a plain flamegraph the colour is the box's
//! too: one hue per family (`hz3.*`, `glibc.*`, `kernel.*`, the locks...), a shade per box.
use crate::fold::{diff, Folded};
use crate::rules::{Classifier, Rules, OTHER};
use inferno::flamegraph::color::{Color, PaletteMap};
use std::collections::BTreeMap;
use std::io::Write;

const PS_PER_NS: f64 = 1000.0;
const BOX_MARK: &str = " [box:";

/// The colour of a box: the hue says the family (the part before the first `.`), the shade
/// tells boxes of one family apart.
pub fn box_color(name: &str) -> Color {
    let family = name.split('.').next().unwrap_or(name);
    let (r, g, b): (u8, u8, u8) = match family {
        "hz3" => (70, 130, 220),
        "glibc" => (150, 90, 200),
        "tcmalloc" => (40, 170, 160),
        "jemalloc" => (170, 120, 60),
        "mimalloc" => (220, 110, 170),
        "alloc" => (220, 200, 60),
        "kernel" => (240, 150, 50),
        "mutex" | "futex" | "spin" => (220, 50, 50),
        "bench" => (90, 180, 90),
        _ if name == OTHER => (170, 170, 170),
        _ => (120, 120, 120),
    };
    // A stable shade from the name (FNV-1a), so a box keeps its colour across graphs.
    let hash = name.bytes().fold(0x811c9dc5u32, |h, c| {
        (h ^ c as u32).wrapping_mul(0x01000193)
    });
    let shade = (hash % 61) as i32 - 30;
    let adjust = |c: u8| (c as i32 + shade).clamp(0, 255) as u8;
    if name.contains(".lock") {
        return Color {
            r: 220,
            g: adjust(60),
            b: adjust(60),
        };
    }
    Color {
        r: adjust(r),
        g: adjust(g),
        b: adjust(b),
    }
}

/// Colours for every annotated frame name in `lines` (`frame [box:NAME];... count`).
fn palette_for(lines: &[String]) -> PaletteMap {
    let mut map = PaletteMap::default();
    for line in lines {
        let stack = line.rsplit_once(' ').map(|(s, _)| s).unwrap_or(line);
        for frame in stack.split(';') {
            if map.get(frame).is_none() {
                if let Some(at) = frame.rfind(BOX_MARK) {
                    let name = frame[at + BOX_MARK.len()..].trim_end_matches(']');
                    map.insert(frame, box_color(name));
                }
            }
        }
    }
    map
}

fn options<'a>(title: &str, subtitle: Option<String>) -> inferno::flamegraph::Options<'a> {
    let mut opt = inferno::flamegraph::Options::default();
    opt.title = title.to_string();
    opt.subtitle = subtitle;
    opt.count_name = "ps/op".to_string();
    opt.name_type = "Frame:".to_string();
    opt.hash = true;
    opt.min_width = 0.05;
    opt
}

/// How stacks are arranged before drawing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    /// Keep the thread (the root frame, perf's comm) as the root of every stack; otherwise the
    /// threads of one program are merged, so 32 workers make one tower instead of 32 thin ones.
    pub per_thread: bool,
    /// Root every stack at its box: the box's name, then only the frames from where the stack
    /// entered that box; a box that grew is one wide frame at the bottom.
    pub by_box: bool,
}

/// One stack annotated with ` [box:NAME]` per frame and arranged by `layout`. The box is decided
/// on the whole stack (thread included), so merging threads never changes where time goes.
pub fn arrange(classifier: &mut Classifier, stack: &str, layout: Layout) -> String {
    let boxes = classifier.prefix_boxes(stack);
    let frames: Vec<&str> = stack.split(';').collect();
    // CPU stacks start at the thread (perf's comm); off-CPU ones at how the thread left the CPU.
    let thread_rooted = ![
        crate::profile::OFFCPU_BLOCKED,
        crate::profile::OFFCPU_PREEMPTED,
    ]
    .contains(&frames[0]);
    let mut first = usize::from(!layout.per_thread && thread_rooted && frames.len() > 1);
    let mut out = String::with_capacity(stack.len() + frames.len() * 16);
    if layout.by_box {
        let leaf = *boxes.last().unwrap_or(&classifier.other());
        // The frame where the stack entered the box it ends in: every later frame is in it too.
        let entry = boxes.iter().rposition(|&b| b != leaf).map_or(0, |i| i + 1);
        first = first.max(entry);
        let name = &classifier.names()[leaf];
        out.push_str(&format!("{name}{BOX_MARK}{name}]"));
    }
    let names = classifier.names().to_vec();
    for (frame, b) in frames.iter().zip(&boxes).skip(first) {
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(frame);
        out.push_str(BOX_MARK);
        out.push_str(&names[*b]);
        out.push(']');
    }
    out
}

/// inferno's input: `annotated-stack count [count]` lines in ps/op, arranged by `layout`, rows
/// that become one stack summed, sorted, all-zero rows left out; an error when nothing is left.
fn folded_lines<'s>(
    rules: &Rules,
    layout: Layout,
    rows: impl Iterator<Item = (&'s str, Vec<f64>)>,
) -> std::io::Result<Vec<String>> {
    let mut classifier = Classifier::new(rules);
    let mut merged: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (stack, ns_per_op) in rows {
        let sums = merged
            .entry(arrange(&mut classifier, stack, layout))
            .or_insert_with(|| vec![0.0; ns_per_op.len()]);
        for (sum, ns) in sums.iter_mut().zip(&ns_per_op) {
            *sum += ns;
        }
    }
    let lines: Vec<String> = merged
        .into_iter()
        .filter_map(|(stack, ns_per_op)| {
            let ps: Vec<u64> = ns_per_op
                .iter()
                .map(|ns| (ns * PS_PER_NS).round() as u64)
                .collect();
            ps.iter().any(|&p| p > 0).then(|| {
                let counts: Vec<String> = ps.iter().map(u64::to_string).collect();
                format!("{stack} {}", counts.join(" "))
            })
        })
        .collect();
    if lines.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "nothing to draw: every stack weighs 0",
        ));
    }
    Ok(lines)
}

/// The lines a differential flamegraph is drawn from (`stack before after`, ps/op), for tests
/// and for anyone who wants the folded input.
pub fn diff_lines(
    before: &Folded,
    after: &Folded,
    rules: &Rules,
    layout: Layout,
) -> std::io::Result<Vec<String>> {
    let rows = diff(before, after);
    folded_lines(
        rules,
        layout,
        rows.iter()
            .map(|r| (r.stack.as_str(), vec![r.before, r.after])),
    )
}

/// A flamegraph of per-op weights (ns/op).
pub fn render<W: Write>(
    per_op: &Folded,
    rules: &Rules,
    layout: Layout,
    title: &str,
    out: W,
) -> std::io::Result<()> {
    let lines = folded_lines(
        rules,
        layout,
        per_op.stacks.iter().map(|(s, w)| (s.as_str(), vec![*w])),
    )?;
    let mut palette = palette_for(&lines);
    let subtitle = "width: ps/op; colour and tooltip: each frame's box".to_string();
    let mut opt = options(title, Some(subtitle));
    opt.palette_map = Some(&mut palette);
    inferno::flamegraph::from_lines(&mut opt, lines.iter().map(String::as_str), out)
}

/// A differential flamegraph: widths are `after`'s ps/op, every frame's colour its inclusive
/// change from `before` (red grew, blue shrank, white unchanged; the deepest colour is the
/// largest change of any frame). Both sides must already be normalised (per op, or per run).
///
/// inferno's own differential mode colours only the leaf of each stack (every parent frame is
/// drawn white), so a box that grew as a whole stays pale; the colours are computed here instead,
/// one per frame name (a function's change summed over the stacks it is in).
pub fn render_diff<W: Write>(
    before: &Folded,
    after: &Folded,
    rules: &Rules,
    layout: Layout,
    title: &str,
    out: W,
) -> std::io::Result<()> {
    let lines = diff_lines(before, after, rules, layout)?;
    let mut change: BTreeMap<&str, i64> = BTreeMap::new();
    let mut widths = Vec::with_capacity(lines.len());
    for line in &lines {
        let (rest, after_ps) = line.rsplit_once(' ').expect("two counts per line");
        let (stack, before_ps) = rest.rsplit_once(' ').expect("two counts per line");
        let delta = after_ps.parse::<i64>().unwrap_or(0) - before_ps.parse::<i64>().unwrap_or(0);
        let mut seen = std::collections::BTreeSet::new();
        for frame in stack.split(';') {
            if seen.insert(frame) {
                *change.entry(frame).or_insert(0) += delta;
            }
        }
        if after_ps != "0" {
            widths.push(format!("{stack} {after_ps}"));
        }
    }
    let largest = change
        .values()
        .map(|d| d.unsigned_abs())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut palette = PaletteMap::default();
    // inferno's root frame (an empty name, shown as "all"): the whole change.
    let total: i64 = lines
        .iter()
        .filter_map(|l| {
            let (rest, a) = l.rsplit_once(' ')?;
            let (_, b) = rest.rsplit_once(' ')?;
            Some(a.parse::<i64>().ok()? - b.parse::<i64>().ok()?)
        })
        .sum();
    palette.insert("", change_color(total, largest.max(total.unsigned_abs())));
    for (frame, delta) in &change {
        palette.insert(frame, change_color(*delta, largest));
    }
    let rooted = if layout.by_box {
        "stacks rooted at their box; "
    } else {
        ""
    };
    let subtitle = format!(
        "{rooted}width: second run's ps/op; colour: each frame's change per op, red = more than the first run, blue = fewer"
    );
    let mut opt = options(title, Some(subtitle));
    opt.palette_map = Some(&mut palette);
    if widths.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "nothing to draw: the second run weighs 0",
        ));
    }
    inferno::flamegraph::from_lines(&mut opt, widths.iter().map(String::as_str), out)
}

/// White for no change, up to full red (grew) or blue (shrank) at `largest`.
pub fn change_color(delta: i64, largest: u64) -> Color {
    let strength = (delta.unsigned_abs() as f64 / largest as f64).min(1.0);
    let fade = (255.0 - 200.0 * strength).round() as u8;
    if delta >= 0 {
        Color {
            r: 255,
            g: fade,
            b: fade,
        }
    } else {
        Color {
            r: fade,
            g: fade,
            b: 255,
        }
    }
}

/// Checks that `svg` is well-formed XML with a single `<svg>` root: every tag closed in order,
/// every attribute well-formed. The error names the byte offset.
pub fn check_well_formed(svg: &str) -> Result<(), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(svg);
    let (mut depth, mut roots, mut first_root) = (0usize, 0usize, None::<String>);
    loop {
        let at = reader.buffer_position();
        let event = reader.read_event().map_err(|e| format!("byte {at}: {e}"))?;
        let mut open = |name: &[u8],
                        mut attrs: quick_xml::events::attributes::Attributes|
         -> Result<(), String> {
            if depth == 0 {
                roots += 1;
                first_root.get_or_insert_with(|| String::from_utf8_lossy(name).into_owned());
            }
            for a in attrs.with_checks(true) {
                a.map_err(|e| format!("byte {at}: bad attribute: {e}"))?;
            }
            Ok(())
        };
        match event {
            Event::Start(e) => {
                open(e.name().as_ref(), e.attributes())?;
                depth += 1;
            }
            Event::Empty(e) => open(e.name().as_ref(), e.attributes())?,
            Event::End(_) => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| format!("byte {at}: closing tag without an opening one"))?
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("{depth} element(s) not closed at the end"));
    }
    match (roots, first_root.as_deref()) {
        (1, Some("svg")) => Ok(()),
        _ => Err(format!(
            "expected one <svg> root element, found {roots} (first: {first_root:?})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_names_boxes_in_titles() {
        let (rules, _) = Rules::parse(
            "[[box]]\nname = \"hz3.central\"\nframes = [\"hz3::central::*\"]\n",
            "t",
        )
        .unwrap();
        let per_op = Folded::from_text("b;hz3::central::pop 1.5\nb;other 0.5\n").unwrap();
        let mut out = Vec::new();
        render(&per_op, &rules, Layout::default(), "t", &mut out).unwrap();
        let svg = String::from_utf8(out).unwrap();
        assert!(svg.contains("hz3::central::pop [box:hz3.central]"));
        check_well_formed(&svg).unwrap();
        // The central frame is drawn in its box's colour.
        let c = box_color("hz3.central");
        assert!(
            svg.contains(&format!("rgb({},{},{})", c.r, c.g, c.b)),
            "{svg}"
        );
        assert!(check_well_formed(&svg[..svg.len() / 2]).is_err());
        assert!(check_well_formed("<svg><g></svg>").is_err());
        let mut out = Vec::new();
        let after = Folded::from_text("b;hz3::central::pop 3\n").unwrap();
        render_diff(&per_op, &after, &rules, Layout::default(), "d", &mut out).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("[box:hz3.central]"));
    }

    fn central_rules() -> Rules {
        Rules::parse(
            "[[box]]\nname = \"hz3.central\"\nframes = [\"hz3::central::*\"]\n",
            "t",
        )
        .unwrap()
        .0
    }

    #[test]
    fn diff_merges_threads_unless_asked_and_roots_at_the_box() {
        let rules = central_rules();
        let before = Folded::from_text(
            "bench-1;start;hz3::central::pop 1\nbench-2;start;hz3::central::pop 1\n",
        )
        .unwrap();
        let after = Folded::from_text(
            "bench-1;start;hz3::central::pop 3\nbench-2;start;hz3::central::pop 4\nbench-7;start;work 2\n",
        )
        .unwrap();
        let merged = diff_lines(&before, &after, &rules, Layout::default()).unwrap();
        assert_eq!(
            merged,
            [
                "start [box:other];hz3::central::pop [box:hz3.central] 2000 7000",
                "start [box:other];work [box:other] 0 2000",
            ]
        );
        let split = diff_lines(
            &before,
            &after,
            &rules,
            Layout {
                per_thread: true,
                by_box: false,
            },
        )
        .unwrap();
        assert_eq!(split.len(), 3, "{split:?}");
        assert!(split[0].starts_with("bench-1 [box:other];"));
        let by_box = Layout {
            per_thread: false,
            by_box: true,
        };
        let rooted = diff_lines(&before, &after, &rules, by_box).unwrap();
        assert_eq!(
            rooted,
            [
                "hz3.central [box:hz3.central];hz3::central::pop [box:hz3.central] 2000 7000",
                "other [box:other];start [box:other];work [box:other] 0 2000",
            ]
        );
        let mut out = Vec::new();
        render_diff(&before, &after, &rules, by_box, "d", &mut out).unwrap();
        let svg = String::from_utf8(out).unwrap();
        check_well_formed(&svg).unwrap();
        assert!(!svg.contains("bench-1"), "threads were not merged");
        assert!(svg.contains("hz3.central [box:hz3.central]"));
        assert!(svg.contains("stacks rooted at their box"));
        // The box that grew is drawn in full red, as a whole, not only at its leaf.
        let red = change_color(5000, 5000);
        assert!(
            svg.contains(&format!("rgb({},{},{})", red.r, red.g, red.b)),
            "{svg}"
        );
        assert_eq!(
            change_color(0, 9),
            Color {
                r: 255,
                g: 255,
                b: 255
            }
        );
        assert_eq!(change_color(-9, 9).b, 255);
    }
}
