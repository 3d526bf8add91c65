//! hz3-stress: many threads doing random malloc-family calls through the C symbols, every block checked
//! against a shadow of all live blocks. Runs on whatever malloc the process gets (`LD_PRELOAD`).
//! Exit 0: every check held; 1: a check failed (one line on stderr names it); 2: bad flags.

mod identity;
mod pattern;
mod registry;
mod worker;

use anyhow::{bail, Result};
use clap::Parser;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use worker::{Config, Counts, Shared, Worker};

#[derive(Parser, Debug)]
#[command(
    name = "hz3-stress",
    about = "Shadow-checked multi-thread stress of the process's malloc"
)]
struct Args {
    /// Worker threads.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: u32,
    /// Operations per thread (ignored with --minutes).
    #[arg(long, default_value_t = 200_000)]
    ops: u64,
    /// Run for this long instead of a fixed number of operations (soak mode).
    #[arg(long)]
    minutes: Option<f64>,
    /// Seed of every thread's random sequence (thread i uses seed and i).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Live blocks per thread before it only frees.
    #[arg(long, default_value_t = 2_000)]
    max_live: usize,
    /// Percent of frees handed to another thread.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(0..=100))]
    remote_percent: u64,
    /// Fail unless hz3 of this lane is the allocator answering (proof for tests).
    #[arg(long)]
    expect_lane: Option<String>,
    /// Thread rounds: each round starts fresh threads, adopting the blocks the previous round left.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Flip a byte of a live block after 1000 operations: proves the checks fire (exit 1 expected).
    #[arg(long, hide = true)]
    inject_corruption: bool,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("hz3-stress: {e:#}");
        std::process::exit(2);
    }
}

fn run(args: &Args) -> Result<()> {
    let lane = identity::hz3_lane();
    let allocator = match &lane {
        Some(l) => format!("hz3 {l}"),
        None => String::from("not hz3"),
    };
    if let Some(want) = &args.expect_lane {
        if lane.as_deref() != Some(want.as_str()) {
            worker::fail(
                "identity",
                format_args!("expected hz3 lane {want}, allocator is {allocator}"),
            );
        }
    }
    let duration = match args.minutes {
        Some(m) if m.is_finite() && m > 0.0 => Some(Duration::from_secs_f64(m * 60.0)),
        Some(m) => bail!("--minutes must be a positive number, got {m}"),
        None => None,
    };
    let threads = args.threads as usize;
    let cfg = Config {
        ops: args.ops,
        deadline: None,
        max_live: args.max_live.max(1),
        remote_percent: args.remote_percent,
        seed: args.seed,
        inject_corruption: args.inject_corruption,
    };
    let shared = Shared {
        registry: registry::Registry::new(),
        inboxes: (0..threads).map(|_| Mutex::new(Vec::new())).collect(),
    };
    let started = Instant::now();
    let mut total = Counts::default();
    let mut left_behind: Vec<Vec<worker::Block>> = (0..threads).map(|_| Vec::new()).collect();
    for round in 0..args.rounds {
        let round_cfg = Config {
            seed: cfg.seed.wrapping_add(round as u64 * 0x1_0000),
            // A timed run shares its time out evenly between the rounds.
            deadline: duration.map(|d| started + d * (round + 1) / args.rounds),
            ..cfg
        };
        let results = std::thread::scope(|s| {
            let handles: Vec<_> = left_behind
                .drain(..)
                .enumerate()
                .map(|(i, orphans)| {
                    let (shared, cfg) = (&shared, &round_cfg);
                    s.spawn(move || {
                        // Blocks the previous round's thread i left live: its thread has exited.
                        let mut w = Worker::new(i, shared, cfg);
                        w.adopt(orphans);
                        w.run()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("worker thread panicked"))
                .collect::<Vec<_>>()
        });
        for (counts, live) in results {
            total.add(&counts);
            left_behind.push(live);
        }
    }
    // Last: what was sent to threads after their final drain, and what the last round left live.
    for (i, orphans) in left_behind.into_iter().enumerate() {
        let mut w = Worker::new(i, &shared, &cfg);
        w.drain_inbox();
        w.adopt(orphans);
        total.add(&w.counts);
    }
    println!(
        "hz3-stress: ok allocator={} threads={threads} rounds={} seed={} ops={} allocs={} frees={} remote_frees={} \
         reallocs={} failed_allocs={} checked_mib={} seconds={:.2}",
        allocator.replace(' ', "-"),
        args.rounds,
        args.seed,
        total.ops,
        total.allocs,
        total.frees,
        total.remote_frees,
        total.reallocs,
        total.failed_allocs,
        total.bytes_checked >> 20,
        started.elapsed().as_secs_f64()
    );
    if total.allocs != total.frees + total.reallocs {
        worker::fail(
            "accounting",
            format_args!(
                "{} blocks allocated, {} freed, {} moved by realloc",
                total.allocs, total.frees, total.reallocs
            ),
        );
    }
    Ok(())
}
