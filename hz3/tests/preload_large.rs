//! Large blocks under `LD_PRELOAD` of each lane, checked by `c/large_check.c`: the 64 KiB
//! alloc-write-free loop, realloc growth in 8 KiB steps to 64 MiB, buffers grown to 1-6 MiB by
//! two threads (the realloc-growth preset's traffic), content across reallocs,
//! alignment, a huge request failing alone, the mapping-count limit (vm.max_map_count), and memory
//! returned by decay. glibc runs each checker first (except decay, which glibc's arenas do not
//! meet), so a failure under hz3 is hz3's. The failure cases (huge request, mapping limit) run on
//! every shipped build, decay on all but failfast; the rest on both lanes.
//!
//! The probes builds then show which path served the work (cache hits, in-place growth, mremap,
//! decay purges); no test is decided by time.

mod common;

use common::{
    assert_success, compile_c, describe, preload_lib, run, shipped_builds, TempDir, LANES,
};
use probes::reader::{read, Dump};
use probes::Event;
use std::process::Command;

/// Runs `large_check <mode>` under `build` = (library, the lane it reports), glibc for None;
/// returns stdout after checking the run.
fn large_check(mode: &str, build: Option<(&str, &str)>) -> String {
    let dir = TempDir::new("large");
    let exe = compile_c("large_check", dir.path());
    let mut cmd = Command::new(&exe);
    cmd.arg(mode).env_remove("HZ3_PROBES_OUT");
    match build {
        Some((lib, lane)) => cmd.arg(lane).env("LD_PRELOAD", preload_lib(lib)),
        None => cmd.env_remove("LD_PRELOAD"),
    };
    let out = run(cmd);
    let what = format!(
        "large_check {mode} under {}",
        build.map_or("glibc", |b| b.0)
    );
    assert_success(&what, &out);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!stdout.contains("FAIL"), "{what}\n{stdout}");
    if build.is_some() {
        assert!(stdout.contains("ok identity.hz3_lane"), "{stdout}");
    }
    println!("--- {what} ---\n{stdout}");
    stdout
}

/// Runs `mode` on glibc (if `with_glibc`) and on `builds`; each must pass `check`.
fn on_builds(mode: &str, check: &str, with_glibc: bool, builds: &[(String, &str)]) {
    let glibc = with_glibc.then_some(None);
    let hz3 = builds.iter().map(|(lib, lane)| Some((lib.as_str(), *lane)));
    for build in glibc.into_iter().chain(hz3) {
        let stdout = large_check(mode, build);
        assert!(
            stdout.contains(&format!("ok {check}\n")),
            "{mode} under {build:?}: {check} missing\n{stdout}"
        );
    }
}

fn each_lane(mode: &str, check: &str) {
    let lanes: Vec<_> = LANES.iter().map(|l| (l.to_string(), *l)).collect();
    on_builds(mode, check, true, &lanes);
}

