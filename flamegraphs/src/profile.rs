//! From `perf script` text to two folded profiles: on-CPU time (samples weighted by their period)
//! and off-CPU time (each switch-out weighted by how long the thread stayed away).
//!
//! Off-CPU time comes from `sched:sched_switch` records, which perf writes in the context of the
//! thread leaving the CPU, with the stack it left from. The thread is back at the earliest of: a
//! later switch record naming it as `next_pid`, or any later record of its own (a sample, its next
//! switch-out). Only the recorded workload's threads are traced, so a switch-in from the idle task
//! is not seen; the next own record bounds it instead, at most one sample period late.
use crate::fold::{Folded, StackFolder};
use crate::script::{self, Event, Frame, ScriptError};
use std::collections::HashMap;
use std::io::BufRead;

pub const SCHED_SWITCH: &str = "sched:sched_switch";
/// Root frame of off-CPU stacks whose thread was runnable (preempted, or yielded).
pub const OFFCPU_PREEMPTED: &str = "off-cpu-preempted";
/// Root frame of off-CPU stacks whose thread went to sleep (futex, I/O, join...).
pub const OFFCPU_BLOCKED: &str = "off-cpu-blocked";

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    /// On-CPU nanoseconds per stack.
    pub cpu: Folded,
    /// Off-CPU nanoseconds per stack, rooted at [`OFFCPU_PREEMPTED`] or [`OFFCPU_BLOCKED`].
    pub offcpu: Folded,
    /// Name of the sampling event (e.g. `cpu-clock`).
    pub sample_event: String,
    pub samples: u64,
    pub switches: u64,
    /// Mean sample period, in the event's unit (ns for `cpu-clock`).
    pub mean_period: f64,
}

struct Away {
    since_ns: u64,
    preempted: bool,
    frames: Vec<Frame>,
}

/// Reads a whole `perf script` text. Errors carry the script's line number; a script without a
/// single sample is an error too, since every figure downstream would be 0/0.
pub fn from_script<R: BufRead>(reader: R) -> Result<Profile, ScriptError> {
    from_script_where(reader, |_| true)
}

/// [`from_script`] over the events `keep` accepts (e.g. all but a helper process's).
pub fn from_script_where<R: BufRead>(
    reader: R,
    keep: impl Fn(&Event) -> bool,
) -> Result<Profile, ScriptError> {
    let mut cpu = StackFolder::new();
    let mut offcpu = StackFolder::with_kernel_marks();
    let mut away: HashMap<u32, Away> = HashMap::new();
    let mut sample_event: Option<String> = None;
    let (mut samples, mut switches, mut period_sum) = (0u64, 0u64, 0u128);
    let summary = script::parse(reader, |e: &Event| {
        if !keep(e) {
            return Ok(());
        }
        if e.name == SCHED_SWITCH {
            if e.period != 1 {
                return Err(ScriptError {
                    line: e.line,
                    message: format!(
                        "sched:sched_switch sampled once every {} switches (a global -F or -c applied to it?): \
                         off-CPU time needs every switch; record cpu-clock/freq=N/ and sched:sched_switch",
                        e.period
                    ),
                });
            }
            let sw = SwitchFields::parse(&e.trace).map_err(|m| ScriptError {
                line: e.line,
                message: m,
            })?;
            // perf may reorder by a few ns across CPUs; the switch-in is what matters here.
            if sw.next_pid != 0 {
                come_back(sw.next_pid, e.time_ns, &mut away, &mut offcpu);
            }
            come_back(e.tid, e.time_ns, &mut away, &mut offcpu);
            switches += 1;
            away.insert(
                sw.prev_pid,
                Away {
                    since_ns: e.time_ns,
                    preempted: sw.prev_state_runnable,
                    frames: e.frames.clone(),
                },
            );
            return Ok(());
        }
        come_back(e.tid, e.time_ns, &mut away, &mut offcpu);
        match &sample_event {
            None => sample_event = Some(e.name.clone()),
            Some(name) if *name != e.name => {
                return Err(ScriptError {
                    line: e.line,
                    message: format!(
                        "a second sampling event `{}` besides `{name}`; record one at a time",
                        e.name
                    ),
                })
            }
            Some(_) => {}
        }
        samples += 1;
        period_sum += e.period as u128;
        cpu.push(&e.comm, e.period, &e.frames);
        Ok(())
    })?;
    if samples == 0 {
        return Err(ScriptError {
            line: summary.lines.max(1),
            message:
                "no samples: perf recorded no on-CPU sample of the workload (did it run at all?)"
                    .into(),
        });
    }
    let io = |e: std::io::Error| ScriptError {
        line: summary.lines.max(1),
        message: format!("folding failed: {e}"),
    };
    Ok(Profile {
        cpu: cpu.fold().map_err(io)?,
        offcpu: offcpu.fold().map_err(io)?,
        // `cpu-clock/freq=4999/` names the event with its terms; the event is `cpu-clock`.
        sample_event: sample_event
            .unwrap_or_default()
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        samples,
        switches,
        mean_period: period_sum as f64 / samples as f64,
    })
}

