//! hz3-analyze as a library: each subcommand is one module with an `Args` (clap) and a `run`.
pub mod allocators;
pub mod attribute;
pub mod boxes;
pub mod cli;
pub mod cli_docs;
pub mod flame;
pub mod gap;
pub mod inject_check;
pub mod matrix;
pub mod perf_run;
pub mod perf_table;
pub mod perf_tool;
pub mod probes_cmd;
pub mod record;
pub mod report;
pub mod runner;
pub mod stats;
