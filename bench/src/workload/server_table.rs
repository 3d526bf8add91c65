//! A server-style mix (after the published description of "larson"): a shared table of T×W slots
//! split into T regions. Each thread fills its own region, then works in rounds of W replacements;
//! in round r it owns region (index + r) mod T and replaces random slots there: the old block (most
//! often one another thread allocated in an earlier round) is freed, a new one of a random size
//! takes its place. So blocks change hands between threads every round, as connections do between
//! workers: about 63% of the frees (1 - 1/e, the share of slots a round hits) are remote.
use super::{inconsistent, malloc_or_exit, run_threads, Clock, Config, Counts, Outcome, RawAlloc};
use crate::live::{Live, LiveCell};
use crate::object;
use crate::rng::SplitMix64;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::Relaxed};
use std::sync::Barrier;

const NAME: &str = "server-table";

/// One table slot. A region belongs to one thread per round and the round barrier orders the
/// hand-over, so Relaxed atomics suffice (plain moves on x86, the same cost under every allocator).
struct Slot {
    block: AtomicPtr<u8>,
    /// size (low 32 bits) | tag << 32 | allocating thread << 40.
    meta: AtomicU64,
}

pub fn run<A: RawAlloc>(cfg: &Config, alloc: &A, live: &Live) -> Outcome {
    let threads = cfg.threads.max(1);
    let ws = cfg.ws;
    let table: Vec<Slot> = (0..threads * ws)
        .map(|_| Slot {
            block: AtomicPtr::new(std::ptr::null_mut()),
            meta: AtomicU64::new(0),
        })
        .collect();
    // The bench's own heap counts as live: the overhead figure is the allocator's.
    let table_bytes = table.len() * std::mem::size_of::<Slot>();
    live.main().add(table_bytes);
    // A round replaces as many slots as a region holds; the last one may be shorter.
    let rounds = cfg.iters.div_ceil(ws as u64);
    let round_line = Barrier::new(threads);
    let region = |r: usize| &table[r * ws..(r + 1) * ws];
    let outcome = run_threads(threads, live, |index, start_line| {
        let held = live.thread(index);
        let mut rng = SplitMix64::for_thread(cfg.seed, index as u64);
        let mut seq = 0u64;
        let mut place = |slot: &Slot, t: &mut Counts, rng: &mut SplitMix64| {
            let size = rng.between(cfg.min as u64, cfg.max as u64) as usize;
            let tag = object::tag(index, seq);
            seq += 1;
            let p = malloc_or_exit(alloc, size);
            // SAFETY: p is a fresh block of `size` bytes.
            unsafe { object::fill(cfg.touch, p, size, tag) };
            held.add(size);
            slot.block.store(p, Relaxed);
            slot.meta.store(
                size as u64 | (tag as u64) << 32 | (index as u64) << 40,
                Relaxed,
            );
            t.mallocs += 1;
        };
        // Untimed: the thread's own region starts full, as a server's table does.
        let mut warm_up = Counts::default();
        for slot in region(index) {
            place(slot, &mut warm_up, &mut rng);
        }
        let mut t = Counts::default();
        let clock = Clock::start_after(start_line);
        for round in 0..rounds {
            let slots = region((index + round as usize) % threads);
            let steps = (cfg.iters - round * ws as u64).min(ws as u64);
            for _ in 0..steps {
                let slot = &slots[rng.below(ws as u64) as usize];
                let (old, owner) = release(slot, cfg.touch, held);
                // SAFETY: `old` was allocated by `alloc` and left the table in `release`.
                unsafe { alloc.free(old) };
                if owner == index {
                    t.local_frees += 1;
                } else {
                    t.remote_frees += 1;
                }
                place(slot, &mut t, &mut rng);
            }
            round_line.wait();
        }
        clock.stop(t)
    });
    let mut left = 0u64;
    for slot in &table {
        let (p, _) = release(slot, cfg.touch, live.main());
        // SAFETY: as above; every slot holds a live block after the warm-up.
        unsafe { alloc.free(p) };
        left += 1;
    }
    drop(table);
    live.main().sub(table_bytes);
    // Each step frees one block and allocates one; the table holds the rest.
    let frees = outcome.counts.local_frees + outcome.counts.remote_frees;
    if outcome.counts.mallocs != frees || left != (threads * ws) as u64 {
        inconsistent(
            NAME,
            format_args!(
                "{} mallocs but {frees} frees in the timed section, {left} blocks left of {} slots",
                outcome.counts.mallocs,
                threads * ws
            ),
        );
    }
    outcome
}

/// Takes the block out of `slot` after checking its contents, counting it freed in `held`:
/// (block, allocating thread).
fn release(slot: &Slot, touch: bool, held: &LiveCell) -> (*mut u8, usize) {
    let p = slot.block.swap(std::ptr::null_mut(), Relaxed);
    let meta = slot.meta.load(Relaxed);
    if p.is_null() {
        inconsistent(NAME, format_args!("a table slot is empty"));
    }
    let size = (meta & 0xffff_ffff) as usize;
    held.sub(size);
    // SAFETY: the slot's block is live and `size` bytes long (its meta was stored with it).
    unsafe { object::verify(touch, p, size, (meta >> 32) as u8, NAME) };
    (p, (meta >> 40) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::checking::{small_config, CheckingAlloc};
    use crate::workload::Kind;

    #[test]
    fn blocks_change_hands_and_every_one_is_freed_once() {
        for (threads, touch) in [(1, true), (4, true), (3, false)] {
            let alloc = CheckingAlloc::default();
            let cfg = Config {
                threads,
                iters: 5_000,
                ws: 50,
                min: 8,
                max: 1000,
                touch,
                ..small_config(Kind::ServerTable)
            };
            let out = crate::workload::run(&cfg, &alloc);
            alloc.check_balanced();
            assert_eq!(out.counts.mallocs, threads as u64 * cfg.iters);
            assert_eq!(out.ops(), 2 * threads as u64 * cfg.iters);
            if threads > 1 {
                // Every round but one in T works on another thread's region.
                assert!(out.counts.remote_frees > out.counts.local_frees, "{out:?}");
            } else {
                assert_eq!(out.counts.remote_frees, 0);
            }
        }
    }

    /// The table is the one place where the live set is known exactly: with one block size it
    /// holds T×W blocks of that size at every step boundary, and never more (a step frees before
    /// it allocates). The sample taken when all the threads have finished sees it whole.
    #[test]
    fn the_live_peak_is_the_full_table_and_its_pages_are_resident() {
        for threads in [1, 3] {
            let (ws, size) = (2000, 4096);
            let cfg = Config {
                threads,
                iters: 3 * ws as u64,
                ws,
                min: size,
                max: size,
                touch: true,
                ..small_config(Kind::ServerTable)
            };
            let m = crate::workload::run(&cfg, &crate::workload::CMalloc).memory;
            let table = threads * ws;
            assert_eq!(
                m.live_peak_bytes,
                (table * (size + std::mem::size_of::<Slot>())) as u64,
                "threads={threads}: {m:?}"
            );
            // Written blocks are resident: the RSS at that sample holds at least the table.
            assert!(m.rss_at_live_peak_bytes >= m.live_peak_bytes, "{m:?}");
            assert!(
                m.overhead_peak_bytes >= m.rss_at_live_peak_bytes as i64 - m.live_peak_bytes as i64
            );
            // Start, first clock stopped (in the window), threads finished, end.
            assert_eq!((m.samples, m.window_samples, m.period_ms), (4, 1, 0));
        }
    }
}
