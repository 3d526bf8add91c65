//! The report's document as a list of blocks, written out as markdown and as self-contained HTML
//! (no external assets: SVGs are embedded with `<object>` by relative path, the style is inline).
//! Inline text may hold `code` spans and [text](href) links; both renderers understand them.
use crate::table::{escape, Table};

#[derive(Clone, Debug)]
pub enum Block {
    Heading(u8, String),
    Para(String),
    List(Vec<String>),
    Table(Table),
    /// Shell commands, one per line.
    Code(String),
    /// An SVG beside the index, embedded in HTML, linked and shown in markdown.
    Svg {
        src: String,
        alt: String,
    },
}

pub fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                out += &format!("{} {text}\n\n", "#".repeat(*level as usize))
            }
            Block::Para(text) => out += &format!("{text}\n\n"),
            Block::List(items) => {
                for i in items {
                    out += &format!("- {i}\n");
                }
                out += "\n";
            }
            Block::Table(t) => out += &(t.to_markdown() + "\n"),
            Block::Code(text) => out += &format!("```sh\n{}\n```\n\n", text.trim_end()),
            Block::Svg { src, alt } => out += &format!("[![{alt}]({src})]({src})\n\n"),
        }
    }
    out
}

pub fn html(title: &str, blocks: &[Block]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
         body {{ font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; }}\n\
         table {{ border-collapse: collapse; margin: 1em 0; }}\n\
         th, td {{ border: 1px solid #ccc; padding: 2px 8px; }}\n\
         td {{ text-align: right; }} td.t {{ text-align: left; }}\n\
         pre {{ background: #f4f4f4; padding: 0.5em; overflow-x: auto; }}\n\
         object {{ width: 100%; border: 1px solid #ddd; }}\n\
         </style>\n</head>\n<body>\n",
        escape(title)
    );
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                out += &format!("<h{level}>{}</h{level}>\n", inline_html(text))
            }
            Block::Para(text) => out += &format!("<p>{}</p>\n", inline_html(text)),
            Block::List(items) => {
                out += "<ul>\n";
                for i in items {
                    out += &format!("<li>{}</li>\n", inline_html(i));
                }
                out += "</ul>\n";
            }
            Block::Table(t) => out += &t.to_html(),
            Block::Code(text) => out += &format!("<pre><code>{}</code></pre>\n", escape(text.trim_end())),
            Block::Svg { src, alt } => {
                out += &format!(
                    "<p><a href=\"{0}\">{1}</a></p>\n<object data=\"{0}\" type=\"image/svg+xml\">{1}</object>\n",
                    escape(src),
                    escape(alt)
                )
            }
        }
    }
    out += "</body>\n</html>\n";
    out
}

/// `code` spans and [text](href) links to HTML; everything else escaped.
fn inline_html(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('`') {
            if let Some(end) = after.find('`') {
                out += &format!("<code>{}</code>", escape(&after[..end]));
                rest = &after[end + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix("**") {
            if let Some(end) = after.find("**") {
                out += &format!("<strong>{}</strong>", inline_html(&after[..end]));
                rest = &after[end + 2..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix('[') {
            if let Some((label, href, used)) = link(after) {
                out += &format!("<a href=\"{}\">{}</a>", escape(href), inline_html(label));
                rest = &after[used..];
                continue;
            }
        }
        let next = rest[1..]
            .find(['`', '[', '*'])
            .map_or(rest.len(), |i| i + 1);
        out += &escape(&rest[..next]);
        rest = &rest[next..];
    }
    out
}

/// `label](href)` at the start of `s`: the label, the href and the bytes used.
fn link(s: &str) -> Option<(&str, &str, usize)> {
    let close = s.find("](")?;
    let label = &s[..close];
    if label.contains(['[', ']']) {
        return None;
    }
    let href_start = close + 2;
    let href_len = s[href_start..].find(')')?;
    let href = &s[href_start..href_start + href_len];
    if href.contains(char::is_whitespace) {
        return None;
    }
    Some((label, href, href_start + href_len + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup_becomes_html_and_the_rest_is_escaped() {
        assert_eq!(
            inline_html("a <b> `x<y` see [the `flame`](f/a.svg) [not a link] & **done**"),
            "a &lt;b&gt; <code>x&lt;y</code> see <a href=\"f/a.svg\">the <code>flame</code></a> [not a link] &amp; <strong>done</strong>"
        );
        assert_eq!(inline_html("unclosed `tick"), "unclosed `tick");
        assert_eq!(inline_html("2 * 3 **x"), "2 * 3 **x");
    }

    #[test]
    fn tables_and_code_render_in_both_forms() {
        let mut t = Table::named_rows(&["box", "B-A"]);
        t.push(vec!["a|b".into(), "+1.00".into()]);
        let blocks = [Block::Table(t), Block::Code("x < y".into())];
        assert!(markdown(&blocks)
            .starts_with("| box | B-A |\n| --- | ---: |\n| a\\|b | +1.00 |\n\n```sh\nx < y\n```"));
        let h = html("t", &blocks);
        assert!(
            h.contains("<tr><td class=\"t\">a|b</td><td>+1.00</td></tr>"),
            "{h}"
        );
        assert!(h.contains("<pre><code>x &lt; y</code></pre>"), "{h}");
    }
}
