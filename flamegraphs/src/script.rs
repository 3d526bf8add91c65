//! A strict, streaming reader of `perf script` text.
//!
//! inferno's collapser is deliberately lenient: it skips lines it does not understand. That is
//! right for drawing a picture and wrong for attributing time, where a silently dropped half of a
//! truncated file would shift every share. So the text is validated here first, event by event,
//! and every rejection names the line. The expected shape is what `perf script -F
//! comm,pid,tid,time,period,event,trace,ip,sym,dso` prints:
//!
//! ```text
//! hz3-bench  6768/6770   4758.086734:     200040          cpu-clock:
//! \t    7f1e2215d058 hz3::central::Central::pop (/path/libhz3.so)
//! \t    55d0c0ffee00 worker (/path/hz3-bench)
//!
//! ```
//!
//! Events are separated by a blank line; a file must end on one (perf always writes it), which is
//! how a file cut off mid-event is told apart from a complete one.
use std::io::BufRead;

/// A `perf script` rejection: the 1-based line and what was wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("perf script line {line}: {message}")]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

impl ScriptError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        ScriptError {
            line,
            message: message.into(),
        }
    }
}

/// One frame of a call chain, innermost first as perf prints it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub ip: u64,
    pub sym: String,
    pub dso: String,
}

/// One event: a header line and its call chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// Line of the header, for error messages further down the pipeline.
    pub line: usize,
    pub comm: String,
    pub pid: u32,
    pub tid: u32,
    pub time_ns: u64,
    pub period: u64,
    /// Event name without the trailing colon, e.g. `cpu-clock` or `sched:sched_switch`.
    pub name: String,
    /// Tracepoint payload after the event name (empty for software events).
    pub trace: String,
    /// Innermost frame first.
    pub frames: Vec<Frame>,
}

/// Totals over a whole script, for the "no samples" check and the run summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptSummary {
    pub events: u64,
    pub lines: usize,
}

/// Reads every event of `reader`, handing each to `on_event` as soon as its call chain ends.
/// Stops at the first malformed line (or the first error from `on_event`).
pub fn parse<R, F>(mut reader: R, mut on_event: F) -> Result<ScriptSummary, ScriptError>
where
    R: BufRead,
    F: FnMut(&Event) -> Result<(), ScriptError>,
{
    let mut buf = Vec::with_capacity(256);
    let mut line_no = 0usize;
    let mut event = Event::default();
    let mut in_event = false;
    let mut summary = ScriptSummary::default();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| ScriptError::at(line_no + 1, format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if buf.last() != Some(&b'\n') {
            return Err(ScriptError::at(
                line_no,
                "truncated: the last line has no newline",
            ));
        }
        let text = std::str::from_utf8(&buf)
            .map_err(|_| ScriptError::at(line_no, "not UTF-8 text"))?
            .trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            if in_event {
                on_event(&event)?;
                summary.events += 1;
                in_event = false;
            }
            continue;
        }
        if !in_event && text.starts_with('#') {
            continue;
        }
        if in_event && text.starts_with([' ', '\t']) {
            event
                .frames
                .push(parse_frame(text).map_err(|m| ScriptError::at(line_no, m))?);
        } else if in_event {
            return Err(ScriptError::at(
                line_no,
                "expected a call-chain frame (indented `ADDR SYMBOL (DSO)`) or a blank line",
            ));
        } else {
            parse_header(text, &mut event).map_err(|m| ScriptError::at(line_no, m))?;
            event.line = line_no;
            in_event = true;
        }
    }
    if in_event {
        return Err(ScriptError::at(
            line_no,
            "truncated: the file ends inside an event (no blank line after its call chain)",
        ));
    }
    summary.lines = line_no;
    Ok(summary)
}

