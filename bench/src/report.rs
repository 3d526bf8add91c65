//! The bench's result: one human line, or one JSON object that `hz3-analyze` reads back.
use crate::workload::{Config, Outcome};
use serde::{Deserialize, Serialize};

/// One run's result with its configuration; the JSON shape `hz3-bench remote --json` prints.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// The workload kind ("remote", "server-table", ...).
    pub bench: String,
    pub preset: Option<String>,
    /// Who answered malloc (see [`crate::identity::answering_allocator`]).
    pub allocator: String,
    pub threads: usize,
    pub iters: u64,
    pub ws: usize,
    pub min: usize,
    pub max: usize,
    pub remote_pct: u32,
    pub ring: usize,
    pub matched: bool,
    pub touch: bool,
    pub seed: u64,
    /// mallocs + local_frees + remote (drained remote frees) + reallocs.
    pub ops: u64,
    pub mallocs: u64,
    pub local_frees: u64,
    /// Remote frees performed by the receiving threads inside the timed section.
    pub remote: u64,
    /// Objects pushed to a ring (equal to `remote` in matched mode).
    pub sent: u64,
    /// Remote frees done locally because the ring was full.
    pub fallback: u64,
    /// Successful reallocs (absent in reports older than the field).
    #[serde(default)]
    pub reallocs: u64,
    pub secs: f64,
    pub mops: f64,
    /// CPU seconds of all threads in the timed section (absent in reports older than the field).
    #[serde(default)]
    pub cpu_secs: f64,
}

impl BenchReport {
    pub fn new(
        preset: Option<&str>,
        allocator: String,
        cfg: &Config,
        out: &Outcome,
    ) -> BenchReport {
        BenchReport {
            bench: cfg.kind.name().into(),
            preset: preset.map(str::to_owned),
            allocator,
            threads: cfg.threads,
            iters: cfg.iters,
            ws: cfg.ws,
            min: cfg.min,
            max: cfg.max,
            remote_pct: cfg.remote_pct,
            ring: cfg.ring,
            matched: cfg.matched,
            touch: cfg.touch,
            seed: cfg.seed,
            ops: out.ops(),
            mallocs: out.mallocs,
            local_frees: out.local_frees,
            remote: out.remote_frees,
            sent: out.sent,
            fallback: out.fallbacks,
            reallocs: out.reallocs,
            secs: out.secs,
            mops: out.mops(),
            cpu_secs: out.cpu_secs,
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
            self.bench,
            self.touch,
            self.threads,
            self.ops,
            self.secs,
            self.mops,
            self.secs * 1e9 / self.ops.max(1) as f64,
            self.cpu_ns_per_op(),
            self.remote,
            self.fallback,
            self.reallocs,
            self.allocator
        )
    }
}