/// Runs `mode` under the lane's probes build; returns the counters of its measured part.
fn probes_run(lane: &str, mode: &str) -> Dump {
    let dir = TempDir::new("large-probes");
    let exe = compile_c("large_check", dir.path());
    let dump = dir.path().join("dump.csv");
    let out = Command::new(&exe)
        .args([mode, lane])
        .env("LD_PRELOAD", preload_lib(&format!("{lane}_probes")))
        .env("LARGE_CHECK_DUMP", &dump)
        .env_remove("HZ3_PROBES_OUT")
        .output()
        .expect("start large_check");
    assert_success(&format!("large_check {mode} under {lane}_probes"), &out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok identity.hz3_lane\n"),
        "{}",
        describe(&out)
    );
    read(&dump).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn loop_of_64k_blocks() {
    each_lane("loop64k", "large.loop64k");
}

#[test]
fn realloc_growth_to_64m() {
    each_lane("realloc-growth", "large.realloc_growth");
}

#[test]
fn buffers_grown_by_realloc_keep_content() {
    each_lane("buffers", "large.buffers");
}

/// 80 buffers grown in 8 KiB steps to 1-6 MiB by two threads (the realloc-growth preset's
/// traffic): each enters the large box once and then grows in place or by mremap, never across the
/// edge of a mapping (where the kernel refuses mremap); the pages one buffer freed serve the next.
#[test]
fn growing_buffers_are_placed_to_grow_in_place() {
    for lane in LANES {
        let d = probes_run(lane, "buffers");
        let buffers = 80;
        assert_eq!(d.event(Event::LargeRemapRefused), 0, "{lane}: {d:?}");
        // The step from the last small class copies; a large block copies only when neither its
        // neighbour nor mremap can take it. Measured: 84 large allocations with every chunk's edge
        // marked, 110 with only mremap targets' edges marked (what ships: marking chunks halved
        // large-churn's speed), 352 with best-fit placement.
        assert!(
            d.event(Event::LargeAlloc) <= 2 * buffers,
            "{lane}: large blocks copied: {d:?}"
        );
        // Buffers reuse the chunks and mremap targets earlier ones freed: a few dozen mappings
        // (24 measured; best fit placement made 147), not one per move.
        assert!(d.event(Event::MmapCalls) <= 48, "{lane}: {d:?}");
        assert!(d.event(Event::ReallocCopy) >= buffers, "{lane}: {d:?}");
    }
}

#[test]
fn realloc_keeps_content() {
    each_lane("realloc-content", "large.realloc_content");
}

#[test]
fn aligned_large_blocks() {
    each_lane("aligned", "large.aligned");
}

#[test]
fn huge_request_fails_alone() {
    on_builds("huge", "large.huge_fails_alone", true, &shipped_builds());
}

#[test]
fn near_the_mapping_count_limit() {
    on_builds("maplimit", "large.map_limit", true, &shipped_builds());
}

/// The builds whose memory return is judged: the failfast builds keep a live-object bitmap (1 bit
/// per 16 B of small runs) they never return, outside the allowance and not what a production
/// build holds.
fn returning_builds() -> Vec<(String, &'static str)> {
    shipped_builds()
        .into_iter()
        .filter(|(lib, _)| !lib.contains("failfast"))
        .collect()
}

#[test]
fn freed_memory_returns_after_decay() {
    on_builds(
        "decay",
        "large.decay_returns_memory",
        false,
        &returning_builds(),
    );
}

#[test]
fn remotely_freed_bursts_return_after_decay_without_large_blocks() {
    // What the transfer cache holds after a burst must reach decay through small-object traffic
    // alone (spills), not only through large blocks or thread exits.
    on_builds(
        "decay-remote",
        "large.decay_returns_remote_bursts",
        false,
        &returning_builds(),
    );
}

#[test]
fn freed_64k_blocks_are_reused_from_the_cache() {
    for lane in LANES {
        let d = probes_run(lane, "loop64k");
        // 20 000 rounds: every malloc after the first finds the block the previous round freed.
        assert_eq!(d.event(Event::LargeAlloc), 20_000, "{lane}");
        assert!(d.event(Event::LargeCacheHit) >= 19_999, "{lane}: {d:?}");
        // One chunk and perhaps its page-map leaf; each malloc mapped its own block before the cache.
        assert!(d.event(Event::MmapCalls) <= 2, "{lane}: {d:?}");
        // Nothing unmapped but the alignment trim of that one mapping (under 64 KiB).
        assert!(d.event(Event::MunmapBytes) < 64 << 10, "{lane}: {d:?}");
    }
}

#[test]
fn realloc_growth_grows_in_place_or_by_mremap() {
    for lane in LANES {
        let d = probes_run(lane, "realloc-growth");
        let (in_place, remap) = (d.event(Event::LargeGrowInPlace), d.event(Event::LargeRemap));
        // 8192 steps of 8 KiB: most stay within the block's run slack, the rest grow into the free
        // neighbour or move by mremap with room to spare; only the step from a small block to a
        // large one copies (one large allocation).
        assert!(remap >= 1, "{lane}: no mremap: {d:?}");
        assert!(in_place >= 1, "{lane}: no in-place growth: {d:?}");
        assert!(
            remap < 32,
            "{lane}: {remap} mremaps: growth is not geometric"
        );
        assert!(
            d.event(Event::LargeAlloc) <= 2,
            "{lane}: large growth copied: {d:?}"
        );
    }
}

#[test]
fn huge_request_leaves_the_cache_alone() {
    for lane in LANES {
        let d = probes_run(lane, "huge");
        // malloc, posix_memalign, calloc and realloc of 2^46 bytes.
        assert_eq!(d.event(Event::LargeHugeFail), 4, "{lane}: {d:?}");
        assert_eq!(
            d.event(Event::MunmapCalls),
            0,
            "{lane}: cache dropped: {d:?}"
        );
        assert!(d.event(Event::LargeCacheHit) >= 32, "{lane}: {d:?}");
    }
}

#[test]
fn decay_purges_in_batches() {
    for lane in LANES {
        let d = probes_run(lane, "decay");
        let purged = d.event(Event::DecayPurgeBytes);
        // 256 MiB of large blocks and 16 MiB of small objects freed; all but the last trigger
        // block goes back.
        assert!(
            purged >= 256 << 20,
            "{lane}: only {purged} bytes purged: {d:?}"
        );
        assert!(d.event(Event::DecayPurgeRuns) >= 1, "{lane}: {d:?}");
        // Passes are rate-limited per second, and a loaded machine stretches the run, so only
        // "at least one" is a fact; batching is judged per pass below.
        let passes = d.event(Event::DecayPass);
        assert!(passes >= 1, "{lane}: {passes} passes: {d:?}");
        assert!(
            d.event(Event::DecayPurgeRuns) + d.event(Event::DecayPurgeExtents) > 4 * passes,
            "{lane}: not batched: {d:?}"
        );
    }
}

#[test]
fn realloc_shrinks_and_grows_without_copying() {
    for lane in LANES {
        let d = probes_run(lane, "realloc-content");
        assert!(d.event(Event::LargeShrinkInPlace) >= 1, "{lane}: {d:?}");
        assert!(d.event(Event::LargeGrowInPlace) >= 1, "{lane}: {d:?}");
        assert!(d.event(Event::LargeRemap) >= 1, "{lane}: {d:?}");
    }
}

#[test]
fn aligned_blocks_reuse_freed_extents() {
    for lane in LANES {
        let d = probes_run(lane, "aligned");
        // 100 aligned allocations, most freed at once: later rounds carve the freed extents
        // (their alignment pads stay in the cache) instead of mapping anew.
        let (hits, misses) = (
            d.event(Event::LargeCacheHit),
            d.event(Event::LargeCacheMiss),
        );
        assert!(
            hits > 2 * misses,
            "{lane}: {hits} hits, {misses} misses: {d:?}"
        );
    }
}
