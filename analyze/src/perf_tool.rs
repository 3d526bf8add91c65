//! The `perf` tool and the machine facts a recording depends on, each failure with its fix.
use anyhow::{bail, Context, Result};
use std::process::Command;

/// `perf --version`, or the apt command that installs it.
pub fn require_perf() -> Result<String> {
    match Command::new("perf").arg("--version").output() {
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
        Ok(out) => bail!(
            "`perf --version` failed ({}): {} — reinstall it with `apt-get install -y linux-perf`",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(_) => bail!("perf is not installed: run `apt-get install -y linux-perf`"),
    }
}

pub fn paranoid_level() -> Option<i32> {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Root may sample anything; anyone else needs `perf_event_paranoid` at most -1 for the
/// `sched_switch` tracepoint and kernel stacks.
pub fn check_paranoid() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    match paranoid_problem(paranoid_level(), root) {
        Some(problem) => bail!(problem),
        None => Ok(()),
    }
}

/// What is wrong with this `perf_event_paranoid` level for this user, with the command that fixes it.
pub fn paranoid_problem(level: Option<i32>, root: bool) -> Option<String> {
    match level {
        Some(level) if !root && level > -1 => Some(format!(
            "kernel.perf_event_paranoid is {level}, too high to record kernel stacks and sched_switch as a non-root user: \
             run `sudo sysctl -w kernel.perf_event_paranoid=-1` (or record as root)"
        )),
        _ => None,
    }
}

/// Whether a hardware cycle counter can be opened here (virtual machines often have none).
pub fn hardware_pmu() -> bool {
    perf_event::Builder::new(perf_event::events::Hardware::CPU_CYCLES)
        .build()
        .is_ok()
}

/// Whether the `sched:sched_switch` tracepoint exists (tracefs mounted and readable).
pub fn sched_switch_available() -> bool {
    [
        "/sys/kernel/tracing/events/sched/sched_switch",
        "/sys/kernel/debug/tracing/events/sched/sched_switch",
    ]
    .iter()
    .any(|p| std::path::Path::new(p).exists())
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The counting group opened on this process with `inherit`, so the bench it spawns (and every
/// thread of it) is counted: task-clock, context switches, page faults.
pub struct CountingGroup {
    group: perf_event::Group,
    task_clock: perf_event::Counter,
    switches: perf_event::Counter,
    faults: perf_event::Counter,
}

impl CountingGroup {
    pub fn open() -> Result<CountingGroup> {
        use perf_event::events::Software;
        let mut leader = perf_event::Group::builder();
        leader.inherit(true);
        let mut group = leader
            .build_group()
            .context("opening the perf-event counting group")?;
        let mut member = |event| {
            // Context switches happen in the kernel; without this they count as 0.
            perf_event::Builder::new(event)
                .inherit(true)
                .include_kernel()
                .build_with_group(&mut group)
                .with_context(|| format!("adding {event:?} to the counting group"))
        };
        let task_clock = member(Software::TASK_CLOCK)?;
        let switches = member(Software::CONTEXT_SWITCHES)?;
        let faults = member(Software::PAGE_FAULTS)?;
        Ok(CountingGroup {
            group,
            task_clock,
            switches,
            faults,
        })
    }

    pub fn enable(&mut self) -> Result<()> {
        self.group.enable().context("enabling the counting group")
    }

    pub fn finish(mut self) -> Result<crate::perf_run::Counters> {
        self.group
            .disable()
            .context("disabling the counting group")?;
        let data = self.group.read().context("reading the counting group")?;
        let get = |c: &perf_event::Counter| data.get(c).map(|v| v.value()).unwrap_or(0);
        Ok(crate::perf_run::Counters {
            task_clock_ns: get(&self.task_clock),
            context_switches: get(&self.switches),
            page_faults: get(&self.faults),
            time_enabled_ns: data
                .time_enabled()
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
            helper_pid: Some(std::process::id()),
            time_running_ns: data
                .time_running()
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        })
    }
}
