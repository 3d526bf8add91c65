//! `hz3-bench remote ...`: run the workload through the C malloc and print the result.
use bench::cli::{self, Preset};
use bench::{identity, workload, BenchReport, CMalloc};

fn main() {
    let (args, cfg) = cli::parse(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let outcome = workload::run_sampled(&cfg, &CMalloc, args.sample_period());
    let report = BenchReport::new(
        args.preset.map(Preset::name),
        identity::answering_allocator(),
        &cfg,
        &outcome,
    );
    if args.json {
        eprintln!("{}", report.human_line());
        println!(
            "{}",
            serde_json::to_string(&report).expect("a report always serializes")
        );
    } else {
        println!("{}", report.human_line());
    }
}
