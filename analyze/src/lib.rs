//! hz3-analyze as a library: each step (matrix, record, attribute, gap, flame, export) is a
//! function over typed options (`MatrixOptions`, `RecordOptions`, …) returning what it made;
//! beside it, its clap `Args` convert into those options and its `run` prints the result for
//! `cli`. `report` and the guard call the step functions in-process.
pub mod allocators;
pub mod attribute;
pub mod boxes;
pub mod cli;
pub mod core_round_trip;
pub mod export;
pub mod flame;
pub mod gap;
pub mod host;
pub mod host_costs;
pub mod inject_check;
pub mod matrix;
pub mod perf_run;
pub mod perf_tool;
pub mod probes_cmd;
pub mod process;
pub mod program;
pub mod record;
pub mod report;
pub mod runner;
pub mod stats;
pub mod table;
