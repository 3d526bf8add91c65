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

/// inferno's input: `annotated-stack count [count]` lines in ps/op, sorted, all-zero rows left
/// out; an error when nothing is left to draw.
fn folded_lines<'s>(
    rules: &Rules,
    rows: impl Iterator<Item = (&'s str, Vec<f64>)>,
) -> std::io::Result<Vec<String>> {
    let mut classifier = Classifier::new(rules);
    let mut lines: Vec<String> = rows
        .filter_map(|(stack, ns_per_op)| {
            let ps: Vec<u64> = ns_per_op
                .iter()
                .map(|ns| (ns * PS_PER_NS).round() as u64)
                .collect();
            ps.iter().any(|&p| p > 0).then(|| {
                let counts: Vec<String> = ps.iter().map(u64::to_string).collect();
                format!("{} {}", classifier.annotate(stack), counts.join(" "))
            })
        })
        .collect();
    lines.sort();
    if lines.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "nothing to draw: every stack weighs 0",
        ));
    }
    Ok(lines)
}

/// A flamegraph of per-op weights (ns/op).
pub fn render<W: Write>(
    per_op: &Folded,
    rules: &Rules,
    title: &str,
    out: W,
) -> std::io::Result<()> {
    let lines = folded_lines(
        rules,
        per_op.stacks.iter().map(|(s, w)| (s.as_str(), vec![*w])),
    )?;
    let mut palette = palette_for(&lines);
    let subtitle = "width: ps/op; colour and tooltip: each frame's box".to_string();
    let mut opt = options(title, Some(subtitle));
    opt.palette_map = Some(&mut palette);
    inferno::flamegraph::from_lines(&mut opt, lines.iter().map(String::as_str), out)
}

/// A differential flamegraph: widths are `after`'s ps/op, colours the change from `before`
/// (red grew, blue shrank). Both sides must already be per op so the comparison is fair.
pub fn render_diff<W: Write>(
    before: &Folded,
    after: &Folded,
    rules: &Rules,
    title: &str,
    out: W,
) -> std::io::Result<()> {
    let rows = diff(before, after);
    let lines = folded_lines(
        rules,
        rows.iter()
            .map(|r| (r.stack.as_str(), vec![r.before, r.after])),
    )?;
    let subtitle =
        "width: second run's ps/op; red = more ps/op than the first run, blue = fewer".to_string();
    let mut opt = options(title, Some(subtitle));
    inferno::flamegraph::from_lines(&mut opt, lines.iter().map(String::as_str), out)
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
        render(&per_op, &rules, "t", &mut out).unwrap();
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
        render_diff(&per_op, &after, &rules, "d", &mut out).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("[box:hz3.central]"));
    }
}