/// Parses `COMM PID/TID TIME: PERIOD EVENT: [TRACE]` into `event` (frames cleared).
fn parse_header(text: &str, event: &mut Event) -> Result<(), String> {
    const SHAPE: &str = "expected an event header `COMM PID/TID SECONDS.FRACTION: PERIOD EVENT:`";
    // COMM may contain spaces; the first all-digit `PID/TID` word after it ends it.
    let (comm_end, ids, ids_end) =
        find_pid_tid(text).ok_or_else(|| format!("{SHAPE}: no PID/TID"))?;
    let comm = text[..comm_end].trim();
    if comm.is_empty() {
        return Err(format!("{SHAPE}: empty COMM"));
    }
    let (pid, tid) = ids;
    let rest = text[ids_end..].trim_start();
    let (time_text, rest) = rest
        .split_once(':')
        .ok_or_else(|| format!("{SHAPE}: no time"))?;
    let time_ns = parse_seconds(time_text.trim())
        .ok_or_else(|| format!("{SHAPE}: bad time `{}`", time_text.trim()))?;
    let rest = rest.trim_start();
    let (period_text, rest) = rest
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("{SHAPE}: no period before the event name"))?;
    let period: u64 = period_text
        .parse()
        .map_err(|_| format!("{SHAPE}: bad period `{period_text}`"))?;
    let rest = rest.trim_start();
    // Tracepoint names contain one colon (`sched:sched_switch`); the name ends at `: ` or at the
    // end of the line, after its final colon.
    let name_end = rest
        .find(": ")
        .or_else(|| rest.strip_suffix(':').map(|s| s.len()))
        .ok_or_else(|| format!("{SHAPE}: the event name does not end with `:`"))?;
    let name = &rest[..name_end];
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("{SHAPE}: bad event name `{name}`"));
    }
    event.comm.clear();
    event.comm.push_str(comm);
    event.pid = pid;
    event.tid = tid;
    event.time_ns = time_ns;
    event.period = period;
    event.name.clear();
    event.name.push_str(name);
    event.trace.clear();
    event.trace.push_str(rest[name_end + 1..].trim());
    event.frames.clear();
    Ok(())
}

/// Finds the first whitespace-delimited `PID/TID` (or bare `TID`) word that has a COMM before it.
/// Returns (end of COMM, (pid, tid), end of the word).
///
/// Words start and end at the same (Unicode) whitespace the rest of the header is split on: a word
/// that began after an ASCII space but ended at a Unicode one such as U+2000 used to be empty, and
/// the scan never moved past it.
fn find_pid_tid(text: &str) -> Option<(usize, (u32, u32), usize)> {
    let mut after_space = false;
    for (start, c) in text.char_indices() {
        if c.is_whitespace() {
            after_space = true;
            continue;
        }
        // Only a word after whitespace counts: the one at position 0 is COMM.
        if after_space {
            let end = text[start..]
                .find(char::is_whitespace)
                .map_or(text.len(), |len| start + len);
            if let Some(ids) = parse_ids(&text[start..end]) {
                return Some((start, ids, end));
            }
        }
        after_space = false;
    }
    None
}

fn parse_ids(word: &str) -> Option<(u32, u32)> {
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match word.split_once('/') {
        Some((p, t)) if all_digits(p) && all_digits(t) => Some((p.parse().ok()?, t.parse().ok()?)),
        None if all_digits(word) => {
            let tid = word.parse().ok()?;
            Some((tid, tid))
        }
        _ => None,
    }
}

