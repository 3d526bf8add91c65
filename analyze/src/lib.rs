//! hz3-analyze as a library: each subcommand is one module with an `Args` (clap) and a `run`.
pub mod cli;
pub mod matrix;
pub mod probes_cmd;
pub mod record;
pub mod attribute;
pub mod gap;
pub mod inject_check;
pub mod flame;
pub mod report;
pub mod allocators;
pub mod runner;
pub mod perf_run;
pub mod perf_tool;
pub mod perf_table;
pub mod boxes;