/// Closes `tid`'s off-CPU interval, if it has one open, at `at_ns`.
fn come_back(tid: u32, at_ns: u64, away: &mut HashMap<u32, Away>, offcpu: &mut StackFolder) {
    if let Some(a) = away.remove(&tid) {
        let root = if a.preempted {
            OFFCPU_PREEMPTED
        } else {
            OFFCPU_BLOCKED
        };
        offcpu.push(root, at_ns.saturating_sub(a.since_ns), &a.frames);
    }
}

/// The fields of a `sched_switch` payload this module needs.
#[derive(Debug, PartialEq, Eq)]
struct SwitchFields {
    prev_pid: u32,
    prev_state_runnable: bool,
    next_pid: u32,
}

impl SwitchFields {
    /// `prev_comm=x prev_pid=12 prev_prio=120 prev_state=S ==> next_comm=y next_pid=0 next_prio=120`.
    /// Comms may contain spaces and `=`, so each key is looked for as ` key=` from the right end
    /// of its half.
    fn parse(trace: &str) -> Result<SwitchFields, String> {
        let (prev, next) = trace
            .split_once(" ==> ")
            .ok_or_else(|| format!("sched_switch payload without ` ==> `: `{trace}`"))?;
        let field = |half: &str, key: &str| -> Result<String, String> {
            let at = half
                .rfind(&format!(" {key}="))
                .ok_or_else(|| format!("sched_switch payload without `{key}=`"))?;
            let value = &half[at + key.len() + 2..];
            Ok(value.split_whitespace().next().unwrap_or("").to_string())
        };
        let pid = |half: &str, key: &str| -> Result<u32, String> {
            let v = field(half, key)?;
            v.parse()
                .map_err(|_| format!("sched_switch `{key}={v}` is not a number"))
        };
        let state = field(prev, "prev_state")?;
        if state.is_empty() {
            return Err("sched_switch `prev_state=` is empty".into());
        }
        Ok(SwitchFields {
            prev_pid: pid(prev, "prev_pid")?,
            prev_state_runnable: state.starts_with('R'),
            next_pid: pid(&format!(" {next}"), "next_pid")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "\
b 1/2 10.000000000: 100 cpu-clock:
\t1 work (/b)

b 1/2 10.000001000: 1 sched:sched_switch: prev_comm=b prev_pid=2 prev_prio=120 prev_state=S ==> next_comm=b next_pid=3 next_prio=120
\t2 futex_wait ([kernel.kallsyms])
\t1 work (/b)

b 1/3 10.000002000: 100 cpu-clock:
\t1 work (/b)

b 1/3 10.000005000: 1 sched:sched_switch: prev_comm=b prev_pid=3 prev_prio=120 prev_state=R+ ==> next_comm=b next_pid=2 next_prio=120
\t3 schedule ([kernel.kallsyms])
\t1 work (/b)

b 1/3 10.000009000: 100 cpu-clock:
\t1 work (/b)

";

    #[test]
    fn off_cpu_intervals_end_at_switch_in_or_own_next_record() {
        let p = from_script(SCRIPT.as_bytes()).unwrap();
        assert_eq!(p.samples, 3);
        assert_eq!(p.switches, 2);
        assert_eq!(p.cpu.stacks["b;work"], 300.0);
        // tid 2: out at 10.000001, back (next_pid=2) at 10.000005 → 4000 ns blocked in futex.
        assert_eq!(
            p.offcpu.stacks["off-cpu-blocked;work;futex_wait_[k]"],
            4000.0
        );
        // tid 3: out at 10.000005 preempted, its next sample at 10.000009 → 4000 ns.
        assert_eq!(
            p.offcpu.stacks["off-cpu-preempted;work;schedule_[k]"],
            4000.0
        );
    }

    #[test]
    fn excluded_events_are_not_counted() {
        let p = from_script_where(SCRIPT.as_bytes(), |e| e.tid != 3).unwrap();
        assert_eq!((p.samples, p.switches), (1, 1));
        assert!(
            p.offcpu.stacks.is_empty(),
            "tid 2 came back only through tid 3's records"
        );
    }

    #[test]
    fn no_samples_and_bad_payloads_are_errors_with_lines() {
        let only_switch = "b 1/2 1.0: 1 sched:sched_switch: prev_comm=b prev_pid=2 prev_state=S ==> next_comm=c next_pid=0\n\t1 f (a)\n\n";
        let err = from_script(only_switch.as_bytes()).unwrap_err();
        assert!(err.message.contains("no samples"), "{err}");
        let bad = "b 1/2 1.0: 1 sched:sched_switch: prev_comm=b prev_pid=x prev_state=S ==> next_pid=0\n\t1 f (a)\n\n";
        assert_eq!(from_script(bad.as_bytes()).unwrap_err().line, 1);
        let sampled = "b 1/2 1.0: 3 sched:sched_switch: prev_comm=b prev_pid=2 prev_state=S ==> next_pid=0\n\t1 f (a)\n\n";
        let err = from_script(sampled.as_bytes()).unwrap_err();
        assert!(
            err.line == 1 && err.message.contains("every 3 switches"),
            "{err}"
        );
        let two_events =
            "b 1/2 1.0: 1 cpu-clock:\n\t1 f (a)\n\nb 1/2 1.0: 1 page-faults:\n\t1 f (a)\n\n";
        assert_eq!(from_script(two_events.as_bytes()).unwrap_err().line, 4);
    }
}
