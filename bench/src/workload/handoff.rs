//! One-way producer → consumer traffic (after the published description of "xmalloc-test"): the
//! first T/2 threads only allocate, the other T/2 only free. Producer i hands each object to
//! consumer i through a bounded ring of --ring slots, waiting (yielding) while it is full; nothing
//! is ever freed by the thread that allocated it.
//!
//! The consumer replays its producer's random stream, so it knows the size and tag of every object
//! it receives and checks both the contents and the order: a lost, duplicated or corrupted object
//! fails the run.
use super::{
    inconsistent, malloc_or_exit, run_threads, Clock, Config, Outcome, RawAlloc, StartLine,
};
use super::{Counts, Timed};
use crate::live::{Live, LiveCell};
use crate::object;
use crate::ring::Ring;
use crate::rng::SplitMix64;

const NAME: &str = "producer-consumer";

pub fn run<A: RawAlloc>(cfg: &Config, alloc: &A, live: &Live) -> Outcome {
    // The command line makes threads even and at least 2.
    let pairs = (cfg.threads / 2).max(1);
    let rings: Vec<Ring> = (0..pairs).map(|_| Ring::new(cfg.ring)).collect();
    // The bench's own heap counts as live: the overhead figure is the allocator's.
    let ring_bytes = pairs * Ring::heap_bytes(cfg.ring);
    live.main().add(ring_bytes);
    let outcome = run_threads(pairs * 2, live, |index, start_line| {
        let pair = index % pairs;
        let held = live.thread(index);
        if index < pairs {
            produce(cfg, alloc, pair, &rings[pair], start_line, held)
        } else {
            consume(cfg, alloc, pair, &rings[pair], start_line, held)
        }
    });
    drop(rings);
    live.main().sub(ring_bytes);
    let expected = pairs as u64 * cfg.iters;
    if outcome.counts.mallocs != expected
        || outcome.counts.remote_frees != expected
        || outcome.counts.sent != expected
    {
        inconsistent(
            NAME,
            format_args!(
                "{} mallocs, {} handed over, {} freed by consumers; expected {expected} each",
                outcome.counts.mallocs, outcome.counts.sent, outcome.counts.remote_frees
            ),
        );
    }
    outcome
}

/// The size of the next object in producer `pair`'s stream (the consumer draws the same).
#[inline(always)]
fn next_size(cfg: &Config, rng: &mut SplitMix64) -> usize {
    rng.between(cfg.min as u64, cfg.max as u64) as usize
}

fn produce<A: RawAlloc>(
    cfg: &Config,
    alloc: &A,
    pair: usize,
    ring: &Ring,
    start_line: &StartLine,
    held: &LiveCell,
) -> Timed {
    let mut rng = SplitMix64::for_thread(cfg.seed, pair as u64);
    let mut producer = ring.producer();
    let mut t = Counts::default();
    let clock = Clock::start_after(start_line);
    for seq in 0..cfg.iters {
        let size = next_size(cfg, &mut rng);
        let p = malloc_or_exit(alloc, size);
        // SAFETY: p is a fresh block of `size` bytes.
        unsafe { object::fill(cfg.touch, p, size, object::tag(pair, seq)) };
        held.add(size);
        t.mallocs += 1;
        while !producer.push(p, size) {
            // Two cores, many threads: let the consumer run rather than spin.
            std::thread::yield_now();
        }
        t.sent += 1;
    }
    producer.finish();
    clock.stop(t)
}

fn consume<A: RawAlloc>(
    cfg: &Config,
    alloc: &A,
    pair: usize,
    ring: &Ring,
    start_line: &StartLine,
    held: &LiveCell,
) -> Timed {
    let mut replay = SplitMix64::for_thread(cfg.seed, pair as u64);
    let mut t = Counts::default();
    let mut seq = 0u64;
    let clock = Clock::start_after(start_line);
    loop {
        // The done flag is read before the drain, so an empty drain after seeing it means every
        // object the producer made has been freed here.
        let done = ring.producer_done();
        let n = ring.drain(|p, sent| {
            let size = next_size(cfg, &mut replay);
            if sent != size {
                inconsistent(
                    NAME,
                    format_args!("object {seq} arrived as {sent} bytes, its producer drew {size}"),
                );
            }
            held.sub(size);
            // SAFETY: the producer handed over a live block of `size` bytes (the same stream).
            unsafe {
                object::verify(cfg.touch, p, size, object::tag(pair, seq), NAME);
                alloc.free(p);
            }
            seq += 1;
        });
        t.remote_frees += n;
        if n == 0 {
            if done {
                break;
            }
            std::thread::yield_now();
        }
    }
    clock.stop(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::checking::{small_config, CheckingAlloc};
    use crate::workload::Kind;

    #[test]
    fn every_object_is_allocated_by_a_producer_and_freed_by_its_consumer() {
        for (threads, ring, touch) in [(2, 2, true), (6, 64, true), (4, 16, false)] {
            let alloc = CheckingAlloc::default();
            let cfg = Config {
                threads,
                ring,
                touch,
                ..small_config(Kind::ProducerConsumer)
            };
            let out = crate::workload::run(&cfg, &alloc);
            alloc.check_balanced();
            let objects = (threads / 2) as u64 * cfg.iters;
            assert_eq!(
                (
                    out.counts.mallocs,
                    out.counts.sent,
                    out.counts.remote_frees,
                    out.counts.local_frees
                ),
                (objects, objects, objects, 0)
            );
            assert_eq!(out.ops(), 2 * objects);
        }
    }
}
