//! The machine facts a reader needs to judge the numbers: cores, kernel, perf, load, date, and
//! what the machine charges for a line between cores, a page walk and a page fault.
use serde::Serialize;
use std::process::Command;

#[derive(Clone, Debug, Serialize)]
pub struct Facts {
    pub nproc: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub perf_version: String,
    /// `/proc/loadavg`'s first three fields when the report started: other work on the machine
    /// moves every number in the report.
    pub load_average: String,
    pub date_utc: String,
    /// `git describe --always --dirty` of the working tree, when it is a git checkout.
    pub commit: Option<String>,
    /// Measured when the report started (`hz3-analyze host`).
    pub host: crate::host_costs::HostCosts,
}

impl Facts {
    pub fn gather(perf_version: String) -> Facts {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default();
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        let commit = Command::new("git")
            .args(["describe", "--always", "--dirty"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Facts {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            kernel: crate::perf_tool::kernel_release(),
            perf_version,
            load_average,
            date_utc: utc_timestamp(secs),
            commit,
            host: crate::host_costs::HostCosts::measure(),
        }
    }
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian, days to civil date
/// by the era arithmetic: 400-year eras of 146097 days, years starting in March).
pub fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc_timestamp;

    #[test]
    fn timestamps_match_known_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 (a leap day of a century leap year) 12:34:56.
        assert_eq!(utc_timestamp(951_827_696), "2000-02-29 12:34:56 UTC");
        // 2100-03-01: 2100 is not a leap year.
        assert_eq!(utc_timestamp(4_107_542_400), "2100-03-01 00:00:00 UTC");
    }
}
