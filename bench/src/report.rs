//! The bench's result: one human line, or one JSON object that `hz3-analyze` reads back.
use crate::live::MemoryPeaks;
use crate::workload::{Config, Counts, Outcome};
use serde::{Deserialize, Serialize};

/// One run's result with its configuration; the JSON shape `hz3-bench remote --json` prints. The
/// configuration and the counts are flattened, so their fields sit at the top level of the object.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// The workload kind (`bench`: "remote", "server-table", ...) and its parameters.
    #[serde(flatten)]
    pub config: Config,
    pub preset: Option<String>,
    /// Who answered malloc (see [`crate::identity::answering_allocator`]).
    pub allocator: String,
    /// mallocs + local_frees + remote (drained remote frees) + reallocs.
    pub ops: u64,
    #[serde(flatten)]
    pub counts: Counts,
    pub secs: f64,
    pub mops: f64,
    /// CPU seconds of all threads in the timed section (absent in reports older than the field).
    #[serde(default)]
    pub cpu_secs: f64,
    /// Live bytes and RSS as the samples saw them (absent in reports older than the field).
    #[serde(default)]
    pub memory: Option<MemoryPeaks>,
}

impl BenchReport {
    pub fn new(
        preset: Option<&str>,
        allocator: String,
        cfg: &Config,
        out: &Outcome,
    ) -> BenchReport {
        BenchReport {
            config: cfg.clone(),
            preset: preset.map(str::to_owned),
            allocator,
            ops: out.ops(),
            counts: out.counts,
            secs: out.secs,
            mops: out.mops(),
            cpu_secs: out.cpu_secs,
            memory: Some(out.memory),
        }
    }

    /// CPU nanoseconds per op (all threads' CPU time in the timed section / ops).
    pub fn cpu_ns_per_op(&self) -> f64 {
        if self.ops == 0 {
            0.0
        } else {
            self.cpu_secs * 1e9 / self.ops as f64
        }
    }

    pub fn human_line(&self) -> String {
        format!(
            "workload={} touch={} threads={} ops={} secs={:.3} mops={:.2} ns_per_op={:.1} cpu_ns_per_op={:.1} remote={} fallback={} reallocs={} allocator={}",
            self.config.kind.name(),
            self.config.touch,
            self.config.threads,
            self.ops,
            self.secs,
            self.mops,
            self.secs * 1e9 / self.ops.max(1) as f64,
            self.cpu_ns_per_op(),
            self.counts.remote_frees,
            self.counts.fallbacks,
            self.counts.reallocs,
            self.allocator
        ) + &self.memory.map(memory_words).unwrap_or_default()
    }
}

/// " live_peak_mib=... overhead_peak_mib=..." for the human line.
fn memory_words(m: MemoryPeaks) -> String {
    let mib = |b: f64| b / (1024.0 * 1024.0);
    format!(
        " live_peak_mib={:.1} rss_at_live_peak_mib={:.1} rss_peak_mib={:.1} excess_mib={:.1} overhead_peak_mib={:.1} samples={} sampler_cpu_secs={:.3} sampler_switches={}",
        mib(m.live_peak_bytes as f64),
        mib(m.rss_at_live_peak_bytes as f64),
        mib(m.rss_peak_bytes as f64),
        mib(m.excess_bytes() as f64),
        mib(m.overhead_peak_bytes as f64),
        m.samples,
        m.sampler_cpu_secs,
        m.sampler_switches
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Kind;

    /// The field names hz3-analyze and old run directories rely on, each once, at the top level.
    #[test]
    fn json_keeps_the_flat_field_names_and_reads_old_reports() {
        let cfg = Config {
            kind: Kind::ServerTable,
            threads: 4,
            iters: 10,
            ws: 8,
            min: 16,
            max: 64,
            remote_pct: 50,
            ring: 32,
            matched: true,
            touch: false,
            seed: 7,
        };
        let out = Outcome {
            secs: 2.0,
            counts: Counts {
                mallocs: 5,
                local_frees: 2,
                remote_frees: 3,
                sent: 4,
                fallbacks: 1,
                reallocs: 6,
            },
            cpu_secs: 1.5,
            memory: MemoryPeaks {
                samples: 9,
                live_peak_bytes: 100,
                ..MemoryPeaks::default()
            },
        };
        let report = BenchReport::new(Some("p"), "glibc".into(), &cfg, &out);
        let v: serde_json::Value = serde_json::to_value(&report).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = [
            "bench",
            "preset",
            "allocator",
            "threads",
            "iters",
            "ws",
            "min",
            "max",
            "remote_pct",
            "ring",
            "matched",
            "touch",
            "seed",
            "ops",
            "mallocs",
            "local_frees",
            "remote",
            "sent",
            "fallback",
            "reallocs",
            "secs",
            "mops",
            "cpu_secs",
            "memory",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(v["bench"], "server-table");
        assert_eq!(
            (v["remote"].as_u64(), v["fallback"].as_u64()),
            (Some(3), Some(1))
        );
        assert_eq!(v["ops"], 16);
        assert_eq!(v["memory"]["live_peak_bytes"], 100);
        let back: BenchReport = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, report);
        assert!(
            report.human_line().contains(" samples=9 "),
            "{}",
            report.human_line()
        );
        // A report from before `reallocs`, `cpu_secs` and `memory` existed still reads, with zeros.
        let mut old = v;
        let fields = old.as_object_mut().unwrap();
        fields.remove("reallocs");
        fields.remove("cpu_secs");
        fields.remove("memory");
        let back: BenchReport = serde_json::from_value(old).unwrap();
        assert_eq!(
            (back.counts.reallocs, back.cpu_secs, back.memory),
            (0, 0.0, None)
        );
    }
}