/// `4758.086734` → nanoseconds, exactly (no float rounding).
fn parse_seconds(text: &str) -> Option<u64> {
    let (secs, frac) = text.split_once('.')?;
    if secs.is_empty() || frac.is_empty() || frac.len() > 9 {
        return None;
    }
    if !secs.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    let frac_ns: u64 = frac.parse::<u64>().ok()? * 10u64.pow(9 - frac.len() as u32);
    secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

/// `\t  7f1e2215d058 sym name (dso)`.
fn parse_frame(text: &str) -> Result<Frame, String> {
    const SHAPE: &str = "expected a call-chain frame `ADDR SYMBOL (DSO)`";
    let text = text.trim();
    let (ip_text, rest) = text
        .split_once(char::is_whitespace)
        .ok_or_else(|| format!("{SHAPE}: no symbol"))?;
    let ip = u64::from_str_radix(ip_text, 16)
        .map_err(|_| format!("{SHAPE}: bad address `{ip_text}`"))?;
    let rest = rest.trim();
    if !rest.ends_with(')') {
        return Err(format!(
            "{SHAPE}: the DSO in parentheses is missing (line cut short?)"
        ));
    }
    let open = rest
        .rfind(" (")
        .map(|i| i + 1)
        .or_else(|| rest.starts_with('(').then_some(0));
    let open = open.ok_or_else(|| format!("{SHAPE}: no `(` before the DSO"))?;
    let dso = &rest[open + 1..rest.len() - 1];
    let sym = rest[..open].trim();
    Ok(Frame {
        ip,
        sym: if sym.is_empty() {
            "[unknown]".to_string()
        } else {
            sym.to_string()
        },
        dso: dso.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str) -> Result<Vec<Event>, ScriptError> {
        let mut out = Vec::new();
        parse(text.as_bytes(), |e| {
            out.push(e.clone());
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn reads_header_frames_and_tracepoint_payload() {
        let text = "my prog  10/12   4758.086734:     200040          cpu-clock: \n\
\t    7f00 operator new(unsigned long) (/usr/lib/libstdc++.so.6)\n\
\t    55aa main (/bin/x)\n\
\n\
x 10/12 4758.1: 1 sched:sched_switch: prev_comm=x prev_pid=12 prev_state=S ==> next_comm=y next_pid=0\n\
\tffffffff81 __schedule ([kernel.kallsyms])\n\
\n";
        let events = collect(text).unwrap();
        assert_eq!(events.len(), 2);
        let e = &events[0];
        assert_eq!(
            (e.comm.as_str(), e.pid, e.tid, e.period),
            ("my prog", 10, 12, 200040)
        );
        assert_eq!(e.time_ns, 4_758_086_734_000);
        assert_eq!(e.name, "cpu-clock");
        assert_eq!(e.frames[0].sym, "operator new(unsigned long)");
        assert_eq!(e.frames[0].dso, "/usr/lib/libstdc++.so.6");
        assert_eq!(e.frames[1].ip, 0x55aa);
        assert_eq!(events[1].name, "sched:sched_switch");
        assert!(events[1].trace.starts_with("prev_comm=x"));
        assert_eq!(events[1].time_ns, 4_758_100_000_000);
    }

    #[test]
    fn truncation_and_garbage_name_their_line() {
        let cut = "x 1/1 1.5: 10 cpu-clock:\n\t1 f (a)\n";
        assert_eq!(collect(cut).unwrap_err().line, 2);
        let cut_mid_line = "x 1/1 1.5: 10 cpu-clock:\n\t1 f (a";
        assert_eq!(collect(cut_mid_line).unwrap_err().line, 2);
        let bad_frame = "x 1/1 1.5: 10 cpu-clock:\n\t1 f (a)\n\tzz f (a)\n\n";
        let err = collect(bad_frame).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.to_string().starts_with("perf script line 3:"), "{err}");
        let bad_header = "\nhello world\n";
        assert_eq!(collect(bad_header).unwrap_err().line, 2);
    }

    /// Found by `random_text_never_panics`: a word that starts after an ASCII space with a Unicode
    /// space (U+2000) made the PID/TID scan stand still forever.
    #[test]
    fn unicode_space_after_ascii_space_ends_the_scan() {
        let err = collect("/(x/1( \u{2000})\t4\n").unwrap_err();
        assert_eq!(err.line, 1);
        // `4` after the tab is a bare TID; the header then lacks its time.
        assert!(err.message.ends_with("no time"), "{err}");
        // A Unicode space separates words like an ASCII one does.
        let events =
            collect("my\u{2000}prog\u{2000}10/12 1.5: 7 cpu-clock:\n\t1 f (a)\n\n").unwrap();
        assert_eq!(
            (events[0].comm.as_str(), events[0].pid, events[0].tid),
            ("my\u{2000}prog", 10, 12)
        );
    }
}
