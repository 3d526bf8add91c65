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

const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUG_TRACING: &str = "/sys/kernel/debug/tracing";
const SCHED_SWITCH: &str = "events/sched/sched_switch";

/// Whether the `sched:sched_switch` tracepoint exists (tracefs mounted and readable).
pub fn sched_switch_available() -> bool {
    [TRACEFS, DEBUG_TRACING]
        .iter()
        .any(|d| std::path::Path::new(d).join(SCHED_SWITCH).exists())
}

/// What the machine's tracefs looks like, for [`tracefs_plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TracefsState {
    pub sched_switch: bool,
    /// `/sys/kernel/tracing` exists and is empty: the mount point, with nothing mounted on it.
    pub mount_point_empty: bool,
    /// `/sys/kernel/debug/tracing` exists (an older kernel's place, automounted on access).
    pub debug_tracing: bool,
    pub root: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TracefsPlan {
    Ready,
    /// Root, and the mount point is empty: mount tracefs there.
    Mount,
    /// Off-CPU cannot be recorded; the reason, with the fix.
    Missing(String),
}

pub fn tracefs_plan(s: TracefsState) -> TracefsPlan {
    if s.sched_switch {
        return TracefsPlan::Ready;
    }
    if !s.mount_point_empty || s.debug_tracing {
        return TracefsPlan::Missing(
            "tracefs is mounted but has no sched:sched_switch tracepoint (a kernel without sched tracepoints?)"
                .into(),
        );
    }
    if s.root {
        TracefsPlan::Mount
    } else {
        TracefsPlan::Missing(format!(
            "tracefs is not mounted, and only root can mount it: run `sudo mount -t tracefs nodev {TRACEFS}`"
        ))
    }
}

fn tracefs_state() -> TracefsState {
    let mount_point_empty = std::fs::read_dir(TRACEFS)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    TracefsState {
        sched_switch: sched_switch_available(),
        mount_point_empty,
        debug_tracing: std::path::Path::new(DEBUG_TRACING).exists(),
        // SAFETY: geteuid has no preconditions and cannot fail.
        root: unsafe { libc::geteuid() } == 0,
    }
}

/// Makes `sched:sched_switch` available, mounting tracefs as root when a fresh machine has not;
/// Err is why off-CPU time cannot be recorded.
pub fn ensure_sched_switch() -> Result<(), String> {
    match tracefs_plan(tracefs_state()) {
        TracefsPlan::Ready => Ok(()),
        TracefsPlan::Missing(why) => Err(why),
        TracefsPlan::Mount => {
            eprintln!(
                "record: mounting tracefs on {TRACEFS} (off-CPU time needs sched:sched_switch)"
            );
            mount_tracefs()?;
            if sched_switch_available() {
                Ok(())
            } else {
                Err(format!(
                    "tracefs mounted on {TRACEFS}, but it has no sched:sched_switch tracepoint"
                ))
            }
        }
    }
}

fn mount_tracefs() -> Result<(), String> {
    let c = |s: &str| std::ffi::CString::new(s).expect("no NUL in a constant");
    let (source, target, fstype) = (c("nodev"), c(TRACEFS), c("tracefs"));
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call; no data.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "tracefs is not mounted and `mount -t tracefs nodev {TRACEFS}` failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The counting group read around the bench (inherited by all its threads).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Counters {
    pub task_clock_ns: u64,
    pub context_switches: u64,
    pub page_faults: u64,
    /// Enabled vs running time of the group: below 1.0 the counts were multiplexed (scaled).
    pub time_enabled_ns: u64,
    pub time_running_ns: u64,
    /// The counting helper's own pid: its events (spawning and waiting for the bench) are not the
    /// bench's and are left out of the profile.
    #[serde(default)]
    pub helper_pid: Option<u32>,
    /// The command's wall time, as the helper timed it.
    #[serde(default)]
    pub wall_ns: Option<u64>,
    /// User + system CPU of the command's whole process tree (rusage of the helper's children).
    #[serde(default)]
    pub child_cpu_ns: Option<u64>,
    /// The largest peak RSS in the command's tree, KiB.
    #[serde(default)]
    pub child_peak_rss_kib: Option<u64>,
    /// How the command failed (`{"Exit":3}`, `{"Signal":11}`); None when it exited 0.
    #[serde(default)]
    pub exit: Option<crate::runner::Crash>,
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

    pub fn finish(mut self) -> Result<Counters> {
        self.group
            .disable()
            .context("disabling the counting group")?;
        let data = self.group.read().context("reading the counting group")?;
        let get = |c: &perf_event::Counter| data.get(c).map(|v| v.value()).unwrap_or(0);
        Ok(Counters {
            task_clock_ns: get(&self.task_clock),
            context_switches: get(&self.switches),
            page_faults: get(&self.faults),
            time_enabled_ns: data
                .time_enabled()
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
            helper_pid: Some(std::process::id()),
            wall_ns: None,
            child_cpu_ns: None,
            child_peak_rss_kib: None,
            exit: None,
            time_running_ns: data
                .time_running()
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracefs_is_mounted_only_by_root_on_an_empty_mount_point() {
        let fresh = TracefsState {
            sched_switch: false,
            mount_point_empty: true,
            debug_tracing: false,
            root: true,
        };
        assert_eq!(tracefs_plan(fresh), TracefsPlan::Mount);
        let ready = TracefsState {
            sched_switch: true,
            ..fresh
        };
        assert_eq!(tracefs_plan(ready), TracefsPlan::Ready);
        let user = TracefsPlan::Missing(String::new());
        match tracefs_plan(TracefsState {
            root: false,
            ..fresh
        }) {
            TracefsPlan::Missing(why) => assert!(why.contains("sudo mount -t tracefs"), "{why}"),
            other => panic!("{other:?} instead of {user:?}"),
        }
        for odd in [
            TracefsState {
                mount_point_empty: false,
                ..fresh
            },
            TracefsState {
                debug_tracing: true,
                ..fresh
            },
        ] {
            assert!(
                matches!(tracefs_plan(odd), TracefsPlan::Missing(_)),
                "{odd:?}"
            );
        }
    }
}
