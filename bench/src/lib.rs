//! hz3-bench as a library: the workloads, its command line and its report, shared with
//! `hz3-analyze` (which validates bench arguments and reads the JSON with these same types).
pub mod cli;
pub mod identity;
pub mod live;
pub mod object;
pub mod report;
pub mod ring;
pub mod rng;
pub mod workload;

pub use report::BenchReport;
pub use workload::{CMalloc, Config, Counts, Kind, Outcome, RawAlloc};
